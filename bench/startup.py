"""Time the start-up of commands that do not score (target: `nasagent inspect SEED` < 0.5 s).

Usage:
    .venv/bin/python bench/startup.py [--runs 11] [--out PATH]

Each command runs `--runs` times as a fresh process (the console script next to this Python,
as a user runs it) after one warm-up run; the median and the spread of the wall times are
printed, with the slowest imports of one `python -X importtime` run of `inspect`, so a
regression shows what got imported. Run it on a quiet machine.

Python reads nasagent's modules from bytecode, as an installed wheel does (pip compiles it):
the benchmark lets the warm-up run write `__pycache__` even where PYTHONDONTWRITEBYTECODE is
set. `--source-only` keeps that variable, so every start compiles nasagent from source.
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

from nasagent.evaluator import CIFAR_SEED

COMMANDS: dict[str, list[str]] = {
    "inspect SEED": ["inspect", CIFAR_SEED],
    "--help": ["--help"],
    "prompt SEED": ["prompt", CIFAR_SEED],
    "mutate SEED": ["mutate", CIFAR_SEED],
    "mutate --llm scripted": ["mutate", CIFAR_SEED, "--mutator", "llm", "--llm", "scripted"],
}
TARGET_S = 0.5


def console_script() -> list[str]:
    """`nasagent` beside the running interpreter, or `python -m nasagent.agent`."""
    script = Path(sys.executable).with_name("nasagent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nasagent.agent"]


def child_env(source_only: bool) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not source_only:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall_times(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(argv, capture_output=True, env=env, check=False)  # file cache, bytecode
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(argv: list[str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages (no dot in the name) with the largest cumulative import times."""
    code = "import sys, runpy; sys.argv = ['nasagent', *sys.argv[1:]]; " \
           "runpy.run_module('nasagent.agent', run_name='__main__')"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv],
                          capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if "." not in name and not name.startswith("_"):
                rows.append((name, int(parts[1]) / 1000))
    return sorted(rows, key=lambda row: -row[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--out", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--source-only", action="store_true",
                        help="Keep PYTHONDONTWRITEBYTECODE: compile nasagent on every start.")
    args = parser.parse_args()
    base = console_script()
    env = child_env(args.source_only)
    print("bytecode:", "off (compiled from source at each start)"
          if "PYTHONDONTWRITEBYTECODE" in env else "on (as an installed wheel)")
    results = {}
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'max s':>7}  ({args.runs} runs)")
    for label, argv in COMMANDS.items():
        times = wall_times([*base, *argv], args.runs, env)
        results[label] = {"median_s": statistics.median(times), "min_s": min(times),
                          "max_s": max(times)}
        print(f"{label:<22} {statistics.median(times):9.3f} {min(times):7.3f} {max(times):7.3f}")
    verdict = "meets" if results["inspect SEED"]["median_s"] < TARGET_S else "misses"
    print(f"inspect SEED {verdict} the {TARGET_S} s target")
    print("slowest imports of `inspect` (cumulative ms):")
    for name, ms in slowest_imports(COMMANDS["inspect SEED"]):
        print(f"  {name:<40} {ms:8.1f}")
    if args.out:
        args.out.write_text(json.dumps({"machine": platform.platform(), "runs": args.runs,
                                        "bytecode": "PYTHONDONTWRITEBYTECODE" not in env,
                                        "results": results}, indent=2))


if __name__ == "__main__":
    main()
