"""The service's one door to the rest of nasagent: validation, scoring, mutation and runs.

Every call the HTTP layer makes into nasagent goes through this module, so that moving to the
public `nasagent` API (check, score, mutate, registries) changes this file alone. Errors come
out as `ServiceError`s with the CLI's messages and located errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from nasagent.agent.cli.inspect_command import report_json
from nasagent.agent.cli.score_command import over_memory_cap, score_row, settings_in
from nasagent.agent.compare import (
    ARMS,
    DEFAULT_ARMS,
    ComparePlan,
    CompareResult,
    RunFunction,
    UnfairArmError,
    check_baseline,
    check_listed,
    check_plan_inputs,
    make_plan,
    split_compare_keys,
)
from nasagent.agent.compare import read_plan as _read_plan
from nasagent.agent.compare import run_compare as _run_compare
from nasagent.agent.compare import write_plan as _write_plan
from nasagent.agent.config import RunConfig, config_from_dict, load_config, score_settings_for
from nasagent.agent.labels import arm_label, describe
from nasagent.agent.llm.base import LLMBackend
from nasagent.agent.llm.factory import make_backend
from nasagent.agent.llm.recording import CallRecorder, RecordingBackend
from nasagent.agent.mutate import amutate
from nasagent.agent.preflight import check_run_inputs
from nasagent.agent.proposers import constraints_for
from nasagent.agent.report import BASELINE_ARM, COMPARE_FILE, REPORT_FILE, ReportResult
from nasagent.agent.report import build_report as _build_report
from nasagent.agent.runlog import CONFIG_FILE, LLM_CALLS_FILE
from nasagent.agent.search import RunResult, StopSignal, prepare_run_dir
from nasagent.agent.search import run_search as _run_search
from nasagent.agent.service.errors import ServiceError
from nasagent.agent.service.guard import remote_config
from nasagent.agent.session import backend_options
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import (
    ScoreResult,
    ScoreSettings,
    get_proxy,
    prepare_settings,
    resolve_device,
)
from nasagent.evaluator.proxies import higher_is_better as proxy_direction
from nasagent.evaluator.validation import Constraints, check_string

__all__ = [
    "DEFAULT_ARMS", "LLM_CALLS_FILE", "REPORT_FILE", "CallRecorder", "ComparePlan",
    "CompareResult", "LLMBackend", "RecordingBackend", "amutate",
    "RunConfig", "RunFunction", "RunResult", "StopSignal", "arm_label", "build_report",
    "check_device", "check_parent", "check_run_start", "refuse_over_cap",
    "compare_plan", "describe", "higher_is_better", "constraints",
    "inspect_results", "make_llm", "read_config", "read_plan", "run_compare",
    "run_config", "run_search", "score_rows", "score_settings", "start_compare_dir",
    "start_search_dir",
]


T = TypeVar("T")
Scorer = Callable[[Any, ScoreSettings], ScoreResult]
"""Scores one valid architecture with the settings (a worker process's, in the service)."""


def located(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as {"field", "message"} (never the input value: it may be a secret)."""
    return [
        {"field": ".".join(str(p) for p in item["loc"]) or "body",
         "message": str(item["msg"]).removeprefix("Value error, ")}
        for item in error.errors()
    ]


def _invalid(message: str, error: ValidationError) -> ServiceError:
    return ServiceError(message, status=422, errors=located(error))


# ---- check and score ------------------------------------------------------------------------


def constraints(values: dict[str, Any]) -> Constraints:
    """The validator's constraints from `inspect`'s options; a budget of None or 0 is none."""
    cleaned = {
        k: None if k.startswith("max_") and v in (None, 0) else v for k, v in values.items()
    }
    try:
        return Constraints.model_validate(cleaned)
    except ValidationError as error:
        raise _invalid("invalid check options", error) from None


def inspect_results(archs: list[str], limits: Constraints) -> list[dict[str, Any]]:
    """The `inspect --json` object of each block string, in order."""
    return [report_json(check_string(text, limits)) for text in archs]


def score_settings(search_space: str, values: dict[str, Any]) -> ScoreSettings:
    """Proxy settings for inputs of `search_space`, checked against the registered proxies
    (resolution and classes default to the space's); `check_device` checks the device."""
    try:
        settings = settings_in(search_space, values)
        get_proxy(settings.proxy)
    except ValidationError as error:
        raise _invalid("invalid score settings", error) from None
    except NasAgentError as error:
        raise ServiceError(str(error), status=422) from None
    return settings


def check_device(settings: ScoreSettings) -> None:
    """Refuse a device this machine lacks (it imports torch: after the cheap checks)."""
    try:
        resolve_device(settings.device)
    except NasAgentError as error:
        raise ServiceError(str(error), status=422) from None


def refuse_over_cap(archs: list[str], settings: ScoreSettings) -> None:
    """Refuse every block string whose estimated memory to score is over the settings' cap.

    Raises:
        ServiceError: 422, each refused input located at `archs.N`; nothing was scored.
    """
    refused = over_memory_cap([(text, settings) for text in archs],
                              lambda index, _text: f"archs.{index}")
    if refused:
        raise ServiceError(refused[0][1], status=422, errors=[
            {"field": f"archs.{index}", "message": message} for index, message in refused
        ])


def score_rows(
    archs: list[str], settings: ScoreSettings, scorer: Scorer | None = None
) -> list[dict[str, Any]]:
    """The `score --json` row of each block string (CPU-heavy: call it off the event loop);
    `scorer` scores one valid architecture (the service's: in a worker process). The settings
    are prepared here (proxy data read, the combined proxy's normalisation measured), after
    the cheap refusals."""
    prepared = prepare_settings(settings)
    return [score_row(text, prepared, scorer) for text in archs]


# ---- configurations -------------------------------------------------------------------------


def run_config(values: dict[str, Any], *, source: str = "config") -> RunConfig:
    """A run configuration from config-file keys, its seed architecture and device checked."""
    try:
        config = config_from_dict(values, source=source)
    except NasAgentError as error:  # ConfigError
        raise ServiceError(str(error), status=422) from None
    check_parent(config.seed_arch, config, what="config.seed_arch")
    try:  # torch loads here: after the cheap checks, so that a refusal is instant
        resolve_device(config.device)
    except NasAgentError as error:  # cuda asked of a machine without it
        raise ServiceError(str(error), status=422) from None
    return config


def check_run_start(config: RunConfig) -> None:
    """What `nasagent search` checks before it writes anything: the seed under the budgets
    in force and the memory cap, the proxy and the backend.

    Raises:
        ServiceError: 422 located at `config.seed_arch`.
    """
    _located(check_run_inputs, "config.seed_arch")(config)


def check_parent(text: str, config: RunConfig, *, what: str = "parent") -> str:
    """The canonical form of a parent block string, or a 422 with the validator's errors
    or the memory cap's sentence.

    Budgets are not applied: a parent over budget can still be mutated into budget.
    """
    limits = constraints_for(config).model_copy(
        update={"max_params": None, "max_flops": None, "max_layers": None}
    )
    report = check_string(text, limits)
    record = report_json(report)
    if not record["valid"]:
        raise ServiceError(f"{what} is not a valid architecture", status=422,
                           errors=record["errors"])
    refusal = score_settings_for(config).memory_refusal(report.architecture, what=what)
    if refusal is not None:
        raise ServiceError(refusal, status=422, errors=[{"field": what, "message": refusal}])
    return str(record["canonical"])


def higher_is_better(proxy: str, search_space: str) -> bool:
    """Whether a higher score of `proxy` is better in `search_space` (for picking a
    comparison's best)."""
    return proxy_direction(proxy, search_space)


def compare_plan(
    values: dict[str, Any], arms: list[str] | None, seeds: list[int]
) -> ComparePlan:
    """A comparison from config-file keys, checked as `nasagent compare --config` checks one.

    `values` may hold `[arms.NAME]` tables (`"arms": {"NAME": {...}}`) and `baseline`, as a
    compare config file does; `arms` picks which arms run (default: the defined ones in
    order, else llm and random). The service's rules on the top-level config (no base_url,
    no backend that reads server files) apply to every arm, and nothing is written.

    Raises:
        ServiceError: 422, the one-line error and the located field (`config.arms.NAME.KEY`).
    """
    shared, defined, baseline = _located(split_compare_keys, "config.arms")(values)
    for name, settings in defined.items():
        if isinstance(settings, dict):
            remote_config(settings, f"config.arms.{name}")
    config = run_config(remote_config(shared))
    chosen = list(arms) if arms is not None else list(defined) or list(DEFAULT_ARMS)
    _located(check_listed, "arms")("arms", chosen)
    _located(check_listed, "seeds")("seeds", seeds)
    baseline = baseline or BASELINE_ARM
    _located(check_baseline, "config.baseline")(baseline, chosen)
    for arm in chosen:
        _check_arm(config, arm, defined, seeds[0])
    return _located(make_plan, "config")(config, chosen, seeds, defined=defined,
                                         baseline=baseline)


def _check_arm(
    config: RunConfig, arm: str, defined: dict[str, Any], seed: int
) -> None:
    """One arm alone through compare's checks and the run's input checks, located."""
    where = f"config.arms.{arm}" if arm in defined else "arms" if arm not in ARMS else "config"
    try:
        plan = make_plan(config, [arm], [seed], defined=defined, baseline=arm)
        check_plan_inputs(plan)
    except UnfairArmError as error:
        raise ServiceError(str(error), status=422, errors=[
            {"field": f"{where}.{key}", "message": "shared by every arm; set it in config"}
            for key in error.keys
        ]) from None
    except NasAgentError as error:
        raise ServiceError(str(error), status=422,
                           errors=[{"field": where, "message": str(error)}]) from None


def _located(check: Callable[..., T], field: str) -> Callable[..., T]:
    """`check` with its NasAgentError answered as a 422 located at `field`."""
    def checked(*args: Any, **kwargs: Any) -> T:
        try:
            return check(*args, **kwargs)
        except NasAgentError as error:
            raise ServiceError(str(error), status=422,
                               errors=[{"field": field, "message": str(error)}]) from None

    return checked


# ---- mutation -------------------------------------------------------------------------------


def make_llm(spec: str, config: RunConfig) -> LLMBackend:
    """The LLM backend named by `spec`; its key comes from the server's environment."""
    try:
        return make_backend(spec, backend_options(config))
    except NasAgentError as error:
        raise ServiceError(str(error), status=422) from None


# ---- runs -----------------------------------------------------------------------------------


def start_search_dir(config: RunConfig, run_dir: Path) -> None:
    """Create a search's run directory with its config.toml (resumable from then on)."""
    prepare_run_dir(config, run_dir, resume=False)


def start_compare_dir(plan: ComparePlan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_plan(plan, out / COMPARE_FILE)


def read_config(run_dir: Path) -> RunConfig:
    return load_config(run_dir / CONFIG_FILE)


def read_plan(out: Path) -> ComparePlan:
    return _read_plan(out / COMPARE_FILE)


def run_search(
    config: RunConfig, run_dir: Path, *, resume: bool, stop: StopSignal
) -> RunResult:
    """Run or resume a search, without a progress bar; `stop` ends it cleanly."""
    return _run_search(config, run_dir, resume=resume, progress=False, stop=stop)


def run_compare(plan: ComparePlan, out: Path, run: RunFunction) -> CompareResult:
    return _run_compare(plan, out, run=run, progress=False)


def build_report(directory: Path) -> ReportResult:
    return _build_report(directory)
