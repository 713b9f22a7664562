"""How noisy a zero-cost proxy is between near-identical networks (the figure the prompt quotes).

Usage:
    .venv/bin/python bench/proxy_noise.py [--proxy gradnorm] [--mutants 8] [--score-seeds 4]
        [--batch-size 64] [--threads 1] [--out PATH]

Draws `--mutants` one-block Zen-NAS mutations of the CIFAR seed (the seed itself included,
`evaluator.mutation.RandomMutator`, num_replaces=1, mutator seeds 0, 1, ...) and scores each
network with `--score-seeds` different score seeds (the seed of the random weights and the
random input batch). For each network the relative spread is the standard deviation over
score seeds divided by the mean's magnitude. Printed: the median and maximum of that spread
(and of the plain standard deviation, the natural unit for log-scale proxies such as Zen),
and the median relative change between a mutant and the seed under one score seed, so the two
can be compared. `agent.prompting.PROXY_NOISE` holds the figure the prompt states.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.proxies import ProxyStatus, ScoreSettings, score
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator


def near_identical_networks(count: int) -> list[str]:
    """The CIFAR seed followed by `count - 1` distinct one-block mutations of it."""
    seed = parse(CIFAR_SEED)
    networks = [str(seed)]
    mutator_seed = 0
    while len(networks) < count:
        child = str(RandomMutator("zennas-cifar", seed=mutator_seed).mutate(seed, num_replaces=1))
        mutator_seed += 1
        if child not in networks:
            networks.append(child)
    return networks


def scores_over_seeds(arch: str, proxy: str, seeds: int, batch_size: int) -> list[float]:
    values = []
    for score_seed in range(seeds):
        settings = ScoreSettings(proxy=proxy, seed=score_seed, batch_size=batch_size, device="cpu")
        result = score(parse(arch), settings)
        if result.status is not ProxyStatus.OK or result.score is None:
            raise SystemExit(f"scoring {arch} failed: {result.status}: {result.message}")
        values.append(result.score)
    return values


def relative_spread(values: list[float]) -> float:
    return statistics.stdev(values) / abs(statistics.fmean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="gradnorm")
    parser.add_argument("--mutants", type=int, default=8)
    parser.add_argument("--score-seeds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = near_identical_networks(args.mutants)
    table = {arch: scores_over_seeds(arch, args.proxy, args.score_seeds, args.batch_size)
             for arch in networks}
    spreads = [relative_spread(values) for values in table.values()]
    stdevs = [statistics.stdev(values) for values in table.values()]
    base = table[networks[0]][0]
    changes = [abs(values[0] - base) / abs(base) for values in list(table.values())[1:]]
    figures = {
        "proxy": args.proxy, "networks": len(networks), "score_seeds": args.score_seeds,
        "batch_size": args.batch_size, "machine": platform.processor() or platform.machine(),
        "median_relative_spread_over_score_seeds": statistics.median(spreads),
        "max_relative_spread_over_score_seeds": max(spreads),
        "median_stdev_over_score_seeds": statistics.median(stdevs),
        "max_stdev_over_score_seeds": max(stdevs),
        "median_relative_change_mutant_vs_seed": statistics.median(changes) if changes else None,
        "scores": table,
    }
    for key, value in figures.items():
        if key != "scores":
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
