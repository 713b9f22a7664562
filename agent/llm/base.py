"""The one narrow LLM protocol every backend implements, and the data it speaks.

A request is a frozen, hashable description of one chat call (messages, sampling parameters,
optional JSON schema) plus metadata (purpose, iteration). Its `request_hash` depends only on
what the model sees, so the same question asked on another machine or after a restart maps to
the same recorded answer.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from nasagent.evaluator.errors import NasAgentError


class ResponseFormat(StrEnum):
    """How the reply is constrained: a strict JSON schema, any JSON object, or free text."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    NONE = "none"


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(BaseModel):
    """The model and sampling settings of one call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    response_format: ResponseFormat = ResponseFormat.NONE


class LLMRequest(BaseModel):
    """One chat call. `purpose` and `iteration` are metadata and do not enter the hash."""

    model_config = ConfigDict(frozen=True)

    purpose: str
    messages: tuple[Message, ...]
    params: SamplingParams
    response_schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    iteration: int | None = None

    def request_hash(self) -> str:
        """SHA-256 hex digest of the canonical JSON of messages, params and response_schema.

        Canonical means sorted keys, no whitespace and ASCII escapes, so the digest is the same
        on every machine and Python version.
        """
        payload = {
            "messages": [message.model_dump(mode="json") for message in self.messages],
            "params": self.params.model_dump(mode="json"),
            "response_schema": self.response_schema,
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def first_user_message(self) -> str | None:
        """The content of the first user message, or None when there is none."""
        return next((m.content for m in self.messages if m.role == "user"), None)

    def render(self) -> str:
        """A readable plain-text rendering of what the model sees (for diffs and humans)."""
        params = json.dumps(self.params.model_dump(mode="json"), sort_keys=True)
        parts = [f"params: {params}"]
        if self.response_schema is not None:
            parts.append(f"response_schema: {json.dumps(self.response_schema, sort_keys=True)}")
        parts += [f"--- {message.role} ---\n{message.content}" for message in self.messages]
        return "\n".join(parts)


class TokenUsage(BaseModel):
    """Token counts as reported by the backend; `estimated` when no tokenizer counted them
    (the scripted and manual backends, and replays of their recordings).

    `cached_tokens` is the part of `prompt_tokens` served from the provider's prompt cache
    (billed at a lower price), when the API reports it.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMResponse(BaseModel):
    """One reply. `latency_s` is the wall time of the whole call, retries and waits included.

    `cost_usd` is set by the recording layer from the run's price table (None: no price).
    """

    text: str
    finish_reason: str | None
    usage: TokenUsage
    latency_s: float
    attempts: int = 1
    model: str | None = None
    cost_usd: float | None = None


class ErrorKind(StrEnum):
    """Why a call failed; the retry policy and the loop's bookkeeping key on it."""

    RATE_LIMIT = "rate_limit"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    REPLAY_MISS = "replay_miss"
    CONFIG = "config"
    OTHER = "other"


RETRYABLE_KINDS = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.SERVER, ErrorKind.TIMEOUT, ErrorKind.CONNECTION,
     ErrorKind.MALFORMED}
)


class LLMError(NasAgentError):
    """A call that did not produce a reply (after any retries).

    Attributes:
        kind: an `ErrorKind` value such as "rate_limit" or "replay_miss".
        attempts: how many attempts were made before giving up.
        retry_after_s: the server's Retry-After hint for this failure, if it sent one.
    """

    def __init__(
        self, message: str, *, kind: str, attempts: int = 1, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = str(kind)
        self.attempts = attempts
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class LLMConfigError(LLMError):
    """A backend that cannot be built: missing credentials, bad spec or options."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=ErrorKind.CONFIG, attempts=0)


@runtime_checkable
class LLMBackend(Protocol):
    """What the search loop talks to. Implementations must be safe to call concurrently."""

    name: str

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request or raise `LLMError`."""
        ...

    async def aclose(self) -> None:
        """Release connections, files and threads."""
        ...


ESTIMATING_BACKENDS = frozenset({"scripted", "manual"})
"""Backend kinds (the spec prefix) whose token counts are `approximate_tokens` estimates."""


def approximate_tokens(text: str) -> int:
    """A crude token count (4 characters per token) for backends that are not real models."""
    return len(text) // 4
