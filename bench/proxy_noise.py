"""How much a zero-cost proxy's score moves between score seeds, across the depths and widths a
zennas-cifar search reaches (the figure the prompt quotes).

Usage:
    .venv/bin/python bench/proxy_noise.py [--proxies gradnorm,zen,naswot,synflow]
        [--per-bucket 24] [--score-seeds 5] [--chains 400] [--max-chain 40] [--seed 0]
        [--batch-size 64] [--threads 1] [--cache PATH] [--out PATH]

Networks. Chains of Zen-NAS random mutations of the CIFAR seed (1..`--max-chain` steps, 1 or 2
blocks replaced per step, a step kept only when the child is valid under the zennas-cifar
budgets: 1e6 parameters, 18 layers, exact counting), as `nasagent correlate` samples, by four
walks (`WALKS`): `random` keeps every valid step, `deeper` only steps that keep or add layers,
`wider` only steps that keep or add parameters, `deeper_wider` only steps that do both, so the
deep and wide networks near the budgets that a search reaches are well represented. The distinct
end points are grouped by depth (`DEPTH_BUCKETS`, Zen-NAS layers: the sum of sub_layers); within
a depth bucket they are sorted by parameter count, cut into `--per-bucket` strata and one network
is drawn from each. Each network gets two near-identical twins (`TWINS`): a valid one-block
Zen-NAS random mutation (what the search's random proposal does) and a valid nudge (one width
moved by 8 channels or one Res block's sub_layers by 1: the smallest edit a model can make).

Figures. Every network and twin is scored with score seeds 0..`--score-seeds`-1 (the seed of the
random weights and input batch). A network's spread is the standard deviation over score seeds,
divided by the mean's magnitude for linear-scale proxies (GradNorm, SynFlow) and in score units
for log-scale ones (Zen, NASWOT). Reported per proxy: n, median, 90th percentile and maximum of
the spread overall, per depth bucket, per conv-depth bucket (`conv_depth`: convolutions on the
main path), per parameter bucket and per layer count, with Spearman's rho of the spread against
layers, conv depth, parameters and the score itself. Per network/twin
pair: the size of the difference under one score seed (what the model compares in a run;
relative to the network's score for linear-scale proxies), the standard deviation over score
seeds of that difference (the part the draw decides) and how often a score seed orders the pair
against the order of their seed-averaged scores. `seed_one_block` repeats the earlier sample
(the seed and 7 one-block mutations of it) for comparison. `--cache` keeps every score in a
JSONL file, so an interrupted run resumes (`scoring_seconds` then counts only the scores computed
in this run; `scores_read_from_cache` says how many were read). `agent.prompting.PROXY_NOISE`
holds the figure the prompt states.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.proxies import ProxyStatus, ScoreSettings, score
from nasagent.evaluator.spaces.base import Cost
from nasagent.evaluator.spaces.zennas.architecture import Architecture
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator, rechain
from nasagent.evaluator.spaces.zennas.ops import Family
from nasagent.evaluator.spaces.zennas.space import CIFAR_DEFAULTS
from nasagent.evaluator.validation import Constraints, check

DEPTH_BUCKETS: tuple[tuple[int, int], ...] = ((1, 8), (9, 12), (13, 15), (16, 18))
"""Zen-NAS layers (sum of sub_layers); the seed has 6, the zennas-cifar budget is 18."""
PARAM_BUCKETS: tuple[tuple[int, int], ...] = (
    (0, 250_000), (250_001, 500_000), (500_001, 750_000), (750_001, 1_000_000),
)
CONV_DEPTH_BUCKETS: tuple[tuple[int, int], ...] = ((1, 20), (21, 40), (41, 60), (61, 200))
"""Convolutions on the main path (`conv_depth`): the seed has 10; a K1KXK1 sub-layer adds 6."""
LOG_SCALE_PROXIES = frozenset({"zen", "naswot"})
"""Proxies whose score is a logarithm: their spread is a plain standard deviation."""
CONVS_PER_SUB_LAYER = {Family.CONV: 1, Family.KXKX: 2, Family.K1KXK1: 6, Family.IDW: 6}
"""Convolutions on the main path per sub-layer (shortcut projections not counted)."""
SEED_MUTANTS = 7
TWIN_TRIES = 200
NUDGE_CHANNELS = 8
QUANTILE = 0.9

Walk = Callable[[Cost, Cost], bool]
WALKS: dict[str, Walk] = {
    "random": lambda _old, _new: True,
    "deeper": lambda old, new: new.layers >= old.layers,
    "wider": lambda old, new: new.params >= old.params,
    "deeper_wider": lambda old, new: new.layers >= old.layers and new.params >= old.params,
}
"""Which valid mutation steps a sampling chain keeps (old cost, new cost)."""


def cifar_constraints() -> Constraints:
    """The zennas-cifar budgets of the Zen-NAS CIFAR 1M script, counted exactly."""
    return Constraints(
        search_space="zennas-cifar", max_params=CIFAR_DEFAULTS.max_params,
        max_layers=CIFAR_DEFAULTS.max_layers,
    )


# ---- sampling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sized:
    """An architecture string with its cost."""

    arch: str
    layers: int
    params: int


@dataclass(frozen=True)
class Network:
    """One sampled network and its near-identical twins, by kind (`TWINS`)."""

    arch: str
    layers: int
    params: int
    conv_depth: int
    walk: str
    twins: dict[str, Sized]


def conv_depth(arch: Architecture) -> int:
    """Convolutions on the main path (what the signal passes through in the no-reslink model)."""
    return sum(CONVS_PER_SUB_LAYER[block.family] * block.sub_layers for block in arch.blocks)


def _chain(
    start: Architecture, steps: int, keep: Walk, rng: random.Random, constraints: Constraints
) -> tuple[Architecture, Cost]:
    mutator = RandomMutator(constraints.search_space, seed=rng.randrange(2**32))
    arch, cost = start, _cost(start, constraints)
    for _ in range(steps):
        child = mutator.mutate(arch, num_replaces=rng.choice((1, 2)))
        report = check(child, constraints)
        if report.valid and report.cost is not None and keep(cost, report.cost):
            arch, cost = child, report.cost
    return arch, cost


def _cost(arch: Architecture, constraints: Constraints) -> Cost:
    report = check(arch, constraints)
    if not report.valid or report.cost is None:
        raise SystemExit(f"{arch} is invalid under the zennas-cifar budgets: "
                         f"{report.error_lines()[0]}")
    return report.cost


def sample_pool(
    rng: random.Random, constraints: Constraints, chains: int, max_chain: int
) -> dict[str, tuple[Cost, str]]:
    """Distinct chain end points (not the seed), each with its cost and the walk that found it."""
    seed = parse(CIFAR_SEED)
    pool: dict[str, tuple[Cost, str]] = {}
    for name, keep in WALKS.items():
        for _ in range(chains):
            end, cost = _chain(seed, rng.randint(1, max_chain), keep, rng, constraints)
            if end != seed:
                pool.setdefault(str(end), (cost, name))
    return pool


def bucket_of(value: int, buckets: Sequence[tuple[int, int]]) -> str | None:
    """The label "low-high" of the bucket holding `value`, or None."""
    for low, high in buckets:
        if low <= value <= high:
            return f"{low}-{high}"
    return None


def stratified_by_depth(
    pool: dict[str, tuple[Cost, str]], per_bucket: int, rng: random.Random
) -> list[str]:
    """Per depth bucket: sort by parameters, cut into `per_bucket` strata, draw one from each."""
    chosen: list[str] = []
    for low, high in DEPTH_BUCKETS:
        members = sorted(
            (arch for arch, (cost, _) in pool.items() if low <= cost.layers <= high),
            key=lambda arch: (pool[arch][0].params, arch),
        )
        if len(members) < per_bucket:
            print(f"depth {low}-{high}: only {len(members)} networks in the pool", file=sys.stderr)
        strata = np.array_split(np.arange(len(members)), min(per_bucket, len(members)))
        chosen += [members[int(rng.choice(list(stratum)))] for stratum in strata]
    return chosen


def mutation_twin(arch: Architecture, rng: random.Random, constraints: Constraints) -> str:
    """A valid one-block Zen-NAS random mutation of `arch` that differs from it."""
    mutator = RandomMutator(constraints.search_space, seed=rng.randrange(2**32))
    return _first_valid(arch, lambda: mutator.mutate(arch, num_replaces=1), constraints)


def nudge_twin(arch: Architecture, rng: random.Random, constraints: Constraints) -> str:
    """`arch` with one field of one block moved by the smallest step: a width by 8 channels,
    or a Res block's sub_layers by 1 (the smallest edit a model can make)."""
    return _first_valid(arch, lambda: _nudged(arch, rng), constraints)


def _nudged(arch: Architecture, rng: random.Random) -> Architecture:
    index = rng.randrange(len(arch))
    block = arch.blocks[index]
    fields = ["out_channels"]
    if block.family is not Family.CONV:
        fields += ["bottleneck_channels", "sub_layers"]
    name = rng.choice(fields)
    step = (1 if name == "sub_layers" else NUDGE_CHANNELS) * rng.choice((-1, 1))
    blocks = list(arch.blocks)
    blocks[index] = block.replace(**{name: getattr(block, name) + step})
    return Architecture(blocks=tuple(rechain(blocks)))


def _first_valid(
    arch: Architecture, draw: Callable[[], Architecture], constraints: Constraints
) -> str:
    for _ in range(TWIN_TRIES):
        try:
            child = draw()
        except ValueError:  # a nudge below the field's minimum
            continue
        if child != arch and check(child, constraints).valid:
            return str(child)
    raise SystemExit(f"no valid near-identical twin of {arch} in {TWIN_TRIES} tries")


TWINS: dict[str, Callable[[Architecture, random.Random, Constraints], str]] = {
    "mutation": mutation_twin, "nudge": nudge_twin,
}
"""How a network's near-identical twin is made; each network gets one of each kind."""


def _sized(text: str, constraints: Constraints) -> Sized:
    cost = _cost(parse(text), constraints)
    return Sized(text, cost.layers, int(cost.params))


def make_network(text: str, walk: str, rng: random.Random, constraints: Constraints) -> Network:
    """`text` with its costs, depth and twins."""
    arch = parse(text)
    sized = _sized(text, constraints)
    twins = {kind: _sized(make(arch, rng, constraints), constraints)
             for kind, make in TWINS.items()}
    return Network(text, sized.layers, sized.params, conv_depth(arch), walk, twins)


def seed_mutants(constraints: Constraints) -> list[str]:
    """The earlier sample: the CIFAR seed and distinct one-block mutations (mutator seeds 0..)."""
    seed = parse(CIFAR_SEED)
    found, mutator_seed = [str(seed)], 0
    while len(found) < SEED_MUTANTS + 1:
        child = RandomMutator("zennas-cifar", seed=mutator_seed).mutate(seed, num_replaces=1)
        mutator_seed += 1
        if str(child) not in found and check(child, constraints).valid:
            found.append(str(child))
    return found


# ---- scoring ------------------------------------------------------------------------------


@dataclass
class Scorer:
    """Scores (arch, proxy, seed), remembering every result in memory and in an optional JSONL."""

    batch_size: int
    cache_path: Path | None = None
    cache: dict[tuple[str, str, int], float | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds spent scoring, by proxy (scores read from the cache cost none)."""
    cached: int = 0
    """Scores read from the cache file at the start."""

    def load(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        for line in self.cache_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["batch_size"] == self.batch_size:
                self.cache[(row["arch"], row["proxy"], row["seed"])] = row["score"]
        self.cached = len(self.cache)

    def scores(self, arch: str, proxy: str, seeds: int) -> list[float | None]:
        """The scores under score seeds 0..seeds-1; None where scoring failed."""
        return [self._one(arch, proxy, seed) for seed in range(seeds)]

    def _one(self, arch: str, proxy: str, seed: int) -> float | None:
        key = (arch, proxy, seed)
        if key not in self.cache:
            settings = ScoreSettings(
                proxy=proxy, seed=seed, batch_size=self.batch_size, device="cpu"
            )
            cpu = time.process_time()
            result = score(parse(arch), settings)
            self.seconds[proxy] = self.seconds.get(proxy, 0.0) + time.process_time() - cpu
            value = result.score if result.status is ProxyStatus.OK else None
            if value is None:
                print(f"{proxy} seed {seed} failed on {arch}: {result.message}", file=sys.stderr)
            self.cache[key] = value
            self._append(arch, proxy, seed, value)
        return self.cache[key]

    def _append(self, arch: str, proxy: str, seed: int, value: float | None) -> None:
        if self.cache_path is None:
            return
        row = {"arch": arch, "proxy": proxy, "seed": seed, "batch_size": self.batch_size,
               "score": value}
        with self.cache_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


# ---- statistics ---------------------------------------------------------------------------


def spread(values: Sequence[float], relative: bool) -> float:
    """Standard deviation over score seeds, divided by the mean's magnitude when `relative`."""
    deviation = statistics.stdev(values)
    return deviation / abs(statistics.fmean(values)) if relative else deviation


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, median, 90th percentile and maximum (None when empty)."""
    data = sorted(values)
    if not data:
        return {"n": 0, "median": None, "p90": None, "max": None}
    return {"n": len(data), "median": statistics.median(data),
            "p90": float(np.quantile(data, QUANTILE)), "max": data[-1]}


def pair_figures(parent: Sequence[float], twin: Sequence[float], relative: bool) -> dict[str, Any]:
    """What separates a network from its twin: per score seed and over score seeds.

    `difference_per_seed`: |twin - parent| under each score seed (relative to the parent's
    score when `relative`); `draw_noise`: the standard deviation over score seeds of the signed
    difference (relative to the parent's mean); `order_flips`: the share of score seeds that
    order the two against the order of their seed-averaged scores.
    """
    differences = [b - a for a, b in zip(parent, twin, strict=True)]
    mean_parent = abs(statistics.fmean(parent))
    per_seed = [abs(d) / abs(a) if relative else abs(d)
                for a, d in zip(parent, differences, strict=True)]
    noise = statistics.stdev(differences) / (mean_parent if relative else 1.0)
    sign = math.copysign(1.0, statistics.fmean(differences))
    flips = sum(1 for d in differences if d * sign < 0) / len(differences)
    return {"difference_per_seed": per_seed, "draw_noise": noise, "order_flips": flips}


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Spearman's rho and its p-value (None with fewer than 3 points or constant input)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return {"rho": None, "p": None}
    result = stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue)}


@dataclass(frozen=True)
class Row:
    """One network's figures for one proxy; `pairs` by twin kind."""

    network: Network
    spread: float
    mean: float
    pairs: dict[str, dict[str, Any]]


def _complete(values: Sequence[float | None]) -> list[float] | None:
    """The scores as floats, or None when any score seed failed."""
    clean = [float(v) for v in values if v is not None]
    return clean if len(clean) == len(values) else None


def proxy_rows(
    networks: Sequence[Network], table: dict[str, dict[str, list[float | None]]], proxy: str
) -> tuple[list[Row], int]:
    """Rows of the networks scored on every seed (with their twins); the count left out."""
    relative = proxy not in LOG_SCALE_PROXIES
    rows: list[Row] = []
    for network in networks:
        parent = _complete(table[network.arch][proxy])
        twins = {k: _complete(table[t.arch][proxy]) for k, t in network.twins.items()}
        if parent is None or any(t is None for t in twins.values()):
            continue
        pairs = {k: pair_figures(parent, t, relative) for k, t in twins.items() if t is not None}
        rows.append(Row(network, spread(parent, relative), statistics.fmean(parent), pairs))
    return rows, len(networks) - len(rows)


def grouped(rows: Sequence[Row], label: Callable[[Row], str | None]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        key = label(row)
        if key is not None:
            groups.setdefault(key, []).append(row)
    return groups


def pair_group(rows: Sequence[Row], kind: str) -> dict[str, Any]:
    """Pair figures of one twin kind over a group of rows."""
    pairs = [row.pairs[kind] for row in rows]
    return {
        "difference_one_seed": summary(d for pair in pairs for d in pair["difference_per_seed"]),
        "draw_noise": summary(pair["draw_noise"] for pair in pairs),
        "order_flip_rate": statistics.fmean(p["order_flips"] for p in pairs) if pairs else None,
    }


def group_figures(rows: Sequence[Row]) -> dict[str, Any]:
    """Spread and pair figures of a group of rows."""
    return {
        "spread": summary(row.spread for row in rows),
        "pairs": {kind: pair_group(rows, kind) for kind in TWINS},
        "mean_score": summary(row.mean for row in rows),
    }


def by_depth(row: Row) -> str | None:
    return bucket_of(row.network.layers, DEPTH_BUCKETS)


def by_conv_depth(row: Row) -> str | None:
    return bucket_of(row.network.conv_depth, CONV_DEPTH_BUCKETS)


def by_params(row: Row) -> str | None:
    return bucket_of(row.network.params, PARAM_BUCKETS)


def proxy_report(rows: Sequence[Row], left_out: int, proxy: str) -> dict[str, Any]:
    """Every figure of one proxy: overall, per depth, per parameters, per layer count."""
    spreads = [row.spread for row in rows]
    return {
        "unit": "std / |mean|" if proxy not in LOG_SCALE_PROXIES else "std (score units)",
        "networks_left_out_for_failed_scores": left_out,
        "overall": group_figures(rows),
        "by_depth": {k: group_figures(v) for k, v in grouped(rows, by_depth).items()},
        "by_conv_depth": {k: group_figures(v) for k, v in grouped(rows, by_conv_depth).items()},
        "by_params": {k: group_figures(v) for k, v in grouped(rows, by_params).items()},
        "by_layers": {
            str(k): summary(r.spread for r in v)
            for k, v in sorted(grouped(rows, lambda r: str(r.network.layers)).items(),
                               key=lambda item: int(item[0]))
        },
        "spearman_spread_vs": {
            "layers": spearman([r.network.layers for r in rows], spreads),
            "conv_depth": spearman([r.network.conv_depth for r in rows], spreads),
            "params": spearman([r.network.params for r in rows], spreads),
            "mean_score": spearman([r.mean for r in rows], spreads),
        },
    }


def seed_one_block_report(
    archs: Sequence[str], table: dict[str, dict[str, list[float | None]]], proxy: str
) -> dict[str, Any]:
    """The earlier figure: spread over the seed and its one-block mutations, and the change."""
    relative = proxy not in LOG_SCALE_PROXIES
    series = [[float(v) for v in table[a][proxy] if v is not None] for a in archs]
    base = series[0]
    changes = [pair_figures(base, s, relative)["difference_per_seed"] for s in series[1:]]
    return {
        "networks": len(archs),
        "spread": summary(spread(s, relative) for s in series if len(s) >= 2),
        "mutant_vs_seed_difference_one_seed": summary(d for c in changes for d in c),
    }


# ---- run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip()
                      for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "DNNL_MAX_CPU_ISA": os.environ.get("DNNL_MAX_CPU_ISA"),
    }


def score_all(
    scorer: Scorer, archs: Sequence[str], proxies: Sequence[str], seeds: int
) -> dict[str, dict[str, list[float | None]]]:
    """Every architecture under every proxy and score seed, with progress on stderr."""
    table: dict[str, dict[str, list[float | None]]] = {}
    start = time.perf_counter()
    for index, arch in enumerate(archs, 1):
        table[arch] = {proxy: scorer.scores(arch, proxy, seeds) for proxy in proxies}
        if index % 10 == 0 or index == len(archs):
            print(f"scored {index}/{len(archs)} in {time.perf_counter() - start:.0f} s",
                  file=sys.stderr)
    return table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--proxies", default="gradnorm,zen,naswot,synflow")
    parser.add_argument("--per-bucket", type=int, default=24, help="networks per depth bucket")
    parser.add_argument("--score-seeds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=400, help="sampling chains per walk")
    parser.add_argument("--max-chain", type=int, default=40, help="longest sampling chain")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--cache", type=Path, default=None, help="JSONL of scores, to resume")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.score_seeds < 2 or args.per_bucket < 1:
        parser.error("--score-seeds must be at least 2 and --per-bucket at least 1")
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Sample, score and summarise; the report as a JSON-ready dict."""
    torch.set_num_threads(args.threads)
    proxies = [name.strip() for name in args.proxies.split(",") if name.strip()]
    constraints, rng = cifar_constraints(), random.Random(args.seed)
    pool = sample_pool(rng, constraints, args.chains, args.max_chain)
    networks = [make_network(a, pool[a][1], rng, constraints)
                for a in stratified_by_depth(pool, args.per_bucket, rng)]
    old = seed_mutants(constraints)
    scorer = Scorer(args.batch_size, args.cache)
    scorer.load()
    start, cpu = time.perf_counter(), time.process_time()
    twins = (t.arch for n in networks for t in n.twins.values())
    archs = list(dict.fromkeys([*old, *(n.arch for n in networks), *twins]))
    table = score_all(scorer, archs, proxies, args.score_seeds)
    reports = {p: proxy_report(*proxy_rows(networks, table, p), p) for p in proxies}
    return {
        "command": command,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": machine(),
        "constraints": constraints.model_dump(mode="json"),
        "settings": {"batch_size": args.batch_size, "resolution": 32, "num_classes": 100,
                     "residual": False, "score_seeds": list(range(args.score_seeds))},
        "sampling": {"pool": len(pool), "networks": len(networks),
                     "walks": {w: sum(n.walk == w for n in networks) for w in WALKS},
                     "depth_buckets": [f"{a}-{b}" for a, b in DEPTH_BUCKETS],
                     "conv_depth_buckets": [f"{a}-{b}" for a, b in CONV_DEPTH_BUCKETS],
                     "param_buckets": [f"{a}-{b}" for a, b in PARAM_BUCKETS]},
        "scores_read_from_cache": scorer.cached,
        "scoring_seconds": {"wall": time.perf_counter() - start,
                            "cpu": time.process_time() - cpu,
                            "cpu_by_proxy": scorer.seconds},
        "proxies": reports,
        "seed_one_block": {p: seed_one_block_report(old, table, p) for p in proxies},
        "networks": [_network_json(n, table) for n in networks],
    }


def _network_json(
    network: Network, table: dict[str, dict[str, list[float | None]]]
) -> dict[str, Any]:
    twins = {k: {**asdict(t), "scores": table[t.arch]} for k, t in network.twins.items()}
    return {**asdict(network), "scores": table[network.arch], "twins": twins}


def print_table(report: dict[str, Any]) -> None:
    """Median / p90 / max of the spread, and the one-seed pair differences, per depth bucket."""
    kinds = " ".join(f"{kind + ' |d| med':>16}{'flips':>6}" for kind in TWINS)
    print(f"{'proxy':<9}{'layers':<8}{'n':>4}{'spread med':>11}{'p90':>9}{'max':>9} {kinds}")
    for proxy, figures in report["proxies"].items():
        for name, group in {"all": figures["overall"], **figures["by_depth"]}.items():
            s = group["spread"]
            pairs = " ".join(
                f"{p['difference_one_seed']['median']:>16.4g}{p['order_flip_rate']:>6.2f}"
                for p in group["pairs"].values()
            )
            print(f"{proxy:<9}{name:<8}{s['n']:>4}{s['median']:>11.4g}{s['p90']:>9.4g}"
                  f"{s['max']:>9.4g} {pairs}")


def main(argv: Sequence[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(arguments)
    report = run(args, " ".join([".venv/bin/python", "bench/proxy_noise.py", *arguments]))
    print_table(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
