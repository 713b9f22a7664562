"""Ground truth beside a run, never input to it: a benchmark's accuracy of what was scored.

For a search space with a benchmark table (NB201: NATS-Bench's trained accuracies), every
event with an architecture carries the table's figures in its `truth` field, and the run's
summary names the table. This module is the one path by which those figures enter a run;
nothing in it is read by the proposers, the reflector or the prompts (they see
`HistoryEntry` and `ScoredArch`, which have no such field), and the loop's decisions use
them only in a run whose `fitness` is `benchmark`: the reference arm that selects by the
table's accuracy, an upper bound labelled as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasagent.agent.outcomes import Outcome
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings
from nasagent.evaluator.spaces.base import Benchmark, SearchSpace

if TYPE_CHECKING:
    from nasagent.agent.execution import Scoring

FITNESS_PROXY = "proxy"
FITNESS_BENCHMARK = "benchmark"
TRUTH_OUTCOMES = (Outcome.OK, Outcome.DUPLICATE, Outcome.SCORE_FAILED)
"""The outcomes of an event whose architecture is valid, so the table knows it."""


class NoBenchmarkError(NasAgentError):
    """A run that needs a benchmark table in a search space that has none."""


def table_of(space: SearchSpace) -> Benchmark | None:
    """The space's benchmark table for its task, or None."""
    return space.benchmark()


def truth_of(table: Benchmark | None, canonical: str | None) -> dict[str, Any] | None:
    """An event's `truth`: the table's test accuracy (headline and short-training, percent)
    and index of `canonical`, or None (no table, no architecture, or not in the table)."""
    if table is None or canonical is None:
        return None
    try:
        accuracy = table.lookup(canonical)
    except (KeyError, ValueError):
        return None
    return {"test_accuracy": accuracy.test_accuracy,
            "test_accuracy_short": accuracy.short_accuracy, "index": accuracy.index}


def table_record(table: Benchmark | None) -> dict[str, Any] | None:
    """What a run's summary says of its table: source, data set, size and best cell."""
    if table is None:
        return None
    best_arch, best = table.best()
    return {"source": table.source, "dataset": table.dataset, "architectures": len(table),
            "best_arch": best_arch, "best_test_accuracy": best.test_accuracy}


def require_table(space: SearchSpace) -> Benchmark:
    """The space's table, for a run whose fitness is the benchmark's accuracy.

    Raises:
        NoBenchmarkError: the space has none.
    """
    table = table_of(space)
    if table is None:
        raise NoBenchmarkError(
            f"fitness 'benchmark' selects by a benchmark table's accuracy, and search space "
            f"{space.name} has none (the nb201-* spaces do)"
        )
    return table


def benchmark_result(table: Benchmark, canonical: str, seed: int) -> ScoreResult:
    """The table's accuracy as the score of a run whose fitness is `benchmark`."""
    accuracy = table.lookup(canonical).test_accuracy
    return ScoreResult(proxy=FITNESS_BENCHMARK, score=accuracy, status=ProxyStatus.OK,
                       seconds=0.0, seed=seed, higher_is_better=True)


class TableTask:
    """The scoring task of a run whose fitness is the benchmark's accuracy: a look-up."""

    def __init__(self, table: Benchmark) -> None:
        self.table = table

    def __call__(self, arch: str, settings: ScoreSettings) -> ScoreResult:
        return benchmark_result(self.table, arch, settings.seed)


def table_scoring(table: Benchmark) -> Scoring:
    """A scoring executor that looks accuracies up (in this process: nothing to compute)."""
    from nasagent.agent.execution import (
        ExecutionPlan,
        InProcessScoring,
        Scoring,
        available_cores,
    )

    plan = ExecutionPlan(executor="benchmark table", workers=0, threads=1,
                         cores=available_cores())
    return Scoring(plan, InProcessScoring(None, task=TableTask(table)))
