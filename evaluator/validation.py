"""The validator: every constraint on an architecture, all violations reported at once.

Each violation names the block, the field and one sentence a model can act on; the repair
prompt is built from these sentences. Costs come from the analytic model in `evaluator.cost`,
so even a 2048-channel, 600-sub-layer answer is refused in microseconds without torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nasagent.evaluator.architecture import Architecture, Block
from nasagent.evaluator.codec import decode
from nasagent.evaluator.cost import RGB_CHANNELS, Cost, Counting, count_cost, downsample
from nasagent.evaluator.cost_facts import max_stride2_blocks
from nasagent.evaluator.errors import BlockStringError, NasAgentError
from nasagent.evaluator.search_space import (
    OPS,
    SEARCH_SPACES,
    Family,
    SearchSpace,
    get_search_space,
)

logger = logging.getLogger(__name__)

CHANNEL_MULTIPLE = 8
MAX_CHANNELS = 2048
VALID_STRIDES = (1, 2)


class Constraints(BaseModel):
    """What an architecture must satisfy: search space, task shape and budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search_space: str = "zennas-cifar"
    num_classes: int = Field(default=100, ge=1)
    resolution: int = Field(default=32, ge=1)
    counting: Counting = Counting.EXACT
    max_params: float | None = Field(default=None, gt=0)
    max_flops: float | None = Field(default=None, gt=0)
    max_layers: int | None = Field(default=None, ge=1)
    structure: str = "none"
    """A named set of structural rules (`STRUCTURES`); "none" adds no rule."""
    stride2_blocks: int | None = Field(default=None, ge=0)
    """The resolution schedule a structure keeps: the seed's number of stride-2 blocks. None
    takes it from the search space's Zen-NAS seed."""

    @field_validator("search_space")
    @classmethod
    def _known_search_space(cls, name: str) -> str:
        try:
            SEARCH_SPACES.get(name)
        except NasAgentError as error:  # pydantic reports ValueErrors as located messages
            raise ValueError(str(error)) from None
        return name

    @field_validator("structure")
    @classmethod
    def _known_structure(cls, name: str) -> str:
        return known_structure(name)

    @property
    def space(self) -> SearchSpace:
        return get_search_space(self.search_space)


class ViolationKind(StrEnum):
    """What kind of rule a violation breaks."""

    SYNTAX = "syntax"
    OP = "op"
    CHANNELS = "channels"
    CHAIN = "chain"
    STRIDE = "stride"
    SUB_LAYERS = "sub_layers"
    RESOLUTION = "resolution"
    STRUCTURE = "structure"
    BUDGET = "budget"


class Violation(BaseModel):
    """One broken rule: where (block index, field), what kind, and a sentence to act on."""

    model_config = ConfigDict(frozen=True)

    block: int | None
    field: str
    kind: ViolationKind
    message: str


class Report(BaseModel):
    """The verdict on one input: validity, canonical form, every violation, notes and cost."""

    model_config = ConfigDict(frozen=True)

    input: str
    valid: bool
    canonical: str | None
    architecture: Architecture | None
    errors: list[Violation]
    notes: list[str]
    cost: Cost | None

    @property
    def over_budget(self) -> bool:
        """True when the only problems are budgets (the architecture itself is well-formed)."""
        return bool(self.errors) and all(e.kind is ViolationKind.BUDGET for e in self.errors)

    def error_lines(self) -> list[str]:
        """One actionable sentence per violation, in the order found."""
        return [error.message for error in self.errors]


def check(
    arch: Architecture,
    constraints: Constraints,
    *,
    input: str | None = None,  # the field name external tools read
    notes: Iterable[str] = (),
) -> Report:
    """Check `arch` against every rule and return a report listing all violations.

    Args:
        arch: the decoded architecture.
        constraints: search space, task shape and budgets.
        input: the text the architecture came from; defaults to its canonical string.
        notes: what the decoder normalised, carried into the report.
    """
    errors = structural_violations(arch, constraints)
    cost = _cost_if_defined(arch, constraints)
    if cost is not None:
        errors += budget_violations(cost, constraints)
    canonical = str(arch)
    return Report(
        input=canonical if input is None else input,
        valid=not errors,
        canonical=canonical,
        architecture=arch,
        errors=errors,
        notes=list(notes),
        cost=cost,
    )


def check_string(text: str, constraints: Constraints) -> Report:
    """Decode `text` and check it; a decode failure becomes one SYNTAX violation, never raises."""
    try:
        decoded = decode(text)
    except BlockStringError as error:
        return _syntax_report(text, error.block, str(error))
    except ValidationError as error:  # the decoder builds pydantic blocks; be safe, not sorry
        return _syntax_report(text, None, f"block string is malformed: {error}")
    return check(decoded.architecture, constraints, input=text, notes=decoded.notes)


def _syntax_report(text: str, block: int | None, message: str) -> Report:
    violation = Violation(block=block, field="syntax", kind=ViolationKind.SYNTAX, message=message)
    return Report(
        input=text, valid=False, canonical=None, architecture=None,
        errors=[violation], notes=[], cost=None,
    )


_BlockRule = Callable[[int, Block, Architecture, Constraints], list[Violation]]


def structural_violations(arch: Architecture, constraints: Constraints) -> list[Violation]:
    """Every violation of the per-block rules and the resolution rule, in block order."""
    errors: list[Violation] = []
    for index, block in enumerate(arch.blocks):
        for rule in _BLOCK_RULES:
            errors += rule(index, block, arch, constraints)
    errors += _resolution_violations(arch, constraints.resolution, constraints.counting)
    for structure_rule in structure_rules(constraints):
        errors += structure_rule.check(arch, constraints)
    return errors


def _at(index: int, block: Block, field: str, kind: ViolationKind, text: str) -> Violation:
    """A violation whose message starts with the block index and op, as the model reads it."""
    message = f"block {index} {block.op}: {text}"
    return Violation(block=index, field=field, kind=kind, message=message)


def _op_rule(
    index: int, block: Block, _arch: Architecture, constraints: Constraints
) -> list[Violation]:
    space = constraints.space
    if block.op in space:
        return []
    where = "registered" if block.op not in OPS else f"in search space {space.name}"
    text = f"{block.op} is not {where}; use one of {', '.join(space.ops)}"
    return [_at(index, block, "op", ViolationKind.OP, text)]


def _channel_rule(
    index: int, block: Block, _arch: Architecture, _constraints: Constraints
) -> list[Violation]:
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


def _chain_rule(
    index: int, block: Block, arch: Architecture, _constraints: Constraints
) -> list[Violation]:
    if index == 0:
        expected, source = RGB_CHANNELS, "the RGB input's channels"
    else:
        expected = arch.blocks[index - 1].out_channels
        source = f"block {index - 1}'s out_channels"
    if block.in_channels == expected:
        return []
    text = f"in_channels {block.in_channels} must equal {source} {expected}"
    return [_at(index, block, "in_channels", ViolationKind.CHAIN, text)]


def _stride_rule(
    index: int, block: Block, _arch: Architecture, _constraints: Constraints
) -> list[Violation]:
    if block.stride in VALID_STRIDES:
        return []
    text = f"stride {block.stride} must be 1 or 2"
    return [_at(index, block, "stride", ViolationKind.STRIDE, text)]


def _sub_layer_rule(
    index: int, block: Block, _arch: Architecture, _constraints: Constraints
) -> list[Violation]:
    if block.sub_layers >= 1:
        return []
    text = f"sub_layers {block.sub_layers} must be at least 1"
    return [_at(index, block, "sub_layers", ViolationKind.SUB_LAYERS, text)]


_BLOCK_RULES: tuple[_BlockRule, ...] = (
    _op_rule, _channel_rule, _chain_rule, _stride_rule, _sub_layer_rule,
)


def _resolution_violations(
    arch: Architecture, resolution: int, counting: Counting
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


# ---- structural constraints (`--structure`) ---------------------------------------------


@dataclass(frozen=True)
class StructureRule:
    """One structural rule: the sentence the prompt states and the check the validator runs.

    Both read the same constraints, so the rule the LLM reads is the rule its answer meets.
    """

    name: str
    statement: Callable[[Constraints], str]
    check: Callable[[Architecture, Constraints], list[Violation]]


HEAD_OP = "SuperConvK1BNRELU"


def seed_stride2_blocks(constraints: Constraints) -> int:
    """The number of stride-2 blocks the structure's resolution schedule keeps."""
    if constraints.stride2_blocks is not None:
        return constraints.stride2_blocks
    from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED  # the package imports this module's
    from nasagent.evaluator.codec import parse  # siblings only; late to keep it that way

    seed = CIFAR_SEED if "SuperResK3K3" in constraints.space else IMAGENET_SEED
    return stride2_count(parse(seed))


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
    if len(arch) >= 2 and block.op == HEAD_OP:
        return []
    text = (f"the last block must be a 1x1 {HEAD_OP} head after the stem "
            f"(e.g. {HEAD_OP}({block.out_channels},C,1,1))")
    return [_structure_at(index, block, "op", text)]


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
        lambda _c: f"The last block is a 1x1 {HEAD_OP} head, after the stem (at least 2 blocks).",
        _head_check,
    ),
    StructureRule("schedule", _schedule_statement, _schedule_check),
)

STRUCTURES: dict[str, tuple[StructureRule, ...]] = {"none": (), "zennas": ZENNAS_STRUCTURE}


def known_structure(name: str) -> str:
    """`name` if it is a registered structure; the ValueError pydantic reports otherwise."""
    if name not in STRUCTURES:
        raise ValueError(f"unknown structure {name!r}; valid: {', '.join(STRUCTURES)}")
    return name
"""Named structural rule sets (`--structure NAME`)."""


def structure_rules(constraints: Constraints) -> tuple[StructureRule, ...]:
    """The structural rules in force under `constraints`."""
    return STRUCTURES[constraints.structure]


def structure_statements(constraints: Constraints) -> list[str]:
    """One sentence per structural rule in force, as the prompt and the report state them."""
    return [rule.statement(constraints) for rule in structure_rules(constraints)]


def _cost_if_defined(arch: Architecture, constraints: Constraints) -> Cost | None:
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


def budget_violations(cost: Cost, constraints: Constraints) -> list[Violation]:
    """Budget violations of `cost`; a value equal to its budget is within it (as in Zen-NAS)."""
    errors: list[Violation] = []
    max_params, max_flops, max_layers = (
        constraints.max_params, constraints.max_flops, constraints.max_layers
    )
    if max_params is not None and cost.params > max_params:
        errors.append(_budget("params", (
            f"params {_number(cost.params)} exceed the budget of {_number(max_params)}; "
            f"shrink channels or sub-layers"
        )))
    if max_flops is not None and cost.flops > max_flops:
        errors.append(_budget("flops", (
            f"FLOPs {_number(cost.flops)} at resolution {constraints.resolution} exceed the "
            f"budget of {_number(max_flops)}; shrink channels or sub-layers, or downsample earlier"
        )))
    if max_layers is not None and cost.layers > max_layers:
        errors.append(_budget("layers", (
            f"layers {cost.layers} (the sum of sub_layers) exceed the budget of {max_layers}; "
            f"remove sub-layers or blocks"
        )))
    return errors


def _budget(field: str, message: str) -> Violation:
    return Violation(block=None, field=field, kind=ViolationKind.BUDGET, message=message)


def _number(value: float) -> str:
    """1,203,112 for whole numbers, two decimals otherwise (Zen-NAS FLOPs can end in .25)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
