"""Benchmark: proxy scorings per second on NB201 cells at one torch thread, per proxy.

Draws `--cells` distinct cells uniformly (seeded, the space's `random_arch`) and scores each
with every proxy in this process, exactly as `nasagent score` / `correlate` do (build, seed,
score), one torch thread, after one warm-up scoring per proxy (which also reads the proxy
batch). The combined proxy is timed as its members (a run scores them once per cell; its
normalisation is a one-off, timed apart as `normalisation_seconds`). It prints and writes
(with `--out`) per proxy the median and mean seconds per cell, cells per second, and the time
a full sweep of the 15,625 cells would take at that rate, and the same for all single
proxies together. The load average is recorded: on a shared machine it says how busy the
cores were.

    python -m bench.nb201_proxy_throughput --cells 40 --proxy-data imagefolder:DIR \\
        --out bench/results/nb201_proxy_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from nasagent.evaluator.combined import normalised
from nasagent.evaluator.proxies import PROXIES, ScoreSettings, get_proxy, score
from nasagent.evaluator.spaces import get_space

CELLS_IN_SPACE = 5 ** 6


def cells(space_name: str, count: int, seed: int) -> list[str]:
    space, rng = get_space(space_name), random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        found.setdefault(space.encode(space.random_arch(rng)), None)
    return list(found)


def timed(arch: str, settings: ScoreSettings) -> float:
    """Seconds of one scoring (a disconnected cell's non-finite NASWOT is work all the same)."""
    start = time.perf_counter()
    score(arch, settings)
    return time.perf_counter() - start


def measure(archs: list[str], base: ScoreSettings, proxy: str) -> dict[str, Any]:
    settings = base.of(proxy)
    timed(archs[0], settings)  # warm-up: imports, the proxy batch
    seconds = [timed(arch, settings) for arch in archs]
    median = statistics.median(seconds)
    return {"proxy": proxy, "cells": len(archs), "median_seconds": median,
            "mean_seconds": statistics.fmean(seconds), "cells_per_second": 1 / median,
            "full_sweep_hours": CELLS_IN_SPACE * median / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--search-space", default="nb201-cifar10")
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--proxy-data", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space(args.search_space)
    base = ScoreSettings(search_space=space.name, batch_size=args.batch_size, device="cpu",
                         resolution=space.defaults.resolution,
                         num_classes=space.defaults.num_classes, proxy_data=args.proxy_data)
    archs = cells(space.name, args.cells, args.seed)
    singles = [name for name in PROXIES if get_proxy(name).inputs != "members"]
    rows = [measure(archs, base, proxy) for proxy in singles]
    for row in rows:
        print(json.dumps(row))
    start = time.perf_counter()
    normalised(base.of("combined"))
    members = base.combination.members
    combined = sum(row["median_seconds"] for row in rows if row["proxy"] in members)
    total = sum(row["median_seconds"] for row in rows)
    summary = {
        "search_space": space.name, "batch_size": args.batch_size,
        "proxy_data": args.proxy_data, "threads": torch.get_num_threads(), "seed": args.seed,
        "proxies": rows,
        "combined": {"members": list(members), "median_seconds": combined,
                     "cells_per_second": 1 / combined,
                     "full_sweep_hours": CELLS_IN_SPACE * combined / 3600,
                     "normalisation_seconds": time.perf_counter() - start,
                     "reference": base.combination.reference},
        "all_single_proxies": {"median_seconds": total, "cells_per_second": 1 / total,
                               "full_sweep_hours": CELLS_IN_SPACE * total / 3600},
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "torch": torch.__version__},
    }
    print(json.dumps({k: summary[k] for k in ("combined", "all_single_proxies")}))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
