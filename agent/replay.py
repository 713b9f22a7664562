"""Re-run a recorded run offline from its own config and LLM recording, and say what differs.

The replayed run is an ordinary run directory whose `llm` is `replay:<original llm_calls>`,
so it needs no network and no API key. Its events are compared with the original's, field
by field except timings; every difference is reported, none is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nasagent.agent.config import load_run_config
from nasagent.agent.runlog import CONFIG_FILE, EVENTS_FILE, LLM_CALLS_FILE, Event, read_events
from nasagent.agent.search import RunResult, run_search

MAX_REPORTED_DIFFERENCES = 20


@dataclass(frozen=True)
class EventDifference:
    """One iteration whose replayed event is not the recorded one."""

    index: int
    iteration: int | None
    fields: dict[str, tuple[object, object]]

    def describe(self) -> str:
        parts = [f"{name}: recorded {old!r} vs replayed {new!r}" for name, (old, new) in
                 self.fields.items()]
        return f"event {self.index} (iteration {self.iteration}): " + "; ".join(parts)


@dataclass
class ReplayReport:
    """The replayed run and how its events compare with the recorded ones."""

    original: Path
    replayed: Path
    result: RunResult
    recorded_events: int
    replayed_events: int
    differences: list[EventDifference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences and self.recorded_events == self.replayed_events


def replay_run(
    run_dir: Path, out: Path, *, rescore: bool = True, progress: bool = False
) -> ReplayReport:
    """Replay `run_dir` into `out` and compare the events.

    Args:
        run_dir: a run directory with config.toml, events.jsonl and (for LLM runs) llm_calls.jsonl.
        out: the new run directory; must not hold a run yet.
        rescore: score every architecture again (True) or reuse the recorded scores (False).
        progress: show a progress bar.
    """
    if not (run_dir / EVENTS_FILE).exists():
        raise FileNotFoundError(f"{run_dir} has no {EVENTS_FILE}: not a run directory")
    recorded_config = load_run_config(run_dir / CONFIG_FILE)
    config = recorded_config.model_copy(update={
        "llm": f"replay:{run_dir / LLM_CALLS_FILE}", "model": recorded_config.llm_model,
    })
    recorded = read_events(run_dir)
    known_scores = None if rescore else _recorded_scores(recorded)
    result = run_search(config, out, progress=progress, known_scores=known_scores)
    replayed = read_events(out)
    report = ReplayReport(run_dir, out, result, len(recorded), len(replayed))
    report.differences = compare_events(recorded, replayed)
    return report


def compare_events(recorded: list[Event], replayed: list[Event]) -> list[EventDifference]:
    """Field-by-field differences (timings excluded), including missing or extra events.

    A field the recorded log does not hold at all (it was written before the field existed,
    e.g. `cost_usd`) is not compared: the log says nothing about it.
    """
    differences = []
    for index in range(max(len(recorded), len(replayed))):
        old = recorded[index].stable_view() if index < len(recorded) else {}
        new = replayed[index].stable_view() if index < len(replayed) else {}
        written = recorded[index].model_fields_set if index < len(recorded) else set(new)
        fields = {
            name: (old.get(name), new.get(name))
            for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name) and name in written
        }
        if fields:
            iteration = (old or new).get("iteration")
            differences.append(EventDifference(index, iteration, fields))
    return differences


def _recorded_scores(events: list[Event]) -> dict[str, Event]:
    return {e.arch: e for e in events if e.arch and e.status is not None}
