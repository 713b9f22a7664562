"""Derive a comparison's summary, plots and self-contained HTML report from run logs alone.

The inputs are the run directories' `events.jsonl` and `config.toml` (plus `summary.json` for
the wall time, when the run wrote one); everything this module writes can be deleted and
rebuilt with `nasagent report DIR`. DIR is either a comparison (DIR/<arm>/seed-<s>/ run
directories) or a single run directory, reported as one arm named after its mutator.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from rich.table import Table

from nasagent.agent.config import RunConfig, load_run_config
from nasagent.agent.failed_streak import describe_streak, set_aside_events, stopping_streak
from nasagent.agent.labels import arm_backend, arm_label, tokens_estimated
from nasagent.agent.outcomes import Outcome
from nasagent.agent.plots import (
    BEST_SO_FAR_STEM,
    DISTRIBUTION_STEM,
    TRUTH_SO_FAR_STEM,
    SeedScore,
    plot_best_so_far,
    plot_score_distribution,
    plot_truth_so_far,
)
from nasagent.agent.pricing import Spend
from nasagent.agent.runlog import (
    COMPARE_FILE,
    CONFIG_FILE,
    EVENTS_FILE,
    SUMMARY_FILE,
    Event,
    read_events,
    read_json,
)
from nasagent.agent.runlog import write_json as write_json_file
from nasagent.agent.stats import (
    Curve,
    best_so_far,
    found_at,
    holm,
    is_better,
    iterations_to_reach,
    mann_whitney,
    median_or_not_reached,
    method_text,
    outcome_rate,
    summarize,
    truth_so_far,
)
from nasagent.agent.train_best import structure_of, top1_cell, top1_test_lines, trained_summary
from nasagent.agent.truth import FITNESS_BENCHMARK, table_of, table_record
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import higher_is_better
from nasagent.evaluator.spaces import get_space

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
SINGLE_RUN_SUMMARY_FILE = "report_summary.json"
"""A single run directory already has the loop's own summary.json; ours must not replace it."""
BASELINE_ARM = "random"
REPORT_TEMPLATE = "report.html.j2"
NOT_REACHED = "not reached"
REFERENCE_NOTE = ", selects by the table's accuracy (upper bound)"
"""What a reference arm's label adds: it is not a search method."""


class ReportError(NasAgentError):
    """A directory that holds no usable run logs, or runs that cannot be compared."""


@dataclass(frozen=True)
class RunData:
    """One run directory, read back from its logs."""

    arm: str
    run_dir: Path
    config: RunConfig
    events: list[Event]
    wall_seconds: float | None

    @property
    def seed(self) -> int:
        return self.config.seed

    loop_summary: dict[str, Any] | None = None
    set_aside: tuple[Event, ...] = ()
    """Attempts a resume set aside (agent.failed_streak): spent, but not part of the result."""

    @property
    def spent_events(self) -> list[Event]:
        """Every event whose LLM calls were paid for: the log and the set-aside attempts."""
        return [*self.events, *self.set_aside]

    @property
    def complete(self) -> bool:
        logged = {e.iteration for e in self.events if e.phase == "search"}
        return len(logged) >= self.config.iterations

    @property
    def problem(self) -> str | None:
        """Why this run is not counted as a seed (None: it is)."""
        summary = self.loop_summary or {}
        if summary.get("finished") is False:
            return f"did not finish: {summary.get('stopped_reason') or 'stopped early'}"
        streak = stopping_streak(self.events, self.config)
        if streak:
            return (f"did not finish: stopped after {describe_streak(streak)}; fix the endpoint "
                    f"and resume with: nasagent search --resume {self.run_dir}")
        if not self.complete:
            logged = len({e.iteration for e in self.events if e.phase == "search"})
            return (f"incomplete: {logged} of {self.config.iterations} iterations logged; resume "
                    f"with: nasagent search --resume {self.run_dir}")
        return None

    @property
    def counted(self) -> bool:
        return self.problem is None

    @property
    def reference(self) -> bool:
        """A reference arm's run: it selects by the benchmark's accuracy (an upper bound)."""
        return self.config.fitness == FITNESS_BENCHMARK


@dataclass(frozen=True)
class MissingRun:
    """An arm x seed of compare.toml without a run directory."""

    arm: str
    seed: int
    run_dir: Path


@dataclass
class ReportResult:
    """What `build_report` produced."""

    summary: dict[str, Any]
    paths: list[Path] = field(default_factory=list)


# ---- reading runs --------------------------------------------------------------------------


def is_single_run(directory: Path) -> bool:
    return (directory / EVENTS_FILE).exists() or (directory / CONFIG_FILE).exists()


def discover_runs(directory: Path) -> tuple[list[tuple[str, Path]], list[MissingRun]]:
    """The (arm, run_dir) pairs of `directory`, in compare.toml's order, and the missing ones.

    Only the arms and seeds of compare.toml count: a replay written next to a run is not an
    extra seed.

    Raises:
        ReportError: `directory` is neither a comparison (compare.toml) nor a run directory,
            or holds no run at all.
    """
    if not directory.is_dir():
        raise ReportError(f"{directory} is not a directory")
    if is_single_run(directory):
        return [(str(load_run_config(directory / CONFIG_FILE).mutator), directory)], []
    plan = _stored_plan(directory)
    if plan is None:
        raise ReportError(
            f"{directory} is not a comparison (no {COMPARE_FILE}) nor a run directory (no "
            f"{EVENTS_FILE}); give the --out folder of `nasagent compare` or `nasagent demo`, "
            f"or one run folder"
        )
    found: list[tuple[str, Path]] = []
    missing: list[MissingRun] = []
    for arm in plan.arms:
        for seed in plan.seeds:
            run_dir = plan.run_dir(directory, arm, seed)
            if (run_dir / CONFIG_FILE).exists():
                found.append((arm, run_dir))
            else:
                missing.append(MissingRun(arm, seed, run_dir))
    if not found:
        raise ReportError(f"{directory} holds no run logs yet: none of the runs of "
                          f"{COMPARE_FILE} has a {CONFIG_FILE}")
    return found, missing


def _stored_plan(directory: Path) -> Any:
    """The compare.toml plan of `directory` (arm order, baseline), or None."""
    from nasagent.agent.compare import (
        read_plan,  # compare imports this module; only the stored plan is needed
    )

    path = directory / COMPARE_FILE
    return read_plan(path) if path.exists() else None


def baseline_of(directory: Path) -> str:
    """The baseline arm named in compare.toml (default: random)."""
    plan = _stored_plan(directory) if directory.is_dir() else None
    return plan.baseline if plan else BASELINE_ARM


def budgets_of(directory: Path) -> dict[str, Any]:
    """The whole comparison's cost and token budgets from compare.toml (None: no budget)."""
    plan = _stored_plan(directory) if directory.is_dir() else None
    return {"max_cost": plan.config.max_cost if plan else None,
            "max_total_tokens": plan.config.max_total_tokens if plan else None}


def load_run(arm: str, run_dir: Path) -> RunData:
    """Read one run directory (its config, its events and, if written, its wall time)."""
    config = load_run_config(run_dir / CONFIG_FILE)
    events = read_events(run_dir)
    summary = _loop_summary(run_dir)
    return RunData(arm, run_dir, config, events, _wall_seconds(summary, events), summary,
                   tuple(set_aside_events(run_dir)))


def _loop_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / SUMMARY_FILE
    if not path.exists():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def _wall_seconds(summary: dict[str, Any] | None, events: Sequence[Event]) -> float | None:
    if summary is not None:
        wall = summary.get("wall_seconds")
        if isinstance(wall, int | float):
            return float(wall)
    stamped = [e for e in events if e.timestamp > 0]
    if not stamped:
        return None
    # Without the loop's summary: the span of the log plus the first event's own duration.
    span = max(e.timestamp for e in stamped) - min(e.timestamp for e in stamped)
    return span + stamped[0].seconds


def load_runs(directory: Path) -> list[RunData]:
    """Every run of `directory`'s compare.toml that exists (or `directory` itself)."""
    return load_comparison(directory)[0]


def load_comparison(directory: Path) -> tuple[list[RunData], list[MissingRun]]:
    """The runs of `directory` and the planned ones that have no run directory."""
    found, missing = discover_runs(directory)
    return [load_run(arm, run_dir) for arm, run_dir in found], missing


# ---- the summary ---------------------------------------------------------------------------


def direction_of(runs: Sequence[RunData]) -> tuple[str, bool]:
    """The proxy shared by all runs and whether higher is better.

    Raises:
        ReportError: the runs used different proxies, whose scores cannot be compared.
    """
    proxies = sorted({run.config.proxy for run in runs})
    if len(proxies) != 1:
        raise ReportError(f"runs use different proxies ({', '.join(proxies)}); cannot compare")
    return proxies[0], higher_is_better(proxies[0], runs[0].config.search_space)


def group_by_arm(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    arms: dict[str, list[RunData]] = {}
    for run in runs:
        arms.setdefault(run.arm, []).append(run)
    return arms


def run_curves(runs: Sequence[RunData], iterations: int, higher: bool) -> list[tuple[int, Curve]]:
    """The best-so-far curve of every counted run (a stopped or failed run is not a seed)."""
    return [(run.seed, best_so_far(run.events, iterations, higher)) for run in runs if run.counted]


def summarize_runs(
    runs: Sequence[RunData], baseline: str = BASELINE_ARM, missing: Sequence[MissingRun] = ()
) -> dict[str, Any]:
    """The comparison summary (the content of summary.json) computed from the runs' logs.

    Args:
        runs: the runs, grouped into arms by their `arm` name.
        baseline: the arm every other arm is tested against (compare.toml's `baseline`).
    """
    proxy, higher = direction_of(runs)
    iterations = max(run.config.iterations for run in runs)
    arms = group_by_arm(runs)
    finals = {arm: _finals(group, iterations, higher) for arm, group in arms.items()}
    threshold = summarize(finals.get(baseline, [])).median
    return {
        "header": report_header(runs),
        "proxy": proxy,
        "higher_is_better": higher,
        "iterations": iterations,
        "baseline": baseline,
        "baseline_median_best": threshold,
        "arms": {
            arm: _arm_summary(arm, group, finals[arm], iterations, higher, threshold, baseline)
            for arm, group in arms.items()
        },
        "comparisons": _comparisons(
            {arm: values for arm, values in finals.items() if not _is_reference(arms[arm])},
            higher, baseline),
        "truth": _truth_summary(arms, iterations, higher, baseline),
        "shared_settings": shared_settings(runs),
        "spend": {**_spend_total(runs), "estimated_arms": _estimated_arms(arms)},
        "incomplete_runs": [str(run.run_dir) for run in runs if not run.counted],
        "problems": _problems(runs, missing),
        "score_checks": _score_checks(runs),
        "trained": trained_summary(
            {arm: [run.run_dir for run in group] for arm, group in arms.items()}, baseline
        ),
    }


def _is_reference(runs: Sequence[RunData]) -> bool:
    return bool(runs) and runs[0].reference


def _selects_higher(runs: Sequence[RunData], higher: bool) -> bool:
    """The direction the runs of one arm select by: the proxy's, or up for a reference arm
    (it selects by the table's accuracy)."""
    return True if _is_reference(runs) else higher


def _truth_summary(
    arms: dict[str, list[RunData]], iterations: int, higher: bool, baseline: str
) -> dict[str, Any] | None:
    """The benchmark's side of the comparison (agent.truth): per arm, the true test accuracy
    of the final best-by-fitness architecture, its regret to the table's best cell and the
    iteration it was found at; one-sided Mann-Whitney tests on that accuracy. None when the
    runs' search space has no table."""
    config = next(iter(arms.values()))[0].config
    record = table_record(table_of(get_space(config.search_space)))
    if record is None:
        return None
    best = float(record["best_test_accuracy"])
    per_arm = {arm: _arm_truth(group, iterations, higher, best) for arm, group in arms.items()}
    finals = {arm: values["final"]["per_seed"] for arm, values in per_arm.items()}
    tests = _comparisons({a: v for a, v in finals.items() if not _is_reference(arms[a])},
                         True, baseline, metric="true test accuracy of the best")
    return {"table": record, "arms": per_arm, "comparisons": tests}


def _arm_truth(
    runs: Sequence[RunData], iterations: int, higher: bool, best: float
) -> dict[str, Any]:
    counted = [run for run in runs if run.counted]
    curves = [truth_so_far(run.events, iterations, _selects_higher(runs, higher))
              for run in counted]
    finals = [curve[-1] if curve and math.isfinite(curve[-1]) else None for curve in curves]
    found = [found_at(curve) for curve in curves]
    regrets = [None if value is None else best - value for value in finals]
    return {
        "reference": _is_reference(runs),
        "final": {**vars(summarize(finals)), "per_seed": finals},
        "regret": {**vars(summarize(regrets)), "per_seed": regrets},
        "found_at": {"median": median_or_not_reached(found), "per_seed": found},
    }


def truth_curves(
    runs: Sequence[RunData], iterations: int, higher: bool
) -> dict[str, list[tuple[int, Curve]]]:
    """Per arm, the anytime accuracy curve of every counted run (agent.stats.truth_so_far)."""
    curves: dict[str, list[tuple[int, Curve]]] = {}
    for arm, group in group_by_arm(runs).items():
        direction = _selects_higher(group, higher)
        curves[arm] = [(run.seed, truth_so_far(run.events, iterations, direction))
                       for run in group if run.counted]
    return curves


def _problems(runs: Sequence[RunData], missing: Sequence[MissingRun]) -> list[dict[str, Any]]:
    """Every planned run that is not counted as a seed, and why."""
    problems = [
        {"arm": run.arm, "seed": run.seed, "run_dir": str(run.run_dir), "reason": run.problem}
        for run in runs if run.problem is not None
    ]
    problems += [
        {"arm": m.arm, "seed": m.seed, "run_dir": str(m.run_dir),
         "reason": "missing: no run directory (run compare on this folder again)"}
        for m in missing
    ]
    return problems


def _score_checks(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """The drift check of every run that replayed a recording (agent.reference), with its
    verdict: such runs decide from the recorded scores and rescore beside them."""
    checks = []
    for run in runs:
        drift = (run.loop_summary or {}).get("score_drift")
        if isinstance(drift, dict) and drift.get("verdict"):
            checks.append({"arm": run.arm, "seed": run.seed, "run_dir": str(run.run_dir),
                           **{key: drift.get(key) for key in SCORE_CHECK_KEYS}})
    return checks


SCORE_CHECK_KEYS = ("verdict", "rescored", "beyond_tolerance", "score_rtol",
                    "median_relative_drift", "max_relative_drift", "reference")


def score_check_lines(summary: dict[str, Any]) -> list[str]:
    """One line per replayed run: its rescoring verdict against the recording."""
    return [f"{check['arm']} seed {check['seed']}: {check['verdict']}"
            for check in summary.get("score_checks", [])]


def problem_lines(summary: dict[str, Any]) -> list[str]:
    """One line per run that is missing, failed or stopped (the commands exit non-zero)."""
    return [f"{p['arm']} seed {p['seed']} ({p['run_dir']}): {p['reason']}"
            for p in summary.get("problems", [])]


def report_header(runs: Sequence[RunData]) -> dict[str, Any]:
    """Tool version, date, search space, budgets, proxy settings, seeds and iterations."""
    from nasagent import __version__

    config = runs[0].config
    stamps = [e.timestamp for run in runs for e in run.events if e.timestamp > 0]
    return {
        "tool": f"nasagent {__version__}",
        "date": _utc_date(max(stamps)) if stamps else None,
        "search_space": config.search_space,
        "budgets": {"max_params": config.max_params, "max_flops": config.max_flops,
                    "max_layers": config.max_layers, "counting": config.counting},
        "proxy": {"name": config.proxy, "batch_size": config.batch_size,
                  "resolution": config.resolution, "num_classes": config.num_classes,
                  "score_seed": config.score_seed, "repeats": config.repeats,
                  "residual": config.residual},
        "seeds": sorted({run.seed for run in runs}),
        "iterations": max(run.config.iterations for run in runs),
        "op_names": sorted({run.config.op_names for run in runs}),
        "truth": table_record(table_of(get_space(config.search_space))),
    }


def _utc_date(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def header_lines(summary: dict[str, Any]) -> list[str]:
    """The report header as text, for the terminal and the HTML page."""
    header = summary["header"]
    budgets = ", ".join(
        f"{key} {_number(value) if isinstance(value, float) else value}"
        for key, value in header["budgets"].items() if value is not None
    )
    proxy = ", ".join(f"{k} {v}" for k, v in header["proxy"].items())
    return [
        f"{header['tool']}; runs dated {header['date'] or 'unknown'}",
        f"search space {header['search_space']}; budgets: {budgets or 'none'}",
        f"proxy: {proxy}",
        f"seeds {', '.join(str(s) for s in header['seeds'])}; {header['iterations']} iterations",
        f"op names shown to the model: {', '.join(header.get('op_names') or ['standard'])}",
        *_truth_lines(header.get("truth")),
        *(f"{summary['arms'][arm]['label']}" for arm in summary["arms"]),
    ]


def _truth_lines(record: dict[str, Any] | None) -> list[str]:
    if not record:
        return []
    return [f"ground truth (never shown to the model): test accuracy on {record['dataset']} from "
            f"{record['source']}; best cell {record['best_test_accuracy']:.2f}%"]


def shared_settings(runs: Sequence[RunData]) -> dict[str, Any]:
    """The settings every arm shares (compare's SHARED_KEYS but the seed), as the runs hold
    them; a setting that is not the same in every run is reported as "differs"."""
    from nasagent.agent.compare import SHARED_KEYS  # compare imports this module

    shared: dict[str, Any] = {}
    for key in SHARED_KEYS:
        if key in ("seed", "max_cost", "max_total_tokens"):
            continue  # seeds are listed per arm; budgets are split per run
        values = {repr(getattr(run.config, key)) for run in runs}
        shared[key] = getattr(runs[0].config, key) if len(values) == 1 else "differs"
    return shared


def run_spend(run: RunData) -> Spend:
    """The LLM spend of one run, from its events and set-aside attempts (cost unknown if any
    call had no price)."""
    total = Spend()
    for event in run.spent_events:
        total += Spend(event.tokens_in, event.tokens_out, event.tokens_cached, event.cost_usd)
    return total


def _spend_total(runs: Sequence[RunData]) -> dict[str, Any]:
    total = Spend()
    for run in runs:
        total += run_spend(run)
    return total.fields()


def _estimated_arms(arms: dict[str, list[RunData]]) -> list[str]:
    """The arms whose token counts (and so any cost priced from them) are estimates."""
    return [arm for arm, group in arms.items()
            if tokens_estimated(group[0].config) and any(run_spend(run).tokens for run in group)]


def _finals(runs: Sequence[RunData], iterations: int, higher: bool) -> list[float | None]:
    """Each run's best fitness at the budget (None: not counted, or not finite)."""
    direction = _selects_higher(runs, higher)
    finals: list[float | None] = []
    for run in runs:
        curve = best_so_far(run.events, iterations, direction) if run.counted else []
        final = curve[-1] if curve else math.nan
        finals.append(final if math.isfinite(final) else None)
    return finals


def _arm_summary(
    arm: str, runs: Sequence[RunData], finals: list[float | None], iterations: int,
    higher: bool, threshold: float | None, baseline: str,
) -> dict[str, Any]:
    config = runs[0].config
    planned = list(runs)
    runs = [run for run in runs if run.counted]  # a stopped or failed run is not a seed
    spends = [run_spend(run) for run in runs]
    events = [e for run in runs for e in run.events]
    search = [e for e in events if e.phase == "search"]
    reference = _is_reference(planned)
    return {
        "label": arm_label(arm, config) + (REFERENCE_NOTE if reference else ""),
        "reference": reference,
        "op_names": config.op_names,
        "tokens_estimated": tokens_estimated(config),
        "seeds": [run.seed for run in planned],
        "counted_seeds": [run.seed for run in runs],
        "runs": len(planned),
        "complete_runs": sum(run.complete for run in planned),
        "best_at_budget": {**vars(summarize(finals)), "per_seed": finals},
        "backend": arm_backend(config),
        "iterations_to_reach_baseline": dict(REFERENCE_REACH) if reference else _to_reach(
            arm, runs, iterations, higher, threshold, baseline),
        "proposals": len(search),
        "valid_rate": outcome_rate(search, Outcome.OK),
        "duplicate_rate": outcome_rate(search, Outcome.DUPLICATE),
        "llm_calls": _total_and_mean([sum(e.llm_calls for e in run.spent_events)
                                      for run in runs]),
        "tokens": _total_and_mean([sum(e.tokens for e in run.spent_events) for run in runs]),
        "tokens_in": _total_and_mean([spend.tokens_in for spend in spends]),
        "tokens_out": _total_and_mean([spend.tokens_out for spend in spends]),
        "tokens_cached": _total_and_mean([spend.tokens_cached for spend in spends]),
        "cost_usd": _cost_summary(spends),
        "wall_seconds": _total_and_mean([run.wall_seconds for run in runs]),
        "best": _best_architecture(runs, _selects_higher(planned, higher)),
        "structure": structure_of([run.config for run in runs]),
    }


def _cost_summary(spends: Sequence[Spend]) -> dict[str, Any]:
    """Sum and mean cost over runs; unknown (None) as soon as one run's cost is unknown."""
    unknown = sum(spend.cost_usd is None for spend in spends)
    if unknown:
        return {"sum": None, "mean": None, "unknown_runs": unknown}
    return {**_total_and_mean([spend.cost_usd for spend in spends]), "unknown_runs": 0}


REFERENCE_REACH = {
    "median": None, "per_seed": None, "reached": None,
    "reason": "a reference arm ranks by the table's accuracy, not by the proxy",
}
"""A reference arm's `iterations_to_reach_baseline`: its fitness is not the proxy's scale."""


def _to_reach(
    arm: str, runs: Sequence[RunData], iterations: int, higher: bool, threshold: float | None,
    baseline: str,
) -> dict[str, Any]:
    if arm == baseline:
        reason = "the baseline arm sets the threshold"
        return {"median": None, "per_seed": None, "reached": None, "reason": reason}
    if threshold is None:
        reason = f"no '{baseline}' arm with a finished run to set the threshold"
        return {"median": None, "per_seed": None, "reached": None, "reason": reason}
    per_seed = [
        iterations_to_reach(curve, threshold, higher)
        for _, curve in run_curves(runs, iterations, higher)
    ]
    return {
        "median": median_or_not_reached(per_seed),
        "per_seed": per_seed,
        "reached": sum(v is not None for v in per_seed),
        "reason": None,
    }


def _total_and_mean(values: Sequence[float | int | None]) -> dict[str, float | None]:
    """Sum (an integer when the values are counts) and mean of the known values."""
    known = [v for v in values if v is not None]
    if not known:
        return {"sum": None, "mean": None}
    return {"sum": sum(known), "mean": sum(known) / len(known)}


def _best_architecture(runs: Sequence[RunData], higher: bool) -> dict[str, Any] | None:
    best: tuple[float, RunData, Event] | None = None
    for run in runs:
        for event in run.events:
            if event.outcome is not Outcome.OK or event.score is None or not event.arch:
                continue
            if best is None or is_better(event.score, best[0], higher):
                best = (event.score, run, event)
    if best is None:
        return None
    _, run, event = best
    return {
        "arch": event.arch, "score": event.score, "params": event.params, "flops": event.flops,
        "layers": event.layers, "seed": run.seed, "iteration": event.iteration,
        "phase": event.phase,
    }


def _comparisons(
    finals: dict[str, list[float | None]], higher: bool, baseline: str,
    metric: str = "best_at_budget",
) -> list[dict[str, Any]]:
    """Every arm against the baseline, with Holm's correction across those tests."""
    if baseline not in finals:
        return []
    tests = []
    for arm, values in finals.items():
        if arm == baseline:
            continue
        result = mann_whitney(values, finals[baseline], higher)
        tests.append({
            "arm": arm, "baseline": baseline, "metric": metric,
            "test": "one-sided Mann-Whitney U", **vars(result),
        })
    adjusted = holm([test["p_value"] for test in tests])
    for test, p_holm in zip(tests, adjusted, strict=True):
        test["p_holm"] = p_holm
        test["family"] = sum(p is not None for p in adjusted)
    return tests


# ---- the table -----------------------------------------------------------------------------


def _number(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _best_cell(best: dict[str, Any]) -> str:
    spread = "" if best["std"] is None else f" ± {_number(best['std'])}"
    return f"{_number(best['mean'])}{spread} (n={best['n']})"


def _best_at_budget_cell(arm: dict[str, Any]) -> str:
    return _best_cell(arm["best_at_budget"]) + _fitness_note(arm)


def _best_median_cell(arm: dict[str, Any]) -> str:
    return _number(arm["best_at_budget"]["median"]) + _fitness_note(arm)


def _fitness_note(arm: dict[str, Any]) -> str:
    """A reference arm's best is the table's accuracy (%), not a proxy score: said in its cell."""
    return " (table accuracy, %)" if arm.get("reference") else ""


def _reach_cell(reach: dict[str, Any]) -> str:
    if reach["per_seed"] is None:
        if reach["reason"] and "baseline arm" in reach["reason"]:
            return "- (baseline)"
        return "- (reference arm)" if reach["reason"] == REFERENCE_REACH["reason"] else "-"
    median = NOT_REACHED if reach["median"] is None else _number(reach["median"], "g")
    return f"{median} ({reach['reached']}/{len(reach['per_seed'])} seeds)"


def _sum_mean_cell(values: dict[str, float | None], spec: str = ".4g") -> str:
    return f"{_number(values['sum'], spec)} / {_number(values['mean'], spec)}"


def _estimate(cell: str, arm: dict[str, Any]) -> str:
    """`~cell (estimated)` when the arm's token counts are estimates (a stand-in's), so
    neither its tokens nor a cost priced from them look metered."""
    return f"~{cell} (estimated)" if arm["tokens_estimated"] else cell


def _tokens_cell(arm: dict[str, Any]) -> str:
    cached = arm["tokens_cached"]["sum"]
    cached_text = f" ({_number(cached, '.6g')} cached)" if cached else ""
    return _estimate(f"{_number(arm['tokens_in']['sum'], '.6g')}{cached_text} / "
                     f"{_number(arm['tokens_out']['sum'], '.6g')}", arm)


def _tokens_total_cell(arm: dict[str, Any]) -> str:
    return _estimate(_sum_mean_cell(arm["tokens"], ".6g"), arm)


def _cost_cell(arm: dict[str, Any]) -> str:
    cost = arm["cost_usd"]
    if cost["unknown_runs"]:
        runs = cost["unknown_runs"]
        return f"unknown (no price for {runs} run{'s' if runs > 1 else ''})"
    return _estimate(f"{_number(cost['sum'], '.4f')} / {_number(cost['mean'], '.4f')}", arm)


TABLE_ROWS = (
    ("best at budget (mean ± std)", _best_at_budget_cell),
    ("best at budget (median)", _best_median_cell),
    ("iterations to reach {baseline} median", lambda a: _reach_cell(
        a["iterations_to_reach_baseline"])),
    ("valid-proposal rate", lambda a: _percent(a["valid_rate"])),
    ("duplicate rate", lambda a: _percent(a["duplicate_rate"])),
    ("LLM calls (sum / per seed)", lambda a: _sum_mean_cell(a["llm_calls"], ".6g")),
    ("tokens (sum / per seed)", _tokens_total_cell),
    ("tokens in / out (sum)", _tokens_cell),
    ("cost USD (sum / per seed)", _cost_cell),
    ("wall time s (sum / per seed)", lambda a: _sum_mean_cell(a["wall_seconds"], ".1f")),
    ("structure rules", lambda a: a.get("structure", "-")),
)
"""The table's rows: label and cell text per arm; shared by the terminal and HTML tables."""


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The comparison table as text: a header (metric, arms...) and one row per metric."""
    arms = list(summary["arms"])
    header = ["metric", *(
        f"{summary['arms'][arm]['label']} (n={len(summary['arms'][arm]['counted_seeds'])})"
        for arm in arms
    )]
    rows = [
        [label.format(baseline=summary["baseline"]), *(cell(summary["arms"][arm]) for arm in arms)]
        for label, cell in TABLE_ROWS
    ]
    trained = summary.get("trained")
    if trained:
        label = f"held-out top-1 after training on {trained['data']['spec']} (mean ± std)"
        rows.insert(2, [label, *(top1_cell(trained["arms"].get(arm)) for arm in arms)])
    truth = summary.get("truth")
    if truth:
        rows[2:2] = [[label, *(cell(truth["arms"][arm]) for arm in arms)]
                     for label, cell in truth_rows(summary)]
    return header, rows


def truth_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The benchmark's rows of the table: true accuracy, regret and when the best was found."""
    table = summary["truth"]["table"]
    dataset, proxy = table["dataset"], summary["proxy"]
    return [
        (f"true test accuracy of the best by {proxy} on {dataset}, % (mean ± std)",
         lambda t: _best_cell(t["final"])),
        (f"regret to the table's best cell ({table['best_test_accuracy']:.2f}%), % (mean)",
         lambda t: _number(t["regret"]["mean"])),
        ("iteration the final best was found (median)",
         lambda t: NOT_REACHED if t["found_at"]["median"] is None
         else _number(t["found_at"]["median"], "g")),
    ]


def p_value_lines(summary: dict[str, Any]) -> list[str]:
    """One sentence per statistical test, for the terminal and the report."""
    lines = []
    truth = summary.get("truth") or {}
    for test in [*summary["comparisons"], *truth.get("comparisons", [])]:
        better = "higher" if test["alternative"] == "greater" else "lower"
        metric = "best at budget" if test["metric"] == "best_at_budget" else test["metric"]
        what = f"{test['arm']} vs {test['baseline']}, {metric} ({better} is better)"
        floor = test.get("smallest_p_value")
        reachable = "" if floor is None else (
            f"; the smallest p reachable with these seeds is {floor:.4g}"
        )
        if test["p_value"] is None:
            lines.append(f"{test['test']} {what}: not computed ({test['reason']}){reachable}")
        else:
            lines.append(f"{test['test']} {what}: p = {test['p_value']:.4g}{method_text(test)}, "
                         f"U = {test['statistic']:g}{_holm_text(test)}{reachable}")
    return lines + top1_test_lines(summary.get("trained"))


def _holm_text(test: dict[str, Any]) -> str:
    if test.get("p_holm") is None:
        return ""
    return f", Holm-adjusted p = {test['p_holm']:.4g} over {test['family']} arms"


def rich_table(summary: dict[str, Any]) -> Table:
    """The comparison table for the terminal."""
    header, rows = table_rows(summary)
    direction = "higher" if summary["higher_is_better"] else "lower"
    table = Table(title=f"{summary['proxy']} ({direction} is better), "
                        f"{summary['iterations']} iterations")
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


# ---- files ---------------------------------------------------------------------------------


def summary_path(directory: Path) -> Path:
    name = SINGLE_RUN_SUMMARY_FILE if is_single_run(directory) else SUMMARY_FILE
    return directory / name


def _json_safe(value: Any) -> Any:
    """NaN/inf become None: JSON has no NaN, and a missing number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_plots(runs: Sequence[RunData], summary: dict[str, Any], directory: Path) -> list[Path]:
    """The best-so-far and score-distribution figures (PNG, PDF, CSV each)."""
    higher, iterations = summary["higher_is_better"], summary["iterations"]
    arms = {arm: group for arm, group in group_by_arm(runs).items() if not _is_reference(group)}
    curves = {arm: run_curves(group, iterations, higher) for arm, group in arms.items()}
    # only counted seeds, as in the table: a stopped run or a replay with misses is no seed
    scores = {arm: _valid_scores([run for run in group if run.counted])
              for arm, group in arms.items()}
    proxy = summary["proxy"]
    labels = {arm: summary["arms"][arm]["label"] for arm in summary["arms"]}
    paths = [
        *plot_best_so_far(curves, proxy, higher, directory / BEST_SO_FAR_STEM, labels),
        *plot_score_distribution(scores, proxy, higher, directory / DISTRIBUTION_STEM, labels),
    ]
    truth = summary.get("truth")
    if truth:
        best = float(truth["table"]["best_test_accuracy"])
        paths += plot_truth_so_far(truth_curves(runs, iterations, higher), best,
                                   directory / TRUTH_SO_FAR_STEM, labels)
    return paths


def _valid_scores(runs: Sequence[RunData]) -> list[SeedScore]:
    return [
        SeedScore(run.seed, e.iteration, e.score)
        for run in runs for e in run.events
        if e.phase == "search" and e.outcome is Outcome.OK and e.score is not None
        and math.isfinite(e.score)
    ]


@cache
def _html_environment() -> Environment:
    # Autoescape on: block strings, notes and config text must never become markup.
    return Environment(
        loader=PackageLoader("nasagent.prompts", "."), undefined=StrictUndefined, autoescape=True,
        trim_blocks=True, lstrip_blocks=True,
    )


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _config_text(directory: Path) -> str:
    for name in (COMPARE_FILE, CONFIG_FILE):
        if (directory / name).exists():
            return (directory / name).read_text(encoding="utf-8")
    return ""


def render_html(summary: dict[str, Any], directory: Path) -> str:
    """The self-contained report page (figures inlined, no external resource of any kind)."""
    header, rows = table_rows(summary)
    figures = [
        (BEST_SO_FAR_STEM, "Best-so-far score per arm: mean over all counted seeds, the band "
                           "spans the lowest to the highest seed"),
        (DISTRIBUTION_STEM, "Scores of every valid proposal per arm, counted seeds only"),
    ]
    if summary.get("truth"):
        figures.append((TRUTH_SO_FAR_STEM, "The benchmark's test accuracy of the best "
                        "architecture by the proxy so far (anytime curve); mean over all "
                        "counted seeds, the band spans the lowest to the highest seed; never "
                        "shown to the model"))
    return _html_environment().get_template(REPORT_TEMPLATE).render(
        title=directory.resolve().name, summary=summary, header=header, rows=rows,
        header_lines=header_lines(summary), problems=problem_lines(summary),
        tests=p_value_lines(summary), config_text=_config_text(directory),
        score_checks=score_check_lines(summary),
        figures=[
            (caption, _data_uri(directory / f"{stem}.png"), stem) for stem, caption in figures
        ],
    )


def build_report(directory: Path) -> ReportResult:
    """Rebuild the summary JSON, the figures and report.html of `directory` from its logs.

    Raises:
        ReportError: no run logs under `directory`, or runs with different proxies.
        ConfigError: a run's config.toml cannot be read.
    """
    runs, missing = load_comparison(directory)
    summary = _json_safe(summarize_runs(runs, baseline_of(directory), missing))
    summary["spend"]["budgets"] = budgets_of(directory)
    path = summary_path(directory)
    write_json_file(path, summary)
    paths = [path, *write_plots(runs, summary, directory)]
    report = directory / REPORT_FILE
    report.write_text(render_html(summary, directory), encoding="utf-8")
    logger.info("wrote %s and %d other files", report, len(paths))
    return ReportResult(summary, [*paths, report])
