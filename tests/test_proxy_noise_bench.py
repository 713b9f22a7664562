"""bench/proxy_noise.py: the networks it samples stay in the budgets and span the depths, its
twins are near-identical, and its statistics say what the prompt will quote."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench import proxy_noise
from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.validation import check

CONSTRAINTS = proxy_noise.cifar_constraints()


@pytest.fixture(scope="module")
def pool() -> dict[str, tuple[object, str]]:
    return proxy_noise.sample_pool(random.Random(0), CONSTRAINTS, chains=60, max_chain=30)


def test_the_pool_is_valid_under_the_budgets_and_reaches_the_deep_end(pool) -> None:
    layers = [cost.layers for cost, _ in pool.values()]
    assert all(check(parse(arch), CONSTRAINTS).valid for arch in list(pool)[:50])
    assert max(layers) >= 16
    assert {walk for _, walk in pool.values()} == set(proxy_noise.WALKS)


def test_stratified_sample_draws_per_depth_bucket(pool) -> None:
    chosen = proxy_noise.stratified_by_depth(pool, 3, random.Random(1))
    buckets = [proxy_noise.bucket_of(pool[a][0].layers, proxy_noise.DEPTH_BUCKETS) for a in chosen]
    assert len(chosen) == 3 * len(proxy_noise.DEPTH_BUCKETS)
    assert all(buckets.count(f"{lo}-{hi}") == 3 for lo, hi in proxy_noise.DEPTH_BUCKETS)


def test_a_nudge_moves_one_field_by_one_step() -> None:
    seed = parse(CIFAR_SEED)
    for draw in range(20):
        twin = parse(proxy_noise.nudge_twin(seed, random.Random(draw), CONSTRAINTS))
        changed = [
            (name, getattr(b, name) - getattr(a, name))
            for a, b in zip(seed.blocks, twin.blocks, strict=True)
            for name in ("out_channels", "bottleneck_channels", "sub_layers")
            if getattr(a, name) != getattr(b, name)
        ]
        assert len(changed) == 1 and abs(changed[0][1]) in (1, proxy_noise.NUDGE_CHANNELS)
        assert check(twin, CONSTRAINTS).valid


def test_conv_depth_counts_main_path_convs() -> None:
    # stem 1 + four basic blocks of 2 + head 1
    assert proxy_noise.conv_depth(parse(CIFAR_SEED)) == 10


def test_spread_is_relative_for_linear_proxies_and_plain_for_log_ones() -> None:
    assert proxy_noise.spread([9.0, 11.0], relative=True) == pytest.approx(2**0.5 / 10)
    assert proxy_noise.spread([9.0, 11.0], relative=False) == pytest.approx(2**0.5)


def test_pair_figures_separate_the_draw_from_the_change() -> None:
    figures = proxy_noise.pair_figures([10.0, 10.0, 10.0, 10.0], [11.0, 12.0, 13.0, 9.0], True)
    assert figures["difference_per_seed"] == pytest.approx([0.1, 0.2, 0.3, 0.1])
    assert figures["order_flips"] == 0.25  # the mean difference is positive; one seed says not
    assert figures["draw_noise"] == pytest.approx(1.707825 / 10, rel=1e-5)


def test_summary_of_nothing_is_empty_not_zero() -> None:
    assert proxy_noise.summary([]) == {"n": 0, "median": None, "p90": None, "max": None}
    assert proxy_noise.summary([3.0, 1.0, 2.0])["median"] == 2.0


def test_a_small_run_writes_every_figure(tmp_path: Path) -> None:
    out, cache = tmp_path / "noise.json", tmp_path / "scores.jsonl"
    argv = ["--proxies", "synflow,params", "--per-bucket", "1", "--score-seeds", "2",
            "--chains", "20", "--max-chain", "25", "--cache", str(cache), "--out", str(out)]
    proxy_noise.main(argv)
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["threads"] == 1 and report["command"].endswith("noise.json")
    params = report["proxies"]["params"]
    assert params["overall"]["spread"]["max"] == 0.0  # a parameter count has no draw
    assert set(params["overall"]["pairs"]) == set(proxy_noise.TWINS)
    assert report["proxies"]["synflow"]["overall"]["spread"]["n"] == len(report["networks"])
    assert report["seed_one_block"]["synflow"]["networks"] == proxy_noise.SEED_MUTANTS + 1
    groups = report["proxies"]["synflow"]["by_conv_depth"].values()
    assert sum(group["spread"]["n"] for group in groups) == len(report["networks"])
    scored = len(cache.read_text(encoding="utf-8").splitlines())
    proxy_noise.main(argv)  # resumes from the cache: nothing scored again
    assert len(cache.read_text(encoding="utf-8").splitlines()) == scored
    assert json.loads(out.read_text(encoding="utf-8"))["scores_read_from_cache"] == scored
