"""NAS-Bench-201 cost: hand-computed cells, the published ranges, and counts of the torch network.

The torch counts use hooks written the way NATS-Bench's `flop_benchmark` counts: conv FLOPs
k*k*C_in*C_out*H_out*W_out, linear in*out + out, pooling hooked but left out of the total.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nasagent.evaluator.spaces.nb201.builder import build_network
from nasagent.evaluator.spaces.nb201.cell import OPS, Cell, all_cells, parse
from nasagent.evaluator.spaces.nb201.cost import (
    NatsCost,
    NatsCostError,
    activation_elements,
    nats_cost,
)

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16-120": (120, 16)}
BEST_C10 = parse(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|"
)


def uniform(op: str) -> Cell:
    return Cell((op,) * 6)


def test_the_all_none_network_costs_its_stem_blocks_and_head() -> None:
    # stem: conv 3*16*9 = 432 weights, BN 2*16 = 32.
    # block 16->32 at 16x16: conv_a 16*32*9 = 4,608 + BN 64; conv_b 32*32*9 = 9,216 + BN 64;
    #   shortcut 1x1 16*32 = 512: 14,464 params; FLOPs (4,608 + 9,216 + 512) * 256 = 3,670,016.
    # block 32->64 at 8x8: 18,432 + 128 + 36,864 + 128 + 2,048 = 57,600 params; FLOPs
    #   (18,432 + 36,864 + 2,048) * 64 = 3,670,016.
    # last BN 128; classifier 64*10 + 10 = 650 (also 650 FLOPs).
    # params 464 + 14,464 + 57,600 + 128 + 650 = 73,306;
    # FLOPs 432 * 1,024 + 2 * 3,670,016 + 650 = 7,783,050.
    assert nats_cost(uniform("none"), 10, 32) == NatsCost(params=73_306, flops=7_783_050)


@pytest.mark.parametrize("op", ["skip_connect", "avg_pool_3x3"])
def test_parameter_free_ops_cost_nothing(op: str) -> None:
    assert nats_cost(uniform(op), 10, 32) == nats_cost(uniform("none"), 10, 32)


def test_the_all_3x3_network_is_the_largest_of_the_benchmark() -> None:
    # Each 3x3 edge at C channels adds 9*C*C + 2*C params and 9*C*C*(side**2) FLOPs: 6 edges
    # x 5 cells at (16, 32x32), (32, 16x16), (64, 8x8) add 1,458,240 params, 212,336,640 FLOPs.
    assert nats_cost(uniform("nor_conv_3x3"), 10, 32) == NatsCost(1_531_546, 220_119_690)


def test_the_best_cifar10_cell() -> None:
    # Four 3x3 edges and one 1x1 edge per cell, on top of the all-none network: a cell at C
    # channels adds 4 * (9C^2 + 2C) + (C^2 + 2C) = 37C^2 + 10C params, 37C^2 * side^2 FLOPs.
    # params: 5 * (9,632 + 38,208 + 152,192) = 1,000,160 -> 73,306 + 1,000,160 = 1,073,466.
    # FLOPs: 37 * 256 * 1,024 = 9,699,328 at every stage, x 3 x 5 = 145,489,920
    #   -> 7,783,050 + 145,489,920 = 153,272,970.
    assert nats_cost(BEST_C10, 10, 32) == NatsCost(1_073_466, 153_272_970)


@pytest.mark.parametrize(("dataset", "published"), [
    # NATS-Bench's params and FLOPs (millions) over the whole space, min and max.
    ("cifar10", ((0.073306, 1.531546), (7.78305, 220.11969))),
    ("cifar100", ((0.079156, 1.537396), (7.7889, 220.12554))),
    ("imagenet16-120", ((0.080456, 1.538696), (1.9534, 55.03756))),
])
def test_the_whole_space_spans_the_published_ranges(
    dataset: str, published: tuple[tuple[float, float], tuple[float, float]]
) -> None:
    costs = [nats_cost(cell, *DATASETS[dataset]) for cell in all_cells()]
    params = sorted(cost.params / 1e6 for cost in costs)
    flops = sorted(cost.flops / 1e6 for cost in costs)
    assert (params[0], params[-1]) == pytest.approx(published[0], abs=5e-7)
    assert (flops[0], flops[-1]) == pytest.approx(published[1], abs=5e-6)


def test_a_resolution_the_network_cannot_halve_twice_is_an_error() -> None:
    with pytest.raises(NatsCostError, match="multiple of 4"):
        nats_cost(BEST_C10, 10, 30)
    with pytest.raises(NatsCostError, match="multiple of 4"):
        activation_elements(BEST_C10, 0)


# --- against the torch network ---------------------------------------------------------------


def nats_style_flops(model: nn.Module, resolution: int) -> int:
    """Per-image FLOPs counted as NATS-Bench's hooks count them."""
    total = [0]

    def conv(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        per_pixel = kh * kw * module.in_channels * module.out_channels // module.groups
        total[0] += per_pixel * output.shape[2] * output.shape[3]

    def linear(module: nn.Linear, _inputs: Any, _output: torch.Tensor) -> None:
        total[0] += module.in_features * module.out_features + module.out_features

    hooks = [
        module.register_forward_hook(conv if isinstance(module, nn.Conv2d) else linear)
        for module in model.modules() if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    for hook in hooks:
        hook.remove()
    return total[0]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared machine more threads make these small networks slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cells_of_every_cost(extra: int) -> list[Cell]:
    """A cell for each (1x1 count, 3x3 count), the only things the cost depends on, and more."""
    cells = []
    for ones in range(7):
        for threes in range(7 - ones):
            rest = ["skip_connect", "avg_pool_3x3", "none"] * 2
            cells.append(Cell(tuple(["nor_conv_1x1"] * ones + ["nor_conv_3x3"] * threes
                                    + rest[: 6 - ones - threes])))
    return cells + random.Random(7).sample(all_cells(), extra)


def test_the_cost_is_what_the_torch_network_holds_and_computes() -> None:
    for cell in cells_of_every_cost(extra=8):
        model = build_network(cell, 10)
        params = sum(p.numel() for _, p in model.named_parameters())
        assert nats_cost(cell, 10, 32) == NatsCost(params, nats_style_flops(model, 32)), str(cell)


@pytest.mark.parametrize("dataset", ["cifar100", "imagenet16-120"])
def test_other_heads_and_resolutions_are_costed_like_the_torch_network(dataset: str) -> None:
    num_classes, resolution = DATASETS[dataset]
    for cell in [uniform("nor_conv_3x3"), uniform("none"), BEST_C10]:
        model = build_network(cell, num_classes)
        params = sum(p.numel() for _, p in model.named_parameters())
        flops = nats_style_flops(model, resolution)
        assert nats_cost(cell, num_classes, resolution) == NatsCost(params, flops), str(cell)


class _Additions(TorchFunctionMode):
    """Counts the output elements of every tensor addition."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if func in (torch.Tensor.__add__, torch.Tensor.add, torch.add):
            self.elements += result.numel()
        return result


def torch_activations(model: nn.Module, resolution: int) -> int:
    counted = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Linear)
    total = [0]

    def count(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        total[0] += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, counted)]
    with torch.no_grad(), _Additions() as additions:
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    for hook in hooks:
        hook.remove()
    return total[0] + additions.elements


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_activation_elements_count_the_outputs_of_the_torch_network(dataset: str) -> None:
    num_classes, resolution = DATASETS[dataset]
    cells = [uniform(op) for op in OPS] + random.Random(3).sample(all_cells(), 3)
    for cell in cells:
        expected = torch_activations(build_network(cell, num_classes), resolution)
        assert activation_elements(cell, resolution, num_classes) == expected, str(cell)


def test_a_wider_or_deeper_network_is_costed_like_its_torch_twin() -> None:
    for channels, per_stage in itertools.product((8, 24), (1, 3)):
        model = build_network(BEST_C10, 10, channels=channels, cells_per_stage=per_stage)
        cost = nats_cost(BEST_C10, 10, 32, channels=channels, cells_per_stage=per_stage)
        assert cost.params == sum(p.numel() for p in model.parameters())
        assert cost.flops == nats_style_flops(model, 32)
