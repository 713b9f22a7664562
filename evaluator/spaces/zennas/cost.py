"""Analytic cost model: parameters, FLOPs and layers of an architecture, without building it.

Two counting conventions (zennas-semantics sections 2-4 and 10):

* `Counting.ZENNAS` reproduces Zen-NAS `get_model_size` / `get_FLOPs` bit for bit, quirks
  included: BN counts C parameters, a projection counts in*out+out, the fc bias counts 1,
  resolutions shrink as `R // s`, projection FLOPs use the output resolution divided by the
  stride once more (float division), and totals are floats.
* `Counting.EXACT` (the default) counts what PyTorch holds and computes: BN has 2C parameters,
  a projection has its conv weight and bias plus a 2C BN, the fc bias has num_classes entries,
  and FLOPs are, per image, output elements x (in / groups) x k^2 for every conv, in x out for
  the fc and the output elements of every BN. Output sizes are PyTorch's: with padding
  (k - 1) // 2 and an odd kernel a stride-s conv gives ceil(R / s) (the same as `R // s` for the
  usual 32 and 224 pipelines).

Every sub-layer after the first of a super block is identical, so a block is costed in closed
form as its first sub-layer plus (sub_layers - 1) copies of a later one: a 600-sub-layer block
costs the same few operations as a 1-sub-layer one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import NamedTuple, Protocol

from nasagent.evaluator.errors import ArchitectureError
from nasagent.evaluator.spaces.base import Cost
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.ops import OPS, Family

logger = logging.getLogger(__name__)

RGB_CHANNELS = 3


class Counting(StrEnum):
    """Which counting convention `count_cost` uses."""

    EXACT = "exact"
    ZENNAS = "zennas"


class CostError(ArchitectureError):
    """An architecture the cost model cannot cost (unknown op, stride below 1, missing field)."""


def smart_round(x: float, base: int | None = None) -> int:
    """Zen-NAS `global_utils.smart_round` (zennas-semantics 5.1).

    Rounds `x` to a multiple of `base` (by default 32 above 256, 16 above 128, else 8), at
    least `base`. Python's `round` sends exact halves to the even multiple: 20 -> 16, 28 -> 32.
    """
    if base is None:
        base = 32 if x > 256 else 16 if x > 128 else 8
    return max(base, round(x / base) * base)


class _Tally(NamedTuple):
    params: int | float
    flops: int | float

    def plus(self, other: _Tally) -> _Tally:
        return _Tally(self.params + other.params, self.flops + other.flops)

    def times(self, count: int) -> _Tally:
        return _Tally(self.params * count, self.flops * count)


_ZERO = _Tally(0, 0)


@dataclass(frozen=True)
class _Conv:
    """One conv of a block body; every body conv is followed by a BN over its outputs."""

    cin: int
    cout: int
    kernel: int
    stride: int = 1
    depthwise: bool = False


class _Shortcut(Enum):
    NONE = "none"  # SuperConv layers, or any unit of the no_reslink model
    PROJ = "proj"  # ResBlockProj: always a 1x1 projection, even when in == out and stride 1
    AUTO = "auto"  # ResBlock: a projection only when stride > 1 or in != out


@dataclass(frozen=True)
class _Unit:
    convs: tuple[_Conv, ...]
    shortcut: _Shortcut


class _Rules(Protocol):
    """The primitive formulas of one counting convention."""

    def out_res(self, res: int, stride: int) -> int: ...

    def conv(self, conv: _Conv, res: int) -> _Tally: ...

    def bn(self, channels: int, res: int) -> _Tally: ...

    def projection(self, cin: int, cout: int, res_out: int, stride: int) -> _Tally: ...

    def fc(self, cin: int, num_classes: int) -> _Tally: ...


class _ZenNasRules:
    """Zen-NAS basic_blocks formulas (zennas-semantics section 2), quirks included."""

    def out_res(self, res: int, stride: int) -> int:
        return res // stride

    def conv(self, conv: _Conv, res: int) -> _Tally:
        # ConvDW(C,k,s) counts C*k^2; ConvKX floors in*out*k^2*R^2 // s^2 as one integer.
        weights = conv.cout * conv.kernel**2 * (1 if conv.depthwise else conv.cin)
        return _Tally(weights, weights * res**2 // conv.stride**2)

    def bn(self, channels: int, res: int) -> _Tally:
        return _Tally(channels, channels * res**2)

    def projection(self, cin: int, cout: int, res_out: int, stride: int) -> _Tally:
        # The reference divides the already-strided output resolution by the stride again.
        positions = (res_out / stride) ** 2
        return _Tally(cin * cout + cout, cin * cout * positions + positions * cout)

    def fc(self, cin: int, num_classes: int) -> _Tally:
        return _Tally(cin * num_classes + 1, cin * num_classes)


class _ExactRules:
    """What PyTorch holds and computes (zennas-semantics section 10)."""

    def out_res(self, res: int, stride: int) -> int:
        return -(-res // stride)

    def conv(self, conv: _Conv, res: int) -> _Tally:
        weights = conv.cout * conv.kernel**2 * (1 if conv.depthwise else conv.cin)
        return _Tally(weights, weights * self.out_res(res, conv.stride) ** 2)

    def bn(self, channels: int, res: int) -> _Tally:
        return _Tally(2 * channels, channels * res**2)

    def projection(self, cin: int, cout: int, res_out: int, stride: int) -> _Tally:  # noqa: ARG002
        # conv weight + bias, then BN weight + bias; FLOPs of the 1x1 conv and the BN.
        return _Tally(cin * cout + 3 * cout, (cin * cout + cout) * res_out**2)

    def fc(self, cin: int, num_classes: int) -> _Tally:
        return _Tally(cin * num_classes + num_classes, cin * num_classes)


class _ActivationRules(_ExactRules):
    """Activation elements per image instead of costs: the `flops` slot counts the outputs
    each layer keeps for backward (a conv's, a BN's and, after a ReLU, its own), the `params`
    slot nothing; resolutions shrink as PyTorch's do."""

    def conv(self, conv: _Conv, res: int) -> _Tally:
        return _Tally(0, conv.cout * self.out_res(res, conv.stride) ** 2)

    def bn(self, channels: int, res: int) -> _Tally:
        return _Tally(0, 2 * channels * res**2)  # the BN's output and the ReLU's after it

    def projection(self, cin: int, cout: int, res_out: int, stride: int) -> _Tally:  # noqa: ARG002
        return _Tally(0, 3 * cout * res_out**2)  # conv, BN and the addition

    def fc(self, cin: int, num_classes: int) -> _Tally:
        return _Tally(0, cin + num_classes)


_RULES: dict[Counting, _Rules] = {Counting.ZENNAS: _ZenNasRules(), Counting.EXACT: _ExactRules()}


def downsample(resolution: int, stride: int, counting: Counting | str = Counting.EXACT) -> int:
    """The side of the feature map after a conv of `stride` on a `resolution`-pixel input.

    EXACT: ceil(R / s), as a padded PyTorch conv gives (7 -> 4); ZENNAS: R // s (7 -> 3).
    """
    return _RULES[Counting(counting)].out_res(resolution, stride)


def _sub_layer_units(block: Block, cin: int, stride: int, first: bool) -> list[_Unit]:
    """The residual units of one sub-layer (zennas-semantics section 3)."""
    spec = block.spec
    k, out = spec.kernel, block.out_channels
    if spec.family is Family.CONV:
        return [_Unit((_Conv(cin, out, k, stride),), _Shortcut.NONE)]
    b = _bottleneck(block)
    lead = _Shortcut.PROJ if first else _Shortcut.AUTO
    if spec.family is Family.KXKX:
        return [_Unit((_Conv(cin, b, k, stride), _Conv(b, out, k)), lead)]
    if spec.family is Family.K1KXK1:
        return [
            _Unit((_Conv(cin, b, 1), _Conv(b, b, k, stride), _Conv(b, out, 1)), lead),
            _Unit((_Conv(out, b, 1), _Conv(b, b, k), _Conv(b, out, 1)), _Shortcut.AUTO),
        ]
    # IDW: unit A ends with `b` channels, so the ResBlocks project whenever b != out.
    d1 = smart_round(b * spec.expansion, base=8)
    d2 = smart_round(out * spec.expansion, base=8)
    return [
        _Unit((_Conv(cin, d1, 1), _Conv(d1, d1, k, stride, True), _Conv(d1, b, 1)), lead),
        _Unit((_Conv(b, d2, 1), _Conv(d2, d2, k, 1, True), _Conv(d2, out, 1)), _Shortcut.AUTO),
    ]


def _bottleneck(block: Block) -> int:
    if block.bottleneck_channels is None:
        raise CostError(f"{block.op} needs bottleneck_channels")
    return block.bottleneck_channels


def _unit_cost(rules: _Rules, unit: _Unit, res: int, residual: bool) -> tuple[_Tally, int]:
    """Cost of one unit's convs, BNs and shortcut; returns the tally and the output resolution."""
    tally = _ZERO
    for conv in unit.convs:
        res_out = rules.out_res(res, conv.stride)
        tally = tally.plus(rules.conv(conv, res)).plus(rules.bn(conv.cout, res_out))
        res = res_out
    cin, cout = unit.convs[0].cin, unit.convs[-1].cout
    stride = max(conv.stride for conv in unit.convs)
    needs_projection = unit.shortcut is _Shortcut.PROJ or (
        unit.shortcut is _Shortcut.AUTO and (stride > 1 or cin != cout)
    )
    if residual and needs_projection:
        tally = tally.plus(rules.projection(cin, cout, res, stride))
    return tally, res


def _sub_layer_cost(
    rules: _Rules, units: list[_Unit], res: int, residual: bool
) -> tuple[_Tally, int]:
    tally = _ZERO
    for unit in units:
        unit_tally, res = _unit_cost(rules, unit, res, residual)
        tally = tally.plus(unit_tally)
    return tally, res


def _block_cost(rules: _Rules, block: Block, res: int, residual: bool) -> tuple[_Tally, int]:
    """Closed form: the first sub-layer, plus (sub_layers - 1) identical later sub-layers."""
    _check_costable(block)
    if block.sub_layers == 0:
        return _ZERO, res  # Zen-NAS parses it as an empty block: nothing to count
    first_units = _sub_layer_units(block, block.in_channels, block.stride, first=True)
    first, res = _sub_layer_cost(rules, first_units, res, residual)
    if block.sub_layers == 1:
        return first, res
    later_units = _sub_layer_units(block, block.out_channels, 1, first=False)
    later, res = _sub_layer_cost(rules, later_units, res, residual)
    return first.plus(later.times(block.sub_layers - 1)), res


def _check_costable(block: Block) -> None:
    if block.op not in OPS:
        raise CostError(f"unknown op {block.op!r}; valid: {', '.join(OPS)}")
    if block.stride < 1:
        raise CostError(f"{block.op}: stride {block.stride} must be at least 1")


def block_costs(
    arch: Architecture,
    *,
    resolution: int = 32,
    counting: Counting | str = Counting.EXACT,
    residual: bool = True,
) -> list[Cost]:
    """Per-block costs (without the fc head), in block order; `layers` is the block's sub_layers.

    Raises:
        CostError: a block the model cannot cost (unknown op, stride below 1, no bottleneck).
    """
    rules = _RULES[Counting(counting)]
    costs: list[Cost] = []
    res = resolution
    for block in arch.blocks:
        tally, res = _block_cost(rules, block, res, residual)
        costs.append(_finish(tally, block.sub_layers, Counting(counting)))
    return costs


def count_cost(
    arch: Architecture,
    *,
    num_classes: int = 100,
    resolution: int = 32,
    counting: Counting | str = Counting.EXACT,
    residual: bool = True,
) -> Cost:
    """Parameters, FLOPs per image and layers of `arch` with a `num_classes` linear head.

    Args:
        arch: the architecture; channels are taken as declared (no chaining is assumed).
        num_classes: outputs of the fc head.
        resolution: input height and width.
        counting: `exact` (PyTorch's counts) or `zennas` (Zen-NAS's, bit for bit).
        residual: False costs the no_reslink model (no projections), which the Zen-NAS
            `Params` and `Flops` proxies score.

    Raises:
        CostError: a block the model cannot cost (unknown op, stride below 1, no bottleneck).
    """
    counting = Counting(counting)
    rules = _RULES[counting]
    # Zen-NAS starts its sums at 0.0, hence float totals under that convention.
    tally = _Tally(0.0, 0.0) if counting is Counting.ZENNAS else _ZERO
    res = resolution
    for block in arch.blocks:
        block_tally, res = _block_cost(rules, block, res, residual)
        tally = tally.plus(block_tally)
    tally = tally.plus(rules.fc(arch.out_channels, num_classes))
    return _finish(tally, arch.num_layers, counting)


def _finish(tally: _Tally, layers: int, counting: Counting) -> Cost:
    if counting is Counting.ZENNAS:
        return Cost(float(tally.params), float(tally.flops), layers)
    return Cost(int(tally.params), int(tally.flops), layers)


def output_resolutions(arch: Architecture, resolution: int) -> list[int]:
    """The output resolution of every block, shrinking as Zen-NAS does: `R // stride`.

    A block with sub_layers 0 is empty and keeps the resolution; each block has one strided
    conv, so one division per block. Strides below 1 raise `CostError`.
    """
    resolutions: list[int] = []
    for block in arch.blocks:
        _check_costable(block)
        if block.sub_layers > 0:
            resolution //= block.stride
        resolutions.append(resolution)
    return resolutions


def activation_elements(arch: Architecture, *, resolution: int = 32, num_classes: int = 100,
                        residual: bool = True) -> int:
    """Activation elements one image keeps for backward in the network of `arch`: every conv,
    BatchNorm and ReLU output (and every shortcut's), plus the input; closed form per block
    like `count_cost`, so a 600-sub-layer block costs a few operations.

    Raises:
        CostError: a block the model cannot cost.
    """
    rules = _ActivationRules()
    total = _Tally(0, RGB_CHANNELS * resolution**2)
    res = resolution
    for block in arch.blocks:
        block_tally, res = _block_cost(rules, block, res, residual)
        total = total.plus(block_tally)
    return int(total.plus(rules.fc(arch.out_channels, num_classes)).flops)
