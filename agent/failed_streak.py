"""Iterations lost to a failing LLM endpoint: found in the log, set aside on resume, run again.

The loop stops after `max_consecutive_failures` proposals in a row fail at the LLM call, and a
run whose every proposal failed there does not finish either. Such a streak says something
about the endpoint (unreachable, out of quota, a replay that misses), nothing about the
mutator, so it is not part of the run's result: the run stays unfinished, and a resume moves
those iterations out of events.jsonl (and every LLM call from the first of them on out of
llm_calls.jsonl) into side files beside them, then dispatches them again. The search state
rebuilt from the log is then exactly that of a run in which they never happened; an endpoint
that fails again stops the run again, unfinished, for the same reason.

What the calls cost is not forgotten: the set-aside events keep their tokens and cost, and
the run's spend (the budget guard's, summary.json's) is that of the log plus the set-aside
events. Only the result (outcomes, rates, best-so-far curve) leaves them out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasagent.agent.config import RunConfig
from nasagent.agent.outcomes import Outcome
from nasagent.agent.pricing import Spend
from nasagent.agent.runlog import (
    EVENTS_FILE,
    LLM_CALLS_FILE,
    SET_ASIDE_CALLS_FILE,
    SET_ASIDE_EVENTS_FILE,
    SUMMARY_FILE,
    Event,
    iter_jsonl,
    read_events,
    read_json,
    repair_torn_tail,
    write_text_atomic,
)

logger = logging.getLogger(__name__)


def stopping_streak(events: Sequence[Event], config: RunConfig) -> list[Event]:
    """The trailing failed LLM calls that left the run unfinished, else [].

    That is the last search events with outcome `llm_error`, when there are at least
    `max_consecutive_failures` of them (the loop stopped on them) or when they are every
    search event of a run that logged all its iterations (nothing came from the LLM).
    """
    search = [e for e in events if e.phase == "search"]
    streak: list[Event] = []
    for event in reversed(search):
        if event.outcome is not Outcome.LLM_ERROR:
            break
        streak.insert(0, event)
    if len(streak) >= config.max_consecutive_failures:
        return streak
    if streak and len(streak) == len(search) and len(search) >= config.iterations:
        return streak
    return []


def describe_streak(streak: Sequence[Event]) -> str:
    """`3 consecutive failed LLM calls (iterations 8-10; last: ...)`."""
    span = f"{streak[0].iteration}-{streak[-1].iteration}" if len(streak) > 1 else (
        str(streak[0].iteration))
    last = "; ".join(streak[-1].errors)[:300]
    return f"{len(streak)} consecutive failed LLM calls (iterations {span}; last: {last})"


@dataclass(frozen=True)
class SetAside:
    """What a resume moved out of the active logs."""

    events: tuple[Event, ...]
    calls: int

    def describe(self, run_dir: Path) -> str:
        return (f"set aside {describe_streak(self.events)} and {self.calls} recorded LLM "
                f"call(s) into {run_dir / SET_ASIDE_EVENTS_FILE} and "
                f"{SET_ASIDE_CALLS_FILE}; those iterations run again")


def set_aside_stopping_streak(run_dir: Path, config: RunConfig) -> SetAside | None:
    """Move the stopping streak (see `stopping_streak`) out of the active logs, if there is one.

    Every call recorded from the streak's first iteration on moves too (the streak's own,
    and failures of iterations in flight when the loop stopped), so that resuming asks the
    endpoint again instead of replaying a recorded failure, and a replay of the finished run
    sees only the calls its events used. Each file is replaced atomically; the side file is
    written first and events.jsonl last, so a kill in between leaves a log that a later
    resume sets aside again (a block already at the end of a side file is not copied twice).

    Returns:
        What was moved, or None when the log ends in no stopping streak.
    """
    streak = stopping_streak(read_events(run_dir), config)
    if not streak:
        return None
    first, iterations = streak[0].iteration, {e.iteration for e in streak}
    calls_path = run_dir / LLM_CALLS_FILE
    repair_torn_tail(calls_path)
    calls = _move_lines(calls_path, run_dir / SET_ASIDE_CALLS_FILE,
                        lambda r: _is_call(r) and int(r["iteration"]) >= first)
    _move_lines(run_dir / EVENTS_FILE, run_dir / SET_ASIDE_EVENTS_FILE,
                lambda r: r.get("phase", "search") == "search" and r.get("iteration") in iterations)
    moved = SetAside(tuple(streak), calls)
    logger.info("%s: %s", run_dir, moved.describe(run_dir))
    return moved


def _is_call(record: Any) -> bool:
    return (isinstance(record, dict) and "request_hash" in record
            and isinstance(record.get("iteration"), int))


def _move_lines(source: Path, target: Path, moves: Callable[[Any], bool]) -> int:
    """Move the lines of `source` whose JSON record `moves` selects to the end of `target`."""
    if not source.exists():
        return 0
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    moved = [line for line in lines if _selected(line, moves)]
    if not moved:
        return 0
    block = "".join(moved)
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    if not existing.endswith(block):
        write_text_atomic(target, existing + block)
    write_text_atomic(source, "".join(line for line in lines if not _selected(line, moves)))
    return len(moved)


def _selected(line: str, moves: Callable[[Any], bool]) -> bool:
    try:
        return bool(line.strip()) and moves(json.loads(line))
    except json.JSONDecodeError:
        return False


def set_aside_events(run_dir: Path) -> list[Event]:
    """Every event a resume set aside (all attempts), in the order they were moved."""
    return [Event.model_validate(r) for r in iter_jsonl(run_dir / SET_ASIDE_EVENTS_FILE)]


def set_aside_record(run_dir: Path) -> dict[str, Any] | None:
    """What summary.json says about the set-aside attempts (None when there were none)."""
    events = set_aside_events(run_dir)
    if not events:
        return None
    spend = Spend()
    for event in events:
        spend += Spend(event.tokens_in, event.tokens_out, event.tokens_cached, event.cost_usd)
    return {
        "events": len(events), "file": SET_ASIDE_EVENTS_FILE, "calls_file": SET_ASIDE_CALLS_FILE,
        "llm_calls": sum(e.llm_calls for e in events), "tokens": sum(e.tokens for e in events),
        **spend.fields(),
    }


def finished_at(run_dir: Path, config: RunConfig) -> bool:
    """Whether the run in `run_dir` finished at `config`'s budget: its summary says so, every
    iteration is logged and the log does not end in a stopping streak (a summary written by
    an earlier version may say `finished` over one)."""
    summary = run_dir / SUMMARY_FILE
    if not summary.exists():
        return False
    data = read_json(summary)
    if not data.get("finished") or data.get("iterations") != config.iterations:
        return False
    events = read_events(run_dir)
    logged = {e.iteration for e in events if e.phase == "search"}
    return len(logged) >= config.iterations and not stopping_streak(events, config)
