"""Benchmark: the RZ-NAS protocol on NAS-Bench-201, random mutation against the table's oracle.

Runs (or reads back) `nasagent compare --search-space nb201-cifar10 --arms random,oracle`
with a zero-cost proxy as the random arm's fitness, then reports per seed what each arm
reached in true test accuracy (the table's 200-epoch mean), after how many iterations, the
accuracy of its best-by-fitness at a few budgets, and the best cell it ever scored (what the
search saw, whatever the proxy made of it). The oracle arm ranks by the table itself, so it is
an upper bound on what the same mutation and budget can reach; an LLM arm added with
`--arms llm,random,oracle --llm openai:MODEL` is measured the same way.

    python -m bench.nb201_search_protocol --out /tmp/nb201-rz --proxy-data imagefolder:DIR \
        --results bench/results/nb201_search_protocol_c10.json

Running it again on the same --out resumes the comparison (finished runs are skipped).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CHECKPOINTS = (10, 50, 100, 200, 300)


def nasagent_command() -> str:
    """The `nasagent` script of this interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("nasagent")
    return str(beside) if beside.exists() else (shutil.which("nasagent") or "nasagent")


def run_compare(args: argparse.Namespace) -> None:
    """The comparison itself, through the CLI a user runs."""
    command = [
        nasagent_command(), "compare", "--search-space", args.search_space,
        "--arms", args.arms, "--seeds", str(args.seeds), "--iterations", str(args.iterations),
        "--proxy", args.proxy, "--population", str(args.population), "--workers", "1",
        "--threads", str(args.threads), "--out", str(args.out), "--no-progress",
    ]
    if args.proxy_data:
        command += ["--proxy-data", args.proxy_data]
    if args.llm:
        command += ["--llm", args.llm]
    print(" ".join(["nasagent", *command[1:]]), flush=True)
    subprocess.run(command, check=True)


def events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def seen_best(run_dir: Path) -> dict[str, Any]:
    """The best cell by the table among every cell the run scored, and when it was first seen."""
    scored = [e for e in events(run_dir) if e.get("truth") and e.get("outcome") == "ok"]
    best = max(scored, key=lambda e: e["truth"]["test_accuracy"])
    return {"arch": best["arch"], "test_accuracy": best["truth"]["test_accuracy"],
            "iteration": best["iteration"]}


def anytime(out: Path) -> dict[str, dict[str, list[float | None]]]:
    """Per arm and seed, the accuracy of the best-by-fitness at each checkpoint."""
    rows = list(csv.DictReader((out / "accuracy_so_far.csv").open()))
    curves: dict[str, dict[str, list[float | None]]] = {}
    for checkpoint in CHECKPOINTS:
        for row in rows:
            if int(row["iteration"]) != checkpoint:
                continue
            seeds = {k: v for k, v in row.items() if k.startswith("seed_")}
            arm = curves.setdefault(row["arm"], {})
            for seed, value in seeds.items():
                arm.setdefault(seed, []).append(float(value) if value else None)
    return curves


def summarise(args: argparse.Namespace) -> dict[str, Any]:
    summary = json.loads((args.out / "summary.json").read_text())
    truth = summary["truth"]
    arms: dict[str, Any] = {}
    curves = anytime(args.out)
    for arm, record in truth["arms"].items():
        seeds = summary["arms"][arm]["counted_seeds"]
        arms[arm] = {
            "reference": record["reference"],
            "final_test_accuracy": record["final"],
            "regret": record["regret"],
            "found_at_iteration": record["found_at"],
            "accuracy_at_checkpoints": {"iterations": list(CHECKPOINTS),
                                        "per_seed": curves.get(arm, {})},
            "best_cell_scored": [seen_best(args.out / arm / f"seed-{seed}") for seed in seeds],
            "best_by_fitness": summary["arms"][arm]["best"],
        }
    return {
        "command": (f"nasagent compare --search-space {args.search_space} --arms {args.arms} "
                    f"--seeds {args.seeds} --iterations {args.iterations} --proxy {args.proxy} "
                    f"--population {args.population}"
                    + (f" --proxy-data {args.proxy_data}" if args.proxy_data else "")),
        "table": truth["table"],
        "arms": arms,
        "comparisons": summary["comparisons"],
        "machine": {"processor": platform.machine(), "cpus": os.cpu_count(),
                    "load_average": list(os.getloadavg())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="The comparison folder.")
    parser.add_argument("--results", type=Path, help="Write the figures here (JSON).")
    parser.add_argument("--search-space", default="nb201-cifar10")
    parser.add_argument("--arms", default="random,oracle")
    parser.add_argument("--llm", default=None, help="The llm arm's backend, e.g. openai:gpt-4o.")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--proxy", default="gradnorm")
    parser.add_argument("--proxy-data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summarise-only", action="store_true",
                        help="Read an existing comparison folder; run nothing.")
    args = parser.parse_args()
    if not args.summarise_only:
        run_compare(args)
    result = summarise(args)
    text = json.dumps(result, indent=2)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
