"""`nasagent compare`: the same search under several arms (mutators) and seeds, then a report.

Every arm x seed is an ordinary run directory, DIR/<arm>/seed-<s>/, resumable on its own with
`nasagent search --resume`. An arm is a named configuration: the built-in `llm` and `random`
(the ARMS registry) or an `[arms.NAME]` table of the config file, which may override any run
setting except the SHARED_KEYS (search space, budgets, proxy settings, iterations, seeds), so
the comparison stays fair. DIR/compare.toml records the shared configuration, the arms with
their settings, the baseline and the seeds; running compare again on DIR skips finished runs
and resumes partial ones.

A cost or token budget (`max_cost`, `max_total_tokens`) is the whole comparison's: each run
that calls an LLM gets an equal share of it, so the total is never passed, every arm and seed
gets the same allowance, and each run stays an independent, resumable run directory.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import tomli_w
from pydantic import BaseModel, ConfigDict, field_validator

from nasagent.agent.budget import BudgetGuard
from nasagent.agent.config import (
    COMPARE_ONLY_KEYS,
    EXECUTION_KEYS,
    ConfigError,
    Mutator,
    RunConfig,
    config_from_dict,
    drop_none,
    read_toml,
    toml_values,
    with_recorded_prompt_version,
)
from nasagent.agent.failed_streak import finished_at
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.parallel_runs import run_at_once, shared_scoring
from nasagent.agent.preflight import check_out_folder, check_run_inputs
from nasagent.agent.report import BASELINE_ARM, COMPARE_FILE, ReportResult, build_report
from nasagent.agent.runlog import CONFIG_FILE, write_text_atomic
from nasagent.evaluator.errors import NasAgentError, UnknownNameError

if TYPE_CHECKING:
    from nasagent.agent.execution import Scoring

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: the configuration keys it sets on top of the shared config."""

    description: str
    overrides: Mapping[str, Any]


ARMS: dict[str, Arm] = {
    "llm": Arm("LLM-guided mutation", {"mutator": Mutator.LLM}),
    "random": Arm("the search space's random mutation (the baseline)",
                  {"mutator": Mutator.RANDOM}),
    "oracle": Arm("random mutation selecting by the benchmark table's accuracy: an upper "
                  "bound for a space with a table, not a search method",
                  {"mutator": Mutator.RANDOM, "fitness": "benchmark"}),
}
DEFAULT_ARMS = ("llm", "random")
DEFAULT_SEED_COUNT = 5
PER_RUN_KEYS = ("mutator", "seed")
"""Keys set per run (by the arm and the seed list); the shared config never carries them."""
SHARED_KEYS = (
    "search_space", "counting", "max_params", "max_flops", "max_layers", "seed_arch",
    "proxy", "batch_size", "resolution", "num_classes", "score_seed", "repeats", "device",
    "residual", "iterations", "seed", "init_population", "max_cost", "max_total_tokens",
)
"""Settings every arm shares (an arm that sets one is an error): the comparison's fairness."""
BUDGET_KEYS = ("max_cost", "max_total_tokens")
"""Whole-comparison budgets: split over the LLM runs, and raisable on a re-run."""
ARMS_KEY, BASELINE_KEY = COMPARE_ONLY_KEYS
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""An arm's name is a folder name (DIR/<arm>/seed-<s>/): no separators, no `..`."""


class CompareError(NasAgentError):
    """A comparison that cannot start or resume; the message says what to change."""


class UnfairArmError(CompareError):
    """An arm that sets settings every arm shares; `keys` names them (for located errors)."""

    def __init__(self, arm: str, keys: Sequence[str]) -> None:
        self.arm, self.keys = arm, tuple(keys)
        super().__init__(
            f"arm {arm!r} sets {', '.join(self.keys)}, which every arm shares (search space, "
            f"budgets, proxy settings, iterations and seeds); set it outside [arms.{arm}]"
        )


def get_arm(name: str) -> Arm:
    """The registered arm called `name`, or an error listing the valid arms."""
    try:
        return ARMS[name]
    except KeyError:
        raise UnknownNameError("arm", name, ARMS) from None


class ComparePlan(BaseModel):
    """What compare.toml holds: the shared configuration, the arms and the seed values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: RunConfig
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str = BASELINE_ARM
    arm_settings: dict[str, dict[str, Any]] = {}

    @field_validator("config")
    @classmethod
    def _shared_only(cls, config: RunConfig) -> RunConfig:
        defaults = RunConfig()
        return config.model_copy(update={key: getattr(defaults, key) for key in PER_RUN_KEYS})

    def run_config(self, arm: str, seed: int) -> RunConfig:
        """The configuration of the run for `arm` and `seed` (with its share of the budgets)."""
        values = {**self.config.model_dump(), **self.settings_of(arm), "seed": seed}
        config = config_from_dict(values, source=f"arm {arm!r}")
        calls_llm = MUTATORS.get(config.mutator).needs_llm
        return config.model_copy(
            update=self._budget_share() if calls_llm else dict.fromkeys(BUDGET_KEYS)
        )

    def settings_of(self, arm: str) -> Mapping[str, Any]:
        """What `arm` sets on top of the shared configuration."""
        return self.arm_settings[arm] if arm in self.arm_settings else get_arm(arm).overrides

    def llm_runs(self) -> int:
        """How many runs of the plan call an LLM (they share the budgets)."""
        arms = [a for a in self.arms if MUTATORS.get(self._mutator(a)).needs_llm]
        return len(arms) * len(self.seeds)

    def _mutator(self, arm: str) -> str:
        return str(self.settings_of(arm).get("mutator", self.config.mutator))

    def _budget_share(self) -> dict[str, Any]:
        runs = max(self.llm_runs(), 1)
        cost, tokens = self.config.max_cost, self.config.max_total_tokens
        return {"max_cost": None if cost is None else cost / runs,
                "max_total_tokens": None if tokens is None else max(tokens // runs, 1)}

    def run_dir(self, out: Path, arm: str, seed: int) -> Path:
        return out / arm / f"seed-{seed}"


def make_plan(
    config: RunConfig, arms: Sequence[str], seeds: Sequence[int], *,
    defined: Mapping[str, Mapping[str, Any]] | None = None, baseline: str = BASELINE_ARM,
) -> ComparePlan:
    """Check the arms and seeds and build a plan.

    Args:
        config: the shared configuration.
        arms: arm names: built-in (ARMS) or keys of `defined`.
        seeds: seed values.
        defined: named arms of the config file (`[arms.NAME]`): the settings each overrides.
        baseline: the arm every other arm is tested against.

    Raises:
        UnknownNameError: an arm that is neither defined nor built in.
        CompareError: no arm or seed, one given twice, an arm that overrides a shared setting,
            or a baseline that is not one of the arms.
        ConfigError: an arm's settings are not a valid run configuration.
    """
    check_listed("arms", arms)
    check_listed("seeds", seeds)
    settings = {arm: arm_settings(arm, defined or {}) for arm in arms}
    check_baseline(baseline, arms)
    for arm, overrides in settings.items():  # a bad override fails here, before any run
        config_from_dict({**config.model_dump(), **overrides}, source=f"[arms.{arm}]")
    plan = ComparePlan(config=config, arms=tuple(arms), seeds=tuple(seeds), baseline=baseline,
                       arm_settings=settings)
    for arm in arms:
        try:
            BudgetGuard.of(plan.run_config(arm, plan.seeds[0]))
        except ConfigError as exc:
            raise ConfigError(f"arm {arm!r}: {exc}") from None
    return plan


def check_listed(name: str, values: Sequence[Any]) -> None:
    """Refuse an empty list of arms or seeds, or one that names a value twice.

    Raises:
        CompareError: says which.
    """
    if not values:
        raise CompareError(f"compare needs at least one value in {name}")
    if len(set(values)) != len(values):
        raise CompareError(f"{name} lists a value twice: {list(values)}")


def check_baseline(baseline: str, arms: Sequence[str]) -> None:
    """Refuse a baseline that is not one of the arms (the default `random` may be absent:
    then no arm is tested).

    Raises:
        CompareError: names the arms.
    """
    if baseline not in arms and baseline != BASELINE_ARM:
        raise CompareError(f"baseline {baseline!r} is not one of the arms ({', '.join(arms)})")


def arm_settings(arm: str, defined: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What `arm` sets on top of the shared configuration: its `[arms.NAME]` table, or a
    built-in arm's overrides.

    Raises:
        UnknownNameError: neither defined nor built in (the message lists both).
        UnfairArmError: the table sets a setting every arm shares.
        CompareError: a name that cannot be a folder, or a table that is not a table.
    """
    if arm not in defined:
        if arm not in ARMS:
            raise UnknownNameError("arm", arm, sorted({*defined, *ARMS}))
        return {key: str(value) for key, value in ARMS[arm].overrides.items()}
    settings = defined[arm]
    if not ARM_NAME.match(arm):
        raise CompareError(f"arm name {arm!r} names a folder: use letters, digits, '_', '-' "
                           "and '.' (at most 64), starting with a letter or digit")
    if not isinstance(settings, Mapping):
        raise CompareError(f"[arms.{arm}] must be a table of run settings, got {settings!r}")
    unfair = sorted(key for key in settings if key in SHARED_KEYS)
    if unfair:
        raise UnfairArmError(arm, unfair)
    return dict(settings)


def split_compare_keys(
    values: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A config file's values as (run settings, `[arms.*]` tables, `baseline`)."""
    run = {k: v for k, v in values.items() if k not in COMPARE_ONLY_KEYS}
    arms = values.get(ARMS_KEY, {})
    if not isinstance(arms, Mapping):
        raise CompareError(
            "`arms` in a config file is a set of tables like [arms.gpt4o] llm = \"openai:gpt-4o\"; "
            "choose which to run with --arms (over HTTP: the request's `arms` list)"
        )
    baseline = values.get(BASELINE_KEY)
    if baseline is not None and not isinstance(baseline, str):
        raise CompareError(f"baseline must be an arm name, got {baseline!r}")
    return run, dict(arms), baseline


# ---- compare.toml --------------------------------------------------------------------------


def dump_plan(plan: ComparePlan) -> str:
    """compare.toml's text: arms and seeds, then the shared configuration as [config]."""
    config = toml_values(plan.config, exclude=frozenset(PER_RUN_KEYS))
    return tomli_w.dumps({
        "arms": list(plan.arms), "baseline": plan.baseline, "seeds": list(plan.seeds),
        "config": config, "arm_settings": drop_none(plan.arm_settings),
    })


def write_plan(plan: ComparePlan, path: Path) -> None:
    # atomic: the service reads compare.toml for a run's status while compare rewrites it
    write_text_atomic(path, dump_plan(plan))


def read_plan(path: Path) -> ComparePlan:
    """Read compare.toml back.

    Raises:
        ConfigError: the file is not TOML, or its configuration or arms are invalid.
    """
    data = read_toml(path)
    recorded = with_recorded_prompt_version(data.get("config", {}))
    config = config_from_dict(recorded, source=str(path))
    try:
        return make_plan(
            config, data.get("arms", []), data.get("seeds", []),
            defined=data.get("arm_settings", {}), baseline=data.get("baseline", BASELINE_ARM),
        )
    except NasAgentError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# ---- resolving flags against a stored plan -------------------------------------------------


def resolve_plan(
    out: Path,
    *,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> ComparePlan:
    """The plan for `out`: from the flags for a new comparison, from compare.toml on re-runs.

    On a re-run with no flag at all the stored plan is used as is. Flags given on a re-run
    must agree with it (flags that restate stored values are fine).

    Raises:
        CompareError: the flags disagree with the stored compare.toml.
        ConfigError: a bad configuration file or value.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    file_values, defined, baseline = split_compare_keys(read_toml(config_path) if config_path
                                                        else {})
    stored_path = out / COMPARE_FILE
    if not stored_path.exists():
        config = config_from_dict({**file_values, **given}, source=str(config_path or "flags"),
                                  flag_keys=frozenset(given))
        arms = (tuple(defined) or DEFAULT_ARMS) if arms is None else arms
        seeds = range(DEFAULT_SEED_COUNT) if seeds is None else seeds
        return make_plan(config, arms, seeds, defined=defined,
                         baseline=baseline or BASELINE_ARM)
    stored = _with_execution(read_plan(stored_path), given)
    if config_path is None and not given and arms is None and seeds is None:
        return stored
    values = {**stored.config.model_dump(), **file_values, **given}
    requested = make_plan(
        config_from_dict(values, source="flags", flag_keys=frozenset(given)),
        stored.arms if arms is None else arms,
        stored.seeds if seeds is None else seeds,
        defined={**stored.arm_settings, **defined}, baseline=baseline or stored.baseline,
    )
    _check_agrees(stored, requested, stored_path)
    budgets = {key: getattr(requested.config, key) for key in BUDGET_KEYS}
    return stored.model_copy(update={"config": stored.config.model_copy(update=budgets)})


def _with_execution(plan: ComparePlan, given: Mapping[str, Any]) -> ComparePlan:
    """The stored plan with this invocation's execution flags: they never change a score."""
    execution = {key: given[key] for key in EXECUTION_KEYS if key in given}
    if not execution:
        return plan
    values = {**plan.config.model_dump(), **execution}
    return plan.model_copy(update={"config": config_from_dict(values, source="flags")})


def _check_agrees(stored: ComparePlan, requested: ComparePlan, path: Path) -> None:
    before, after = _flat(stored), _flat(requested)
    differences = [
        f"{key}: stored {before.get(key)!r}, requested {after.get(key)!r}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
    if differences:
        raise CompareError(
            f"{path} was written for a different comparison ({'; '.join(differences)}). Run "
            f"compare on this directory without flags to resume it, or choose another --out."
        )


def _flat(plan: ComparePlan) -> dict[str, Any]:
    """What must agree between a stored plan and a re-run's flags (budgets may be raised)."""
    config = plan.config.model_dump(mode="json", exclude=set(BUDGET_KEYS))
    return {**config, "arms": plan.arms, "seeds": plan.seeds, "baseline": plan.baseline,
            "arm_settings": plan.arm_settings}


# ---- running -------------------------------------------------------------------------------


class RunOutcome(Protocol):
    """What a run function returns (agent.search.RunResult satisfies it)."""

    finished: bool
    stopped_reason: str | None


RunFunction = Callable[..., RunOutcome]
"""Called as run(config, run_dir, resume=bool, progress=bool, label=str), like
agent.search.run_search; `label` names the arm and seed on the progress bar."""


class RunState(StrEnum):
    NEW = "new"
    PARTIAL = "partial"
    FINISHED = "finished"


def run_state(run_dir: Path, config: RunConfig) -> RunState:
    """Whether a run directory is new, partial (resumable) or finished at `config`'s budget.

    A run stopped by failed LLM calls is partial until a resume has run those iterations
    again (agent.failed_streak), whatever an older summary.json says.
    """
    if finished_at(run_dir, config):
        return RunState.FINISHED
    return RunState.PARTIAL if (run_dir / CONFIG_FILE).exists() else RunState.NEW


@dataclass(frozen=True)
class RunRecord:
    """What compare did with one arm x seed."""

    arm: str
    seed: int
    run_dir: Path
    state_before: RunState
    finished: bool
    stopped_reason: str | None = None


@dataclass
class CompareResult:
    """How a call to `run_compare` ended."""

    out: Path
    runs: list[RunRecord] = field(default_factory=list)
    report: ReportResult | None = None

    @property
    def stopped(self) -> list[RunRecord]:
        return [record for record in self.runs if not record.finished]


def run_compare(
    plan: ComparePlan, out: Path, *, run: RunFunction | None = None, progress: bool = True,
    jobs: int = 1,
) -> CompareResult:
    """Run every arm x seed of `plan` under `out` (skipping finished runs), then the report.

    Seeds are the outer loop, so a comparison cut short still has every arm for its first
    seeds. A run that stops (e.g. the LLM endpoint failed) does not stop the others; it is
    listed in `CompareResult.stopped` and can be resumed by running compare again.

    Args:
        plan: the resolved plan (see `resolve_plan`).
        out: the comparison directory.
        run: the search function; defaults to agent.search.run_search (tests inject fakes).
        progress: show each run's progress bar (with `jobs` > 1: a line as each run ends).
        jobs: runs at once; they share one scoring executor (agent.parallel_runs).
    """
    check_compare_folder(out)
    if not (out / COMPARE_FILE).exists():
        check_plan_inputs(plan)
    out.mkdir(parents=True, exist_ok=True)
    write_plan(plan, out / COMPARE_FILE)  # the stored plan, budgets as raised by a re-run
    result = CompareResult(out)
    with shared_scoring(plan.config, jobs) if run is None else nullcontext() as scoring:
        run = run or (_default_run() if scoring is None else _sharing_run(scoring))
        bars = progress and jobs <= 1  # bars of runs at once would overwrite each other
        result.runs = run_at_once([
            partial(_run_one, plan, arm, seed, out, run, bars, progress and not bars)
            for seed in plan.seeds for arm in plan.arms
        ], jobs)
    result.report = build_report(out)
    return result


def check_compare_folder(out: Path) -> None:
    """Refuse an --out that is a file or holds another kind of result (a run, a training, a
    study) or unknown files: a comparison holds arm folders and its own report.

    Raises:
        ConfigError: `out` is a file, or holds something else (see agent.preflight).
    """
    check_out_folder(out, "compare")


def check_plan_inputs(plan: ComparePlan) -> None:
    """Check every arm's configuration (names, seed architecture, budgets) before writing.

    Raises:
        NasAgentError: the first refusal (see agent.preflight.check_run_inputs).
    """
    for arm in plan.arms:
        check_run_inputs(plan.run_config(arm, plan.seeds[0]))


def _run_one(
    plan: ComparePlan, arm: str, seed: int, out: Path, run: RunFunction, progress: bool,
    announce: bool = False,
) -> RunRecord:
    config, run_dir = plan.run_config(arm, seed), plan.run_dir(out, arm, seed)
    state = run_state(run_dir, config)
    if state is RunState.FINISHED:
        logger.info("%s: finished earlier, skipped", run_dir)
        return RunRecord(arm, seed, run_dir, state, finished=True)
    logger.info("%s: %s", run_dir, "resuming" if state is RunState.PARTIAL else "starting")
    outcome = run(config, run_dir, resume=state is RunState.PARTIAL, progress=progress,
                  label=f"{arm} seed {seed}")
    if not outcome.finished:
        logger.warning("%s stopped: %s", run_dir, outcome.stopped_reason)
    if announce:
        print(f"{run_dir}: {'finished' if outcome.finished else 'stopped'}", file=sys.stderr,
              flush=True)
    return RunRecord(arm, seed, run_dir, state, outcome.finished, outcome.stopped_reason)


def _default_run() -> RunFunction:
    from nasagent.agent.search import (
        run_search,  # imported late: torch and the LLM SDK load with it
    )

    return run_search


def _sharing_run(scoring: Scoring) -> RunFunction:
    """run_search on an executor shared by the runs at once (agent.parallel_runs)."""
    from nasagent.agent.search import run_search

    return partial(run_search, scoring=scoring)
