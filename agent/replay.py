"""Re-run a recorded run offline from its own config and LLM recording, and say what differs.

The replayed run is an ordinary run directory whose `llm` is `replay:<original llm_calls>`,
so it needs no network and no API key. Its events are compared with the original's, field
by field except timings; every difference is reported, none is hidden.

Scores never steer a replay: it decides from the recorded result of every architecture the
recording scored (agent.reference), so the trajectory, prompts and request hashes are the
recording's on any CPU. Rescoring on this machine is a check beside it: the drift (median and
max relative, and what lies beyond `score_rtol`) is reported with a one-line verdict and
written to `score_drift.json` in the replayed run. `strict_scores` makes drift beyond the
tolerance a failure of the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasagent.agent.config import LIMIT_KEYS, RunConfig, config_from_dict, load_run_config
from nasagent.agent.reference import (
    ReferenceScores,
    drift_records,
    drift_summary,
    not_rescored,
)
from nasagent.agent.runlog import (
    CONFIG_FILE,
    DRIFT_FILE,
    EVENTS_FILE,
    LLM_CALLS_FILE,
    Event,
    read_events,
    write_json,
)
from nasagent.agent.search import RunResult, run_search

MAX_REPORTED_DIFFERENCES = 20

LOCAL_EXECUTION = {"executor": "local", "ray_address": None}
"""A replay scores on this machine: where a run was scored never changes a score, and the
cluster (or the Ray extra) of the recorded run need not exist here."""


def local_execution(config: RunConfig) -> dict[str, Any]:
    """LOCAL_EXECUTION for a replay of `config`. A Ray run with per-scoring limits and no
    `workers` (on Ray: a slot per CPU) replays them in one local worker, the only place a
    limit can be applied here."""
    if config.workers == 0 and any(getattr(config, key) is not None for key in LIMIT_KEYS):
        return {**LOCAL_EXECUTION, "workers": 1}
    return dict(LOCAL_EXECUTION)


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
    drift: dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """The same events (outcomes, architectures, recorded scores): the run was reproduced."""
        return not self.differences and self.recorded_events == self.replayed_events

    @property
    def scores_agree(self) -> bool:
        """Every rescoring agrees with the recording within the tolerance."""
        return not self.drift.get("beyond_tolerance")


def replay_run(
    run_dir: Path, out: Path, *, rescore: bool = True, progress: bool = False,
    score_rtol: float | None = None, max_memory: object = "auto",
) -> ReplayReport:
    """Replay `run_dir` into `out` and compare the events.

    Args:
        run_dir: a run directory with config.toml, events.jsonl and (for LLM runs) llm_calls.jsonl.
        out: the new run directory; must not hold a run yet.
        rescore: score every architecture again as a check (True) or not at all (False);
            either way the replay decides from the recorded scores.
        progress: show a progress bar.
        score_rtol: the relative drift beyond which a rescoring is reported as differing
            (default: the recorded run's `score_rtol`).
        max_memory: this machine's memory cap in MB ("auto": half its memory; 0 or None:
            none), never the recording's: an architecture over it is not rescored, and the
            replay takes its recorded result (agent.reference).
    """
    if not (run_dir / EVENTS_FILE).exists():
        raise FileNotFoundError(f"{run_dir} has no {EVENTS_FILE}: not a run directory")
    recorded_config = load_run_config(run_dir / CONFIG_FILE)
    values = recorded_config.model_dump()
    values.update(llm=f"replay:{run_dir / LLM_CALLS_FILE}", model=recorded_config.llm_model)
    values.update(local_execution(recorded_config), max_memory=max_memory)
    if score_rtol is not None:
        values["score_rtol"] = score_rtol
    config = config_from_dict(values, source="replay")
    recorded = read_events(run_dir)
    reference = ReferenceScores.from_events(recorded, config.score_rtol, source=str(run_dir))
    known_scores = None if rescore else _recorded_scores(recorded)
    result = run_search(
        config, out, progress=progress, known_scores=known_scores, reference=reference
    )
    replayed = read_events(out)
    report = ReplayReport(run_dir, out, result, len(recorded), len(replayed))
    report.differences = compare_events(recorded, replayed)
    report.drift = drift_summary(drift_records(replayed, reference), config.score_rtol,
                                 not_rescored(replayed))
    write_json(out / DRIFT_FILE, report.drift)
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
