"""Build the torch network of an `Architecture`, layer for layer as Zen-NAS's MasterNet does.

The expansions follow zennas-semantics section 3. Layers are created in the order the
reference creates them (forward order; a residual unit's body before its projection; the
classifier last) because PyTorch's default initialisers draw from the global RNG: the same
order is what lets a seeded proxy reproduce the reference's numbers (section 10).

With `residual=False` the network is Zen-NAS's `no_reslink` model, the one every zero-cost
proxy scores: no additions and no projections, the body and its trailing ReLU inlined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from nasagent.evaluator.errors import ArchitectureError
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.cost import smart_round
from nasagent.evaluator.spaces.zennas.ops import Family

BN_EPS = 1e-3
"""MasterNet sets this eps on every BatchNorm2d (momentum stays at PyTorch's 0.1)."""

IDW_CHANNEL_BASE = 8
"""IDW expanded widths are rounded to multiples of this (Zen-NAS `smart_round(x, base=8)`)."""


class ModelBuildError(ArchitectureError):
    """An architecture that cannot be turned into a network (zero sizes, broken chaining).

    Attributes:
        block: 0-based index of the offending block.
    """

    def __init__(self, message: str, block: int) -> None:
        self.message = message
        self.block = block
        super().__init__(f"block {block}: {message}")


class Residual(nn.Module):
    """`body(x) + shortcut(x)`; an identity shortcut when `shortcut` is None.

    The body is registered before the shortcut so that `modules()` walks the layers in the
    reference's order (ResBlock registers its inner list, then `proj`).
    """

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential | None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + skip


class MasterNet(nn.Module):
    """Super blocks back to back, global average pooling, then a linear classifier.

    Attributes:
        blocks: one `nn.Sequential` per super block, in architecture order.
        fc: the classifier, `Linear(last_out_channels, num_classes, bias=True)`.
    """

    def __init__(self, blocks: list[nn.Sequential], last_channels: int, num_classes: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        # Created after every block, as MasterNet creates `fc_linear` last.
        self.fc = nn.Linear(last_channels, num_classes, bias=True)

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling (Zen-NAS `forward_pre_GAP`)."""
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(x), 1), 1)
        return self.fc(features)


def build_model(arch: Architecture, *, num_classes: int = 100, residual: bool = True) -> MasterNet:
    """Build the MasterNet-equivalent network of `arch`, in train mode.

    Args:
        arch: the architecture; its blocks must chain (each in_channels equals the previous
            block's out_channels) and every size must be positive.
        num_classes: width of the linear classifier.
        residual: False builds Zen-NAS's `no_reslink` model (no additions, no projections).

    Raises:
        ModelBuildError: the architecture cannot be built; the message names the block.
    """
    _check_buildable(arch, num_classes)
    blocks = [nn.Sequential(*_EXPANSIONS[b.family](b, residual)) for b in arch.blocks]
    return MasterNet(blocks, arch.out_channels, num_classes)


def idw_widths(block: Block) -> tuple[int, int]:
    """The expanded widths (d1, d2) of an IDW block's two units (section 3.4)."""
    bottleneck = _bottleneck(block)
    expansion = block.spec.expansion
    return (
        smart_round(bottleneck * expansion, IDW_CHANNEL_BASE),
        smart_round(block.out_channels * expansion, IDW_CHANNEL_BASE),
    )


def _check_buildable(arch: Architecture, num_classes: int) -> None:
    if num_classes < 1:
        raise ModelBuildError(f"num_classes must be positive, got {num_classes}", len(arch) - 1)
    previous_out: int | None = None
    for index, block in enumerate(arch.blocks):
        for field in block.spec.fields:
            if getattr(block, field) < 1:
                raise ModelBuildError(f"{block.op}: {field} must be positive", index)
        if previous_out is not None and block.in_channels != previous_out:
            raise ModelBuildError(
                f"{block.op} takes in_channels={block.in_channels} but the previous block "
                f"outputs {previous_out} channels",
                index,
            )
        previous_out = block.out_channels


def _bottleneck(block: Block) -> int:
    if block.bottleneck_channels is None:  # only reachable for a malformed Res block
        raise ModelBuildError(f"{block.op} needs bottleneck_channels", 0)
    return block.bottleneck_channels


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _conv_bn(
    in_channels: int, out_channels: int, kernel: int, stride: int, groups: int = 1
) -> list[nn.Module]:
    """Zen-NAS `ConvKX` (or `ConvDW` when groups == channels) followed by `BN`."""
    conv = nn.Conv2d(
        in_channels, out_channels, kernel, stride, padding=(kernel - 1) // 2,
        groups=groups, bias=False,
    )
    return [conv, _batch_norm(out_channels)]


def _relu() -> nn.ReLU:
    # In place is safe: every ReLU follows a BN or an addition, neither of which needs its
    # output for backward. Proxies that read ReLU inputs use forward *pre*-hooks.
    return nn.ReLU(inplace=True)


def _sub_layer_inputs(block: Block) -> Iterator[tuple[int, int]]:
    """(in_channels, stride) of each sub-layer: the stride applies only in sub-layer 0."""
    yield block.in_channels, block.stride
    for _ in range(block.sub_layers - 1):
        yield block.out_channels, 1


def _residual_unit(
    body: list[nn.Module], in_channels: int, out_channels: int, stride: int, *,
    always_project: bool, residual: bool,
) -> list[nn.Module]:
    """Wrap a body as ResBlockProj (`always_project`) or ResBlock, then the post-add ReLU.

    The caller builds `body` first, so the projection's layers are created after it, as in
    the reference. Without residual links the body and the ReLU are simply inlined.
    """
    if not residual:
        return [*body, _relu()]
    shortcut = None
    if always_project or stride > 1 or in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=True), _batch_norm(out_channels)
        )
    return [Residual(nn.Sequential(*body), shortcut), _relu()]


def _expand_conv(block: Block, residual: bool) -> list[nn.Module]:  # noqa: ARG001
    # SuperConv has no residual link, so `residual` does not change it.
    layers: list[nn.Module] = []
    for in_channels, stride in _sub_layer_inputs(block):
        layers += [*_conv_bn(in_channels, block.out_channels, block.spec.kernel, stride), _relu()]
    return layers


def _kxkx_body(cin: int, bottleneck: int, out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [
        *_conv_bn(cin, bottleneck, kernel, stride), _relu(),
        *_conv_bn(bottleneck, out, kernel, 1),
    ]


def _expand_kxkx(block: Block, residual: bool) -> list[nn.Module]:
    bottleneck, out, kernel = _bottleneck(block), block.out_channels, block.spec.kernel
    layers: list[nn.Module] = []
    for index, (cin, stride) in enumerate(_sub_layer_inputs(block)):
        body = _kxkx_body(cin, bottleneck, out, kernel, stride)
        layers += _residual_unit(
            body, cin, out, stride, always_project=index == 0, residual=residual
        )
    return layers


def _k1kxk1_body(cin: int, bottleneck: int, out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [
        *_conv_bn(cin, bottleneck, 1, 1), _relu(),
        *_conv_bn(bottleneck, bottleneck, kernel, stride), _relu(),
        *_conv_bn(bottleneck, out, 1, 1),
    ]


def _expand_k1kxk1(block: Block, residual: bool) -> list[nn.Module]:
    bottleneck, out, kernel = _bottleneck(block), block.out_channels, block.spec.kernel
    layers: list[nn.Module] = []
    for index, (cin, stride) in enumerate(_sub_layer_inputs(block)):
        first = _k1kxk1_body(cin, bottleneck, out, kernel, stride)
        layers += _residual_unit(
            first, cin, out, stride, always_project=index == 0, residual=residual
        )
        second = _k1kxk1_body(out, bottleneck, out, kernel, 1)
        layers += _residual_unit(second, out, out, 1, always_project=False, residual=residual)
    return layers


def _idw_body(cin: int, expanded: int, out: int, kernel: int, stride: int) -> list[nn.Module]:
    # No ReLU after the projecting 1x1 conv: the only ReLU follows the residual unit.
    return [
        *_conv_bn(cin, expanded, 1, 1), _relu(),
        *_conv_bn(expanded, expanded, kernel, stride, groups=expanded), _relu(),
        *_conv_bn(expanded, out, 1, 1),
    ]


def _expand_idw(block: Block, residual: bool) -> list[nn.Module]:
    bottleneck, out, kernel = _bottleneck(block), block.out_channels, block.spec.kernel
    first_width, second_width = idw_widths(block)
    layers: list[nn.Module] = []
    for index, (cin, stride) in enumerate(_sub_layer_inputs(block)):
        # Reference quirk: the first unit outputs `bottleneck` channels, not `out`, so every
        # ResBlock gets a projection whenever the two differ.
        first = _idw_body(cin, first_width, bottleneck, kernel, stride)
        layers += _residual_unit(
            first, cin, bottleneck, stride, always_project=index == 0, residual=residual
        )
        second = _idw_body(bottleneck, second_width, out, kernel, 1)
        layers += _residual_unit(
            second, bottleneck, out, 1, always_project=False, residual=residual
        )
    return layers


_EXPANSIONS: dict[Family, Callable[[Block, bool], list[nn.Module]]] = {
    Family.CONV: _expand_conv,
    Family.KXKX: _expand_kxkx,
    Family.K1KXK1: _expand_k1kxk1,
    Family.IDW: _expand_idw,
}
"""How each family expands into layers; keyed by the registry's Family."""
