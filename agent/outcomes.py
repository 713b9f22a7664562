"""What one proposal came to: the outcome vocabulary shared by the loop, prompts and logs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    """The outcome of one iteration (one proposal)."""

    OK = "ok"
    NO_CHANGE = "no_change"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    OVER_BUDGET = "over_budget"
    LLM_ERROR = "llm_error"
    SCORE_FAILED = "score_failed"


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
    params: float | None = None
    flops: float | None = None
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
