"""The Zen-NAS rules: every per-block constraint, the resolution rule and the structures.

Each violation names the block, the field and one sentence a model can act on; the repair
prompt is built from these sentences. Costs come from the analytic model in `cost`, so even a
2048-channel, 600-sub-layer answer is refused in microseconds without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nasagent.evaluator.spaces.base import Cost
from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
from nasagent.evaluator.spaces.zennas.cost import RGB_CHANNELS, count_cost, downsample
from nasagent.evaluator.spaces.zennas.cost_facts import max_stride2_blocks
from nasagent.evaluator.spaces.zennas.ops import OPS, Family
from nasagent.evaluator.validation import Constraints, Violation, ViolationKind

CHANNEL_MULTIPLE = 8
MAX_CHANNELS = 2048
VALID_STRIDES = (1, 2)
HEAD_OP = "SuperConvK1BNRELU"


def structural_violations(
    arch: Architecture, constraints: Constraints, ops: tuple[str, ...], space: str
) -> list[Violation]:
    """Every violation of the per-block rules, the resolution rule and the structure in force,
    in block order; `ops` are the space's blocks."""
    errors: list[Violation] = []
    for index, block in enumerate(arch.blocks):
        errors += _op_rule(index, block, ops, space)
        for rule in _BLOCK_RULES:
            errors += rule(index, block, arch)
    errors += _resolution_violations(arch, constraints.resolution, constraints.counting)
    for structure_rule in structure_rules(constraints):
        errors += structure_rule.check(arch, constraints)
    return errors


def _at(index: int, block: Block, field: str, kind: ViolationKind, text: str) -> Violation:
    """A violation whose message starts with the block index and op, as the model reads it."""
    message = f"block {index} {block.op}: {text}"
    return Violation(block=index, field=field, kind=kind, message=message)


def _op_rule(index: int, block: Block, ops: tuple[str, ...], space: str) -> list[Violation]:
    if block.op in ops:
        return []
    where = "registered" if block.op not in OPS else f"in search space {space}"
    text = f"{block.op} is not {where}; use one of {', '.join(ops)}"
    return [_at(index, block, "op", ViolationKind.OP, text)]


def _channel_rule(index: int, block: Block, _arch: Architecture) -> list[Violation]:
    errors = [_channel_violation(index, block, "out_channels", block.out_channels)]
    errors += _bottleneck_violations(index, block)
    return [error for error in errors if error is not None]


def _bottleneck_violations(index: int, block: Block) -> list[Violation | None]:
    spec = OPS.get(block.op)
    if spec is None:
        return []  # the op rule reports the unknown name
    value = block.bottleneck_channels
    if value is not None and spec.has_bottleneck:
        return [_channel_violation(index, block, "bottleneck_channels", value)]
    if value is None and not spec.has_bottleneck:
        return []
    problem = "is missing" if value is None else "is not taken by this op"
    text = f"bottleneck_channels {problem}; write {spec.signature}"
    return [_at(index, block, "bottleneck_channels", ViolationKind.CHANNELS, text)]


def _channel_violation(index: int, block: Block, field: str, value: int) -> Violation | None:
    step = CHANNEL_MULTIPLE
    if value < step:
        text = f"{field} {value} must be positive and a multiple of {step}; use {step}"
    elif value > MAX_CHANNELS:
        text = f"{field} {value} exceeds the maximum of {MAX_CHANNELS}; use {MAX_CHANNELS} or less"
    elif value % step:
        lower = value - value % step
        text = f"{field} {value} is not a multiple of {step}; use {lower} or {lower + step}"
    else:
        return None
    return _at(index, block, field, ViolationKind.CHANNELS, text)


def _chain_rule(index: int, block: Block, arch: Architecture) -> list[Violation]:
    if index == 0:
        expected, source = RGB_CHANNELS, "the RGB input's channels"
    else:
        expected = arch.blocks[index - 1].out_channels
        source = f"block {index - 1}'s out_channels"
    if block.in_channels == expected:
        return []
    text = f"in_channels {block.in_channels} must equal {source} {expected}"
    return [_at(index, block, "in_channels", ViolationKind.CHAIN, text)]


def _stride_rule(index: int, block: Block, _arch: Architecture) -> list[Violation]:
    if block.stride in VALID_STRIDES:
        return []
    text = f"stride {block.stride} must be 1 or 2"
    return [_at(index, block, "stride", ViolationKind.STRIDE, text)]


def _sub_layer_rule(index: int, block: Block, _arch: Architecture) -> list[Violation]:
    if block.sub_layers >= 1:
        return []
    text = f"sub_layers {block.sub_layers} must be at least 1"
    return [_at(index, block, "sub_layers", ViolationKind.SUB_LAYERS, text)]


_BlockRule = Callable[[int, Block, Architecture], list[Violation]]
_BLOCK_RULES: tuple[_BlockRule, ...] = (_channel_rule, _chain_rule, _stride_rule, _sub_layer_rule)


def _resolution_violations(
    arch: Architecture, resolution: int, counting: str
) -> list[Violation]:
    """The first stride-2 block whose input is already 1 pixel, the resolution shrinking as the
    counting convention says (exact: ceil(R/2), 7 -> 4; zennas: R // 2, 7 -> 3).

    Blocks with an invalid stride or no sub-layers are skipped: their own rules report them.
    """
    res = resolution
    for index, block in enumerate(arch.blocks):
        if block.stride < 1 or block.sub_layers < 1:
            continue
        if block.stride > 1 and res // block.stride < 1:
            limit = max_stride2_blocks(resolution, counting)
            text = (
                f"stride {block.stride} cannot halve the {res}x{res} feature map (input "
                f"resolution {resolution} allows at most {limit} stride-2 blocks under "
                f"{counting} counting); use stride 1"
            )
            return [_at(index, block, "stride", ViolationKind.RESOLUTION, text)]
        res = downsample(res, block.stride, counting)
    return []


def cost_if_defined(arch: Architecture, constraints: Constraints) -> Cost | None:
    """The cost under the constraints' counting, or None where the structure has no cost."""
    costable = all(
        block.op in OPS
        and block.stride >= 1
        and (block.bottleneck_channels is not None) == OPS[block.op].has_bottleneck
        for block in arch.blocks
    )
    if not costable:
        return None
    return count_cost(
        arch, num_classes=constraints.num_classes, resolution=constraints.resolution,
        counting=constraints.counting,
    )


# ---- structural constraints (`--structure`) ---------------------------------------------


@dataclass(frozen=True)
class StructureRule:
    """One structural rule: the sentence the prompt states and the check the validator runs.

    Both read the same constraints, so the rule the LLM reads is the rule its answer meets.
    """

    name: str
    statement: Callable[[Constraints], str]
    check: Callable[[Architecture, Constraints], list[Violation]]


def seed_stride2_blocks(constraints: Constraints) -> int:
    """The number of stride-2 blocks the structure's resolution schedule keeps."""
    if constraints.stride2_blocks is not None:
        return constraints.stride2_blocks
    from nasagent.evaluator.spaces import get_space  # the registry imports this package
    from nasagent.evaluator.spaces.zennas.codec import parse

    return stride2_count(parse(get_space(constraints.search_space).defaults.seed_arch))


def stride2_count(arch: Architecture) -> int:
    """How many blocks halve the resolution."""
    return sum(block.stride == 2 for block in arch.blocks)


def _structure_at(index: int, block: Block, field: str, text: str) -> Violation:
    return _at(index, block, field, ViolationKind.STRUCTURE, text)


def _stem_check(arch: Architecture, _constraints: Constraints) -> list[Violation]:
    block = arch.blocks[0]
    if block.op in OPS and block.family is Family.CONV:
        return []
    text = "the first block must be a SuperConv stem (e.g. SuperConvK3BNRELU(3,C,1,1))"
    return [_structure_at(0, block, "op", text)]


def _head_check(arch: Architecture, _constraints: Constraints) -> list[Violation]:
    index, block = len(arch) - 1, arch.blocks[-1]
    if len(arch) < 2 or block.op != HEAD_OP:
        text = (f"the last block must be a 1x1 {HEAD_OP} head after the stem "
                f"(e.g. {HEAD_OP}({block.out_channels},C,1,1))")
        return [_structure_at(index, block, "op", text)]
    if block.stride != 1:
        text = (f"the {HEAD_OP} head keeps the resolution: stride {block.stride} must be 1 "
                f"(Zen-NAS heads have stride 1)")
        return [_structure_at(index, block, "stride", text)]
    return []


def _schedule_check(arch: Architecture, constraints: Constraints) -> list[Violation]:
    wanted, strided = seed_stride2_blocks(constraints), [
        index for index, block in enumerate(arch.blocks) if block.stride == 2
    ]
    if len(strided) < wanted:
        text = (f"the architecture has {len(strided)} stride-2 blocks but the seed's resolution "
                f"schedule has {wanted}; set stride 2 on {wanted - len(strided)} more block(s)")
        return [Violation(block=None, field="stride", kind=ViolationKind.STRUCTURE, message=text)]
    text = (f"stride 2 here makes {{count}} stride-2 blocks but the seed's resolution schedule "
            f"has {wanted}; use stride 1")
    return [
        _structure_at(index, arch.blocks[index], "stride", text.format(count=len(strided)))
        for index in strided[wanted:]
    ]


def _schedule_statement(constraints: Constraints) -> str:
    wanted = seed_stride2_blocks(constraints)
    return (f"Exactly {wanted} blocks have stride 2 (the seed's resolution schedule); every "
            f"other block has stride 1.")


ZENNAS_STRUCTURE: tuple[StructureRule, ...] = (
    StructureRule(
        "stem", lambda _c: "The first block is a SuperConv stem (SuperConvK3BNRELU in Zen-NAS).",
        _stem_check,
    ),
    StructureRule(
        "head",
        lambda _c: (f"The last block is a 1x1 {HEAD_OP} head with stride 1, after the stem (at "
                    f"least 2 blocks)."),
        _head_check,
    ),
    StructureRule("schedule", _schedule_statement, _schedule_check),
)

STRUCTURES: dict[str, tuple[StructureRule, ...]] = {"none": (), "zennas": ZENNAS_STRUCTURE}
"""Named structural rule sets (`--structure NAME`)."""


def structure_rules(constraints: Constraints) -> tuple[StructureRule, ...]:
    """The structural rules in force under `constraints` (none for an unknown name: the
    constraints' own validation refuses it)."""
    return STRUCTURES.get(constraints.structure, ())


def structure_statements(constraints: Constraints) -> list[str]:
    """One sentence per structural rule in force, as the prompt and the report state them."""
    return [rule.statement(constraints) for rule in structure_rules(constraints)]
