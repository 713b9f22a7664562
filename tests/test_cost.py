"""The analytic cost model against the Zen-NAS figures of zennas-semantics sections 3, 4, 7, 10."""

from __future__ import annotations

import pytest

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.cost import (
    Cost,
    CostError,
    Counting,
    block_costs,
    count_cost,
    output_resolutions,
    smart_round,
)

ZENNET_CIFAR_05M = (
    "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
    "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
    "SuperConvK1BNRELU(32,512,1,1)"
)
ZENNET_CIFAR_1M = (
    "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
    "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
    "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"
)
ZENNET_CIFAR_2M = (
    "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,3)"
    "SuperResK1K7K1(176,272,1,24,3)SuperResK1K3K1(272,176,1,56,3)SuperResK1K3K1(176,176,1,64,4)"
    "SuperResK1K5K1(176,216,2,40,2)SuperResK1K3K1(216,72,2,56,2)SuperConvK1BNRELU(72,512,1,1)"
)
ZENNET_IMAGENET_400M = (
    "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE1K7(40,64,2,64,1)"
    "SuperResIDWE4K7(64,96,2,96,5)SuperResIDWE2K7(96,224,2,224,5)SuperConvK1BNRELU(224,2048,1,1)"
)
RZNAS_MIXED = (
    "SuperConvK3BNRELU(3,8,1,1)SuperResK1K7K1(8,16,1,8,1)SuperResK5K5(16,32,2,16,1)"
    "SuperResK7K7(32,64,2,32,1)"
)
RZNAS_TEMPLATE = (
    "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
)

# zennas-semantics section 4: per block (size, FLOPs, numel, size no_reslink, FLOPs no_reslink).
SEED_BLOCKS = [
    (224, 229_376, 232, 224, 229_376),
    (1_896, 1_941_504, 1_952, 1_752, 1_794_048),
    (7_504, 1_816_576, 7_616, 6_960, 1_781_760),
    (29_856, 1_809_408, 30_080, 27_744, 1_775_616),
    (41_120, 608_000, 41_344, 36_960, 591_360),
    (8_320, 133_120, 8_448, 8_320, 133_120),
]


@pytest.fixture(scope="module")
def seed() -> Architecture:
    return parse(CIFAR_SEED)


def test_seed_totals_under_both_conventions(seed: Architecture) -> None:
    assert count_cost(seed, counting=Counting.ZENNAS) == Cost(101_721.0, 6_550_784.0, 6)
    assert count_cost(seed, counting="zennas", residual=False) == Cost(94_761.0, 6_318_080.0, 6)
    assert count_cost(seed) == Cost(102_572, 6_806_528, 6)


def test_zennas_totals_are_floats_and_exact_totals_are_ints(seed: Architecture) -> None:
    zennas, exact = count_cost(seed, counting="zennas"), count_cost(seed)
    assert type(zennas.params) is float and type(zennas.flops) is float
    assert type(exact.params) is int and type(exact.flops) is int


@pytest.mark.parametrize("index", range(len(SEED_BLOCKS)))
def test_seed_per_block_values(seed: Architecture, index: int) -> None:
    size, flops, numel, size_plain, flops_plain = SEED_BLOCKS[index]
    zennas = block_costs(seed, counting="zennas")[index]
    plain = block_costs(seed, counting="zennas", residual=False)[index]
    exact = block_costs(seed, counting="exact")[index]
    assert (zennas.params, zennas.flops) == (size, flops)
    assert (plain.params, plain.flops) == (size_plain, flops_plain)
    assert exact.params == numel


def test_seed_head_is_the_rest_of_the_total(seed: Architecture) -> None:
    blocks = block_costs(seed, counting="zennas")
    total = count_cost(seed, counting="zennas")
    assert total.params - sum(b.params for b in blocks) == 128 * 100 + 1
    assert total.flops - sum(b.flops for b in blocks) == 128 * 100
    exact_blocks = block_costs(seed)
    assert count_cost(seed).params - sum(b.params for b in exact_blocks) == 128 * 100 + 100


def test_exact_flops_count_projections_at_their_real_resolution(seed: Architecture) -> None:
    # Block 2 (16->32, stride 2, output 16x16): the projection conv has 16*32 MACs and its BN
    # 32 ops per output position, 256 positions; Zen-NAS counts (16/2)^2 = 64 positions.
    exact, zennas = block_costs(seed)[2], block_costs(seed, counting="zennas")[2]
    assert exact.flops - zennas.flops == (16 * 32 + 32) * (256 - 64)


def test_k1kxk1_example_block() -> None:
    cost = block_costs(parse("SuperResK1K3K1(8,16,2,4,2)"), counting="zennas")[0]
    assert (cost.params, cost.flops, cost.layers) == (1296, 331_776, 2)


@pytest.mark.parametrize(
    ("text", "params", "flops", "layers"),
    [(RZNAS_MIXED, 186_081, 21_966_080, 4), (RZNAS_TEMPLATE, 223_081, 120_296_256, 8)],
)
def test_rznas_prompt_examples(text: str, params: int, flops: int, layers: int) -> None:
    assert count_cost(parse(text), counting="zennas") == Cost(params, flops, layers)


@pytest.mark.parametrize(
    ("text", "size_100", "size_10", "layers"),
    [
        (ZENNET_CIFAR_05M, 540_297, 494_217, 16),
        (ZENNET_CIFAR_1M, 1_031_185, 985_105, 18),
        (ZENNET_CIFAR_2M, 2_015_081, 1_969_001, 20),
    ],
)
def test_released_zennet_cifar_sizes(text: str, size_100: int, size_10: int, layers: int) -> None:
    arch = parse(text)
    assert count_cost(arch, counting="zennas").params == size_100
    assert count_cost(arch, counting="zennas", num_classes=10).params == size_10
    assert count_cost(arch).layers == layers


def test_imagenet_400m_model() -> None:
    cost = count_cost(
        parse(ZENNET_IMAGENET_400M), counting="zennas", num_classes=1000, resolution=224
    )
    assert (cost.flops, cost.layers) == (399_976_216, 14)


def test_imagenet_seed_checks_the_idw_width_quirk() -> None:
    # Block 1 has bottleneck 8 != out 32, so its ResBlocks carry extra projections.
    cost = count_cost(parse(IMAGENET_SEED), counting="zennas", num_classes=1000, resolution=224)
    assert (cost.params, cost.flops) == (2_813_889, 162_396_776)


def _projection_params(text: str) -> float:
    """Parameters that only the residual model has: its projections (Zen-NAS counting)."""
    arch = parse(text)
    with_links = block_costs(arch, counting="zennas")[0]
    without = block_costs(arch, counting="zennas", residual=False)[0]
    return with_links.params - without.params


def test_idw_projects_every_unit_when_bottleneck_differs_from_out() -> None:
    # 2 sub-layers x 2 units. With b == out only the first ResBlockProj projects (16->16);
    # with b = 24 all four units project: 16->24, 24->16, 16->24, 24->16 (in*out + out).
    assert _projection_params("SuperResIDWE1K3(16,16,1,16,2)") == 16 * 16 + 16
    expected = 2 * (16 * 24 + 24) + 2 * (24 * 16 + 16)
    assert _projection_params("SuperResIDWE1K3(16,16,1,24,2)") == expected


def test_exact_depthwise_conv_uses_groups() -> None:
    # SuperResIDWE1K3(8,8,1,8,1) at R=4, no residual: d1 = d2 = 8; per unit 1x1 8->8 (64 w),
    # depthwise 3x3 (72 w), 1x1 8->8 (64 w), three BNs of 8 channels.
    cost = block_costs(parse("SuperResIDWE1K3(8,8,1,8,1)"), resolution=4, residual=False)[0]
    assert cost.params == 2 * (64 + 72 + 64 + 3 * 16)
    assert cost.flops == 2 * (64 + 72 + 64 + 3 * 8) * 16


def test_exact_uses_ceil_resolution_and_zennas_floor() -> None:
    arch = parse("SuperConvK3BNRELU(3,8,2,1)")
    exact = count_cost(arch, resolution=7)
    zennas = count_cost(arch, resolution=7, counting="zennas")
    # exact: 4x4 outputs; Zen-NAS: conv 3*8*9*49 // 4, BN at 7 // 2 = 3.
    assert exact.flops == 3 * 8 * 9 * 16 + 8 * 16 + 8 * 100
    assert zennas.flops == 3 * 8 * 9 * 49 // 4 + 8 * 9 + 8 * 100
    assert output_resolutions(arch, 7) == [3]


def test_zennas_projection_flops_are_fractional_for_odd_resolutions() -> None:
    cost = block_costs(parse("SuperResK3K3(8,8,2,8,1)"), resolution=14, counting="zennas")[0]
    # 14 -> 7 after the body; the projection counts (7/2)^2 = 12.25 positions.
    body = 8 * 8 * 9 * 196 // 4 + 8 * 49 + 8 * 8 * 9 * 49 + 8 * 49
    assert cost.flops == body + 8 * 8 * 12.25 + 12.25 * 8


def test_output_resolutions(seed: Architecture) -> None:
    assert output_resolutions(seed, 32) == [32, 32, 16, 8, 4, 4]
    assert output_resolutions(parse(IMAGENET_SEED), 224) == [112, 56, 28, 14, 7, 7]


@pytest.mark.parametrize(
    ("x", "base", "expected"),
    [(20, 8, 16), (12, 8, 16), (28, 8, 32), (36, 8, 32), (4, 8, 8),
     (200, None, 192), (300, None, 288), (1000, None, 992), (8 * 6, 8, 48)],
)
def test_smart_round(x: float, base: int | None, expected: int) -> None:
    assert smart_round(x, base) == expected


def test_huge_architecture_is_costed_in_closed_form() -> None:
    arch = parse("SuperConvK3BNRELU(3,2048,1,1)SuperResK3K3(2048,2048,1,2048,600)")
    one = block_costs(parse("SuperResK3K3(2048,2048,1,2048,1)"))[0]
    two = block_costs(parse("SuperResK3K3(2048,2048,1,2048,2)"))[0]
    cost = count_cost(arch)
    later = two.params - one.params
    assert cost.layers == 601
    assert cost.params == 3 * 2048 * 9 + 2 * 2048 + one.params + 599 * later + 2048 * 100 + 100


def test_sub_layers_zero_is_an_empty_block() -> None:
    arch = Architecture(blocks=(
        Block(op="SuperConvK3BNRELU", in_channels=3, out_channels=8, stride=1, sub_layers=1),
        Block(op="SuperResK3K3", in_channels=8, out_channels=8, stride=2,
              bottleneck_channels=8, sub_layers=0),
    ))
    assert block_costs(arch, counting="zennas")[1] == Cost(0.0, 0.0, 0)
    assert output_resolutions(arch, 32) == [32, 32]


@pytest.mark.parametrize(
    "block",
    [
        Block(op="SuperResK3K3", in_channels=3, out_channels=8, stride=0,
              bottleneck_channels=8, sub_layers=1),
        Block(op="NotAnOp", in_channels=3, out_channels=8, stride=1, sub_layers=1),
        Block(op="SuperResK3K3", in_channels=3, out_channels=8, stride=1, sub_layers=1),
    ],
)
def test_uncostable_blocks_raise_cost_error(block: Block) -> None:
    with pytest.raises(CostError):
        count_cost(Architecture(blocks=(block,)))
