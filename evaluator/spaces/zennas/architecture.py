"""The decoded form of a block string: an immutable list of super blocks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from nasagent.evaluator.spaces.zennas.ops import OPS, Family, OpSpec


class Block(BaseModel):
    """One super block. `bottleneck_channels` is None exactly for SuperConv blocks.

    Only the shape of the data is checked here; the constraints (multiples of 8, chaining,
    search space, budgets) are checked by `evaluator.validation`, which reports all of them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: str
    in_channels: int = Field(ge=0)
    out_channels: int = Field(ge=0)
    stride: int = Field(ge=0)
    bottleneck_channels: int | None = Field(default=None, ge=0)
    sub_layers: int = Field(ge=0)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    @property
    def family(self) -> Family:
        return self.spec.family

    def args(self) -> tuple[int, ...]:
        """The arguments in the order the block string writes them."""
        if self.bottleneck_channels is None:
            return (self.in_channels, self.out_channels, self.stride, self.sub_layers)
        return (
            self.in_channels, self.out_channels, self.stride,
            self.bottleneck_channels, self.sub_layers,
        )

    def __str__(self) -> str:
        return f"{self.op}({','.join(str(a) for a in self.args())})"

    def replace(self, **changes: int | str | None) -> Block:
        """Return a copy with some fields changed (validated again)."""
        return Block.model_validate({**self.model_dump(), **changes})


class Architecture(BaseModel):
    """A network: super blocks back to back, then global average pooling and a linear head."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blocks: tuple[Block, ...] = Field(min_length=1)

    def __str__(self) -> str:
        """The canonical Zen-NAS block string."""
        return "".join(str(block) for block in self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    @property
    def num_layers(self) -> int:
        """Zen-NAS `get_num_layers`: the sum of sub_layers over the blocks."""
        return sum(block.sub_layers for block in self.blocks)

    @property
    def out_channels(self) -> int:
        return self.blocks[-1].out_channels


SPLIT_THRESHOLD = 6
"""Zen-NAS `split(6)`: a Res block with at least this many sub-layers becomes 3 + rest."""


def split_long_blocks(architecture: Architecture, threshold: int = SPLIT_THRESHOLD) -> Architecture:
    """Apply the Zen-NAS split rule once to every Res block (zennas-semantics section 3.6).

    A Res block `Name(in,out,s,b,L)` with L >= threshold becomes `Name(in,out,s,b,threshold//2)`
    followed by `Name(out,out,1,b,L - threshold//2)`. SuperConv blocks are never split.
    """
    blocks: list[Block] = []
    for block in architecture.blocks:
        if block.family is Family.CONV or block.sub_layers < threshold:
            blocks.append(block)
            continue
        head = threshold // 2
        blocks.append(block.replace(sub_layers=head))
        blocks.append(block.replace(
            in_channels=block.out_channels, stride=1, sub_layers=block.sub_layers - head
        ))
    return Architecture(blocks=tuple(blocks))
