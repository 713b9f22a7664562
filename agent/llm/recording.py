"""The call record: one JSON line per LLM call, the source of truth for replay and resume.

Each line holds what the model saw (messages, params, schema), what came back (the reply or the
final error) and metadata. No credentials: the backend name and the request are all that is
written. Lines are flushed and fsync'd one by one so a `kill -9` loses at most the line being
written; `load_calls` skips such a torn last line with a warning, and a recorder reopening the
file cuts it off first, so new lines never follow a fragment.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from nasagent.agent.llm.base import (
    LLMBackend,
    LLMError,
    LLMRequest,
    LLMResponse,
    Message,
    SamplingParams,
    TokenUsage,
)
from nasagent.agent.runlog import LLM_CALLS_FILE, repair_torn_tail
from nasagent.evaluator.errors import NasAgentError

if TYPE_CHECKING:  # pricing imports this package's base module: a cycle at import time
    from nasagent.agent.pricing import PriceTable

logger = logging.getLogger(__name__)

"""The name of the call record inside a run directory."""


class RecordedError(BaseModel):
    """The final failure of a call."""

    kind: str
    message: str
    attempts: int

    def to_error(self) -> LLMError:
        return LLMError(self.message, kind=self.kind, attempts=self.attempts)


class RecordedResponse(BaseModel):
    """The reply of a call, as `LLMResponse` carries it."""

    text: str
    finish_reason: str | None
    usage: TokenUsage
    latency_s: float
    attempts: int
    model: str | None
    cost_usd: float | None = None

    def to_response(self) -> LLMResponse:
        return LLMResponse.model_validate(self.model_dump())


class CallRecord(BaseModel):
    """One line of `llm_calls.jsonl`."""

    request_hash: str
    purpose: str
    iteration: int | None
    backend: str
    messages: tuple[Message, ...]
    params: SamplingParams
    response_schema: dict[str, Any] | None
    schema_name: str = "answer"
    response: RecordedResponse | None
    error: RecordedError | None
    timestamp: str

    def to_request(self) -> LLMRequest:
        """The request this record answers (its hash equals `request_hash`)."""
        return LLMRequest(
            purpose=self.purpose, messages=self.messages, params=self.params,
            response_schema=self.response_schema, schema_name=self.schema_name,
            iteration=self.iteration,
        )

    @classmethod
    def of(
        cls, request: LLMRequest, backend: str, response: LLMResponse | None,
        error: LLMError | None,
    ) -> CallRecord:
        """Build the record of one finished call (exactly one of response and error is set)."""
        return cls(
            request_hash=request.request_hash(), purpose=request.purpose,
            iteration=request.iteration, backend=backend, messages=request.messages,
            params=request.params, response_schema=request.response_schema,
            schema_name=request.schema_name,
            response=None if response is None else RecordedResponse(**response.model_dump()),
            error=None if error is None else RecordedError(
                kind=error.kind, message=error.message, attempts=error.attempts),
            timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )


class CallRecordError(NasAgentError, ValueError):
    """A call record with a corrupt line that is not the last one."""


class CallRecorder:
    """Appends `CallRecord`s to a JSONL file, one flushed and fsync'd line per call.

    Safe to share between concurrent tasks and threads. Use as a context manager or call
    `close()`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self.path.touch(exist_ok=True)  # an empty record is a valid record: nothing asked yet
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def append(self, record: CallRecord) -> None:
        line = record.model_dump_json() + "\n"
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def record(
        self, request: LLMRequest, backend: str, response: LLMResponse | None = None,
        error: LLMError | None = None,
    ) -> CallRecord:
        """Record one finished call and return the record written."""
        record = CallRecord.of(request, backend, response, error)
        self.append(record)
        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RecordingBackend:
    """Wraps a backend and records every call it finishes, reply or final error.

    Args:
        inner: the backend that answers.
        recorder: where calls are written.
        owns_recorder: close the recorder in `aclose` (otherwise its creator closes it).
        prices: prices each reply (`LLMResponse.cost_usd`) by the model it was asked for;
            None leaves the cost unknown.
    """

    def __init__(
        self, inner: LLMBackend, recorder: CallRecorder, *, owns_recorder: bool = False,
        prices: PriceTable | None = None,
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.owns_recorder = owns_recorder
        self.prices = prices
        self.name = inner.name

    async def complete(self, request: LLMRequest) -> LLMResponse:
        try:
            response = await self.inner.complete(request)
        except LLMError as error:
            self.recorder.record(request, self.name, error=error)
            raise
        if self.prices is not None:
            cost = self.prices.cost(request.params.model, response.usage)
            response = response.model_copy(update={"cost_usd": cost})
        self.recorder.record(request, self.name, response=response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
        if self.owns_recorder:
            self.recorder.close()


def resolve_calls_path(path: str | Path) -> Path:
    """`path` itself, or `path/llm_calls.jsonl` when `path` is a run directory."""
    path = Path(path)
    return path / LLM_CALLS_FILE if path.is_dir() else path


def load_calls(path: str | Path) -> list[CallRecord]:
    """Read a call record (a JSONL file, or a run directory holding `llm_calls.jsonl`).

    A torn last line (the process was killed mid-write) is skipped with a warning.

    Raises:
        FileNotFoundError: no such file.
        CallRecordError: a corrupt line before the last one.
    """
    path = resolve_calls_path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[CallRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and _is_header(line)):
            continue
        try:
            records.append(CallRecord.model_validate_json(line))
        except ValidationError as error:
            if number == len(lines):
                logger.warning("%s: skipping torn last line %d (%d characters)", path, number,
                               len(line))
                break
            raise CallRecordError(f"{path}: line {number} is not a call record: {error}") from None
    return records


def recorded_model(path: str | Path) -> str | None:
    """The model named in the requests of a call record: what a replay of it must ask for, so
    that its requests hash as they were recorded.

    Read from the first line that is a call (a transcript header and torn lines are skipped),
    without loading the rest. None when the file cannot be read or holds no call; the replay
    backend reports those when it is built.
    """
    try:
        with resolve_calls_path(path).open(encoding="utf-8") as handle:
            for line in handle:
                model = _request_model(line)
                if model is not None:
                    return model
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _request_model(line: str) -> str | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    params = value.get("params") if isinstance(value, dict) else None
    model = params.get("model") if isinstance(params, dict) else None
    return model if isinstance(model, str) else None


TRANSCRIPT_HEADER_KEY = "transcript_header"
"""A shipped transcript may start with `{"transcript_header": {...}}`: how it was produced
(backend, model, date, command). Loading skips it; `read_transcript_header` returns it."""


def _is_header(line: str) -> bool:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and TRANSCRIPT_HEADER_KEY in value


def read_transcript_header(path: str | Path) -> dict[str, Any] | None:
    """The header of a transcript file, or None when it has none."""
    with resolve_calls_path(path).open(encoding="utf-8") as handle:
        first = handle.readline()
    if not _is_header(first):
        return None
    header = json.loads(first)[TRANSCRIPT_HEADER_KEY]
    return header if isinstance(header, dict) else None
