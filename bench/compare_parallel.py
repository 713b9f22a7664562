"""Benchmark: a whole `compare` with runs at once (`--jobs`) on a shared scoring pool.

Two arms, `llm` (the real openai SDK against a loopback OpenAI-compatible endpoint in its own
process that adds `--latency` seconds per call and answers like the scripted stand-in) and
`random`, x `--seeds` seeds x `--iterations` iterations. Prints the wall time against the
bound max(LLM calls x latency / LLM calls in flight, scoring seconds / cores), where the
calls in flight are (llm runs at once) x concurrency and the scoring seconds are the sum of
the events' `score_seconds`. With `--busy`, as many processes as cores spin for the whole
compare (a shared machine); run it once idle and once busy and compare the wall times.
`runs_wall_s` runs from the call to the last event written (start-up included: the worker
pool, the first LLM call); `wall_s` adds the report (plots and statistics).

    python -m bench.compare_parallel --iterations 300 --seeds 3 --jobs 6 --workers 2
    python -m bench.compare_parallel --iterations 300 --seeds 3 --jobs 6 --workers 2 --busy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.loop_concurrency import _endpoint
from nasagent.agent.compare import make_plan, run_compare
from nasagent.agent.config import RunConfig
from nasagent.agent.execution import available_cores
from nasagent.agent.runlog import read_events

ARMS = ("llm", "random")


@contextmanager
def spinning(processes: int) -> Iterator[None]:
    """`processes` busy loops in their own processes, stopped on exit."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(processes)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(timeout=10)


def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    with _endpoint(args.latency) as (base_url, stats):
        os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-secret")
        config = RunConfig(
            llm="openai:loopback", base_url=base_url, iterations=args.iterations,
            concurrency=args.concurrency, workers=args.workers, threads=args.threads,
            batch_size=args.batch_size,
        )
        plan = make_plan(config, ARMS, range(args.seeds))
        with spinning(available_cores() if args.busy else 0):
            started, clock = time.perf_counter(), time.time()
            result = run_compare(plan, out, progress=False, jobs=args.jobs)
            wall = time.perf_counter() - started
    events = [e for arm in ARMS for s in range(args.seeds)
              for e in read_events(out / arm / f"seed-{s}")]
    first = min(e.timestamp for e in events)
    return {"wall_s": wall, "runs_wall_s": max(e.timestamp for e in events) - clock,
            "startup_s": first - clock, "stopped": len(result.stopped), **stats}


def bound(args: argparse.Namespace, out: Path, cores: int) -> dict[str, Any]:
    events = [e for arm in ARMS for s in range(args.seeds)
              for e in read_events(out / arm / f"seed-{s}")]
    calls = sum(e.llm_calls for e in events)
    # runs start in plan order (seed-major, arms alternating): about half of J are llm runs
    in_flight = min(args.seeds, (args.jobs + 1) // 2) * args.concurrency
    scoring_s = sum(e.score_seconds + (e.seconds if e.phase == "init" else 0.0)
                    for e in events)
    llm_bound, scoring_bound = calls * args.latency / in_flight, scoring_s / cores
    return {"llm_calls": calls, "llm_in_flight": in_flight, "llm_bound_s": llm_bound,
            "scorings": sum(e.status is not None for e in events), "scoring_s": scoring_s,
            "scoring_bound_s": scoring_bound, "bound_s": max(llm_bound, scoring_bound)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--threads", type=int, help="per worker (default cores / workers)")
    parser.add_argument("--concurrency", type=int, default=4, help="proposals in flight per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--busy", action="store_true", help="spin on every core meanwhile")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        measured = run(args, Path(tmp))
        figures = bound(args, Path(tmp), cores)
    row = {"cores": cores, "busy": args.busy, "jobs": args.jobs, "workers": args.workers,
           "iterations": args.iterations, "seeds": args.seeds, "latency_s": args.latency,
           **{k: round(v, 2) if isinstance(v, float) else v for k, v in
              {**measured, **figures}.items()}}
    row["wall_over_bound"] = round(measured["runs_wall_s"] / figures["bound_s"], 3)
    print(json.dumps(row), flush=True)
    print(f"runs took {row['runs_wall_s']} s (start-up {row['startup_s']} s; with the report "
          f"{row['wall_s']} s) vs bound {row['bound_s']} s: {row['wall_over_bound']}x "
          f"(target <= 1.25x idle; busy <= 2x the idle wall)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
