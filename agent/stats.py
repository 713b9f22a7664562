"""Statistics over run logs: best-so-far curves, bands across seeds, rates and a U test.

Pure functions on events and curves, so every number in a comparison report can be checked by
hand. "Better" always follows the proxy's direction (`higher_is_better`; SynFlow is lower).
A missing value is NaN inside a curve and None at the edges (JSON, tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import Event

Curve = list[float]
"""Best-so-far score after search iterations 1..N (index i holds iteration i + 1)."""


def is_better(a: float, b: float, higher_is_better: bool) -> bool:
    """True when score `a` is strictly better than `b` in the proxy's direction."""
    return a > b if higher_is_better else a < b


def best_of(scores: Iterable[float], higher_is_better: bool) -> float | None:
    """The best finite score, or None when there is none."""
    best: float | None = None
    for score in scores:
        if math.isfinite(score) and (best is None or is_better(score, best, higher_is_better)):
            best = score
    return best


def _valid_score(event: Event) -> float | None:
    ok = event.outcome is Outcome.OK and event.score is not None
    return event.score if ok and math.isfinite(event.score or 0.0) else None


def initial_best(events: Sequence[Event], higher_is_better: bool) -> float | None:
    """The best score scored in the init phase (the seed, plus any initial population)."""
    scores = (_valid_score(e) for e in events if e.phase == "init")
    return best_of((s for s in scores if s is not None), higher_is_better)


def best_so_far(events: Sequence[Event], iterations: int, higher_is_better: bool) -> Curve:
    """The best-so-far curve over search iterations 1..`iterations`.

    Iterations before the first valid proposal carry the init-phase best (the seed's score), or
    NaN when the seed was not scored. Iterations after the last one logged (a partial run) are
    NaN, so a stopped run never looks as if it had finished.
    """
    by_iteration = {e.iteration: e for e in events if e.phase == "search"}
    last_logged = max(by_iteration, default=0)
    best = initial_best(events, higher_is_better)
    curve: Curve = []
    for iteration in range(1, iterations + 1):
        event = by_iteration.get(iteration)
        score = _valid_score(event) if event else None
        if score is not None and (best is None or is_better(score, best, higher_is_better)):
            best = score
        logged = iteration <= last_logged
        curve.append(best if logged and best is not None else math.nan)
    return curve


@dataclass(frozen=True)
class Band:
    """Mean and sample standard deviation across seeds, per iteration (NaN where n < 1 / 2)."""

    mean: list[float]
    std: list[float]
    n: list[int]


@dataclass(frozen=True)
class RangeBand:
    """Mean, lowest and highest across all seeds, per iteration; NaN at an iteration where any
    seed has no value, so the mean is always over every seed and the band never leaves the
    values the seeds reached."""

    mean: list[float]
    low: list[float]
    high: list[float]


def mean_range_band(curves: Sequence[Curve]) -> RangeBand:
    """Mean and min-max across curves of equal length (NaN where a curve has no value)."""
    if not curves:
        return RangeBand([], [], [])
    matrix = np.asarray(curves, dtype=float)
    complete = np.isfinite(matrix).all(axis=0)
    nan = np.full(matrix.shape[1], math.nan)
    mean = np.where(complete, matrix.mean(axis=0), nan)
    low = np.where(complete, matrix.min(axis=0), nan)
    high = np.where(complete, matrix.max(axis=0), nan)
    return RangeBand([float(v) for v in mean], [float(v) for v in low], [float(v) for v in high])


def mean_std_band(curves: Sequence[Curve]) -> Band:
    """Mean ± std across curves of equal length, ignoring NaN entries per iteration."""
    if not curves:
        return Band([], [], [])
    matrix = np.asarray(curves, dtype=float)
    finite = np.isfinite(matrix)
    counts = finite.sum(axis=0)
    means, stds = [], []
    for column, n in zip(matrix.T, counts, strict=True):
        values = column[np.isfinite(column)]
        means.append(float(values.mean()) if n >= 1 else math.nan)
        stds.append(float(values.std(ddof=1)) if n >= 2 else math.nan)
    return Band(means, stds, [int(n) for n in counts])


def iterations_to_reach(curve: Curve, threshold: float, higher_is_better: bool) -> int | None:
    """The first iteration (1-based) whose best-so-far is at least as good as `threshold`.

    Returns None when the curve never gets there ("not reached").
    """
    for index, value in enumerate(curve):
        if math.isfinite(value) and not is_better(threshold, value, higher_is_better):
            return index + 1
    return None


def median_or_not_reached(values: Sequence[int | None]) -> float | None:
    """Median where "not reached" (None) counts as later than any iteration.

    Returns None when the median itself falls on a "not reached" seed, or when empty.
    """
    if not values:
        return None
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = len(ordered) // 2
    picks = ordered[middle - 1: middle + 1] if len(ordered) % 2 == 0 else [ordered[middle]]
    if any(p is None for p in picks):
        return None
    return float(sum(p for p in picks if p is not None)) / len(picks)


@dataclass(frozen=True)
class Summary:
    """Location and spread of one sample; fields are None when the sample is too small."""

    n: int
    mean: float | None
    std: float | None
    median: float | None


def summarize(values: Iterable[float | None]) -> Summary:
    """Mean, sample std (n >= 2) and median of the finite values."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Summary(0, None, None, None)
    array = np.asarray(finite, dtype=float)
    std = float(array.std(ddof=1)) if len(finite) >= 2 else None
    return Summary(len(finite), float(array.mean()), std, float(np.median(array)))


def outcome_rate(events: Iterable[Event], outcome: Outcome) -> float | None:
    """The fraction of search-phase proposals with `outcome`; None when there were none."""
    search = [e for e in events if e.phase == "search"]
    return sum(e.outcome is outcome for e in search) / len(search) if search else None


def smallest_p_value(n_candidate: int, n_baseline: int) -> float | None:
    """The smallest one-sided exact Mann-Whitney p-value these sample sizes allow when no values
    tie: 1 / C(n1 + n2, n1), reached when every candidate beats every baseline value. Ties can
    only raise it; `mann_whitney` states the floor of the values actually observed."""
    if n_candidate < 1 or n_baseline < 1:
        return None
    return 1.0 / math.comb(n_candidate + n_baseline, n_candidate)


EXACT = "exact"
"""The p-value is a tail of the exact permutation distribution of U (midranks for ties)."""

NORMAL = "normal approximation"
"""The p-value is scipy's tie-corrected normal approximation (too many assignments to count)."""

COUNT_LIMIT = 2**62
"""The largest subset count the exact distribution may hold; its counts then fit in int64."""

WORK_LIMIT = 10**9
"""The most table cells the exact count may update (about a second); past it, the normal
approximation. Neither limit is near the seed counts of a comparison (C(60, 30) is counted)."""


@dataclass(frozen=True)
class TestResult:
    """A one-sided Mann–Whitney U test; `p_value` is None with a `reason` when not computable.

    `smallest_p_value` is the floor the observed values allow (ties raise it above
    1 / C(n1 + n2, n1)); `p_value` is never below it. `method` is `EXACT` or `NORMAL`, and
    `assignments` the number of ways the pooled values can be split into the two samples.
    """

    p_value: float | None
    statistic: float | None
    alternative: str
    reason: str | None = None
    smallest_p_value: float | None = None
    method: str | None = None
    assignments: int | None = None


def midranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n of `values`, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and values[order[stop + 1]] == values[order[start]]:
            stop += 1
        for position in range(start, stop + 1):
            ranks[order[position]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def rank_sum_counts(doubled_ranks: Sequence[int], n1: int) -> np.ndarray:
    """How many n1-subsets of the pooled values have each doubled rank sum.

    Index s of the result counts the subsets whose doubled midranks add up to s, so the counts
    are the exact null distribution of the rank sum (and of U) with these ties. Counted by
    dynamic programming over the values rather than by listing all C(n, n1) subsets.
    """
    width = sum(sorted(doubled_ranks)[len(doubled_ranks) - n1:]) + 1
    table = np.zeros((n1 + 1, width), dtype=np.int64)
    table[0, 0] = 1
    for seen, rank in enumerate(doubled_ranks):
        for k in range(min(seen + 1, n1), 0, -1):
            table[k, rank:] += table[k - 1, : width - rank]
    return table[n1]


def exact_fits(n1: int, n2: int) -> bool:
    """Whether the exact distribution of U for these sample sizes is counted within the limits:
    every intermediate count (at most C(n, min(n1, n // 2))) fits, and the work is bounded."""
    n = n1 + n2
    work = n * n1 * (2 * n1 * n + 1)
    return math.comb(n, min(n1, n // 2)) <= COUNT_LIMIT and work <= WORK_LIMIT


def _exact_test(a: Sequence[float], b: Sequence[float], higher: bool) -> TestResult:
    ranks = midranks([*a, *b])
    doubled = [round(2 * rank) for rank in ranks]
    counts = rank_sum_counts(doubled, len(a))
    total = int(counts.sum())
    observed = sum(doubled[: len(a)])
    tail = counts[observed:] if higher else counts[: observed + 1]
    extreme = np.flatnonzero(counts)[-1 if higher else 0]
    u = observed / 2 - len(a) * (len(a) + 1) / 2
    return TestResult(int(tail.sum()) / total, u, "greater" if higher else "less",
                      smallest_p_value=int(counts[extreme]) / total, method=EXACT,
                      assignments=total)


def _normal_test(a: Sequence[float], b: Sequence[float], higher: bool) -> TestResult:
    alternative = "greater" if higher else "less"
    result = mannwhitneyu(a, b, alternative=alternative, method="asymptotic")
    pooled = sorted([*a, *b], reverse=higher)  # the candidate takes the most extreme values
    floor = mannwhitneyu(pooled[: len(a)], pooled[len(a):], alternative=alternative,
                         method="asymptotic")
    return TestResult(float(result.pvalue), float(result.statistic), alternative,
                      smallest_p_value=float(floor.pvalue), method=NORMAL,
                      assignments=math.comb(len(a) + len(b), len(a)))


def mann_whitney(
    candidate: Sequence[float | None], baseline: Sequence[float | None], higher_is_better: bool
) -> TestResult:
    """Test whether `candidate` scores are better than `baseline` (one-sided, proxy direction).

    None/NaN values are dropped first. The p-value is exact: the tail of the permutation
    distribution of U over all C(n1 + n2, n1) splits of the pooled values, with midranks for
    ties, so it is never below the stated `smallest_p_value`. Only where `exact_fits` is false
    (far beyond a comparison's seed counts) does it fall back to the normal approximation, and
    `method` says so. The test is not run (p_value None) when either sample has fewer than two
    values or when every value ties, since U carries no information then.
    """
    alternative = "greater" if higher_is_better else "less"
    a = [v for v in candidate if v is not None and math.isfinite(v)]
    b = [v for v in baseline if v is not None and math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        reason = f"needs at least 2 values per arm (got {len(a)} and {len(b)})"
        return TestResult(None, None, alternative, reason, smallest_p_value(len(a), len(b)))
    if len(set(a + b)) == 1:
        return TestResult(None, None, alternative, "all values tie", 1.0)
    if not exact_fits(len(a), len(b)):
        return _normal_test(a, b, higher_is_better)
    return _exact_test(a, b, higher_is_better)


def method_text(test: dict[str, object]) -> str:
    """How a stored test's p-value was computed, as a parenthesis to follow it ("" when the
    summary predates the field)."""
    method, splits = test.get("method"), test.get("assignments")
    if method == EXACT:
        return f" (exact, over all {splits} assignments of the pooled values)"
    return "" if method is None else f" ({method})"


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for testing several arms against one baseline.

    Tests that were not computed (None) are left out of the family and stay None. The adjusted
    values control the family-wise error rate: reject where adjusted p <= alpha.
    """
    known = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[index] = running
    return adjusted


# ---- ground truth beside the proxy (agent.truth) ---------------------------------------------


def _accuracy(event: Event) -> float | None:
    truth = event.truth or {}
    value = truth.get("test_accuracy")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def truth_so_far(events: Sequence[Event], iterations: int, higher_is_better: bool) -> Curve:
    """The benchmark accuracy of the best-by-fitness architecture so far, over search
    iterations 1..`iterations` (the "anytime" curve): NaN before any scored architecture with a
    known accuracy and after the last iteration logged, like `best_so_far`."""
    by_iteration = {e.iteration: e for e in events if e.phase == "search"}
    last_logged = max(by_iteration, default=0)
    best_score, truth = None, math.nan
    for member in (e for e in events if e.phase == "init"):
        best_score, truth = _better_known(member, best_score, truth, higher_is_better)
    curve: Curve = []
    for iteration in range(1, iterations + 1):
        event = by_iteration.get(iteration)
        if event is not None:
            best_score, truth = _better_known(event, best_score, truth, higher_is_better)
        curve.append(truth if iteration <= last_logged else math.nan)
    return curve


def _better_known(
    event: Event, best: float | None, truth: float, higher_is_better: bool
) -> tuple[float | None, float]:
    score = _valid_score(event)
    if score is None or (best is not None and not is_better(score, best, higher_is_better)):
        return best, truth
    accuracy = _accuracy(event)
    return score, math.nan if accuracy is None else accuracy


def found_at(curve: Curve) -> int | None:
    """The first iteration (1-based) at which a curve reaches its final value, or None."""
    final = curve[-1] if curve else math.nan
    if not math.isfinite(final):
        return None
    return next(index + 1 for index, value in enumerate(curve) if value == final)
