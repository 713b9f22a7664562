"""The Zen-NAS random mutation operator against zennas-semantics section 5."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import product

import pytest

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.cost import smart_round
from nasagent.evaluator.spaces.zennas.mutation import (
    MutationError,
    RandomMutator,
    TypeWeights,
    block_candidates,
    channel_candidates,
    res_type_weights,
    sub_layer_candidates,
)
from nasagent.evaluator.spaces.zennas.ops import Family
from nasagent.evaluator.spaces.zennas.space import ZenNasSpace as SearchSpace

ZENNET_CIFAR = [  # zennas-semantics section 11
    "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
    "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
    "SuperConvK1BNRELU(32,512,1,1)",
    "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
    "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
    "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)",
    "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,3)"
    "SuperResK1K7K1(176,272,1,24,3)SuperResK1K3K1(272,176,1,56,3)SuperResK1K3K1(176,176,1,64,4)"
    "SuperResK1K5K1(176,216,2,40,2)SuperResK1K3K1(216,72,2,56,2)SuperConvK1BNRELU(72,512,1,1)",
]
ZENNET_IMAGENET_400M = (
    "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE1K7(40,64,2,64,1)"
    "SuperResIDWE4K7(64,96,2,96,5)SuperResIDWE2K7(96,224,2,224,5)SuperConvK1BNRELU(224,2048,1,1)"
)
CIFAR = get_space("zennas-cifar")
IMAGENET = get_space("zennas-imagenet")


# --- spec 5.1 / 5.2: smart_round and the candidate lists -------------------------------------

@pytest.mark.parametrize(
    ("x", "base", "expected"),
    [
        (20, 8, 16), (12, 8, 16), (28, 8, 32), (36, 8, 32), (4, 8, 8),  # halves go to even
        (200, None, 192), (300, None, 288), (1000, None, 992),
    ],
)
def test_smart_round_examples(x: float, base: int | None, expected: int) -> None:
    assert smart_round(x, base) == expected


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        (8, [16, 8]),
        (16, [40, 32, 24, 16, 8]),
        (32, [80, 64, 48, 40, 32, 24, 16]),
        (64, [160, 128, 96, 80, 64, 48, 40, 32, 24]),
        (128, [320, 256, 192, 160, 128, 104, 88, 64, 48]),
        (2048, [2048, 1640, 1368, 1024, 816]),
    ],
)
def test_channel_candidates_match_spec_examples(channels: int, expected: list[int]) -> None:
    assert channel_candidates(channels) == expected


def test_min_only_channel_candidates_exceed_2048_like_reference_idw() -> None:
    assert channel_candidates(2048, min_only=True) == [
        5120, 4096, 3072, 2560, 2048, 1640, 1368, 1024, 816,
    ]
    assert max(channel_candidates(1024)) == 2048


@pytest.mark.parametrize(
    ("sub_layers", "expected"),
    [(0, [2, 1]), (1, [3, 2, 1]), (2, [4, 3, 2, 1]), (3, [5, 4, 3, 2, 1]), (5, [7, 6, 5, 4, 3])],
)
def test_sub_layer_candidates_never_propose_empty_blocks(
    sub_layers: int, expected: list[int]
) -> None:
    assert sub_layer_candidates(sub_layers) == expected


# --- spec 5.3 / 5.4: candidates and the aliasing-skewed type weights -------------------------

def test_type_weights_reproduce_aliasing_bug() -> None:
    assert res_type_weights(CIFAR, TypeWeights.ZENNAS) == {
        "SuperResK1K3K1": 3, "SuperResK1K5K1": 3, "SuperResK1K7K1": 2,
        "SuperResK3K3": 3, "SuperResK5K5": 3, "SuperResK7K7": 2,
    }
    idw = res_type_weights(IMAGENET, "zennas")
    assert list(idw) == list(IMAGENET.mutation_families[0])
    assert list(idw.values()) == [12, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]
    assert set(res_type_weights(CIFAR, "uniform").values()) == {1}


def _reference_flattened(block: Block, space: SearchSpace) -> list[str]:
    """The reference's gen_search_space for a Res block, aliasing bug included, flattened."""
    outs = channel_candidates(block.out_channels)
    subs = sub_layer_candidates(block.sub_layers)
    assert block.bottleneck_channels is not None
    bottlenecks = channel_candidates(block.bottleneck_channels)
    lists: list[list[str]] = []
    for family in space.mutation_families:
        accumulating: list[str] = []
        for op in family:
            for out, sub, bottleneck in product(outs, subs, bottlenecks):
                accumulating.append(
                    f"{op}({block.in_channels},{out},{block.stride},{bottleneck},{sub})"
                )
            accumulating = list(set(accumulating))
            lists.append(accumulating)  # later types keep appending to this same list object
    return [item for sublist in lists for item in sublist]


@pytest.mark.parametrize(
    ("arch", "index", "space"),
    [(CIFAR_SEED, 1, CIFAR), (CIFAR_SEED, 4, CIFAR), (ZENNET_CIFAR[0], 2, CIFAR),
     (IMAGENET_SEED, 3, IMAGENET)],
)
def test_res_candidates_equal_reference_multiset(arch: str, index: int, space: SearchSpace) -> None:
    parsed = parse(arch)
    ours = Counter(str(b) for b in block_candidates(parsed, index, space, TypeWeights.ZENNAS))
    assert ours == Counter(_reference_flattened(parsed.blocks[index], space))


def test_each_type_contributes_the_same_number_of_candidates() -> None:
    # This is why a weighted type draw then a uniform (out, L, b) draw equals random.choice.
    arch = parse(CIFAR_SEED)
    per_op = Counter(b.op for b in block_candidates(arch, 2, CIFAR, TypeWeights.UNIFORM))
    assert len(set(per_op.values())) == 1
    assert len(per_op) == 6


def test_candidates_keep_in_channels_and_stride() -> None:
    arch = parse(CIFAR_SEED)
    for index, old in enumerate(arch.blocks):
        for new in block_candidates(arch, index, CIFAR, TypeWeights.ZENNAS):
            assert (new.in_channels, new.stride) == (old.in_channels, old.stride)


def test_conv_candidates_keep_type_and_force_one_sub_layer() -> None:
    arch = parse("SuperConvK5BNRELU(3,16,2,4)SuperConvK1BNRELU(16,128,1,2)")
    stem = block_candidates(arch, 0, CIFAR, TypeWeights.ZENNAS)
    assert [b.out_channels for b in stem] == channel_candidates(16)
    assert {(b.op, b.sub_layers) for b in stem} == {("SuperConvK5BNRELU", 1)}
    head = block_candidates(arch, 1, CIFAR, TypeWeights.ZENNAS)
    assert [b.out_channels for b in head] == channel_candidates(128)  # XXBL mutates the head


def test_idw_space_freezes_head_conv_width() -> None:
    arch = parse(IMAGENET_SEED)
    assert block_candidates(arch, 5, IMAGENET, "zennas") == [
        Block(op="SuperConvK1BNRELU", in_channels=128, out_channels=2048, stride=1, sub_layers=1)
    ]
    assert len(block_candidates(arch, 0, IMAGENET, "zennas")) == len(channel_candidates(8))


def test_block_candidates_rejects_bad_index() -> None:
    with pytest.raises(MutationError, match="outside"):
        block_candidates(parse(CIFAR_SEED), 6, CIFAR, TypeWeights.ZENNAS)


# --- the sampler draws the reference distribution ---------------------------------------------

def _child_ops(space: str, weights: str, parent: str, draws: int) -> Counter[str]:
    mutator = RandomMutator(space, seed=7, type_weights=weights)
    arch = parse(parent)
    return Counter(mutator.mutate(arch).blocks[0].op for _ in range(draws))


def test_zennas_type_frequencies_match_3_16_and_2_16() -> None:
    draws = 16_000
    counts = _child_ops("zennas-cifar", "zennas", "SuperResK3K3(3,16,1,8,1)", draws)
    for op, weight in res_type_weights(CIFAR, "zennas").items():
        assert counts[op] / draws == pytest.approx(weight / 16, abs=0.015)


def test_zennas_idw_type_frequencies_match_reference() -> None:
    draws = 16_000
    counts = _child_ops("zennas-imagenet", "zennas", "SuperResIDWE6K3(3,32,2,8,1)", draws)
    for op, weight in res_type_weights(IMAGENET, "zennas").items():
        assert counts[op] / draws == pytest.approx(weight / 89, abs=0.012)


def test_uniform_type_frequencies_are_equal() -> None:
    draws = 12_000
    counts = _child_ops("zennas-cifar", "uniform", "SuperResK3K3(3,16,1,8,1)", draws)
    assert len(counts) == 6
    for count in counts.values():
        assert count / draws == pytest.approx(1 / 6, abs=0.015)


def test_new_widths_and_depths_are_uniform_within_a_type() -> None:
    mutator = RandomMutator(seed=3)
    parent = parse("SuperResK3K3(3,16,1,8,1)")
    children = [mutator.mutate(parent).blocks[0] for _ in range(9_000)]
    for field, expected in [
        ("out_channels", channel_candidates(16)),
        ("sub_layers", sub_layer_candidates(1)),
        ("bottleneck_channels", channel_candidates(8)),
    ]:
        counts = Counter(getattr(child, field) for child in children)
        assert sorted(counts) == sorted(expected)
        for count in counts.values():
            assert count / len(children) == pytest.approx(1 / len(expected), abs=0.02)


# --- spec 5.5: invariants of mutate ------------------------------------------------------------

def _structural_problems(arch: Architecture, space: SearchSpace) -> list[str]:
    problems = []
    for index, block in enumerate(arch.blocks):
        expected_in = 3 if index == 0 else arch.blocks[index - 1].out_channels
        widths = [block.out_channels]
        if block.family is not Family.CONV:
            widths.append(block.bottleneck_channels or 0)
        problems += [f"{index}: width {w}" for w in widths if w % 8 or not 8 <= w <= 2048]
        problems += [f"{index}: in {block.in_channels}"] * (block.in_channels != expected_in)
        problems += [f"{index}: stride {block.stride}"] * (block.stride not in (1, 2))
        problems += [f"{index}: op {block.op}"] * (block.op not in space)
        too_deep = block.sub_layers >= 6 or (block.family is Family.CONV and block.sub_layers != 1)
        problems += [f"{index}: sub_layers {block.sub_layers}"] * (block.sub_layers < 1 or too_deep)
    return problems


def _downsampling(arch: Architecture) -> int:
    return sum(block.stride == 2 for block in arch.blocks)


def _drift(parent: str, space: str, seed: int, steps: int, replaces: int) -> list[Architecture]:
    mutator = RandomMutator(space, seed=seed)
    arch = parse(parent)
    chain = []
    for _ in range(steps):
        arch = mutator.mutate(arch, replaces)
        chain.append(arch)
    return chain


DRIFT_CASES = [
    (CIFAR_SEED, "zennas-cifar"), (IMAGENET_SEED, "zennas-imagenet"),
    (ZENNET_IMAGENET_400M, "zennas-imagenet"), (CIFAR_SEED, "all"),
    *[(arch, "zennas-cifar") for arch in ZENNET_CIFAR],
]


@pytest.mark.parametrize(("parent", "space"), DRIFT_CASES)
@pytest.mark.parametrize("replaces", [1, 2])
def test_drifting_mutations_stay_structurally_valid(parent: str, space: str, replaces: int) -> None:
    stages = _downsampling(parse(parent))
    for seed in range(3):
        for child in _drift(parent, space, seed, 300, replaces):
            assert _structural_problems(child, get_space(space)) == [], str(child)
            assert _downsampling(child) == stages


def test_idw_mutations_keep_the_2048_head() -> None:
    for child in _drift(IMAGENET_SEED, "zennas-imagenet", 0, 300, 2):
        assert child.blocks[-1] == Block(
            op="SuperConvK1BNRELU", in_channels=child.blocks[-2].out_channels,
            out_channels=2048, stride=1, sub_layers=1,
        )


def test_mutations_pass_the_validator() -> None:
    validation = pytest.importorskip("nasagent.evaluator.validation")
    for parent, space in DRIFT_CASES:
        constraints = validation.Constraints(search_space=space).unbudgeted()
        for child in _drift(parent, space, 11, 100, 2):
            report = validation.check(child, constraints)
            assert report.valid, (str(child), report.errors)


def test_long_blocks_are_split_three_plus_rest() -> None:
    parent = parse("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,5)")
    mutator = RandomMutator(seed=0)
    for _ in range(200):
        child = mutator.mutate(parent)
        assert max(block.sub_layers for block in child.blocks) <= 5
        if len(child) == 3:  # a 6- or 7-layer replacement was split
            head, tail = child.blocks[1:]
            assert head.sub_layers == 3 and head.stride == 2
            assert (tail.in_channels, tail.stride) == (head.out_channels, 1)
            assert tail.sub_layers in (3, 4) and tail.op == head.op


def test_conv_mutation_forces_one_sub_layer() -> None:
    mutator = RandomMutator(seed=5)
    child = mutator.mutate(parse("SuperConvK3BNRELU(3,8,1,3)"))
    assert child.blocks[0].sub_layers == 1 and child.blocks[0].op == "SuperConvK3BNRELU"


def test_same_seed_same_outputs_and_different_seeds_differ() -> None:
    def run(seed: int) -> list[str]:
        return [str(a) for a in _drift(CIFAR_SEED, "zennas-cifar", seed, 50, 2)]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_mutator_does_not_touch_global_random() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    _drift(CIFAR_SEED, "zennas-cifar", 0, 20, 1)
    assert random.random() == expected


def test_state_round_trips_through_json() -> None:
    first = RandomMutator(seed=1)
    arch = parse(CIFAR_SEED)
    for _ in range(5):
        arch = first.mutate(arch)
    saved = json.loads(json.dumps(first.state()))
    resumed = RandomMutator(seed=999)
    resumed.set_state(saved)
    assert [str(first.mutate(arch, 2)) for _ in range(10)] == [
        str(resumed.mutate(arch, 2)) for _ in range(10)
    ]


@pytest.mark.parametrize(
    "bad_state",
    [[], [3, [1, 2], None], [3, ["x"] * 625, None], [3, [0] * 625, "gauss"], [99, [0] * 625, None]],
)
def test_malformed_state_is_a_typed_error(bad_state: list[object]) -> None:
    with pytest.raises(MutationError):
        RandomMutator().set_state(bad_state)


# --- repeated index skip ------------------------------------------------------------------------

def test_repeated_index_is_skipped_on_a_single_block() -> None:
    # With one block every draw picks index 0: 2 replaces must change it once, exactly as 1 does.
    parent = parse("SuperResK3K3(3,16,1,8,1)")
    for seed in range(50):
        once = RandomMutator(seed=seed).mutate(parent, 1)
        twice = RandomMutator(seed=seed).mutate(parent, 2)
        assert once == twice


class _ScriptedIndexRandom(random.Random):
    """A seeded RNG whose index draws (randrange) follow a script."""

    def __init__(self, seed: int, indices: list[int]) -> None:
        super().__init__(seed)
        self.indices = list(indices)
        self.calls = 0

    def randrange(self, *args: object, **kwargs: object) -> int:
        self.calls += 1
        return self.indices.pop(0)


def test_repeated_index_changes_one_block_with_a_scripted_rng() -> None:
    parent = parse(CIFAR_SEED)
    for seed in range(20):
        mutator = RandomMutator(seed=seed)
        mutator._rng = _ScriptedIndexRandom(seed, [3, 3])
        child = mutator.mutate(parent, 2)
        assert mutator._rng.calls == 2
        changed = [i for i, (a, b) in enumerate(zip(parent.blocks, child.blocks, strict=True))
                   if a != b]
        assert set(changed) <= {3, 4}  # block 4 only through its re-chained in_channels
        assert child.blocks[4].replace(in_channels=64) == parent.blocks[4]
        reference = RandomMutator(seed=seed)
        reference._rng = _ScriptedIndexRandom(seed, [3])
        assert reference.mutate(parent, 1) == child


def test_zero_replaces_returns_the_rechained_parent() -> None:
    parent = parse("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)")
    child = RandomMutator().mutate(parent, 0)
    assert str(child) == "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"


def test_bad_arguments_are_typed_errors() -> None:
    with pytest.raises(MutationError):
        RandomMutator().mutate(parse(CIFAR_SEED), -1)
    with pytest.raises(UnknownNameError, match="zennas-cifar"):
        RandomMutator("nope")
    with pytest.raises(UnknownNameError, match="uniform"):
        RandomMutator(type_weights="skewed")
