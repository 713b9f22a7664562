"""What one proposal came to: the outcome vocabulary shared by the loop, prompts and logs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Outcome(StrEnum):
    """The outcome of one iteration (one proposal)."""

    OK = "ok"
    NO_CHANGE = "no_change"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    OVER_BUDGET = "over_budget"
    LLM_ERROR = "llm_error"
    SCORE_FAILED = "score_failed"


def whole(value: int | float) -> int | float:
    """A count as an int when it is whole (3884.0 -> 3884); a fractional one stays a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int | float, AfterValidator(whole)]
"""A parameter, FLOP or layer count in a model written as JSON: an int when whole, so every
output says 3884 and never 3884.0. Zen-NAS counting can give fractional FLOPs (12.25), which
stay floats. (A plain `float` field would turn every int into a float.)"""


class HistoryEntry(BaseModel):
    """One past proposal as the mutation prompt shows it (short-term reflection)."""

    model_config = ConfigDict(frozen=True)

    iteration: int
    parent: str
    parent_score: float | None
    arch: str | None
    outcome: Outcome
    score: float | None
    errors: tuple[str, ...] = ()
    params: Count | None = None
    flops: Count | None = None
    layers: int | None = None
    expected_score: float | None = None

    @property
    def score_change(self) -> float | None:
        if self.score is None or self.parent_score is None:
            return None
        return self.score - self.parent_score


class ScoredArch(BaseModel):
    """A scored architecture as the prompt shows it (the best so far)."""

    model_config = ConfigDict(frozen=True)

    arch: str
    score: float
    iteration: int
