"""The Zen-NAS super blocks: one registry of op specs.

The same registry feeds the block-string codec, the validator, the cost model, the torch
builder, the random mutation operator and the LLM prompt, so none of them can disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nasagent.evaluator.errors import UnknownNameError


class Family(StrEnum):
    """How a super block expands into layers (zennas-semantics section 3)."""

    CONV = "conv"
    KXKX = "kxkx"
    K1KXK1 = "k1kxk1"
    IDW = "idw"


CONV_FIELDS = ("in_channels", "out_channels", "stride", "sub_layers")
RES_FIELDS = ("in_channels", "out_channels", "stride", "bottleneck_channels", "sub_layers")


@dataclass(frozen=True)
class OpSpec:
    """One registered super block: its name, parameter schema and what it builds."""

    name: str
    family: Family
    kernel: int
    expansion: int = 1
    description: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        return CONV_FIELDS if self.family is Family.CONV else RES_FIELDS

    @property
    def has_bottleneck(self) -> bool:
        return self.family is not Family.CONV

    @property
    def short_name(self) -> str:
        """The name without the `Super` prefix, as the RZ-NAS prompt wrote it."""
        return self.name.removeprefix("Super")

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(self.fields)})"


_CONV_ROLES = {
    1: " Zen-NAS uses it as the wide 1x1 head conv before global pooling.",
    3: " Zen-NAS uses it as the stem (the first block, in_channels 3).",
}


def _conv(k: int) -> OpSpec:
    return OpSpec(
        f"SuperConvK{k}BNRELU", Family.CONV, k,
        description=(
            f"A plain stack of sub_layers x ({k}x{k} conv -> BatchNorm -> ReLU) with no residual "
            f"link. The first conv maps in_channels to out_channels with the given stride; later "
            f"ones keep out_channels at stride 1.{_CONV_ROLES.get(k, '')}"
        ),
    )


def _kxkx(k: int) -> OpSpec:
    return OpSpec(
        f"SuperResK{k}K{k}", Family.KXKX, k,
        description=(
            f"A ResNet basic block: each sub-layer is one residual unit of two {k}x{k} convs "
            f"(in -> bottleneck_channels -> out_channels), each followed by BatchNorm, with ReLU "
            f"between them and after the addition. bottleneck_channels is the width between the "
            f"two {k}x{k} convs. The stride sits on the first conv of the first sub-layer, whose "
            f"shortcut is a 1x1 projection; later sub-layers use identity shortcuts."
        ),
    )


def _k1kxk1(k: int) -> OpSpec:
    return OpSpec(
        f"SuperResK1K{k}K1", Family.K1KXK1, k,
        description=(
            f"A ResNet bottleneck block: each sub-layer holds two residual units of "
            f"1x1 conv (to bottleneck_channels) -> {k}x{k} conv -> 1x1 conv (to "
            f"out_channels), each conv followed by BatchNorm, ReLU inside and after the "
            f"addition. That is 6 convs per sub-layer. The stride sits on the {k}x{k} conv of "
            f"the first unit, whose shortcut is a 1x1 projection; the other units use identity "
            f"shortcuts."
        ),
    )


def _idw(e: int, k: int) -> OpSpec:
    return OpSpec(
        f"SuperResIDWE{e}K{k}", Family.IDW, k, expansion=e,
        description=(
            f"A MobileNetV2-style inverted residual block with expansion {e} and a {k}x{k} "
            f"depthwise conv: each sub-layer holds two units of 1x1 expand conv -> {k}x{k} "
            f"depthwise conv -> 1x1 project conv, each followed by BatchNorm and ReLU except the "
            f"projection. The first unit projects to bottleneck_channels and the second to "
            f"out_channels (keep them equal to avoid extra projection shortcuts). The stride "
            f"sits on the depthwise conv of the first unit."
        ),
    )


def _build_registry() -> dict[str, OpSpec]:
    specs = [_conv(k) for k in (1, 3, 5, 7)]
    specs += [_kxkx(k) for k in (3, 5, 7)]
    specs += [_k1kxk1(k) for k in (3, 5, 7)]
    specs += [_idw(e, k) for k in (3, 5, 7) for e in (1, 2, 4, 6)]
    return {spec.name: spec for spec in specs}


OPS: dict[str, OpSpec] = _build_registry()
"""All 22 super blocks, in Zen-NAS registration order within each family."""

SHORT_NAMES: dict[str, str] = {spec.short_name: spec.name for spec in OPS.values()}


def get_op(name: str) -> OpSpec:
    """Return the registered op called `name` or raise an error listing the valid names."""
    try:
        return OPS[name]
    except KeyError:
        raise UnknownNameError("op", name, OPS) from None


CIFAR_SEED = (
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
    "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)"
)
"""The search seed of every Zen-NAS CIFAR script (zennas-semantics section 11)."""

IMAGENET_SEED = (
    "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
    "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)"
)
"""The seed of the Zen-NAS ImageNet FLOPs-budget scripts (IDW space)."""


CONV_OPS = tuple(f"SuperConvK{k}BNRELU" for k in (1, 3, 5, 7))
K1KXK1_OPS = tuple(f"SuperResK1K{k}K1" for k in (3, 5, 7))
KXKX_OPS = tuple(f"SuperResK{k}K{k}" for k in (3, 5, 7))
IDW_OPS = tuple(f"SuperResIDWE{e}K{k}" for k in (3, 5, 7) for e in (1, 2, 4, 6))
