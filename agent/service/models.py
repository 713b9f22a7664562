"""Request and response bodies of the service; field names external clients rely on are kept.

Every request model forbids unknown keys and refuses anything that looks like a credential
(`api_key`, `token`, `sk-...` values, ...): LLM keys come from the server's environment only.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nasagent.agent.outcomes import Count, HistoryEntry
from nasagent.agent.service.limits import REQUEST_MAXIMA

MAX_CHECK_ARCHS = 1000
MAX_SCORE_ARCHS = 64

_KEY_NAME = re.compile(
    r"api[-_]?key|secret|passw(or)?d|credential|authori[sz]ation|bearer|(^|[-_])token$",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(r"^\s*(sk-|Bearer\s)[A-Za-z0-9_\-]{8,}")
NO_KEYS = (
    "credentials are never accepted over HTTP: an LLM backend's API key comes from the "
    "server's environment (OPENAI_API_KEY, AZURE_OPENAI_API_KEY)"
)


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Where in a JSON value a key-like name or a key-like string sits."""
    if isinstance(value, dict):
        found = [f"{path}{k}" for k in value if isinstance(k, str) and _KEY_NAME.search(k)]
        for key, item in value.items():
            found += _secret_paths(item, f"{path}{key}.")
        return found
    if isinstance(value, list):
        return [
            found for index, item in enumerate(value)
            for found in _secret_paths(item, f"{path}{index}.")
        ]
    if isinstance(value, str) and _KEY_VALUE.match(value):
        return [path.rstrip(".") or "body"]
    return []


class RequestBody(BaseModel):
    """Base of every request: unknown keys and credentials are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        found = _secret_paths(data)
        if found:
            raise ValueError(f"{NO_KEYS} (found: {', '.join(dict.fromkeys(found))})")
        return data


class LocatedError(BaseModel):
    """One validation error: the block index (None: the whole string), the field, a sentence."""

    block: int | None
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str
    errors: list[dict[str, Any]] = []


# ---- check ----------------------------------------------------------------------------------


class CheckRequest(RequestBody):
    """`nasagent inspect`'s inputs: architecture strings and the inspect options as keys.

    As in `inspect`, a key left out takes its search space's default (the budgets too);
    null or 0 lifts a budget.
    """

    archs: list[str] = Field(min_length=1, max_length=MAX_CHECK_ARCHS)
    search_space: str = "zennas-cifar"
    num_classes: int | None = None
    resolution: int | None = None
    counting: Literal["exact", "zennas"] = "exact"
    structure: str = "none"
    max_params: float | None = None
    max_flops: float | None = None
    max_layers: int | None = None

    def options(self) -> dict[str, Any]:
        """The options given (a key left out takes its space's default)."""
        return self.model_dump(exclude={"archs"}, exclude_unset=True)


class InspectResult(BaseModel):
    """The `inspect --json` object of one input."""

    input: str
    valid: bool
    canonical: str | None
    errors: list[LocatedError]
    params: Count | None
    flops: Count | None
    layers: int | None


class CheckResponse(BaseModel):
    results: list[InspectResult]


# ---- score ----------------------------------------------------------------------------------


class ScoreRequest(RequestBody):
    """`nasagent score`'s inputs: architecture strings, their search space and the proxy
    settings (resolution and classes default to the space's)."""

    archs: list[str] = Field(min_length=1, max_length=MAX_SCORE_ARCHS)
    search_space: str = "all"
    proxy: str = "gradnorm"
    batch_size: int = Field(default=64, ge=1, le=REQUEST_MAXIMA["batch_size"])
    resolution: int | None = Field(default=None, ge=1, le=REQUEST_MAXIMA["resolution"])
    num_classes: int | None = None
    seed: int = 0
    repeats: int = Field(default=1, ge=1, le=REQUEST_MAXIMA["repeats"])
    device: str = "auto"
    residual: bool = False

    def settings(self) -> dict[str, Any]:
        return self.model_dump(exclude={"archs", "search_space"})


class ScoreRow(BaseModel):
    """The `score --json` object of one input."""

    input: str
    canonical: str | None
    proxy: str
    score: float | None
    status: str
    seconds: float
    seed: int
    message: str
    inputs: str = "-"
    """What the proxy read (`gaussian`, `real:SPEC`, `ones`, `none`, or members' inputs)."""


class ScoreResponse(BaseModel):
    results: list[ScoreRow]


# ---- mutate ---------------------------------------------------------------------------------


class MutateRequest(RequestBody):
    """One proposal from a parent.

    `config` takes the config-file keys that shape a proposal (budgets, search space, proxy,
    temperature, max_repairs, ...); `mutator` and `llm` override its keys of the same name.
    """

    parent: str
    score: float | None = None
    mutator: Literal["random", "llm"] = "random"
    llm: str | None = None
    seed: int = 0
    replaces: int = Field(default=1, ge=1, le=4)
    history: list[HistoryEntry] = Field(default=[], max_length=256)
    lessons: list[str] = Field(default=[], max_length=64)
    config: dict[str, Any] = {}


class MutateResponse(BaseModel):
    """A validated proposal: `arch` is set when the outcome is ok (or over budget/invalid)."""

    outcome: str
    arch: str | None
    errors: list[str]
    tokens: int
    notes: list[str] = []
    llm_calls: int = 0
    repairs: int = 0
    expected_score: float | None = None
    llm_seconds: float = 0.0
    params: Count | None = None
    flops: Count | None = None
    layers: int | None = None


# ---- runs -----------------------------------------------------------------------------------


class RunKind(StrEnum):
    SEARCH = "search"
    COMPARE = "compare"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


class RunRequest(RequestBody):
    """A search or a comparison; `config` holds config-file keys (as `nasagent search`'s, and
    for a comparison also a compare config file's named arms, `"arms": {"NAME": {...}}`, and
    `baseline`)."""

    kind: RunKind
    config: dict[str, Any] = {}
    arms: list[str] | None = Field(
        default=None, description="compare only: which arms run (default: the named arms of "
        "config, in order, else llm,random)")
    seeds: list[int] | None = Field(default=None, description="compare only (default 0..4)")


class RunCreated(BaseModel):
    id: str
    state: RunState


class Progress(BaseModel):
    """Iterations applied so far out of the budget (all runs of a comparison together)."""

    iterations: int
    total: int
    runs_finished: int
    runs_total: int


class ArmStatus(BaseModel):
    """One arm of a comparison: what it sets, who proposes, its progress and its best."""

    name: str
    label: str = Field(description="as the report's table and legends name the arm")
    description: str = Field(description="who proposes: backend and model, or no LLM")
    baseline: bool
    settings: dict[str, Any] = Field(description="what the arm sets on top of the shared config")
    progress: Progress
    best: dict[str, Any] | None


class RunStatus(BaseModel):
    id: str
    kind: RunKind
    state: RunState
    best: dict[str, Any] | None
    progress: Progress
    stopped_reason: str | None = None
    error: str | None = None
    created: float
    arms: list[ArmStatus] | None = Field(default=None, description="compare only, in order")


class RunList(BaseModel):
    runs: list[RunStatus]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    runs: dict[str, int]
