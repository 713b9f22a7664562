"""agent.stats on synthetic logs and curves whose answers are known by hand."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest

from nasagent.agent import stats
from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import Event
from nasagent.agent.stats import (
    EXACT,
    NORMAL,
    best_so_far,
    is_better,
    iterations_to_reach,
    mann_whitney,
    mean_std_band,
    median_or_not_reached,
    method_text,
    midranks,
    outcome_rate,
    smallest_p_value,
    summarize,
)

NAN = math.nan


def seed_event(score: float | None) -> Event:
    outcome = Outcome.OK if score is not None else Outcome.SCORE_FAILED
    return Event(iteration=0, phase="init", mutator="seed", parent=None, parent_score=None,
                 outcome=outcome, arch="seed", score=score)


def proposal(iteration: int, score: float | None, outcome: Outcome = Outcome.OK) -> Event:
    return Event(iteration=iteration, mutator="random", parent="seed", parent_score=None,
                 outcome=outcome, arch=None if score is None else f"a{iteration}", score=score)


def same(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b):
        return False
    pairs = zip(a, b, strict=True)
    return all((math.isnan(x) and math.isnan(y)) or x == pytest.approx(y) for x, y in pairs)


def test_best_so_far_higher_is_better_carries_the_seed_score() -> None:
    events = [seed_event(5.0), proposal(1, 3.0), proposal(2, None, Outcome.INVALID),
              proposal(3, 7.0), proposal(4, 6.0)]
    assert best_so_far(events, 4, higher_is_better=True) == [5.0, 5.0, 7.0, 7.0]


def test_best_so_far_lower_is_better() -> None:
    events = [seed_event(5.0), proposal(1, 3.0), proposal(2, 4.0), proposal(3, 1.0)]
    assert best_so_far(events, 3, higher_is_better=False) == [3.0, 3.0, 1.0]


def test_best_so_far_is_nan_before_any_score_when_the_seed_was_not_scored() -> None:
    events = [seed_event(None), proposal(1, None, Outcome.INVALID), proposal(2, 2.0)]
    assert same(best_so_far(events, 2, True), [NAN, 2.0])


def test_best_so_far_ignores_non_ok_outcomes_and_nan_scores() -> None:
    events = [seed_event(1.0), proposal(1, 9.0, Outcome.DUPLICATE), proposal(2, NAN)]
    assert best_so_far(events, 2, True) == [1.0, 1.0]


def test_best_so_far_of_a_partial_run_is_nan_after_the_last_logged_iteration() -> None:
    events = [seed_event(1.0), proposal(1, 2.0), proposal(2, 3.0)]
    assert same(best_so_far(events, 4, True), [2.0, 3.0, NAN, NAN])


def test_mean_std_band_across_seeds() -> None:
    band = mean_std_band([[1.0, 2.0, 4.0], [3.0, 4.0, NAN]])
    assert band.mean == [2.0, 3.0, 4.0]
    assert same(band.std, [math.sqrt(2), math.sqrt(2), NAN])
    assert band.n == [2, 2, 1]
    assert mean_std_band([]).mean == []


def test_iterations_to_reach_respects_the_direction() -> None:
    curve = [NAN, 1.0, 3.0, 5.0]
    assert iterations_to_reach(curve, 3.0, higher_is_better=True) == 3
    assert iterations_to_reach(curve, 6.0, higher_is_better=True) is None
    falling = [9.0, 4.0, 2.0]
    assert iterations_to_reach(falling, 4.0, higher_is_better=False) == 2
    assert iterations_to_reach(falling, 1.0, higher_is_better=False) is None


def test_median_counts_not_reached_as_latest() -> None:
    assert median_or_not_reached([3, 1, 2]) == 2.0
    assert median_or_not_reached([4, 2]) == 3.0
    assert median_or_not_reached([1, None, 2]) == 2.0
    assert median_or_not_reached([1, None]) is None
    assert median_or_not_reached([None, None, 1]) is None
    assert median_or_not_reached([]) is None


def test_summarize_skips_missing_values() -> None:
    summary = summarize([1.0, 2.0, None, 6.0, NAN])
    assert (summary.n, summary.mean, summary.median) == (3, 3.0, 2.0)
    assert summary.std == pytest.approx(math.sqrt(7))
    one = summarize([4.0])
    assert (one.n, one.mean, one.std, one.median) == (1, 4.0, None, 4.0)
    assert summarize([]).mean is None


def test_outcome_rate_counts_search_proposals_only() -> None:
    events = [seed_event(1.0), proposal(1, 2.0), proposal(2, None, Outcome.INVALID),
              proposal(3, 2.0, Outcome.DUPLICATE), proposal(4, 3.0)]
    assert outcome_rate(events, Outcome.OK) == 0.5
    assert outcome_rate(events, Outcome.DUPLICATE) == 0.25
    assert outcome_rate([seed_event(1.0)], Outcome.OK) is None


def test_mann_whitney_separated_samples_give_a_small_p() -> None:
    rng = random.Random(0)
    good = [10 + rng.random() for _ in range(5)]
    bad = [rng.random() for _ in range(5)]
    result = mann_whitney(good, bad, higher_is_better=True)
    assert result.alternative == "greater" and result.reason is None
    assert result.p_value == pytest.approx(1 / 252)
    assert result.statistic == 25.0
    reverse = mann_whitney(bad, good, higher_is_better=True)
    assert reverse.p_value is not None and reverse.p_value > 0.9


def test_mann_whitney_lower_is_better() -> None:
    low, high = [1.0, 2.0, 3.0], [7.0, 8.0, 9.0]
    result = mann_whitney(low, high, higher_is_better=False)
    assert result.alternative == "less" and result.p_value == pytest.approx(0.05)


def test_mann_whitney_not_computed_with_too_few_values_or_ties() -> None:
    few = mann_whitney([1.0, None, NAN], [0.0, 1.0], higher_is_better=True)
    assert few.p_value is None and few.reason is not None and "got 1 and 2" in few.reason
    assert few.smallest_p_value == pytest.approx(1 / 3)  # 1 vs 2 values, no ties
    ties = mann_whitney([2.0, 2.0], [2.0, 2.0, 2.0], higher_is_better=True)
    assert ties.p_value is None and ties.reason == "all values tie"
    assert ties.smallest_p_value == 1.0  # every assignment gives the same U


def pairwise_u(a: tuple[float, ...], b: tuple[float, ...]) -> Fraction:
    """U by its definition: pairs the first sample wins, ties counting one half."""
    return sum((Fraction(int(x > y)) + Fraction(int(x == y), 2) for x in a for y in b),
               Fraction(0))


def enumerated_test(a: list[float], b: list[float], higher: bool) -> tuple[Fraction, Fraction]:
    """(p, smallest p) by listing every assignment of the pooled values to the two samples."""
    pooled = [*a, *b]
    sign = 1 if higher else -1
    us = []
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        rest = tuple(pooled[i] for i in range(len(pooled)) if i not in chosen)
        us.append(sign * pairwise_u(tuple(pooled[i] for i in chosen), rest))
    observed = sign * pairwise_u(tuple(a), tuple(b))
    p = Fraction(sum(u >= observed for u in us), len(us))
    return p, Fraction(us.count(max(us)), len(us))


def test_two_against_two_is_exact_and_no_smaller_than_its_floor() -> None:
    # `compare --seeds 2` with separated arms: the only p these seeds allow is 1/6
    result = mann_whitney([3.0, 4.0], [1.0, 2.0], higher_is_better=True)
    assert result.p_value == pytest.approx(1 / 6) and result.statistic == 4.0
    assert result.smallest_p_value == pytest.approx(1 / 6) == smallest_p_value(2, 2)
    assert result.method == EXACT and result.assignments == 6
    # one tie: candidate {2,3} vs {1,2}; U = 3.5, reached by {2a,3} and {2b,3}: 2 of 6 splits
    tied = mann_whitney([2.0, 3.0], [1.0, 2.0], higher_is_better=True)
    assert tied.statistic == 3.5
    assert tied.p_value == pytest.approx(1 / 3) and tied.smallest_p_value == pytest.approx(1 / 3)


def test_three_against_three_with_ties_has_a_raised_floor() -> None:
    # pooled 1,2,2,2,3,4: the top three are {4,3,2} in 3 ways, so the floor is 3/20, not 1/20
    result = mann_whitney([2.0, 3.0, 4.0], [1.0, 2.0, 2.0], higher_is_better=True)
    assert result.statistic == 8.0 and result.assignments == 20
    assert result.p_value == pytest.approx(0.15) and result.smallest_p_value == pytest.approx(0.15)
    lower = mann_whitney([1.0, 2.0, 2.0], [2.0, 3.0, 4.0], higher_is_better=False)
    assert lower.p_value == pytest.approx(0.15) and lower.smallest_p_value == pytest.approx(0.15)
    middle = mann_whitney([2.0, 2.0, 3.0], [1.0, 2.0, 4.0], higher_is_better=True)
    p, floor = enumerated_test([2.0, 2.0, 3.0], [1.0, 2.0, 4.0], higher=True)
    assert middle.p_value == pytest.approx(float(p)) and p > floor


@pytest.mark.parametrize("seed", range(6))
def test_exact_p_matches_the_enumerated_distribution(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        a = [float(rng.randint(0, 3)) for _ in range(rng.randint(2, 5))]
        b = [float(rng.randint(0, 3)) for _ in range(rng.randint(2, 5))]
        if len(set(a + b)) == 1:
            continue
        for higher in (True, False):
            result = mann_whitney(a, b, higher_is_better=higher)
            p, floor = enumerated_test(a, b, higher)
            assert result.p_value == pytest.approx(float(p), abs=1e-12), (a, b, higher)
            assert result.smallest_p_value == pytest.approx(float(floor), abs=1e-12)
            assert result.p_value >= result.smallest_p_value
            assert result.statistic == float(pairwise_u(tuple(a), tuple(b)))


def test_midranks_share_the_ranks_a_tie_spans() -> None:
    assert midranks([3.0, 1.0, 3.0, 2.0, 3.0]) == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert midranks([5.0, 5.0]) == [1.5, 1.5]


def test_beyond_the_exact_limits_the_normal_approximation_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stats, "COUNT_LIMIT", 10)
    result = mann_whitney([3.0, 4.0, 5.0], [1.0, 2.0, 2.0], higher_is_better=True)
    assert result.method == NORMAL and result.assignments == 20
    assert result.p_value is not None and result.smallest_p_value is not None
    assert result.p_value >= result.smallest_p_value
    assert method_text(vars(result)) == " (normal approximation)"
    monkeypatch.undo()
    assert method_text(vars(mann_whitney([3.0, 4.0], [1.0, 2.0], True))) == (
        " (exact, over all 6 assignments of the pooled values)")


def test_is_better() -> None:
    assert is_better(2.0, 1.0, True) and not is_better(1.0, 1.0, True)
    assert is_better(1.0, 2.0, False) and not is_better(2.0, 1.0, False)
