"""The validator: every constraint on an architecture, all violations reported at once.

Generic over search spaces: the space decodes the string, lists what breaks its own rules and
costs the architecture analytically; the budgets in force are checked here against the
space's metrics. Each violation names where it is, the field and one sentence a model can
act on; the repair prompt is built from these sentences.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nasagent.evaluator.errors import BlockStringError, NasAgentError
from nasagent.evaluator.spaces.base import STANDARD_NAMING, Cost

if TYPE_CHECKING:
    from nasagent.evaluator.spaces.base import SearchSpace

logger = logging.getLogger(__name__)

BUDGET_METRICS = ("params", "flops", "layers")
"""The costs a budget can limit (`max_params`, ...); each space says which it has."""
SPACE_DEFAULT_FIELDS = ("num_classes", "resolution", *(f"max_{key}" for key in BUDGET_METRICS))
"""The fields a search space fills in when they are not given."""


class Constraints(BaseModel):
    """What an architecture must satisfy: search space, task shape and budgets.

    Like every command, a field that is not given takes its search space's default (task
    and budgets: `zennas-cifar` has 1e6 parameters and 18 layers); an explicit None lifts a
    budget. `counting`, `structure` and `stride2_blocks` are options of the spaces that
    offer them (Zen-NAS); a space refuses a value it cannot honour.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _space_defaults(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        from nasagent.evaluator.spaces import SEARCH_SPACES

        name = values.get("search_space", "zennas-cifar")
        if not isinstance(name, str) or name not in SEARCH_SPACES:
            return values  # the field's validator names the problem
        defaults = SEARCH_SPACES.get(name).defaults
        filled = {key: getattr(defaults, key) for key in SPACE_DEFAULT_FIELDS}
        return {**filled, **values}

    search_space: str = "zennas-cifar"
    num_classes: int = Field(default=100, ge=1)
    resolution: int = Field(default=32, ge=1)
    counting: Literal["exact", "zennas"] = "exact"
    max_params: float | None = Field(default=None, gt=0)
    max_flops: float | None = Field(default=None, gt=0)
    max_layers: int | None = Field(default=None, ge=1)
    structure: str = "none"
    """A named set of structural rules of the space; "none" adds no rule."""
    stride2_blocks: int | None = Field(default=None, ge=0)
    """The resolution schedule a structure keeps: the seed's number of stride-2 blocks. None
    takes it from the search space's seed."""

    @field_validator("search_space")
    @classmethod
    def _known_search_space(cls, name: str) -> str:
        from nasagent.evaluator.spaces import get_space  # the spaces import this module

        try:
            get_space(name)
        except NasAgentError as error:  # pydantic reports ValueErrors as located messages
            raise ValueError(str(error)) from None
        return name

    @field_validator("counting", "structure")
    @classmethod
    def _offered_by_the_space(cls, value: str, info: ValidationInfo) -> str:
        space = _space_of(info)
        problems = space.option_problems({info.field_name or "": value}) if space else []
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("max_params", "max_flops", "max_layers")
    @classmethod
    def _a_cost_of_the_space(cls, value: float | None, info: ValidationInfo) -> float | None:
        return checked_budget(_space_of(info), info.field_name or "", value)

    @property
    def space(self) -> SearchSpace:
        from nasagent.evaluator.spaces import get_space

        return get_space(self.search_space)

    def unbudgeted(self) -> Constraints:
        """The same constraints with no budget in force (rules only)."""
        return self.model_copy(update={f"max_{key}": None for key in BUDGET_METRICS})


def checked_budget(space: SearchSpace | None, key: str, value: Any) -> Any:
    """`value` of the budget `key` (max_params, ...), refused when set on a space without
    that cost (pydantic reports the ValueError at the field)."""
    metric = key.removeprefix("max_")
    if value is not None and space is not None and space.metric(metric) is None:
        costs = ", ".join(m.key for m in space.metrics)
        raise ValueError(f"search space {space.name} has no {metric} to budget; its costs are "
                         f"{costs}")
    return value


def _space_of(info: ValidationInfo) -> SearchSpace | None:
    """The space of the constraints being validated (None when its name was refused)."""
    from nasagent.evaluator.spaces import SEARCH_SPACES

    name = info.data.get("search_space")
    return SEARCH_SPACES.get(name) if isinstance(name, str) and name in SEARCH_SPACES else None


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
    """One broken rule: where (block or element index), what kind, and a sentence to act on."""

    model_config = ConfigDict(frozen=True)

    block: int | None
    field: str
    kind: ViolationKind
    message: str


class Report(BaseModel):
    """The verdict on one input: validity, canonical form, every violation, notes and cost."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    input: str
    valid: bool
    canonical: str | None
    architecture: Any = Field(exclude=True)
    """The decoded architecture (an object of the space; not serialised: `canonical` is)."""
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
    arch: Any,
    constraints: Constraints,
    *,
    input: str | None = None,  # the field name external tools read
    notes: Iterable[str] = (),
) -> Report:
    """Check `arch` (an architecture of the constraints' space) against every rule.

    Args:
        arch: the decoded architecture.
        constraints: search space, task shape and budgets.
        input: the text the architecture came from; defaults to its canonical string.
        notes: what the decoder normalised, carried into the report.
    """
    space = constraints.space
    errors = space.violations(arch, constraints)
    cost = space.cost(arch, constraints)
    if cost is not None:
        errors += budget_violations(cost, constraints)
    canonical = space.encode(arch)
    return Report(
        input=canonical if input is None else input,
        valid=not errors,
        canonical=canonical,
        architecture=arch,
        errors=errors,
        notes=list(notes),
        cost=cost,
    )


def check_string(text: str, constraints: Constraints, naming: str = STANDARD_NAMING) -> Report:
    """Decode `text` (written in `naming`) and check it; a decode failure becomes one SYNTAX
    violation, never an exception."""
    try:
        decoded = constraints.space.decode(text, naming)
    except BlockStringError as error:
        return _syntax_report(text, error.block, str(error))
    except ValidationError as error:  # a decoder that builds pydantic models; be safe
        return _syntax_report(text, None, f"architecture string is malformed: {error}")
    return check(decoded.architecture, constraints, input=text, notes=decoded.notes)


def _syntax_report(text: str, block: int | None, message: str) -> Report:
    violation = Violation(block=block, field="syntax", kind=ViolationKind.SYNTAX, message=message)
    return Report(
        input=text, valid=False, canonical=None, architecture=None,
        errors=[violation], notes=[], cost=None,
    )


def budget_violations(cost: Cost, constraints: Constraints) -> list[Violation]:
    """Budget violations of `cost`; a value equal to its budget is within it (as in Zen-NAS)."""
    errors: list[Violation] = []
    for metric in constraints.space.metrics:
        limit, value = getattr(constraints, f"max_{metric.key}", None), cost.value(metric.key)
        if limit is None or value is None or value <= limit:
            continue
        message = metric.over.format(value=metric.show(value), limit=metric.show(limit),
                                     resolution=constraints.resolution)
        errors.append(Violation(block=None, field=metric.key, kind=ViolationKind.BUDGET,
                                message=message))
    return errors
