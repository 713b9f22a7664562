"""The run directory and its append-only logs; `events.jsonl` is the source of truth.

Layout of a run directory:
    config.toml       the resolved configuration
    events.jsonl      one line per iteration (and per initial-population member)
    llm_calls.jsonl   every LLM call, written by agent.llm.recording
    population.json   checkpoint of the population after the last applied iteration
    best.json         the best valid architecture so far
    summary.json      written when the run finishes (or stops)
    score_drift.json  written by `nasagent replay`: this machine's rescoring vs the recording
    events.set-aside.jsonl     iterations whose LLM call failed in the streak that stopped
    llm_calls.set-aside.jsonl  the run, and their calls: moved here on resume, then re-run
                               (agent.failed_streak)

The marker files of the other kinds of result folder are named here too, so that every
command recognises every kind (agent.preflight.FOLDER_KINDS).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from nasagent.agent.outcomes import Count, Outcome

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
EVENTS_FILE = "events.jsonl"
LLM_CALLS_FILE = "llm_calls.jsonl"
POPULATION_FILE = "population.json"
BEST_FILE = "best.json"
SUMMARY_FILE = "summary.json"
DRIFT_FILE = "score_drift.json"
SET_ASIDE_EVENTS_FILE = "events.set-aside.jsonl"
SET_ASIDE_CALLS_FILE = "llm_calls.set-aside.jsonl"

COMPARE_FILE = "compare.toml"
"""A comparison's (and the demo's) plan, at the top of its folder."""
STUDY_FILE = "study.json"
"""A correlation study's settings and architectures (agent.correlate)."""
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "weights.pt"
"""What `nasagent train` writes (evaluator.training names them the same; a test checks)."""

VOLATILE_EVENT_FIELDS = frozenset(
    {"seconds", "score_seconds", "llm_seconds", "timestamp", "rescored", "rescore_status"}
)
"""Fields that measure the machine (time, and this machine's rescoring of an architecture
whose recorded result a replay decided from); everything else in an event is reproduced
exactly by a replay."""


class Event(BaseModel):
    """One line of events.jsonl: what one iteration proposed and what came of it.

    `phase` is "init" for the scored seed and initial-population members (they do not count
    against the iteration budget) and "search" for proposals. `tokens_*` and `cost_usd` are the
    spend of the iteration's LLM calls (reflection included); `cost_usd` is None when a call
    had no price (or the log predates prices) and 0.0 when there was no call.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    iteration: int
    phase: str = "search"
    mutator: str
    parent: str | None
    parent_score: float | None
    outcome: Outcome
    arch: str | None
    score: float | None
    status: str | None = None
    rescored: float | None = None
    rescore_status: str | None = None
    params: Count | None = None
    flops: Count | None = None
    layers: int | None = None
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    expected_score: float | None = None
    best_score: float | None = None
    llm_calls: int = 0
    tokens: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float | None = None
    repairs: int = 0
    lessons: tuple[str, ...] | None = None
    truth: dict[str, Any] | None = None
    """A benchmark table's figures for `arch` (agent.truth); never shown to a model."""
    seconds: float = 0.0
    score_seconds: float = 0.0
    llm_seconds: float = 0.0
    timestamp: float = 0.0

    def stable_view(self) -> dict[str, Any]:
        """The event without its timing fields, for exact comparison between runs."""
        return self.model_dump(mode="json", exclude=set(VOLATILE_EVENT_FIELDS))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and force it to disk, so a kill -9 loses at most this line."""
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON Lines file, skipping (with a warning) a torn last line."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                logger.warning("%s: skipping a torn last line (the run was killed mid-write)", path)
                return
            raise


def repair_torn_tail(path: Path) -> None:
    """Make a JSON Lines file safe to append to after a killed writer.

    A last line that is a whole record lacking only its newline gets the newline; an
    unfinished fragment is cut off, with a warning.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    fragment = data[keep:]
    if _is_json(fragment):
        with path.open("ab") as handle:
            handle.write(b"\n")
        return
    logger.warning("%s: removing a torn last line (%d bytes) left by an interrupted run", path,
                   len(fragment))
    with path.open("r+b") as handle:
        handle.truncate(keep)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def read_events(run_dir: Path) -> list[Event]:
    """All complete events of a run directory, in the order they were written."""
    return [Event.model_validate(record) for record in iter_jsonl(run_dir / EVENTS_FILE)]


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically (temporary file, then rename)."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically, so a reader at the same moment never sees it half-written."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
