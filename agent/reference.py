"""Reference scores: a replayed run decides from the recorded scores, within a tolerance.

Zero-cost proxies differ between CPUs in the 4th-5th significant digit (GradNorm sums
gradients in an order the BLAS library picks). The loop decides from scores (population,
parent choice, best-so-far, the history shown in prompts), so without a reference a replay on
another machine would change every later prompt and miss the recording. A run that replays a
recording therefore gets the recorded events as reference scores: a rescored architecture whose
score agrees with the recorded one within `score_rtol` (relative) carries the recorded score in
its event and state, and the rescored value in the event's `rescored` field; beyond the
tolerance the rescored value is used, so the run visibly differs from the recording.
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


@dataclass(frozen=True)
class Drift:
    """One rescored architecture compared with its recorded score."""

    arch: str
    recorded: float
    rescored: float
    relative: float
    within: bool


def relative_drift(recorded: float, rescored: float) -> float:
    """|rescored - recorded| / |recorded| (0 for two zeros, inf for a zero against non-zero)."""
    if recorded == rescored:
        return 0.0
    if recorded == 0 or not (math.isfinite(recorded) and math.isfinite(rescored)):
        return math.inf
    return abs(rescored - recorded) / abs(recorded)


class ReferenceScores:
    """Recorded scores by canonical architecture, and the tolerance a rescoring must meet."""

    def __init__(self, scores: Mapping[str, float], rtol: float, source: str = "") -> None:
        self.scores = dict(scores)
        self.rtol = rtol
        self.source = source

    @classmethod
    def from_events(cls, events: Iterable[Event], rtol: float, source: str = "") -> ReferenceScores:
        scores = {
            e.arch: e.score for e in events
            if e.outcome is Outcome.OK and e.arch and e.score is not None
        }
        return cls(scores, rtol, source)

    def __len__(self) -> int:
        return len(self.scores)

    def drift(self, arch: str, rescored: float) -> Drift | None:
        """How `rescored` compares with the recorded score of `arch` (None: none recorded)."""
        recorded = self.scores.get(arch)
        if recorded is None:
            return None
        relative = relative_drift(recorded, rescored)
        return Drift(arch, recorded, rescored, relative, relative <= self.rtol)

    def reconcile(self, arch: str, result: ScoreResult) -> tuple[ScoreResult, float | None]:
        """The result the loop decides from, and the rescored value when a reference applied.

        A successful rescoring within the tolerance takes the recorded score; otherwise the
        result is returned unchanged (beyond the tolerance it then differs from the record).
        """
        if result.status is not ProxyStatus.OK or result.score is None:
            return result, None
        drift = self.drift(arch, result.score)
        if drift is None:
            return result, None
        if drift.within:
            return result.model_copy(update={"score": drift.recorded}), result.score
        return result, result.score


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
    """The drift of every event that was rescored against a reference score."""
    records = []
    for event in events:
        if event.arch and event.rescored is not None:
            drift = reference.drift(event.arch, event.rescored)
            if drift is not None:
                records.append(drift)
    return records


def drift_summary(records: Sequence[Drift], rtol: float) -> dict[str, Any]:
    """Max and median relative drift, and the architectures beyond the tolerance."""
    relative = [d.relative for d in records]
    beyond = [d for d in records if not d.within]
    return {
        "score_rtol": rtol,
        "rescored": len(records),
        "within_tolerance": len(records) - len(beyond),
        "beyond_tolerance": len(beyond),
        "max_relative_drift": _finite(max(relative)) if relative else None,
        "median_relative_drift": _finite(statistics.median(relative)) if relative else None,
        "beyond": [
            {"arch": d.arch, "recorded": d.recorded, "rescored": d.rescored,
             "relative": _finite(d.relative)}
            for d in beyond
        ],
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: a drift against a recorded zero is written as null."""
    return value if math.isfinite(value) else None


def describe_drift(summary: Mapping[str, Any]) -> str:
    """One line for the terminal, e.g. `rescored 21 architectures: max relative drift ...`."""
    if not summary["rescored"]:
        return "no architecture was rescored against a recorded score"
    return (
        f"rescored {summary['rescored']} architectures against the recorded scores: max "
        f"relative drift {_show(summary['max_relative_drift'])}, median "
        f"{_show(summary['median_relative_drift'])} (tolerance {summary['score_rtol']:g}, "
        f"{summary['beyond_tolerance']} beyond it)"
    )


def _show(value: float | None) -> str:
    return "inf" if value is None else f"{value:.3g}"
