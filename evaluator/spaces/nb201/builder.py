"""The PyTorch network of a NAS-Bench-201 cell: NATS-Bench's `TinyNetwork` of `InferCell`s.

The modules, their attribute names and the order in which they are created are NATS-Bench's,
so the state_dict keys are theirs and a seeded default initialisation draws the same weights.
The one module of the package that imports torch.
"""

from __future__ import annotations

from functools import reduce
from operator import add

import torch
from torch import nn

from nasagent.evaluator.spaces.nb201.cell import NODES, Cell
from nasagent.evaluator.spaces.nb201.cost import KERNELS, STAGES


class ReLUConvBN(nn.Module):
    """ReLU, a bias-free convolution, BatchNorm (NATS-Bench's `ReLUConvBN`); without the
    BatchNorm when `batchnorm` is False (see `build_network`)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            *([nn.BatchNorm2d(c_out)] if batchnorm else []),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The `none` op: zeros shaped like its input (it keeps the graph, as NATS-Bench's does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class Pooling(nn.Module):
    """The `avg_pool_3x3` op: 3x3 average pooling, stride 1, padding not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def _op_module(op: str, channels: int, batchnorm: bool) -> nn.Module:
    if op in KERNELS:
        kernel = KERNELS[op]
        return ReLUConvBN(channels, channels, kernel, padding=kernel // 2, batchnorm=batchnorm)
    return {"none": Zero, "skip_connect": nn.Identity, "avg_pool_3x3": Pooling}[op]()


class InferCell(nn.Module):
    """One cell: node i is the sum of the ops on its incoming edges (NATS-Bench's `InferCell`).

    `layers` holds one module per edge in string order, as NATS-Bench creates them.
    """

    def __init__(self, cell: Cell, channels: int, batchnorm: bool = True) -> None:
        super().__init__()
        self.cell = cell
        self.layers = nn.ModuleList(_op_module(op, channels, batchnorm) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for target in range(1, NODES):
            terms = [self.layers[edge + source](nodes[source]) for source in range(target)]
            nodes.append(reduce(add, terms))
            edge += target
        return nodes[-1]


class ResNetBasicblock(nn.Module):
    """The stride-2 block between stages: two ReLU-conv3x3-BN, shortcut AvgPool2d(2) + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, padding=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """Stem, three stages of cells with a basic block between them, BN-ReLU, pool, classifier.

    `forward` returns the logits; `forward_pre_gap` the feature map after the final BN-ReLU.
    """

    def __init__(
        self, cell: Cell, num_classes: int, channels: int, cells_per_stage: int,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            *_batchnorm(channels, batchnorm),
        )
        blocks: list[nn.Module] = []
        for stage in range(STAGES):
            width = channels * 2**stage
            if stage:
                blocks.append(ResNetBasicblock(width // 2, width))
            blocks += [InferCell(cell, width, batchnorm) for _ in range(cells_per_stage)]
        self.cells = nn.ModuleList(blocks)
        last = channels * 2 ** (STAGES - 1)
        self.lastact = nn.Sequential(*_batchnorm(last, batchnorm), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.stem(x)
        for block in self.cells:
            feature = block(feature)
        return self.lastact(feature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.global_pooling(self.forward_pre_gap(x))
        return self.classifier(pooled.flatten(1))


def _batchnorm(channels: int, present: bool) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels)] if present else []


def build_network(
    cell: Cell, num_classes: int, *, channels: int = 16, cells_per_stage: int = 5,
    batchnorm: bool = True,
) -> TinyNetwork:
    """The NAS-Bench-201 network of `cell` (PyTorch default initialisation).

    Args:
        cell: the cell repeated in every stage.
        num_classes: outputs of the classifier.
        channels: the stem's width C; the stages have C, 2C and 4C channels.
        cells_per_stage: cells per stage N.
        batchnorm: False leaves out the BatchNorm of the stem, of every cell operation and
            before the pooling, and keeps the reduction blocks' own: the network zero-cost-nas
            computes SynFlow on (its copy `bn=False`). BatchNorm draws no random numbers, so
            a seeded build has the same convolution weights either way.
    """
    return TinyNetwork(cell, num_classes, channels, cells_per_stage, batchnorm)
