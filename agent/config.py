"""The run configuration: one pydantic model, loaded from TOML, overridden by CLI flags.

The TOML keys mirror the `nasagent search` flags (`--max-params` is `max_params`). The
resolved configuration is written into every run directory as `config.toml`; it never holds
secrets (API keys come from the environment only).

A search space brings its task's defaults (seed architecture, resolution, classes, budgets;
`SpaceDefaults` in evaluator.spaces.base): a key that is not given takes its space's value.
A budget of 0 or "none" means no budget, in TOML, in flags and in every command: the
architecture budgets, the spend budgets (`max_cost`, `max_total_tokens`), the per-scoring
limits (`score_timeout`, `score_memory`) and the memory cap (`max_memory`, whose default
"auto" is half this machine's memory: evaluator.memory) alike.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nasagent.agent.llm.base import LLMConfigError
from nasagent.agent.llm.factory import check_backend_spec
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.population import ParentSelection
from nasagent.agent.pricing import Price, PriceTable
from nasagent.agent.task_defaults import (
    ARCH_BUDGET_KEYS,
    NO_BUDGET,
    parse_budget,
    space_defaults,
)
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.combined import (
    DEFAULT_MEMBERS,
    DEFAULT_REFERENCE,
    MIN_FINITE,
    Combination,
    checked_members,
)
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.memory import AUTO as AUTO_CAP
from nasagent.evaluator.memory import read_cap
from nasagent.evaluator.proxies import PROXIES, ScoreSettings, checked_data_spec
from nasagent.evaluator.registry import Registry
from nasagent.evaluator.spaces import SEARCH_SPACES
from nasagent.prompts import LATEST_PROMPT_VERSION, PROMPT_VERSIONS, UNVERSIONED_PROMPT_VERSION


class ConfigError(NasAgentError):
    """A configuration file or flag that cannot be used; the message says which key and why."""


class Mutator(StrEnum):
    """The built-in mutators' names; `RunConfig.mutator` takes any name in `MUTATORS`."""

    LLM = "llm"
    RANDOM = "random"


RZNAS_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)

EXECUTION_KEYS = (
    "executor", "workers", "threads", "score_timeout", "score_memory", "ray_address",
    "max_memory",
)
"""Where and how scorings run. They never change a score, so a resumed run or a re-run
compare may set them anew; everything else is fixed when a run starts. (`max_memory` decides
whether an architecture this machine cannot hold is scored at all, never its score.)"""

LIMIT_KEYS = ("score_timeout", "score_memory")

SPACE_OPTION_KEYS = ("type_weights", "counting", "structure", "op_names", "residual")
"""Shared options a search space may not offer (it says so: SearchSpace.option_problems)."""
"""Per-scoring limits; like the budgets, 0 or "none" turns one off."""


class RunConfig(BaseModel):
    """Everything that defines a search run. Defaults: the Zen-NAS CIFAR GradNorm setting.

    `seed_arch`, `resolution`, `num_classes` and the budgets default to the search space's
    own (`zennas-imagenet`: the IDW seed, 224, 1000 classes, 400M FLOPs, 14 layers).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # search space first: the options below are checked against it
    search_space: str = "zennas-cifar"
    # search
    mutator: str = Mutator.LLM.value
    iterations: int = Field(default=500, ge=1)
    population: int = Field(default=512, ge=1)
    parent_selection: ParentSelection = ParentSelection.UNIFORM
    tournament_size: int = Field(default=4, ge=1)
    seed: int = 0
    seed_arch: str = CIFAR_SEED
    init_population: int = Field(default=0, ge=0)
    concurrency: int = Field(default=4, ge=1, le=64)
    type_weights: Literal["zennas", "uniform"] = "zennas"
    # budgets and the space's options
    counting: Literal["exact", "zennas"] = "exact"
    max_params: float | None = 1e6
    max_flops: float | None = None
    max_layers: int | None = 18
    structure: str = "none"
    op_names: Literal["standard", "neutral"] = "standard"
    """How prompts name the space's elements: `neutral` hides a benchmark's op names from the
    model (contamination control); records always hold the standard names."""
    # proxy
    proxy: str = "gradnorm"
    fitness: Literal["proxy", "benchmark"] = "proxy"
    """What selection ranks by: the proxy's score, or (`benchmark`, a reference arm and an
    upper bound, never a search method) the benchmark table's accuracy of the space."""
    batch_size: int = Field(default=64, ge=1)
    resolution: int = Field(default=32, ge=1)
    num_classes: int = Field(default=100, ge=1)
    score_seed: int = 0
    repeats: int = Field(default=1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    residual: bool = False
    proxy_data: str | None = None
    """A data spec (`cifar10:DIR`, `imagefolder:DIR`, as --data takes): the proxies whose
    space's protocol reads real data score one seeded minibatch of its training images and
    labels; None: Gaussian images and random labels."""
    combined_members: tuple[str, ...] = DEFAULT_MEMBERS
    """The proxies the `combined` proxy standardises and averages."""
    combined_reference: int = Field(default=DEFAULT_REFERENCE, ge=MIN_FINITE)
    """Architectures of the seeded reference sample that fixes the combined normalisation."""
    score_rtol: float = Field(default=1e-3, ge=0, allow_inf_nan=False)
    """Relative drift beyond which a replay's rescoring is reported as differing from the
    recording (a replay always decides from the recorded scores; see agent.reference)."""
    # LLM
    llm: str = "openai:gpt-4o"
    model: str | None = None
    base_url: str | None = None
    temperature: tuple[float, ...] = RZNAS_TEMPERATURES
    max_tokens: int = Field(default=1024, ge=16)
    llm_seed: int | None = None
    response_format: Literal["json_schema", "json_object", "none"] = "none"
    llm_timeout: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    max_repairs: int = Field(default=2, ge=0)
    max_consecutive_failures: int = Field(default=10, ge=1)
    replay_mode: Literal["strict", "sequential"] = "strict"
    include_proxy_source: bool = False
    prompt_version: int = LATEST_PROMPT_VERSION
    # reflection
    reflection: bool = True
    history_size: int = Field(default=8, ge=0)
    reflect_every: int = Field(default=25, ge=1)
    max_lessons: int = Field(default=8, ge=1)
    # cost: prices in USD per million tokens, and the spend guard
    prices: dict[str, Price] = Field(default_factory=dict)
    price_in: float | None = Field(default=None, ge=0)
    price_out: float | None = Field(default=None, ge=0)
    max_cost: float | None = None
    """USD; None (given as 0 or "none"): no cost budget."""
    max_total_tokens: int | None = None
    """Tokens in + out; None (given as 0 or "none"): no token budget."""
    # execution (EXECUTION_KEYS; see agent.execution)
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(default=0, ge=0, le=256)
    """Scoring worker processes; 0 scores in this process, one candidate at a time."""
    threads: int | None = Field(default=None, ge=1, le=1024)
    """Torch intra-op threads per scoring; None: the cores divided by the workers."""
    score_timeout: float | None = None
    """Seconds one scoring may take before it becomes `score_failed` (needs workers)."""
    score_memory: float | None = None
    """Resident MB (2**20 bytes) a scoring's worker may reach before the scoring becomes
    `score_failed` (needs workers; see agent.workerpool, and agent.ray_scoring for Ray)."""
    ray_address: str | None = None
    max_memory: float | Literal["auto"] | None = AUTO_CAP
    """The memory cap in MB (evaluator.memory): a proposal whose estimated memory to score is
    over it is `over_budget` and never built; a seed over it is refused. "auto": half this
    machine's memory, resolved where the run scores; 0 or "none": no cap."""

    @field_validator("mutator", "search_space", "proxy")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        with _as_value_error():  # UnknownNameError lists the valid names
            _REGISTRIES[info.field_name or ""].get(name)
        return name

    @field_validator("llm")
    @classmethod
    def _known_backend(cls, spec: str) -> str:
        try:
            check_backend_spec(spec)
        except LLMConfigError as error:
            raise ValueError(error.message) from None
        except NasAgentError as error:
            raise ValueError(str(error)) from None
        return spec

    @model_validator(mode="before")
    @classmethod
    def _search_space_defaults(cls, values: Any) -> Any:
        return space_defaults(values) if isinstance(values, dict) else values

    @model_validator(mode="before")
    @classmethod
    def _model_of_the_recording(cls, values: Any) -> Any:
        return recording_model(values) if isinstance(values, dict) else values

    @field_validator("search_space")
    @classmethod
    def _known_search_space(cls, name: str) -> str:
        if name not in SEARCH_SPACES:  # pydantic reports ValueErrors only, not KeyErrors
            raise ValueError(f"unknown search space {name!r}; valid: {', '.join(SEARCH_SPACES)}")
        return name

    @field_validator("max_params", "max_flops", "max_cost", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        return parse_budget(value)

    @field_validator("max_params", "max_flops", "max_layers")
    @classmethod
    def _a_cost_of_the_space(cls, value: Any, info: ValidationInfo) -> Any:
        from nasagent.evaluator.validation import checked_budget

        name = info.data.get("search_space")
        space = SEARCH_SPACES.get(name) if isinstance(name, str) and name in SEARCH_SPACES else None
        return checked_budget(space, info.field_name or "", value)

    @field_validator("max_layers", "max_total_tokens", mode="before")
    @classmethod
    def _whole_budget(cls, value: Any) -> Any:
        return parse_budget(value, integer=True)

    @field_validator(*LIMIT_KEYS, mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        return parse_budget(value, off="no limit")

    @field_validator("max_memory", mode="before")
    @classmethod
    def _memory_cap(cls, value: Any) -> Any:
        return AUTO_CAP if isinstance(value, str) and value.strip().lower() == AUTO_CAP else (
            read_cap(value))

    @property
    def memory_cap_mb(self) -> float | None:
        """`max_memory` in MB on this machine ("auto" resolved; None: no cap)."""
        return read_cap(self.max_memory)
    @field_validator("proxy_data")
    @classmethod
    def _a_data_spec(cls, spec: str | None) -> str | None:
        return checked_data_spec(spec)

    @field_validator("combined_members", mode="before")
    @classmethod
    def _member_list(cls, value: Any) -> Any:
        return tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(
            value, str) else value

    @field_validator("combined_members")
    @classmethod
    def _registered_members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        return checked_members(members)

    @field_validator("temperature", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, int | float) else value

    @field_validator("temperature")
    @classmethod
    def _temperatures_in_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 <= t <= 2 for t in value):
            raise ValueError("temperature must be one value or a non-empty list, each in [0, 2]")
        return value

    @field_validator("prompt_version")
    @classmethod
    def _shipped_prompt_version(cls, value: int, info: ValidationInfo) -> int:
        if value not in PROMPT_VERSIONS:
            valid = ", ".join(str(v) for v in PROMPT_VERSIONS)
            raise ValueError(f"prompt_version {value} is not shipped; valid: {valid}")
        name = info.data.get("search_space")
        known = isinstance(name, str) and name in SEARCH_SPACES
        offered = SEARCH_SPACES.get(str(name)).prompt_versions if known else ()
        if offered and value not in offered:
            valid = ", ".join(str(v) for v in offered)
            raise ValueError(f"prompt_version {value} is not offered by search space {name}; "
                             f"valid: {valid}")
        return value

    @field_validator(*SPACE_OPTION_KEYS)
    @classmethod
    def _offered_by_the_space(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("search_space")
        if isinstance(name, str) and name in SEARCH_SPACES:
            problems = SEARCH_SPACES.get(name).option_problems({info.field_name or "": value})
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _limits_need_a_worker(self) -> RunConfig:
        if self.executor != "local" or self.workers > 0:
            return self
        for key in LIMIT_KEYS:
            if getattr(self, key) is not None:
                raise ValueError(
                    f"{key} needs scoring in worker processes (a thread in the search process "
                    "cannot be stopped or measured apart from it): set workers to 1 or more"
                )
        return self

    @property
    def llm_model(self) -> str:
        """The model name in each request: `model` if set, else the name in `openai:MODEL` /
        `azure:DEPLOYMENT`, else the backend kind (`scripted`, `manual`, `replay`)."""
        kind, _, name = self.llm.partition(":")
        return self.model or (name if kind in ("openai", "azure") else kind)

    @model_validator(mode="after")
    def _benchmark_fitness_needs_a_table(self) -> RunConfig:
        if self.fitness == "benchmark":
            from nasagent.agent.truth import require_table

            with _as_value_error():
                require_table(SEARCH_SPACES.get(self.search_space))
        return self

    @model_validator(mode="after")
    def _price_in_and_out(self) -> RunConfig:
        if (self.price_in is None) != (self.price_out is None):
            raise ValueError("price_in and price_out go together (USD per million tokens)")
        return self

    def price_table(self) -> PriceTable:
        """The defaults, then `[prices.*]`, then `price_in/price_out` for this run's model."""
        entries = dict(self.prices)
        if self.price_in is not None and self.price_out is not None:
            entries[self.llm_model] = Price(input=self.price_in, output=self.price_out)
        return PriceTable(entries)


def score_settings_for(config: RunConfig) -> ScoreSettings:
    """The proxy settings of a run configuration."""
    return ScoreSettings(
        proxy=config.proxy, batch_size=config.batch_size, resolution=config.resolution,
        num_classes=config.num_classes, seed=config.score_seed, repeats=config.repeats,
        device=config.device, residual=config.residual, search_space=config.search_space,
        max_memory=config.memory_cap_mb, proxy_data=config.proxy_data,
        combination=Combination(members=config.combined_members,
                                reference=config.combined_reference),
    )


OFF_WRITTEN_KEYS = (*ARCH_BUDGET_KEYS, "max_memory")
"""Keys whose default is not "off", so that off is written as "none" (TOML has no null)."""

COMPARE_ONLY_KEYS = ("arms", "baseline")
"""Keys of a config file that `compare` reads ([arms.NAME] tables, `baseline`)."""


_REGISTRIES: dict[str, Registry[Any]] = {
    "mutator": MUTATORS, "search_space": SEARCH_SPACES, "proxy": PROXIES,
}
"""The registry each name-valued field is checked against."""


def recording_model(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with `model` taken from the recording that `llm = "replay:PATH"` serves.

    A replay must ask for the model the recording's requests name (the model is part of each
    request's hash), so a replay key without `model` takes it from the recording, and a `model`
    that names another one is refused in strict mode (sequential mode serves replies whatever
    the request, so there it may differ). A recording that cannot be read is left to the
    backend to report.
    """
    spec = values.get("llm")
    if not isinstance(spec, str) or not spec.startswith("replay:"):
        return values
    from nasagent.agent.llm.recording import recorded_model  # only replays read a record

    path = spec.removeprefix("replay:").replace("{seed}", str(values.get("seed", 0)))
    recorded, given = recorded_model(path), values.get("model")
    if recorded is None or given == recorded:
        return values
    if given is None:
        return {**values, "model": recorded}
    if values.get("replay_mode", "strict") == "strict":
        raise ValueError(
            f"model {given!r} is not the model the recording {path} holds ({recorded!r}); "
            f"leave model unset to replay it as recorded, or set it to {recorded!r}"
        )
    return values


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a TOML file (or the defaults) and apply flag overrides (None values are ignored).

    Raises:
        ConfigError: the file is missing, a folder or not TOML, or a key is unknown or has a
            bad value (a key from the flags is named as its flag, `--max-params`).
    """
    values: dict[str, Any] = read_toml(path) if path else {}
    for key in COMPARE_ONLY_KEYS:  # one file can configure a search and a compare
        values.pop(key, None)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(flags)
    source = f"{path} and flags" if path and flags else str(path) if path else "flags"
    return config_from_dict(values, source=source, flag_keys=frozenset(flags))


def load_run_config(path: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load the config.toml of an existing run folder (to resume, replay or report on it).

    A run recorded before prompts were versioned has no `prompt_version` key; it was prompted
    with version 1, so that is what it keeps (a fresh `load_config` gets the latest version).

    Raises:
        ConfigError: as `load_config`.
    """
    values = with_recorded_prompt_version(read_toml(path))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return config_from_dict(values, source=str(path))


def with_recorded_prompt_version(values: Any) -> Any:
    """`values` of a recorded configuration, with version 1 where no prompt_version is given.

    Anything but a table is returned as it is, for validation to report.
    """
    if not isinstance(values, dict):
        return values
    return {"prompt_version": UNVERSIONED_PROMPT_VERSION, **values}


def config_from_dict(
    values: dict[str, Any], *, source: str = "config", flag_keys: frozenset[str] = frozenset()
) -> RunConfig:
    """Validate a plain dict into a RunConfig, turning pydantic errors into one ConfigError.

    A key that is missing takes its default (its search space's, for SPACE_DEFAULT_KEYS); a
    key given as None is off (no budget, no model override).
    """
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(err, flag_keys) for err in exc.errors())
        raise ConfigError(f"invalid configuration in {source}: {problems}") from None


def _problem(error: Any, flag_keys: frozenset[str]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "config"
    name = "--" + key.replace("_", "-") if key in flag_keys else key
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, list(RunConfig.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}"
    return f"{name}: {str(error['msg']).removeprefix('Value error, ')}"


@contextmanager
def _as_value_error() -> Iterator[None]:
    """Our errors as ValueErrors, which pydantic reports with the field's name."""
    try:
        yield
    except NasAgentError as error:
        raise ValueError(str(error)) from None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict, or a ConfigError that names the file."""
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def toml_values(config: RunConfig, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The configuration as TOML-ready values: a budget that is off is written as "none" (so
    reading it back does not take the search space's default); other None values are left out.
    """
    data = config.model_dump(mode="json", exclude=set(exclude))
    for key in OFF_WRITTEN_KEYS:
        if key in data and data[key] is None:
            data[key] = NO_BUDGET
    return drop_none(data)


def dump_config(config: RunConfig) -> str:
    """The resolved configuration as TOML (see `toml_values`)."""
    return tomli_w.dumps(toml_values(config))


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without None values, in nested tables too (TOML has no null)."""
    return {k: drop_none(v) if isinstance(v, dict) else v for k, v in data.items()
            if v is not None}


def write_config(config: RunConfig, path: Path) -> None:
    path.write_text(dump_config(config), encoding="utf-8")
