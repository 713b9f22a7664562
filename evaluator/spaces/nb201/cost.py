"""Parameters, FLOPs and activation counts of a NAS-Bench-201 network, without building it.

Counted exactly as NATS-Bench counts them (`count_parameters` and `get_model_infos` in its
`flop_benchmark`), as absolute numbers where it reports millions:

* params: every parameter tensor's elements: conv weights (no conv here has a bias), BatchNorm
  weight and bias (2 per channel), the classifier's weight and bias.
* flops: per image, k*k*C_in*C_out*H_out*W_out for every convolution and in*out + out for the
  classifier. Pooling layers are hooked there but left out of the total, so they add nothing;
  BatchNorm, ReLU and additions are not counted either.

The network (see `builder`): a 3x3 stem convolution to C channels and BatchNorm; three stages
of `cells_per_stage` cells at C, 2C and 4C channels and resolutions R, R/2, R/4; between stages a
ResNet basic block (ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN, shortcut AvgPool2d(2) then a 1x1
conv); then BatchNorm-ReLU, global average pooling and a linear classifier. Checks against the
published ranges: CIFAR-10 params 73,306 .. 1,531,546 and FLOPs 7,783,050 .. 220,119,690.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.spaces.nb201.cell import NODES, Cell

RGB_CHANNELS = 3
STAGES = 3
KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
"""The ops that hold a ReLU-conv-BN, by kernel size; the others have no parameters."""


@dataclass(frozen=True)
class NatsCost:
    """The cost of one network, as NATS-Bench counts it.

    Attributes:
        params: number of parameters (NATS-Bench's "params" x 1e6).
        flops: multiply-accumulates per image (NATS-Bench's "flops" x 1e6).
    """

    params: int
    flops: int


class NatsCostError(NasAgentError, ValueError):
    """A resolution or width the network cannot be built at."""


@dataclass(frozen=True)
class _Tally:
    params: int = 0
    flops: int = 0

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(self.params + other.params, self.flops + other.flops)

    def times(self, count: int) -> _Tally:
        return _Tally(self.params * count, self.flops * count)


def _conv(c_in: int, c_out: int, kernel: int, pixels: int) -> _Tally:
    weights = kernel * kernel * c_in * c_out
    return _Tally(weights, weights * pixels)


def _bn(channels: int) -> _Tally:
    return _Tally(2 * channels, 0)


def _cell(cell: Cell, channels: int, pixels: int) -> _Tally:
    total = _Tally()
    for op in cell.ops:
        if op in KERNELS:
            total += _conv(channels, channels, KERNELS[op], pixels) + _bn(channels)
    return total


def _reduction(c_in: int, c_out: int, pixels_out: int) -> _Tally:
    main = _conv(c_in, c_out, 3, pixels_out) + _bn(c_out) + _conv(c_out, c_out, 3, pixels_out)
    return main + _bn(c_out) + _conv(c_in, c_out, 1, pixels_out)


def _check_shape(resolution: int, channels: int, cells_per_stage: int) -> None:
    quantum = 2 ** (STAGES - 1)
    if resolution < quantum or resolution % quantum:
        raise NatsCostError(
            f"resolution {resolution} must be a positive multiple of {quantum}: the network "
            f"halves it {STAGES - 1} times"
        )
    if channels < 1 or cells_per_stage < 0:
        raise NatsCostError(
            f"channels ({channels}) must be positive and cells_per_stage ({cells_per_stage}) "
            "not negative"
        )


def nats_cost(
    cell: Cell, num_classes: int, resolution: int, *, channels: int = 16,
    cells_per_stage: int = 5,
) -> NatsCost:
    """Parameters and per-image FLOPs of the network of `cell`, counted as NATS-Bench does.

    Args:
        cell: the cell repeated in every stage.
        num_classes: outputs of the classifier (10, 100 or 120 in the benchmark).
        resolution: input height and width (32 for CIFAR, 16 for ImageNet16-120).
        channels: the stem's width C (16 in the benchmark).
        cells_per_stage: cells per stage N (5 in the benchmark).

    Raises:
        NatsCostError: `resolution` is not a positive multiple of 4, or a width is not positive.
    """
    _check_shape(resolution, channels, cells_per_stage)
    total = _conv(RGB_CHANNELS, channels, 3, resolution**2) + _bn(channels)
    for stage in range(STAGES):
        width, side = channels * 2**stage, resolution // 2**stage
        if stage:
            total += _reduction(width // 2, width, side**2)
        total += _cell(cell, width, side**2).times(cells_per_stage)
    last = channels * 2 ** (STAGES - 1)
    head = _Tally(last * num_classes + num_classes, last * num_classes + num_classes)
    total += _bn(last) + head
    return NatsCost(params=total.params, flops=total.flops)


def activation_elements(
    cell: Cell, resolution: int, num_classes: int = 10, *, channels: int = 16,
    cells_per_stage: int = 5,
) -> int:
    """Activations (floats) one image leaves in memory for the backward pass: an estimate.

    The sum of the output elements of every convolution, BatchNorm, ReLU, pooling layer
    (the cells' 3x3 average pools, the shortcut's 2x2 pool, the global pool), addition and of
    the classifier. A node summing k edges adds k - 1 times; a basic block adds once. A `none`
    edge's zeros are not counted: nothing keeps them for backward. The in-place final ReLU is
    counted although it shares the BatchNorm's memory. The count errs high: the tensors
    autograd actually saves (unique storages, measured with `saved_tensors_hooks`) are 1.6x
    fewer elements for conv-heavy cells and up to 4.6x fewer for parameter-free ones, whose
    additions and ReLU outputs are not saved.

    `SearchSpace.memory` turns the count into the estimate the memory cap checks
    (`MemoryEstimate`: parameters with their gradients, B x activations, slack and workspace).

    Raises:
        NatsCostError: `resolution` is not a positive multiple of 4, or a width is not positive.
    """
    _check_shape(resolution, channels, cells_per_stage)
    total = 2 * channels * resolution**2  # stem conv, BN
    for stage in range(STAGES):
        width, side = channels * 2**stage, resolution // 2**stage
        plane = width * side**2
        if stage:
            total += _reduction_activations(width // 2, width, side)
        total += cells_per_stage * _cell_activations(cell) * plane
    last = channels * 2 ** (STAGES - 1)
    return total + 2 * last * (resolution // 2 ** (STAGES - 1)) ** 2 + last + num_classes


def _reduction_activations(c_in: int, c_out: int, side_out: int) -> int:
    """ReLU (on the input), conv, BN; ReLU, conv, BN; pool, 1x1 conv; the addition."""
    plane = c_out * side_out**2
    return c_in * (2 * side_out) ** 2 + 5 * plane + c_in * side_out**2 + 2 * plane


_OP_TENSORS = {"none": 0, "skip_connect": 0, "nor_conv_1x1": 3, "nor_conv_3x3": 3,
               "avg_pool_3x3": 1}
"""Feature-map-sized tensors each op produces (ReLU, conv, BN; or the pool's output)."""


def _cell_activations(cell: Cell) -> int:
    """Feature maps one cell produces: its ops' outputs plus the node additions."""
    additions = sum(node - 1 for node in range(1, NODES))
    return sum(_OP_TENSORS[op] for op in cell.ops) + additions
