"""Benchmark: scorings per second with W worker processes (agent.workerpool), and why.

Scores one architecture many times (the pool never caches) per setting, after one warm-up
scoring per worker so that start-up is not counted. For each architecture it measures

- W = 1 and W = `--workers` (default 2) with the run's default threads (cores / W), which is
  what a user gets, and the same two worker counts at 1 thread each;
- one scoring's speed-up from 1 thread to the W = 1 default (cores threads), from the
  W = 1 rows: how much of the machine a single worker already uses;
- the ceiling this implies for W workers over 1 at default threads: W workers of T_W threads
  each can at best run W times as fast as one worker of T_W threads, so

      ceiling = W x rate(W=1, T_W threads) / rate(W=1, default threads)

  (on 2 cores: 2 / the 1 -> 2-thread speed-up). When one worker already keeps most cores
  busy, parallel workers have little left to gain, whatever the pool does; the 1-thread
  rows show what the pool itself scales to.

It prints one JSON line per measured setting, then the reasoning as figures per
architecture, and with `--out` writes everything as JSON (bench/results/). Architectures come
from fixtures/architectures/zennas-reference.txt: the CIFAR search seed and ZenNet-CIFAR-1M.

    python -m bench.scoring_throughput --scorings 40 --out bench/results/scoring_throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from importlib import resources
from pathlib import Path
from typing import Any

from nasagent.agent.execution import available_cores, default_threads
from nasagent.agent.workerpool import WorkerPool
from nasagent.evaluator.proxies import ProxyStatus, ScoreSettings

REFERENCE_NAMES = {
    "cifar-seed": "CIFAR search seed", "zennet-cifar-1m": "zennet_cifar_model_size1M_res32",
}
TARGET = 1.6
"""The issue's target for W = 2 over W = 1 at default threads."""


def reference_architectures() -> dict[str, str]:
    """The fixture's block strings, by the short names above (the line after each comment)."""
    text = resources.files("nasagent.fixtures").joinpath(
        "architectures/zennas-reference.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    found = {}
    for short, marker in REFERENCE_NAMES.items():
        index = next(i for i, line in enumerate(lines) if line.startswith("#") and marker in line)
        found[short] = lines[index + 1].strip()
    return found


def measure(arch: str, workers: int, threads: int, scorings: int,
            settings: ScoreSettings) -> dict[str, Any]:
    """Throughput of `workers` workers of `threads` threads on `scorings` scorings of `arch`."""
    pool = WorkerPool(workers, threads)
    try:
        warm = [pool.submit(arch, settings) for _ in range(workers)]
        if any(f.result().status is not ProxyStatus.OK for f in warm):
            raise SystemExit(f"scoring failed: {warm[0].result().message}")
        started = time.perf_counter()
        results = [f.result() for f in [pool.submit(arch, settings) for _ in range(scorings)]]
        wall = time.perf_counter() - started
    finally:
        pool.close()
    return {
        "workers": workers, "threads": threads, "scorings": scorings,
        "wall_s": round(wall, 3), "scorings_per_s": round(scorings / wall, 3),
        "mean_score_s": round(sum(r.seconds for r in results) / scorings, 4),
    }


def settings_to_measure(workers: int, cores: int) -> list[tuple[int, int]]:
    """(workers, threads) pairs, each once: 1 and W workers at default threads and at 1
    thread, and 1 worker at W's default threads (the ceiling needs it)."""
    one, many = default_threads(1, cores), default_threads(workers, cores)
    pairs = [(1, one), (workers, many), (1, 1), (workers, 1), (1, many)]
    return list(dict.fromkeys(pairs))


def analyse(rows: dict[tuple[int, int], dict[str, Any]], workers: int,
            cores: int) -> dict[str, Any]:
    """The speed-ups and the ceiling, from the measured rows by (workers, threads)."""
    one, many = default_threads(1, cores), default_threads(workers, cores)
    rates = {key: row["scorings"] / row["wall_s"] for key, row in rows.items()}
    thread_speedup = rates[1, one] / rates[1, 1]
    ceiling = workers * rates[1, many] / rates[1, one]
    return {
        "workers": workers, "default_threads": {"1": one, str(workers): many},
        "one_scoring_s": {str(t): rows[1, t]["mean_score_s"] for t in sorted({1, one, many})},
        "speedup_default_threads": round(rates[workers, many] / rates[1, one], 3),
        "speedup_1_thread": round(rates[workers, 1] / rates[1, 1], 3),
        "one_scoring_thread_speedup": round(thread_speedup, 3),
        "one_worker_core_utilisation": round(thread_speedup / one, 3),
        "ceiling_default_threads": round(ceiling, 3),
        "target": TARGET, "target_reachable": ceiling >= TARGET,
    }


def report(name: str, figures: dict[str, Any]) -> list[str]:
    """The reasoning as lines of figures, for one architecture."""
    w, threads = figures["workers"], figures["default_threads"]
    one, many = threads["1"], threads[str(w)]
    seconds = figures["one_scoring_s"]
    reachable = "reachable" if figures["target_reachable"] else "NOT reachable"
    return [
        f"{name}: W={w} vs W=1 at default threads ({many} vs {one} per worker): "
        f"{figures['speedup_default_threads']:.2f}x (target >= {TARGET}x)",
        f"{name}: W={w} vs W=1 at 1 thread each: {figures['speedup_1_thread']:.2f}x "
        f"(what the pool itself scales to)",
        f"{name}: one scoring, 1 -> {one} threads: {seconds['1']:.3g} s -> "
        f"{seconds[str(one)]:.3g} s, speed-up {figures['one_scoring_thread_speedup']:.2f}x, "
        f"so W=1 already keeps {figures['one_scoring_thread_speedup']:.2f} of {one} cores "
        f"busy ({figures['one_worker_core_utilisation']:.0%})",
        f"{name}: ceiling for W={w}/W=1 at default threads = {w} x rate({many} thread(s)) / "
        f"rate({one} threads) = {figures['ceiling_default_threads']:.2f}x: the {TARGET}x "
        f"target is {reachable} with these threads",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="W, compared with 1 worker")
    parser.add_argument("--scorings", type=int, default=40, help="timed scorings per setting")
    parser.add_argument("--arch", nargs="+", choices=sorted(REFERENCE_NAMES),
                        default=sorted(REFERENCE_NAMES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error("--workers must be at least 2 (it is compared with 1 worker)")
    settings = ScoreSettings(batch_size=args.batch_size)
    cores, architectures = available_cores(), reference_architectures()
    results, analysis = [], {}
    for name in args.arch:
        measured = {}
        for workers, threads in settings_to_measure(args.workers, cores):
            row = {"arch": name, "cores": cores,
                   **measure(architectures[name], workers, threads, args.scorings, settings)}
            print(json.dumps(row), flush=True)
            results.append(row)
            measured[workers, threads] = row
        analysis[name] = analyse(measured, args.workers, cores)
        print("\n".join(report(name, analysis[name])), flush=True)
    if args.out:
        args.out.write_text(json.dumps(
            {"machine": platform.processor() or platform.machine(), "cores": cores,
             "batch_size": args.batch_size, "results": results, "analysis": analysis},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
