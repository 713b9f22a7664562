"""Benchmark: scorings per second with W worker processes (agent.workerpool) against W = 1.

Scores one architecture many times (the pool never caches) with each worker count, after
one warm-up scoring per worker so that start-up is not counted, and prints one JSON line per
(architecture, workers) plus the speed-up over the first worker count. Threads per worker
follow the run default (cores / W) unless `--threads` is given. Architectures come from
fixtures/architectures/zennas-reference.txt: the CIFAR search seed and ZenNet-CIFAR-1M.

    python -m bench.scoring_throughput --workers 1 2 --scorings 40 --out throughput.json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scorings", type=int, default=40, help="timed scorings per setting")
    parser.add_argument("--threads", type=int, help="threads per worker (default cores / W)")
    parser.add_argument("--arch", nargs="+", choices=sorted(REFERENCE_NAMES),
                        default=sorted(REFERENCE_NAMES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    settings = ScoreSettings(batch_size=args.batch_size)
    cores, architectures = available_cores(), reference_architectures()
    results = []
    for name in args.arch:
        rows = []
        for workers in args.workers:
            threads = args.threads or default_threads(workers, cores)
            row = {"arch": name, "cores": cores,
                   **measure(architectures[name], workers, threads, args.scorings, settings)}
            print(json.dumps(row), flush=True)
            rows.append(row)
        for row in rows[1:]:
            speedup = row["scorings_per_s"] / rows[0]["scorings_per_s"]
            print(f"{name}: W={row['workers']} vs W={rows[0]['workers']}: {speedup:.2f}x "
                  f"(target for W=2 vs 1: >= 1.6x)", flush=True)
            row["speedup"] = round(speedup, 3)
        results.extend(rows)
    if args.out:
        args.out.write_text(json.dumps(
            {"machine": platform.processor() or platform.machine(), "results": results},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
