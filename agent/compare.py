"""`nasagent compare`: the same search under several arms (mutators) and seeds, then a report.

Every arm x seed is an ordinary run directory, DIR/<arm>/seed-<s>/, resumable on its own with
`nasagent search --resume`. The arms share everything but their own overrides (the ARMS
registry): seed architecture, search space, budgets, proxy settings, iteration budget and seed
values. DIR/compare.toml records the shared configuration, arms and seeds; running compare
again on DIR skips finished runs and resumes partial ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import tomli_w
from pydantic import BaseModel, ConfigDict, field_validator

from nasagent.agent.config import (
    ConfigError,
    Mutator,
    RunConfig,
    config_from_dict,
    load_config,
    read_toml,
)
from nasagent.agent.report import COMPARE_FILE, ReportResult, build_report
from nasagent.agent.runlog import CONFIG_FILE, SUMMARY_FILE, read_json
from nasagent.evaluator.errors import NasAgentError, UnknownNameError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: the configuration keys it sets on top of the shared config."""

    description: str
    overrides: Mapping[str, Any]


ARMS: dict[str, Arm] = {
    "llm": Arm("LLM-guided mutation", {"mutator": Mutator.LLM}),
    "random": Arm("Zen-NAS random mutation (the baseline)", {"mutator": Mutator.RANDOM}),
}
DEFAULT_ARMS = ("llm", "random")
DEFAULT_SEED_COUNT = 5
PER_RUN_KEYS = ("mutator", "seed")
"""Keys set per run (by the arm and the seed list); the shared config never carries them."""


class CompareError(NasAgentError):
    """A comparison that cannot start or resume; the message says what to change."""


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

    @field_validator("config")
    @classmethod
    def _shared_only(cls, config: RunConfig) -> RunConfig:
        defaults = RunConfig()
        return config.model_copy(update={key: getattr(defaults, key) for key in PER_RUN_KEYS})

    def run_config(self, arm: str, seed: int) -> RunConfig:
        """The configuration of the run for `arm` and `seed`."""
        values = {**self.config.model_dump(), **get_arm(arm).overrides, "seed": seed}
        return config_from_dict(values, source=f"arm {arm!r}")

    def run_dir(self, out: Path, arm: str, seed: int) -> Path:
        return out / arm / f"seed-{seed}"


def make_plan(config: RunConfig, arms: Sequence[str], seeds: Sequence[int]) -> ComparePlan:
    """Check the arms and seeds and build a plan.

    Raises:
        UnknownNameError: an arm that is not in ARMS.
        CompareError: no arm or seed, or one given twice.
    """
    for arm in arms:
        get_arm(arm)
    for name, values in (("arms", list(arms)), ("seeds", list(seeds))):
        if not values:
            raise CompareError(f"compare needs at least one value in {name}")
        if len(set(values)) != len(values):
            raise CompareError(f"{name} lists a value twice: {values}")
    return ComparePlan(config=config, arms=tuple(arms), seeds=tuple(seeds))


# ---- compare.toml --------------------------------------------------------------------------


def dump_plan(plan: ComparePlan) -> str:
    """compare.toml's text: arms and seeds, then the shared configuration as [config]."""
    shared = plan.config.model_dump(mode="json", exclude=set(PER_RUN_KEYS))
    config = {k: v for k, v in shared.items() if v is not None}
    return tomli_w.dumps({"arms": list(plan.arms), "seeds": list(plan.seeds), "config": config})


def write_plan(plan: ComparePlan, path: Path) -> None:
    path.write_text(dump_plan(plan), encoding="utf-8")


def read_plan(path: Path) -> ComparePlan:
    """Read compare.toml back.

    Raises:
        ConfigError: the file is not TOML, or its configuration or arms are invalid.
    """
    data = read_toml(path)
    config = config_from_dict(data.get("config", {}), source=str(path))
    try:
        return make_plan(config, data.get("arms", []), data.get("seeds", []))
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
    stored_path = out / COMPARE_FILE
    if not stored_path.exists():
        config = load_config(config_path, given)
        arms = DEFAULT_ARMS if arms is None else arms
        return make_plan(config, arms, range(DEFAULT_SEED_COUNT) if seeds is None else seeds)
    stored = read_plan(stored_path)
    if config_path is None and not given and arms is None and seeds is None:
        return stored
    values = stored.config.model_dump()
    values.update(read_toml(config_path) if config_path else {})
    values.update(given)
    requested = make_plan(
        config_from_dict(values, source="flags"),
        stored.arms if arms is None else arms,
        stored.seeds if seeds is None else seeds,
    )
    _check_agrees(stored, requested, stored_path)
    return stored


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
    return {**plan.config.model_dump(mode="json"), "arms": plan.arms, "seeds": plan.seeds}


# ---- running -------------------------------------------------------------------------------


class RunOutcome(Protocol):
    """What a run function returns (agent.search.RunResult satisfies it)."""

    finished: bool
    stopped_reason: str | None


RunFunction = Callable[..., RunOutcome]
"""Called as run(config, run_dir, resume=bool, progress=bool), like agent.search.run_search."""


class RunState(StrEnum):
    NEW = "new"
    PARTIAL = "partial"
    FINISHED = "finished"


def run_state(run_dir: Path, config: RunConfig) -> RunState:
    """Whether a run directory is new, partial (resumable) or finished at `config`'s budget."""
    summary = run_dir / SUMMARY_FILE
    if summary.exists():
        data = read_json(summary)
        if data.get("finished") and data.get("iterations") == config.iterations:
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
    plan: ComparePlan, out: Path, *, run: RunFunction | None = None, progress: bool = True
) -> CompareResult:
    """Run every arm x seed of `plan` under `out` (skipping finished runs), then the report.

    Seeds are the outer loop, so a comparison cut short still has every arm for its first
    seeds. A run that stops (e.g. the LLM endpoint failed) does not stop the others; it is
    listed in `CompareResult.stopped` and can be resumed by running compare again.

    Args:
        plan: the resolved plan (see `resolve_plan`).
        out: the comparison directory.
        run: the search function; defaults to agent.search.run_search (tests inject fakes).
        progress: show each run's progress bar.
    """
    run = run or _default_run()
    out.mkdir(parents=True, exist_ok=True)
    if not (out / COMPARE_FILE).exists():
        write_plan(plan, out / COMPARE_FILE)
    result = CompareResult(out)
    for seed in plan.seeds:
        for arm in plan.arms:
            result.runs.append(_run_one(plan, arm, seed, out, run, progress))
    result.report = build_report(out)
    return result


def _run_one(
    plan: ComparePlan, arm: str, seed: int, out: Path, run: RunFunction, progress: bool
) -> RunRecord:
    config, run_dir = plan.run_config(arm, seed), plan.run_dir(out, arm, seed)
    state = run_state(run_dir, config)
    if state is RunState.FINISHED:
        logger.info("%s: finished earlier, skipped", run_dir)
        return RunRecord(arm, seed, run_dir, state, finished=True)
    logger.info("%s: %s", run_dir, "resuming" if state is RunState.PARTIAL else "starting")
    outcome = run(config, run_dir, resume=state is RunState.PARTIAL, progress=progress)
    if not outcome.finished:
        logger.warning("%s stopped: %s", run_dir, outcome.stopped_reason)
    return RunRecord(arm, seed, run_dir, state, outcome.finished, outcome.stopped_reason)


def _default_run() -> RunFunction:
    from nasagent.agent.search import (
        run_search,  # imported late: torch and the LLM SDK load with it
    )

    return run_search
