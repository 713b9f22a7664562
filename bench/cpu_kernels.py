"""Benchmark: what pinning torch's CPU kernels to AVX2 costs in scoring speed, and what it buys.

For each kernel choice (`native`: torch picks the widest ISA the CPU has, AVX-512 where there
is one; `avx2`: nasagent's default, evaluator.cpu_kernels) a fresh process (the choice is read
once per process) scores every architecture the shipped transcripts scored, with the
recorded settings (GradNorm, batch 64, 32x32, 100 classes, score seed 0), `--rounds` times
each, and reports

- seconds per scoring (median over rounds of the summed time of one round, per architecture),
- the relative drift of each score from the recorded one (median, max, how many beyond 1e-3).

The transcripts were recorded on a machine without AVX-512, so on such a machine both choices
reproduce them; on a machine with AVX-512 only `avx2` does. One JSON object is printed and,
with `--out`, written (bench/results/cpu_kernels.json).

    python -m bench.cpu_kernels --threads 2 --rounds 3 --out bench/results/cpu_kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODES = ("native", "avx2")


def recorded_scores() -> dict[str, float]:
    """Every architecture the shipped transcripts scored successfully, with its score."""
    from nasagent.agent.demo import DEFAULT_TRANSCRIPT, transcript_dir
    from nasagent.agent.runlog import read_events

    scores: dict[str, float] = {}
    for run_dir in sorted(transcript_dir(DEFAULT_TRANSCRIPT).glob("seed-*")):
        for event in read_events(run_dir):
            if event.status == "ok" and event.arch and event.score is not None:
                scores.setdefault(event.arch, event.score)
    return scores


def measure(threads: int, rounds: int) -> dict[str, Any]:
    """In this process (the kernel choice comes from its environment): times and drifts."""
    import torch

    from nasagent.evaluator import cpu_kernels, parse
    from nasagent.evaluator.proxies import ScoreSettings, score

    cpu_kernels.pin()
    torch.set_num_threads(threads)
    settings = ScoreSettings(proxy="gradnorm", batch_size=64, resolution=32, num_classes=100,
                             device="cpu")
    recorded = recorded_scores()
    archs = {arch: parse(arch) for arch in recorded}
    round_seconds, drifts = [], {}
    for _ in range(rounds):
        start = time.perf_counter()
        for arch, parsed in archs.items():
            result = score(parsed, settings)
            drifts[arch] = abs(result.score - recorded[arch]) / abs(recorded[arch])
        round_seconds.append(time.perf_counter() - start)
    values = sorted(drifts.values())
    return {
        "kernels": cpu_kernels.describe(), "architectures": len(archs), "rounds": rounds,
        "seconds_per_scoring": statistics.median(round_seconds) / len(archs),
        "round_seconds": round_seconds,
        "median_relative_drift": statistics.median(values), "max_relative_drift": values[-1],
        "beyond_1e-3": sum(value > 1e-3 for value in values),
    }


def run_mode(mode: str, threads: int, rounds: int) -> dict[str, Any]:
    """`measure` in a fresh process whose environment asks for `mode`."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    env["NASAGENT_CPU_KERNELS"] = mode
    command = [sys.executable, "-m", "bench.cpu_kernels", "--measure", "--threads", str(threads),
               "--rounds", str(rounds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.threads, args.rounds)))
        return
    results = {mode: run_mode(mode, args.threads, args.rounds) for mode in MODES}
    native, pinned = (results[mode]["seconds_per_scoring"] for mode in MODES)
    report = {
        "command": " ".join(["python -m bench.cpu_kernels", *sys.argv[1:]]),
        "threads": args.threads, "machine": platform.machine(), "processor": _cpu_model(),
        "results": results, "avx2_over_native_time": pinned / native,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
