"""Benchmark: the search loop against a loopback OpenAI endpoint that adds latency per call.

Runs `nasagent search` in-process with the real `openai` SDK against a stdlib server on
127.0.0.1 that waits `--latency` seconds and then answers like the scripted stand-in (one
random Zen-NAS mutation of the parent it is shown), at each concurrency level, and reports
wall time, summed LLM wait, summed scoring time and the event-loop thread's own CPU time
(prompt rendering, reply parsing, validation, logging: the loop's overhead).

    python -m bench.loop_concurrency --iterations 100 --latency 1.0 --concurrency 1 8
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

from nasagent.agent.config import RunConfig
from nasagent.agent.runlog import read_events
from nasagent.agent.search import run_search


def measure(concurrency: int, iterations: int, latency: float, out: Path) -> dict[str, Any]:
    with _endpoint(latency) as (base_url, stats):
        os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-secret"
        config = RunConfig(
            llm="openai:loopback", base_url=base_url, iterations=iterations,
            concurrency=concurrency, seed=0,
        )
        cpu_before, wall_before = time.thread_time(), time.perf_counter()
        run_search(config, out, progress=False)
        wall = time.perf_counter() - wall_before
        loop_cpu = time.thread_time() - cpu_before
    events = read_events(out)
    return {
        "concurrency": concurrency, "iterations": iterations, "latency_s": latency,
        "wall_s": round(wall, 2), "llm_wait_s": round(sum(e.llm_seconds for e in events), 2),
        "scoring_s": round(sum(e.score_seconds for e in events), 2),
        "loop_cpu_s": round(loop_cpu, 2),
        "loop_cpu_ms_per_iteration": round(1000 * loop_cpu / iterations, 1),
        "llm_calls": sum(e.llm_calls for e in events), **stats,
    }


@contextmanager
def _endpoint(latency: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """A scripted loopback endpoint in its own process, as a remote endpoint would be."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.loopback_openai", str(latency)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    stats: dict[str, Any] = {}
    try:
        assert server.stdout is not None and server.stdin is not None
        yield server.stdout.readline().strip(), stats
        server.stdin.close()
        stats.update(json.loads(server.stdout.readline()))
    finally:
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in args.concurrency:
            result = measure(level, args.iterations, args.latency, Path(tmp) / f"c{level}")
            print(json.dumps(result), flush=True)
            results.append(result)
    if len(results) > 1:
        print(f"speed-up {results[0]['concurrency']} -> {results[-1]['concurrency']}: "
              f"{results[0]['wall_s'] / results[-1]['wall_s']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
