"""A run's events.jsonl as server-sent events, from any offset, until the run ends.

Event `id` N is the N-th line (from 0) of the run's event log; for a comparison, of its runs'
logs taken in plan order (seed by seed, arm by arm), which is the order they are written in,
since the service runs a comparison's runs one after another and halts it at the first run
that does not finish. `?offset=N` starts at line N; a reconnecting client's Last-Event-ID
(the last id it saw) wins over the offset. Only whole lines are sent, so a line being written
(or torn by a kill) is never sent half. When the run has ended and every line was sent, an
`end` event carries its final state and the stream closes.

Data lines are the log lines themselves; a comparison's are wrapped as {"run": "<arm>/seed-<s>",
"event": {...}} so that a client can tell its runs apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.2
KEEPALIVE_S = 15.0


@dataclass
class _Cursor:
    """Where the reader is: which log, how far into it, and how many lines came before."""

    source: int = 0
    position: int = 0
    index: int = 0


def start_offset(offset: int, last_event_id: str | None) -> int:
    """The first line to send: after Last-Event-ID when the client sent one, else `offset`."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return int(last_event_id.strip()) + 1
    return max(offset, 0)


def format_event(index: int | None, kind: str, data: str) -> str:
    head = f"id: {index}\n" if index is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"


def _complete_lines(path: Path, position: int) -> tuple[list[str], int]:
    """The whole lines after byte `position` and the position after the last of them."""
    try:
        with path.open("rb") as handle:
            handle.seek(position)
            data = handle.read()
    except FileNotFoundError:
        return [], position
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8").splitlines()
    return lines, position + end


def _wrap(run: str | None, line: str) -> str:
    return line if run is None else json.dumps({"run": run, "event": json.loads(line)})


async def stream(
    sources: Callable[[], list[tuple[str | None, Path]]],
    ended: Callable[[], str | None],
    offset: int,
) -> AsyncIterator[str]:
    """Yield SSE messages of the lines from `offset` on, then `end` once `ended()` says so.

    Args:
        sources: the run's (name, events.jsonl) pairs in writing order (name None: no wrap).
        ended: the run's final state as JSON once it has ended, else None.
        offset: the first line to send.
    """
    cursor, quiet = _Cursor(), 0.0
    while True:
        final = ended()  # read before the logs: lines written before the end are all seen
        sent = False
        for message in _advance(sources(), cursor, offset):
            sent = True
            yield message
        if final is not None and not sent:
            yield format_event(None, "end", final)
            return
        quiet = 0.0 if sent else quiet + POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(0 if sent else POLL_S)


def _advance(logs: list[tuple[str | None, Path]], cursor: _Cursor, offset: int) -> list[str]:
    """Read what is new in the current log, and move on through the logs that are complete.

    A log is complete once the next one exists (its run started after this one ended), so the
    next log's existence is looked at before this one is read.
    """
    messages: list[str] = []
    while cursor.source < len(logs):
        run, path = logs[cursor.source]
        complete = cursor.source + 1 < len(logs) and logs[cursor.source + 1][1].exists()
        lines, cursor.position = _complete_lines(path, cursor.position)
        for line in filter(str.strip, lines):
            if cursor.index >= offset:
                messages.append(format_event(cursor.index, "event", _wrap(run, line)))
            cursor.index += 1
        if not complete:
            break
        cursor.source, cursor.position = cursor.source + 1, 0
    return messages
