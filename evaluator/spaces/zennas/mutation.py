"""The Zen-NAS random mutation operator (zennas-semantics section 5).

`RandomMutator.mutate` reproduces `get_new_random_structure_str` of Zen-NAS: pick a block
uniformly, replace it by a random candidate from `gen_search_space`, re-chain the input channels
and split long blocks. Each mutator owns a seeded `random.Random`, never the global one, and its
state can be saved as JSON so a search can checkpoint and resume the stream.

Candidate distribution. Zen-NAS flattens its candidate lists and calls `random.choice`; a
list-aliasing bug makes each Res type appear several times (section 5.4). Every type contributes
the same product out_channels x sub_layers x bottleneck_channels, because those three lists depend
only on the old block, never on the new type. Drawing a type with probability proportional to
its multiplicity and then each of (out, sub_layers, bottleneck) uniformly therefore gives exactly
the reference distribution; `block_candidates` enumerates that flattened multiset for checking.

Deliberate difference: the IDW space of Zen-NAS clamps new channel counts only from below (at 8),
so it can propose more than 2048 channels, which our validator refuses. We clamp to [8, 2048] in
every space; `channel_candidates(c, min_only=True)` still gives the reference's IDW list.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import product
from typing import TYPE_CHECKING

from nasagent.evaluator.errors import NasAgentError, UnknownNameError
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block, split_long_blocks
from nasagent.evaluator.spaces.zennas.cost import smart_round
from nasagent.evaluator.spaces.zennas.ops import Family

if TYPE_CHECKING:
    from nasagent.evaluator.spaces.zennas.space import ZenNasSpace as SearchSpace

logger = logging.getLogger(__name__)

MIN_CHANNELS = 8
MAX_CHANNELS = 2048
CHANNEL_BASE = 8

# (numerator, denominator) pairs: the reference writes c * 2.5 ... c / 2.5, and c / 1.5 differs
# from c * (1 / 1.5) in the last bit, which can flip a round-half-to-even decision.
CHANNEL_SCALES: tuple[tuple[float, float], ...] = (
    (2.5, 1), (2, 1), (1.5, 1), (1.25, 1), (1, 1), (1, 1.25), (1, 1.5), (1, 2), (1, 2.5),
)
SUB_LAYER_DELTAS: tuple[int, ...] = (0, 1, 2, -1, -2)

_RNG_STATE_LENGTH = 625
"""Length of the Mersenne Twister internal state tuple of `random.Random.getstate()`."""

RngState = list[object]
"""`random.Random.getstate()` in JSON-friendly list form: [version, [625 ints], gauss_next]."""


class TypeWeights(StrEnum):
    """How likely each Res block type is when a Res block is mutated.

    ZENNAS reproduces the reference's list-aliasing skew (section 5.4); UNIFORM makes every type
    in the search space's mutation families equally likely.
    """

    ZENNAS = "zennas"
    UNIFORM = "uniform"


class MutationError(NasAgentError, ValueError):
    """A mutation request that cannot be carried out (bad index, count or RNG state)."""


def channel_candidates(c: int, *, min_only: bool = False) -> list[int]:
    """New channel counts for a block with `c` channels (section 5.2), largest first.

    Args:
        c: the current channel count.
        min_only: clamp only from below, as the reference IDW space does; the mutator itself
            always clamps to [8, 2048] (see the module docstring).
    """
    upper = math.inf if min_only else MAX_CHANNELS
    scaled = (c * numerator / denominator for numerator, denominator in CHANNEL_SCALES)
    rounded = (smart_round(min(upper, max(MIN_CHANNELS, x)), CHANNEL_BASE) for x in scaled)
    return list(dict.fromkeys(rounded))


def sub_layer_candidates(n: int) -> list[int]:
    """New sub-layer counts for a block with `n` sub-layers: n, n+-1, n+-2, at least 1, largest
    first (the reference clips at 0 and then rejects empty blocks)."""
    return sorted({n + delta for delta in SUB_LAYER_DELTAS if n + delta >= 1}, reverse=True)


def _aliased_multiplicity(position: int, family_size: int) -> int:
    """How often the type at `position` of its family appears in the reference's flattened list.

    The reference appends the accumulating list after each type and keeps appending to it, so
    the first two types appear n times and the type at 0-based position p >= 1 n - p + 1 times.
    """
    return family_size if position == 0 else family_size - position + 1


def res_type_weights(space: SearchSpace, weights: TypeWeights | str) -> dict[str, int]:
    """Integer weight of each Res type a mutated Res block can become, in family order.

    XXBL with ZENNAS: K1K3K1, K1K5K1, K3K3, K5K5 3 each, K1K7K1, K7K7 2 each (of 16).
    """
    mode = _type_weights_mode(weights)
    result: dict[str, int] = {}
    for family in space.mutation_families:
        for position, op in enumerate(family):
            aliased = _aliased_multiplicity(position, len(family))
            result[op] = result.get(op, 0) + (1 if mode is TypeWeights.UNIFORM else aliased)
    return result


def _type_weights_mode(weights: TypeWeights | str) -> TypeWeights:
    try:
        return TypeWeights(weights)
    except ValueError:
        valid = [w.value for w in TypeWeights]
        raise UnknownNameError("type weights", str(weights), valid) from None


@dataclass(frozen=True)
class _Choices:
    """The independent per-field choices for replacing one block."""

    out_channels: list[int]
    sub_layers: list[int]
    bottleneck_channels: list[int]


def _conv_channel_choices(block: Block, space: SearchSpace) -> list[int]:
    # IDW_fixfc keeps the width of a 1x1 conv: it is the pre-pooling "fc" layer.
    if space.freeze_head_conv and block.spec.kernel == 1:
        return [block.out_channels]
    return channel_candidates(block.out_channels)


def _res_choices(block: Block) -> _Choices:
    if block.bottleneck_channels is None:
        raise MutationError(f"Res block {block} has no bottleneck_channels")
    return _Choices(
        channel_candidates(block.out_channels),
        sub_layer_candidates(block.sub_layers),
        channel_candidates(block.bottleneck_channels),
    )


def _conv_candidate(block: Block, out_channels: int) -> Block:
    return Block(
        op=block.op, in_channels=block.in_channels, out_channels=out_channels,
        stride=block.stride, sub_layers=1,
    )


def _res_candidate(block: Block, op: str, out: int, sub_layers: int, bottleneck: int) -> Block:
    return Block(
        op=op, in_channels=block.in_channels, out_channels=out, stride=block.stride,
        bottleneck_channels=bottleneck, sub_layers=sub_layers,
    )


def _block_at(arch: Architecture, index: int) -> Block:
    if not 0 <= index < len(arch):
        raise MutationError(f"block index {index} is outside 0..{len(arch) - 1}")
    return arch.blocks[index]


def block_candidates(
    arch: Architecture, index: int, space: SearchSpace, weights: TypeWeights | str
) -> list[Block]:
    """The reference's flattened candidate list for replacing block `index` (sections 5.3-5.4).

    A SuperConv block keeps its type, `in_channels` and stride, gets sub_layers 1 and a new
    width (none in a frozen IDW head conv). A Res block may become any type of the space's
    mutation families over out_channels x sub_layers x bottleneck_channels, keeping
    `in_channels` and stride. With ZENNAS weights each Res candidate appears as often as the
    reference's aliasing bug repeats it, so `random.choice` on this list draws exactly as
    Zen-NAS does; the order differs (the reference's depends on set iteration).

    Raises:
        MutationError: `index` is out of range or a Res block lacks a bottleneck.
        UnknownNameError: `weights` is not a `TypeWeights` value.
    """
    block = _block_at(arch, index)
    if block.family is Family.CONV:
        return [_conv_candidate(block, c) for c in _conv_channel_choices(block, space)]
    choices = _res_choices(block)
    grid = list(product(choices.out_channels, choices.sub_layers, choices.bottleneck_channels))
    return [
        _res_candidate(block, op, out, sub_layers, bottleneck)
        for op, weight in res_type_weights(space, weights).items()
        for _ in range(weight)
        for out, sub_layers, bottleneck in grid
    ]


def rechain(blocks: Sequence[Block]) -> list[Block]:
    """Set every block's `in_channels` to the previous block's `out_channels`; block 0 keeps its
    own (3 for an image network)."""
    chained = list(blocks[:1])
    for block in blocks[1:]:
        previous_out = chained[-1].out_channels
        if block.in_channels != previous_out:
            block = block.replace(in_channels=previous_out)
        chained.append(block)
    return chained


class RandomMutator:
    """Zen-NAS random mutation with its own seeded RNG (zennas-semantics section 5.5).

    Args:
        search_space: a Zen-NAS space or the name of one (see `SEARCH_SPACES`).
        seed: seed of this mutator's `random.Random`.
        type_weights: ZENNAS (the reference's skewed type weights) or UNIFORM.

    Raises:
        UnknownNameError: an unknown search space or type-weights name.
        MutationError: a search space that is not a Zen-NAS space.
    """

    def __init__(
        self,
        search_space: str | SearchSpace = "zennas-cifar",
        *,
        seed: int = 0,
        type_weights: TypeWeights | str = TypeWeights.ZENNAS,
    ) -> None:
        self.space = _zennas_space(search_space)
        self.seed = seed
        self.type_weights = _type_weights_mode(type_weights)
        self._weights = res_type_weights(self.space, self.type_weights)
        self._rng = random.Random(seed)

    def mutate(self, arch: Architecture, num_replaces: int = 1) -> Architecture:
        """Return a random mutation of `arch`.

        Picks a block uniformly `num_replaces` times; an index drawn again is skipped (as in
        Zen-NAS, so 2 replaces can change a single block). Each picked block is replaced by a
        random candidate (see `block_candidates`); then every block's `in_channels` is re-chained
        from its predecessor and `split_long_blocks` is applied once. The Zen-NAS loop uses
        1 replace while its population has <= 10 members and 2 afterwards. Blocks not picked
        are kept, so an op outside the search space in the input stays there. Budgets are not
        checked here.

        Raises:
            MutationError: `num_replaces` is negative.
        """
        if num_replaces < 0:
            raise MutationError(f"num_replaces must be >= 0, got {num_replaces}")
        blocks = list(arch.blocks)
        picked: set[int] = set()
        for _ in range(num_replaces):
            index = self._rng.randrange(len(blocks))
            if index in picked:
                continue
            picked.add(index)
            blocks[index] = self._draw(blocks[index])
        logger.debug("replaced blocks %s", sorted(picked))
        return split_long_blocks(Architecture(blocks=tuple(rechain(blocks))))

    def _draw(self, block: Block) -> Block:
        """One draw from the distribution of `random.choice(block_candidates(...))`."""
        rng = self._rng
        if block.family is Family.CONV:
            return _conv_candidate(block, rng.choice(_conv_channel_choices(block, self.space)))
        choices = _res_choices(block)
        op = rng.choices(list(self._weights), weights=list(self._weights.values()))[0]
        return _res_candidate(
            block, op, rng.choice(choices.out_channels), rng.choice(choices.sub_layers),
            rng.choice(choices.bottleneck_channels),
        )

    def state(self) -> RngState:
        """The RNG state as a JSON-serialisable list, for `set_state` after a restart."""
        version, internal, gauss_next = self._rng.getstate()
        return [version, list(internal), gauss_next]

    def set_state(self, state: Sequence[object]) -> None:
        """Restore an RNG state returned by `state` (possibly after a JSON round trip).

        Raises:
            MutationError: `state` does not have the shape `state()` returns.
        """
        checked = _state_tuple(state)
        try:
            self._rng.setstate(checked)
        except (ValueError, TypeError, OverflowError) as err:
            raise MutationError(f"invalid RNG state: {err}") from None


def _state_tuple(state: Sequence[object]) -> tuple[int, tuple[int, ...], float | None]:
    if len(state) != 3:
        raise MutationError(f"RNG state must have 3 items, got {len(state)}")
    version, internal, gauss_next = state
    if not isinstance(version, int) or not isinstance(internal, Sequence):
        raise MutationError("RNG state must be [version, [ints], gauss_next]")
    if len(internal) != _RNG_STATE_LENGTH or not all(isinstance(x, int) for x in internal):
        raise MutationError(f"RNG internal state must be {_RNG_STATE_LENGTH} integers")
    if gauss_next is not None and not isinstance(gauss_next, int | float):
        raise MutationError("RNG gauss_next must be a number or null")
    return version, tuple(internal), None if gauss_next is None else float(gauss_next)


def _zennas_space(space: str | SearchSpace) -> SearchSpace:
    from nasagent.evaluator.spaces import get_space  # the registry imports this package
    from nasagent.evaluator.spaces.zennas.space import ZenNasSpace

    found = get_space(space) if isinstance(space, str) else space
    if not isinstance(found, ZenNasSpace):
        raise MutationError(f"the Zen-NAS random mutation needs a Zen-NAS search space, not "
                            f"{found.name}")
    return found
