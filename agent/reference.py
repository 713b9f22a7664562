"""Reference scores: a run that replays a recording decides from the recorded scores, always.

Zero-cost proxies of deep networks differ between CPUs far more than rounding suggests: with
oneDNN's AVX-512 kernels instead of AVX2 ones, GradNorm of the shipped transcripts' networks
moves by a median 1.3e-3 and up to 31% relative (`python -m bench.cpu_kernels`).
The loop decides from scores (population, parent choice, best-so-far, the history shown in
prompts), so a replay that let this machine's scores steer would change later prompts and miss
the recording. A run that replays a recording therefore takes every scoring decision from the
recorded events: an architecture the recording scored carries its recorded result (score, or
the recorded failure) in its event and state, whatever this machine computes. Rescoring is a
check beside it: the rescored value and status go into the event's volatile `rescored` and
`rescore_status` fields, and `drift_summary` turns them into per-architecture drift, its
median and maximum, and a one-line verdict. Only an architecture the recording never scored
(the run already left the recorded trajectory) is decided from this machine's score.

The memory cap holds in a replay too: an architecture whose estimate is over this machine's
cap is never built. If the recording scored it, the replay still decides from the recorded
result and reports the architecture as not rescored (`rescore_status` NOT_RESCORED, counted
apart from the drift); a refusal the recording made (outcome `over_budget`, status
`over_budget`) is a recorded result like a failed scoring, so the replay refuses it too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import EVENTS_FILE, Event, read_events
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult

REPLAY_KIND = "replay"
NOT_RESCORED = "not_rescored"
"""The `rescore_status` of an architecture over this machine's memory cap: not rebuilt."""
MAX_LISTED_BEYOND = 50
"""Architectures beyond the tolerance listed by name in a drift summary (the count is whole)."""


@dataclass(frozen=True)
class Recorded:
    """The result a recording holds for one architecture: a score, or how its scoring failed."""

    score: float | None
    status: str
    message: str = ""

    @classmethod
    def of(cls, event: Event) -> Recorded:
        # A failed scoring's message is the last note of its event, a refusal over the memory
        # cap its last error (agent.search._score_message).
        failed = event.status != ProxyStatus.OK
        lines = event.errors if event.status == ProxyStatus.OVER_BUDGET else event.notes
        message = lines[-1] if failed and lines else ""
        return cls(event.score, str(event.status), message)


@dataclass(frozen=True)
class Reconciled:
    """The result the loop decides from, and this machine's rescoring of it when a reference
    applied (`rescore_status` None: no recorded result, nothing to check against)."""

    result: ScoreResult
    rescored: float | None = None
    rescore_status: str | None = None


@dataclass(frozen=True)
class Drift:
    """One rescored architecture compared with its recorded result.

    `relative` is |rescored - recorded| / |recorded| when both scored, 0 when both failed the
    same way, and inf when only one of them scored (or they failed differently).
    """

    arch: str
    recorded: float | None
    rescored: float | None
    recorded_status: str
    rescore_status: str
    relative: float
    within: bool

    @property
    def status_differs(self) -> bool:
        return self.recorded_status != self.rescore_status


def relative_drift(recorded: float, rescored: float) -> float:
    """|rescored - recorded| / |recorded| (0 for two zeros, inf for a zero against non-zero)."""
    if recorded == rescored:
        return 0.0
    if recorded == 0 or not (math.isfinite(recorded) and math.isfinite(rescored)):
        return math.inf
    return abs(rescored - recorded) / abs(recorded)


class ReferenceScores:
    """Recorded results by canonical architecture, and the tolerance the drift check uses."""

    def __init__(self, recorded: Mapping[str, Recorded], rtol: float, source: str = "") -> None:
        self.recorded = dict(recorded)
        self.rtol = rtol
        self.source = source

    @classmethod
    def from_events(cls, events: Iterable[Event], rtol: float, source: str = "") -> ReferenceScores:
        """Every architecture the recording scored (successfully or not), first result kept."""
        recorded: dict[str, Recorded] = {}
        for event in events:
            if _was_scored(event) and event.arch not in recorded:
                recorded[str(event.arch)] = Recorded.of(event)
        return cls(recorded, rtol, source)

    @property
    def scores(self) -> dict[str, float]:
        """The recorded scores of the architectures that scored."""
        return {arch: r.score for arch, r in self.recorded.items() if r.score is not None}

    def __len__(self) -> int:
        return len(self.recorded)

    def reconcile(self, arch: str, local: ScoreResult) -> Reconciled:
        """The recorded result of `arch` (with this machine's timing), the local one aside.

        Without a recorded result the local one is returned as it is.
        """
        recorded = self.recorded.get(arch)
        if recorded is None:
            return Reconciled(local)
        return Reconciled(self._decided(recorded, local), local.score, str(local.status))

    def not_rescored(self, arch: str, refused: ScoreResult) -> Reconciled:
        """The recorded result of `arch`, which this machine refused to build (`refused`: its
        over-the-cap result, returned as it is when nothing was recorded)."""
        recorded = self.recorded.get(arch)
        if recorded is None:
            return Reconciled(refused)
        return Reconciled(self._decided(recorded, refused), None, NOT_RESCORED)

    @staticmethod
    def _decided(recorded: Recorded, local: ScoreResult) -> ScoreResult:
        return local.model_copy(update={
            "score": recorded.score, "status": ProxyStatus(recorded.status),
            "message": recorded.message,
        })

    def drift(self, arch: str, rescored: float | None, status: str) -> Drift | None:
        """How a rescoring of `arch` compares with its recorded result (None: none recorded)."""
        recorded = self.recorded.get(arch)
        if recorded is None:
            return None
        if recorded.score is not None and rescored is not None:
            relative = relative_drift(recorded.score, rescored)
        else:
            relative = 0.0 if recorded.status == status else math.inf
        within = relative <= self.rtol and recorded.status == status
        return Drift(arch, recorded.score, rescored, recorded.status, status, relative, within)


def _was_scored(event: Event) -> bool:
    return bool(event.arch) and event.status is not None and event.outcome in (
        Outcome.OK, Outcome.SCORE_FAILED, Outcome.OVER_BUDGET
    )


def reference_run_dir(llm_spec: str) -> Path | None:
    """The run directory a `replay:PATH` spec replays (PATH is it, or a file inside it)."""
    kind, _, target = llm_spec.partition(":")
    if kind != REPLAY_KIND or not target:
        return None
    path = Path(target)
    run_dir = path if path.is_dir() else path.parent
    return run_dir if (run_dir / EVENTS_FILE).exists() else None


def load_reference(llm_spec: str, rtol: float) -> ReferenceScores | None:
    """Reference scores from the run a `replay:` backend replays, or None when there is none."""
    run_dir = reference_run_dir(llm_spec)
    if run_dir is None:
        return None
    return ReferenceScores.from_events(read_events(run_dir), rtol, source=str(run_dir))


def drift_records(events: Sequence[Event], reference: ReferenceScores) -> list[Drift]:
    """The drift of every event whose scoring was checked against a recorded result."""
    records = []
    for event in events:
        if event.arch and event.rescore_status not in (None, NOT_RESCORED):
            drift = reference.drift(event.arch, event.rescored, event.rescore_status)
            if drift is not None:
                records.append(drift)
    return records


def not_rescored(events: Sequence[Event]) -> list[str]:
    """The architectures a replay decided from their recorded results without rebuilding them
    (over this machine's memory cap), each once, in order."""
    return list(dict.fromkeys(
        str(event.arch) for event in events if event.rescore_status == NOT_RESCORED
    ))


def drift_summary(
    records: Sequence[Drift], rtol: float, skipped: Sequence[str] = ()
) -> dict[str, Any]:
    """Median and maximum relative drift, what lies beyond the tolerance, and the verdict;
    `skipped`: the architectures not rescored (over this machine's memory cap)."""
    relative = [d.relative for d in records if d.recorded is not None and d.rescored is not None]
    beyond = [d for d in records if not d.within]
    summary: dict[str, Any] = {
        "score_rtol": rtol,
        "rescored": len(records),
        "not_rescored": len(skipped),
        "not_rescored_archs": list(skipped[:MAX_LISTED_BEYOND]),
        "within_tolerance": len(records) - len(beyond),
        "beyond_tolerance": len(beyond),
        "status_differs": sum(d.status_differs for d in records),
        "max_relative_drift": _finite(max(relative)) if relative else None,
        "median_relative_drift": _finite(statistics.median(relative)) if relative else None,
        "beyond": [_beyond_record(d) for d in beyond[:MAX_LISTED_BEYOND]],
    }
    summary["verdict"] = describe_drift(summary)
    return summary


def _beyond_record(drift: Drift) -> dict[str, Any]:
    return {"arch": drift.arch, "recorded": drift.recorded, "rescored": drift.rescored,
            "recorded_status": drift.recorded_status, "rescore_status": drift.rescore_status,
            "relative": _finite(drift.relative)}


def _finite(value: float) -> float | None:
    """JSON has no infinity: a drift against a recorded zero is written as null."""
    return value if math.isfinite(value) else None


def describe_drift(summary: Mapping[str, Any]) -> str:
    """The one-line verdict of a rescoring check, for the terminal and the report."""
    return _drift_verdict(summary) + _skipped(summary.get("not_rescored", 0))


def _skipped(count: int) -> str:
    if not count:
        return ""
    return (f"; {count} recorded architectures were not rescored: their memory estimate is "
            f"over this machine's cap (--max-memory), and the replay took their recorded "
            f"results")


def _drift_verdict(summary: Mapping[str, Any]) -> str:
    count = summary["rescored"]
    if not count:
        return "scores: no architecture was rescored against a recorded result"
    figures = (f"median relative drift {_show(summary['median_relative_drift'])}, max "
               f"{_show(summary['max_relative_drift'])}")
    beyond, rtol = summary["beyond_tolerance"], summary["score_rtol"]
    if not beyond:
        return (f"scores: {count} architectures rescored on this machine agree with the "
                f"recording within {rtol:g} ({figures})")
    failed = summary.get("status_differs", 0)
    statuses = f", {failed} of them scored or failed differently" if failed else ""
    return (f"scores: {beyond} of {count} architectures rescored on this machine differ from "
            f"the recording by more than {rtol:g} ({figures}{statuses}); every decision was "
            f"taken from the recorded scores, so the trajectory does not depend on them")


def _show(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
