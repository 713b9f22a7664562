"""Serve recorded replies: exact replay of a run, and resume without asking twice.

`RecordedReplies` is the store: recorded calls keyed by request hash, first-in-first-out per
hash. `ReplayBackend` answers only from it ("strict": by hash, a miss is an error that shows
the closest recorded request and a diff; "sequential": in recorded order, warning on each
mismatch). `FallbackBackend` answers from the store first and asks a live backend only on a
miss, which is how a killed search resumes without paying for the same call twice.
"""

from __future__ import annotations

import difflib
import logging
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from nasagent.agent.llm.base import (
    ESTIMATING_BACKENDS,
    ErrorKind,
    LLMBackend,
    LLMConfigError,
    LLMError,
    LLMRequest,
    LLMResponse,
)
from nasagent.agent.llm.recording import CallRecord, load_calls, resolve_calls_path

logger = logging.getLogger(__name__)

ReplayMode = Literal["strict", "sequential"]

MAX_DIFF_LINES = 40
MAX_DIFF_LINE_CHARS = 200


class RecordedReplies:
    """Recorded calls, each served at most once: by hash (FIFO within a hash) or in order."""

    def __init__(self, records: Sequence[CallRecord], source: str = "<memory>") -> None:
        self.source = source
        self._records = list(records)
        self._used = [False] * len(self._records)
        self._by_hash: dict[str, deque[int]] = defaultdict(deque)
        for index, record in enumerate(self._records):
            self._by_hash[record.request_hash].append(index)
        self._next = 0
        self._rendered: dict[int, list[str]] = {}

    @classmethod
    def load(cls, path: str | Path) -> RecordedReplies:
        """Load `llm_calls.jsonl` (or a run directory holding one); see `load_calls`."""
        resolved = resolve_calls_path(path)
        return cls(load_calls(resolved), source=str(resolved))

    def __len__(self) -> int:
        """How many recorded replies are still unused."""
        return self._used.count(False)

    @property
    def total(self) -> int:
        return len(self._records)

    def pop(self, request_hash: str, iteration: int | None = None) -> CallRecord | None:
        """The oldest unused record with this hash (marked used), or None.

        With concurrent calls, identical requests of different iterations are recorded in the
        order they completed, so a record of the same iteration is preferred when there is one.
        """
        queue = self._by_hash.get(request_hash)
        if not queue:
            return None
        unused = [i for i in queue if not self._used[i]]
        same = [i for i in unused if self._records[i].iteration == iteration]
        candidates = same or unused
        if not candidates:
            return None
        chosen = candidates[0]
        queue.remove(chosen)
        self._used[chosen] = True
        return self._records[chosen]

    def pop_next(self) -> CallRecord | None:
        """The oldest unused record of any hash (marked used), or None."""
        while self._next < len(self._records):
            index = self._next
            self._next += 1
            if not self._used[index]:
                self._used[index] = True
                return self._records[index]
        return None

    def count_recorded(self, request_hash: str) -> int:
        """How many records (used or not) have this hash."""
        return sum(record.request_hash == request_hash for record in self._records)

    def closest(self, request: LLMRequest) -> tuple[CallRecord, float] | None:
        """The recorded request most similar to `request` (same purpose preferred) and the
        similarity in [0, 1], by difflib over the rendered lines."""
        same_purpose = [i for i, r in enumerate(self._records) if r.purpose == request.purpose]
        candidates = same_purpose or list(range(len(self._records)))
        if not candidates:
            return None
        wanted = request.render().splitlines()
        scored = [(self._similarity(index, wanted), index) for index in candidates]
        ratio, best = max(scored, key=lambda pair: (pair[0], -pair[1]))
        return self._records[best], ratio

    def rendered_lines(self, index: int) -> list[str]:
        if index not in self._rendered:
            self._rendered[index] = self._records[index].to_request().render().splitlines()
        return self._rendered[index]

    def _similarity(self, index: int, wanted: list[str]) -> float:
        return difflib.SequenceMatcher(None, self.rendered_lines(index), wanted).ratio()


def replay_record(record: CallRecord) -> LLMResponse:
    """The recorded reply (with its recorded latency), or raise the recorded error."""
    if record.error is not None:
        raise record.error.to_error()
    if record.response is None:
        raise LLMError(
            f"recorded call {record.request_hash[:12]} has neither a reply nor an error",
            kind=ErrorKind.MALFORMED,
        )
    response = record.response.to_response()
    if record.backend.partition(":")[0] in ESTIMATING_BACKENDS and not response.usage.estimated:
        # recorded before TokenUsage carried the flag: the recording backend says it all
        response = response.model_copy(
            update={"usage": response.usage.model_copy(update={"estimated": True})}
        )
    return response


def miss_message(request: LLMRequest, replies: RecordedReplies) -> str:
    """Explain a replay miss: exhausted replies, or the closest recorded request and a diff."""
    request_hash = request.request_hash()
    label = _describe(request_hash, request.purpose, request.iteration)
    recorded = replies.count_recorded(request_hash)
    if recorded:
        return (f"no unused recorded reply for {label} in {replies.source}: it was recorded "
                f"{recorded} time(s) and every reply has been served")
    found = replies.closest(request)
    if found is None:
        return f"no recorded reply for {label}: {replies.source} holds no calls"
    record, ratio = found
    closest = _describe(record.request_hash, record.purpose, record.iteration)
    diff = _unified_diff(record.to_request().render(), request.render())
    return (f"no recorded reply for {label} in {replies.source}; the closest recorded request "
            f"is {closest} (similarity {ratio:.2f}). Diff, recorded -> requested:\n{diff}")


def _describe(request_hash: str, purpose: str, iteration: int | None) -> str:
    where = "" if iteration is None else f", iteration {iteration}"
    return f"request {request_hash[:12]} ({purpose}{where})"


def _unified_diff(recorded: str, requested: str) -> str:
    lines = list(difflib.unified_diff(
        recorded.splitlines(), requested.splitlines(), "recorded", "requested", n=2,
        lineterm="",
    ))
    if not lines:
        return "(no difference in the rendered text: the hashes differ in formatting only)"
    shown = [_trim(line) for line in lines[:MAX_DIFF_LINES]]
    if len(lines) > MAX_DIFF_LINES:
        shown.append(f"... ({len(lines) - MAX_DIFF_LINES} more diff lines)")
    return "\n".join(shown)


def _trim(line: str) -> str:
    if len(line) <= MAX_DIFF_LINE_CHARS:
        return line
    return line[:MAX_DIFF_LINE_CHARS] + f"... (+{len(line) - MAX_DIFF_LINE_CHARS} chars)"


class ReplayBackend:
    """Answers from a call record only; no model is asked.

    Args:
        replies: the store to serve from.
        mode: "strict" matches by request hash and raises `LLMError(kind="replay_miss")` on a
            miss; "sequential" serves replies in recorded order and logs a warning whenever the
            request differs from the recorded one.
    """

    def __init__(self, replies: RecordedReplies, mode: ReplayMode = "strict") -> None:
        if mode not in ("strict", "sequential"):
            raise LLMConfigError(f"unknown replay mode {mode!r}; valid: sequential, strict")
        self.replies = replies
        self.mode = mode
        self.name = f"replay:{replies.source}"

    @classmethod
    def load(cls, path: str | Path, mode: ReplayMode = "strict") -> ReplayBackend:
        return cls(RecordedReplies.load(path), mode)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        record = self._strict(request) if self.mode == "strict" else self._sequential(request)
        return replay_record(record)

    async def aclose(self) -> None:
        return None

    def _strict(self, request: LLMRequest) -> CallRecord:
        record = self.replies.pop(request.request_hash(), request.iteration)
        if record is None:
            raise LLMError(miss_message(request, self.replies), kind=ErrorKind.REPLAY_MISS)
        return record

    def _sequential(self, request: LLMRequest) -> CallRecord:
        record = self.replies.pop_next()
        if record is None:
            raise LLMError(
                f"all {self.replies.total} recorded replies in {self.replies.source} are used",
                kind=ErrorKind.REPLAY_MISS,
            )
        request_hash = request.request_hash()
        if record.request_hash != request_hash:
            logger.warning(
                "sequential replay: %s differs from the recorded %s; serving the recorded reply",
                _describe(request_hash, request.purpose, request.iteration),
                _describe(record.request_hash, record.purpose, record.iteration),
            )
        return record


class FallbackBackend:
    """Recorded replies first, a live backend on a miss (used to resume a killed search).

    Wrap only the live backend in a `RecordingBackend` (``FallbackBackend(replies,
    RecordingBackend(live, recorder))``) so replayed calls are not recorded a second time.

    Args:
        primary: the recorded replies, matched by request hash.
        fallback: the backend asked when no unused recorded reply matches.
        replay_errors: replay recorded failures as the same `LLMError` (default) instead of
            asking the live backend again.
    """

    def __init__(
        self, primary: RecordedReplies, fallback: LLMBackend, *, replay_errors: bool = True
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.replay_errors = replay_errors
        self.name = f"replay+{fallback.name}"
        self.replayed = 0
        self.asked = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        record = self.primary.pop(request.request_hash(), request.iteration)
        if record is not None and (record.error is None or self.replay_errors):
            self.replayed += 1
            return replay_record(record)
        self.asked += 1
        return await self.fallback.complete(request)

    async def aclose(self) -> None:
        await self.fallback.aclose()
