"""Benchmark: Spearman's rho of params and FLOPs against the table over all 15,625 NB201 cells.

The cost proxies need no torch, so the whole space is cheap: this is the population value a
sampled `correlate --truth benchmark` study estimates, and it shows how much of a gap to the
published figures comes from the accuracy column (nasagent's table holds NATS-Bench's
200-epoch test accuracy after training on train+valid, mean over seeds; zero-cost-nas
correlated with NAS-Bench-201's `cifar10-valid` run).

    python -m bench.nb201_cost_correlation --out bench/results/nb201_cost_correlation.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from scipy.stats import spearmanr

from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.nb201 import bench
from nasagent.evaluator.spaces.nb201.cell import EDGES, OPS, Cell
from nasagent.evaluator.spaces.nb201.cost import nats_cost

SPACES = ("nb201-cifar10", "nb201-cifar100", "nb201-imagenet16")


def full_space(name: str) -> dict[str, object]:
    space = get_space(name)
    defaults, dataset = space.defaults, space.benchmark().dataset
    params, flops, accuracy = [], [], []
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        cell = Cell(ops)
        cost = nats_cost(cell, defaults.num_classes, defaults.resolution)
        params.append(cost.params)
        flops.append(cost.flops)
        accuracy.append(bench.lookup(cell, dataset).test_accuracy)
    return {"search_space": name, "dataset": dataset, "cells": len(accuracy),
            "params_spearman": float(spearmanr(params, accuracy).statistic),
            "flops_spearman": float(spearmanr(flops, accuracy).statistic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = [full_space(name) for name in SPACES]
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps({"source": bench.SOURCE, "spaces": rows}, indent=2)
                            + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
