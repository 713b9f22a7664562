"""The proxy validity study: how well does each zero-cost proxy rank architectures by accuracy?

`nasagent correlate` samples N distinct valid architectures, scores each with every proxy,
measures each one's accuracy, and reports per proxy Kendall's tau and Spearman's rho against
it, each with a percentile bootstrap interval, a scatter plot per proxy and a self-contained
HTML page. Where the accuracy comes from is the study's `truth` (`TRUTHS`):

* `training`: chains of random mutations of the seed, of varying length, stratified by
  parameter count so small and large networks are both present, each trained briefly and
  measured by held-out top-1;
* `benchmark`: cells drawn uniformly from a space with a benchmark table (NB201), each
  looked up in the table (`agent.truth.truth_of`, the one path of ground truth), no training.

For a lower-is-better proxy the score is negated before correlating, so a positive tau always
means "the proxy's preferred architectures are more accurate". Everything is cached in the
study directory (study.json, archs/NNN.json, archs/NNN/ training), so a re-run resumes.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nasagent.agent.outcomes import Count
from nasagent.agent.runlog import STUDY_FILE, read_json, write_json
from nasagent.agent.task_defaults import ARCH_BUDGET_KEYS
from nasagent.agent.truth import truth_of
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.combined import (
    DEFAULT_MEMBERS,
    DEFAULT_REFERENCE,
    MIN_FINITE,
    Normalisation,
    checked_members,
    combined_result,
)
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.memory import MemoryCapError, memory_refusal
from nasagent.evaluator.proxies import (
    PROXIES,
    ScoreResult,
    ScoreSettings,
    check_proxy_data,
    checked_data_spec,
    get_proxy,
    higher_is_better,
    inputs_used,
    prepare_settings,
    score,
)
from nasagent.evaluator.spaces import DEFAULT_SEARCH_SPACE, SEARCH_SPACES, get_space
from nasagent.evaluator.spaces.base import Benchmark, Mutator, SearchSpace
from nasagent.evaluator.validation import Constraints, check

logger = logging.getLogger(__name__)

RESULTS_FILE = "correlation.json"
REPORT_FILE = "correlate.html"
ARCHS_DIR = "archs"
SCATTER_PREFIX = "scatter_"
POOL_FACTOR = 8
"""Candidates drawn per architecture kept, before stratifying by size."""
MAX_CHAINS_FACTOR = 25
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
MIN_PAIRS = 3
MAX_BOOTSTRAP_ELEMENTS = 2**22
"""Pair entries one batch of bootstrap resamples may hold: Kendall's tau is vectorised over an
n x n sign matrix per resample, so 1,000 resamples of a 1,000-architecture study at once would
need over 20 GB; in batches of this size it needs about 0.2 GB, with the same resamples."""
CI_RULE = (
    f"An interval is given only when all {BOOTSTRAP_RESAMPLES} bootstrap resamples define the "
    "statistic. A resample whose scores or top-1 values are all equal (likely with few pairs or "
    "tied scores) defines none, and an interval over the other resamples would hide that."
)
"""The rule that decides whether a rank correlation gets an interval; stated with the results."""
NO_BUDGET = "none"
"""An override value that removes a budget (None in an override means "not given")."""
TRUTH_TRAINING: Literal["training"] = "training"
TRUTH_BENCHMARK: Literal["benchmark"] = "benchmark"
SPACE_KEYS = ("seed_arch", "resolution", *ARCH_BUDGET_KEYS)
"""Study settings that default to the search space's own (`SpaceDefaults`)."""


class StudyError(NasAgentError):
    """A study that cannot start, resume or be analysed; the message says what to change."""


class StudySettings(BaseModel):
    """Everything that defines a study; stored as study.json and checked on resume."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archs: int = Field(default=30, ge=3)
    proxies: tuple[str, ...] = tuple(PROXIES)
    data: str = "digits"
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=128, ge=2)
    lr: float = Field(default=0.1, gt=0)
    resolution: int = Field(default=32, ge=4)
    seed: int = 0
    score_batch_size: int = Field(default=64, ge=2)
    search_space: str = DEFAULT_SEARCH_SPACE
    seed_arch: str = CIFAR_SEED
    """The chains' start: the search space's seed unless given."""
    structure: str = "none"
    max_params: float | None = 1e6
    max_flops: float | None = None
    max_layers: int | None = 18
    max_chain: int = Field(default=12, ge=1)
    device: str = "auto"
    truth: Literal["training", "benchmark"] = TRUTH_TRAINING
    """Where the accuracies come from: brief training, or the space's benchmark table."""
    proxy_data: str | None = None
    """Real proxy data (`cifar10:DIR`, `imagefolder:DIR`); None: Gaussian inputs."""
    combined_members: tuple[str, ...] = DEFAULT_MEMBERS
    combined_reference: int = Field(default=DEFAULT_REFERENCE, ge=MIN_FINITE)

    @model_validator(mode="before")
    @classmethod
    def _space_defaults(cls, values: Any) -> Any:
        """Seed, resolution and budgets not given are the search space's."""
        if not isinstance(values, dict):
            return values
        name = values.get("search_space", DEFAULT_SEARCH_SPACE)
        if not isinstance(name, str) or name not in SEARCH_SPACES:
            return values
        defaults = get_space(name).defaults
        return {**{key: getattr(defaults, key) for key in SPACE_KEYS}, **values}

    @field_validator("proxies")
    @classmethod
    def _known_proxies(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in PROXIES]
        if unknown or not names:
            raise ValueError(f"unknown proxies {unknown}; valid: {', '.join(PROXIES)}")
        return names

    @field_validator("combined_members")
    @classmethod
    def _single_proxies(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        return checked_members(members)

    @field_validator("proxy_data")
    @classmethod
    def _a_data_spec(cls, spec: str | None) -> str | None:
        return checked_data_spec(spec)

    def score_settings(self, proxy: str, num_classes: int) -> ScoreSettings:
        """The proxy settings of `proxy` in this study."""
        return ScoreSettings.model_validate({
            "proxy": proxy, "batch_size": self.score_batch_size,
            "resolution": self.resolution, "num_classes": num_classes, "seed": self.seed,
            "device": self.device, "search_space": self.search_space,
            "proxy_data": self.proxy_data,
            "combination": {"members": self.combined_members,
                            "reference": self.combined_reference},
        })

    def constraints(self, num_classes: int) -> Constraints:
        constraints = Constraints(
            search_space=self.search_space, num_classes=num_classes, resolution=self.resolution,
            max_params=self.max_params, max_flops=self.max_flops, max_layers=self.max_layers,
            structure=self.structure,
        )
        return constraints.space.constrained_by_seed(constraints, self.seed_arch)


class Study(BaseModel):
    """study.json: the settings, the sampled architectures in the order they are run, and the
    combined proxy's normalisation, fixed when the study starts (None without one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: StudySettings
    num_classes: int
    architectures: tuple[str, ...]
    normalisation: Normalisation | None = None


# ---- resolving settings against a stored study -------------------------------------------


def resolve_study_settings(out: Path, overrides: dict[str, Any]) -> StudySettings:
    """The settings for `out`: the flags for a new study, the stored ones on a re-run.

    Override values of None are "not given"; `NO_BUDGET` removes a budget.

    Raises:
        StudyError: flags that disagree with the stored study.json, or invalid values.
    """
    given = {k: None if v == NO_BUDGET else v for k, v in overrides.items() if v is not None}
    stored = _stored_study(out)
    values = {**(stored.settings.model_dump() if stored else {}), **given}
    try:
        settings = StudySettings.model_validate(values)
    except ValueError as error:
        raise StudyError(f"invalid study settings: {_first_line(error)}") from None
    if stored and settings != stored.settings:
        changed = sorted(k for k, v in settings.model_dump().items()
                         if stored.settings.model_dump()[k] != v)
        raise StudyError(
            f"{out / STUDY_FILE} was written for another study ({', '.join(changed)} differ); "
            f"run correlate on it without those flags to resume, or choose another --out"
        )
    return settings


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:400]


def _stored_study(out: Path) -> Study | None:
    path = out / STUDY_FILE
    if not path.exists():
        return None
    try:
        return Study.model_validate(read_json(path))
    except ValueError as error:
        raise StudyError(f"{path} is not a study file: {_first_line(error)}") from None


# ---- sampling -----------------------------------------------------------------------------


def sample_architectures(
    settings: StudySettings, constraints: Constraints, max_memory: float | None = None
) -> list[str]:
    """N distinct valid architectures: random-mutation chains of the seed, stratified by size.

    Each chain applies 1..max_chain Zen-NAS mutations, keeping a step only when the child is
    valid under `constraints` and within the memory cap `max_memory` (MB, to score and to
    train; None: no cap), so the walk stays inside the budgets. The distinct end points are
    sorted by parameter count, cut into N equal strata and one is drawn from each.

    Raises:
        StudyError: the seed is invalid or over the memory cap, or too few distinct
            architectures were found.
    """
    space = constraints.space
    seed = space.decode(settings.seed_arch).architecture
    report = check(seed, constraints)
    if not report.valid:
        raise StudyError(f"the seed architecture is invalid here: {report.error_lines()[0]}")
    over_cap = _memory_check(settings, constraints, max_memory)
    refusal = over_cap(seed, "seed_arch")
    if refusal is not None:
        raise StudyError(refusal)
    rng = random.Random(settings.seed)
    mutator = space.drawn_mutator(rng, {})
    pool: dict[str, float] = {}
    for _ in range(settings.archs * MAX_CHAINS_FACTOR):
        if len(pool) >= settings.archs * POOL_FACTOR:
            break
        end = _chain(seed, rng.randint(1, settings.max_chain), mutator, rng, constraints,
                     over_cap)
        if end != seed and (cost := check(end, constraints).cost) is not None:
            pool.setdefault(space.encode(end), cost.params)
    if len(pool) < settings.archs:
        raise StudyError(f"found only {len(pool)} distinct valid architectures for "
                         f"--archs {settings.archs}; loosen the budgets or ask for fewer")
    return _stratified(pool, settings.archs, rng)


def uniform_architectures(
    settings: StudySettings, constraints: Constraints, max_memory: float | None = None
) -> list[str]:
    """N distinct architectures drawn uniformly by the space's `random_arch` (seeded), each
    valid under `constraints` (NB201: every cell, unless a budget is given) and within the
    memory cap `max_memory` to score (MB; None: no cap).

    Raises:
        StudyError: the space has no uniform sampler, or too few distinct architectures.
    """
    space, rng = constraints.space, random.Random(settings.seed)
    archs: dict[str, None] = {}
    for _ in range(settings.archs * MAX_CHAINS_FACTOR):
        arch = space.random_arch(rng)
        if arch is None:
            raise StudyError(f"search space {space.name} has no uniform sampler; "
                             f"use --truth training")
        if check(arch, constraints).valid and memory_refusal(
                space, arch, constraints, settings.score_batch_size, max_memory) is None:
            archs.setdefault(space.encode(arch), None)
        if len(archs) == settings.archs:
            return list(archs)
    raise StudyError(f"found only {len(archs)} distinct valid architectures for --archs "
                     f"{settings.archs}; loosen the budgets or ask for fewer")


MemoryCheck = Callable[[Any, str], str | None]
"""(architecture, what) -> the sentence refusing it over the memory cap, or None."""


def _memory_check(
    settings: StudySettings, constraints: Constraints, max_memory: float | None
) -> MemoryCheck:
    """What refuses an architecture the study could not score or train under the cap."""
    def over_cap(arch: Any, what: str) -> str | None:
        return memory_refusal(constraints.space, arch, constraints, settings.score_batch_size,
                              max_memory, what=what) or memory_refusal(
            constraints.space, arch, constraints, settings.batch_size, max_memory, what=what,
            purpose="train")

    return over_cap


def refuse_seed_over_cap(settings: StudySettings, max_memory: float | None) -> None:
    """Refuse a seed over the memory cap with one class: a lower bound of the estimate with
    the data's classes, so the refusal stands.

    Raises:
        StudyError: the sentence of the refusal.
    """
    constraints = settings.constraints(1)
    seed = constraints.space.decode(settings.seed_arch).architecture
    if check(seed, constraints).valid:  # an invalid seed: `sample_architectures` says why
        refusal = _memory_check(settings, constraints, max_memory)(seed, "seed_arch")
        if refusal is not None:
            raise StudyError(refusal)


def _chain(
    arch: Any, length: int, mutator: Mutator, rng: random.Random, constraints: Constraints,
    over_cap: MemoryCheck,
) -> Any:
    for _ in range(length):
        child = mutator.mutate(arch, num_replaces=rng.choice((1, 2)))
        if check(child, constraints).valid and over_cap(child, "a child") is None:
            arch = child
    return arch


def _stratified(pool: dict[str, float], count: int, rng: random.Random) -> list[str]:
    ordered = sorted(pool, key=lambda arch: (pool[arch], arch))
    strata = np.array_split(np.arange(len(ordered)), count)
    return [ordered[int(rng.choice(list(stratum)))] for stratum in strata]


# ---- running ------------------------------------------------------------------------------


class ArchRecord(BaseModel):
    """archs/NNN.json: one architecture's size, proxy scores and (once trained) accuracy."""

    model_config = ConfigDict(frozen=True)

    index: int
    arch: str
    params: Count
    flops: Count
    layers: int | None = None
    scores: dict[str, ScoreResult] = {}
    top1: float | None = None
    """The accuracy the proxies are correlated with, as a fraction (held-out top-1, or the
    benchmark's test accuracy / 100)."""
    truth: dict[str, Any] | None = None
    """The benchmark table's figures (percent) of a `benchmark` study, as events carry them."""
    seconds_per_epoch: float | None = None
    train_error: str | None = None


Reporter = Callable[[str], None]


class Truth(Protocol):
    """Where a study's accuracies come from (`TRUTHS`)."""

    num_classes: int

    def sample(
        self, settings: StudySettings, constraints: Constraints, max_memory: float | None
    ) -> list[str]: ...

    def measure(self, record: ArchRecord, out: Path, max_memory: float | None) -> ArchRecord:
        ...

    def describe(self) -> dict[str, Any]: ...


class TrainingTruth:
    """Held-out top-1 after brief training on the study's data (`evaluator.training`)."""

    def __init__(self, settings: StudySettings, progress: bool) -> None:
        from nasagent.evaluator.datasets import load_data

        self.settings, self.progress = settings, progress
        self.data = load_data(settings.data, settings.resolution)
        self.num_classes = self.data.num_classes

    def sample(
        self, settings: StudySettings, constraints: Constraints, max_memory: float | None
    ) -> list[str]:
        return sample_architectures(settings, constraints, max_memory)

    def measure(self, record: ArchRecord, out: Path, max_memory: float | None) -> ArchRecord:
        return _trained(record, self.settings, self.data, out, self.progress, max_memory)

    def describe(self) -> dict[str, Any]:
        return {"kind": TRUTH_TRAINING, "label": "held-out top-1", "data": self.settings.data}


class BenchmarkTruth:
    """The space's benchmark table (NB201: NATS-Bench's 200-epoch test accuracy, mean over
    seeds): no training; the cells are drawn uniformly."""

    def __init__(self, settings: StudySettings, progress: bool) -> None:  # noqa: ARG002
        space: SearchSpace = get_space(settings.search_space)
        table = space.benchmark()
        if table is None:
            raise StudyError(f"--truth benchmark needs a search space with a benchmark table; "
                             f"{space.name} has none (the nb201-* spaces do)")
        self.table: Benchmark = table
        self.num_classes = space.defaults.num_classes

    def sample(
        self, settings: StudySettings, constraints: Constraints, max_memory: float | None
    ) -> list[str]:
        return uniform_architectures(settings, constraints, max_memory)

    def measure(
        self, record: ArchRecord, out: Path, max_memory: float | None  # noqa: ARG002
    ) -> ArchRecord:
        if record.truth is not None:
            return record
        truth = truth_of(self.table, record.arch)
        if truth is None:
            raise StudyError(f"{record.arch} is not in the benchmark table ({self.table.source})")
        update = {"truth": truth, "top1": truth["test_accuracy"] / 100}
        return _save(record.model_copy(update=update), out)

    def describe(self) -> dict[str, Any]:
        return {"kind": TRUTH_BENCHMARK, "label": "benchmark test accuracy",
                "source": self.table.source, "dataset": self.table.dataset,
                "architectures": len(self.table)}


TRUTHS: dict[str, Callable[[StudySettings, bool], Truth]] = {
    TRUTH_TRAINING: TrainingTruth, TRUTH_BENCHMARK: BenchmarkTruth,
}
"""The study's `truth` kinds."""


def run_study(
    settings: StudySettings, out: Path, *, report: Reporter = logger.info,
    progress: bool = False, max_memory: float | None = None,
) -> list[ArchRecord]:
    """Sample (or read back) the architectures, score each and measure its accuracy (train
    it, or look it up), caching as it goes.

    `max_memory` is the memory cap in MB (None: none): the sample keeps within it, and a
    stored architecture over it is neither scored nor trained (`over_budget`, `train_error`).

    Raises:
        StudyError: see `sample_architectures`; DataError: the data cannot be loaded.
        CombinationError: the combined proxy cannot be normalised.
        FolderKindError: `out` holds another kind of result (see agent.preflight).
    """
    from nasagent.agent.preflight import check_out_folder

    check_out_folder(out, "study")
    stored = _stored_study(out)
    if stored is None:  # before the data load; the sampler checks again with its classes
        refuse_seed_over_cap(settings, max_memory)
    truth = TRUTHS[settings.truth](settings, progress)
    check_proxy_data(settings.score_settings(settings.proxies[0], truth.num_classes))
    study = stored or _new_study(settings, truth, out, max_memory)
    scorings = study_scorings(study, max_memory)
    records = []
    for index, arch in enumerate(study.architectures):
        record = _scored(_record(out, index, arch, settings, study.num_classes), scorings, out)
        record = truth.measure(record, out, max_memory)
        records.append(record)
        report(_line(record, len(study.architectures)))
    return records


def study_truth(settings: StudySettings) -> dict[str, Any]:
    """What correlation.json says of the study's truth (no data or table is loaded twice:
    the benchmark table is cached, training data is only named)."""
    if settings.truth == TRUTH_TRAINING:
        return {"kind": TRUTH_TRAINING, "label": "held-out top-1", "data": settings.data}
    return BenchmarkTruth(settings, False).describe()


def study_scorings(
    study: Study, max_memory: float | None = None
) -> dict[str, ScoreSettings]:
    """The proxy settings of every proxy of `study` under the memory cap `max_memory` (MB;
    None: none), a combined proxy's carrying the study's normalisation."""
    settings = study.settings
    scorings = {proxy: settings.score_settings(proxy, study.num_classes)
                .model_copy(update={"max_memory": max_memory}) for proxy in settings.proxies}
    for proxy, scoring in scorings.items():
        if get_proxy(proxy).inputs == "members" and study.normalisation is not None:
            combination = scoring.combination.model_copy(
                update={"normalisation": study.normalisation})
            scorings[proxy] = scoring.model_copy(update={"combination": combination})
    return scorings


def _new_study(
    settings: StudySettings, truth: Truth, out: Path, max_memory: float | None
) -> Study:
    archs = truth.sample(settings, settings.constraints(truth.num_classes), max_memory)
    study = Study(settings=settings, num_classes=truth.num_classes, architectures=tuple(archs),
                  normalisation=_normalisation(settings, truth.num_classes))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / STUDY_FILE, study.model_dump(mode="json"))
    return study


def _normalisation(settings: StudySettings, num_classes: int) -> Normalisation | None:
    """The combined proxy's normalisation, measured once when the study starts."""
    combined = [p for p in settings.proxies if get_proxy(p).inputs == "members"]
    if not combined:
        return None
    prepared = prepare_settings(settings.score_settings(combined[0], num_classes))
    return prepared.combination.normalisation


def _record_path(out: Path, index: int) -> Path:
    return out / ARCHS_DIR / f"{index:03d}.json"


def _record(
    out: Path, index: int, arch: str, settings: StudySettings, num_classes: int
) -> ArchRecord:
    path = _record_path(out, index)
    if path.exists():
        try:
            stored = ArchRecord.model_validate(read_json(path))
            if stored.arch == arch:
                return stored
        except ValueError:
            logger.warning("%s is unreadable; scoring again", path)
    constraints = Constraints(search_space=settings.search_space, num_classes=num_classes,
                              resolution=settings.resolution)
    cost = constraints.space.cost(constraints.space.decode(arch).architecture, constraints)
    if cost is None:
        raise StudyError(f"{arch} has no cost in search space {settings.search_space}")
    return ArchRecord(index=index, arch=arch, params=cost.params, flops=cost.flops,
                      layers=cost.layers)


def _save(record: ArchRecord, out: Path) -> ArchRecord:
    path = _record_path(out, record.index)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record.model_dump(mode="json"))
    return record


def _scored(record: ArchRecord, scorings: dict[str, ScoreSettings], out: Path) -> ArchRecord:
    """Every missing score; a combined proxy's from its members' scores already in the
    record (the same settings), so members are not scored twice."""
    missing = [p for p in scorings if p not in record.scores]
    if not missing:
        return record
    scores = dict(record.scores)
    for proxy in missing:
        derived = combined_result(scores, scorings[proxy])
        scores[proxy] = derived or score(record.arch, scorings[proxy])
    return _save(record.model_copy(update={"scores": scores}), out)


def _trained(
    record: ArchRecord, settings: StudySettings, data: Any, out: Path, progress: bool,
    max_memory: float | None,
) -> ArchRecord:
    if record.top1 is not None or record.train_error is not None:
        return record
    from nasagent.evaluator.training import Recipe, TrainingError, train

    recipe = Recipe.model_validate({
        "epochs": settings.epochs, "batch_size": settings.batch_size, "lr": settings.lr,
        "seed": settings.seed, "device": settings.device,
        "warmup_epochs": min(1.0, settings.epochs / 5),
    })
    directory = out / ARCHS_DIR / f"{record.index:03d}"
    try:
        space = get_space(settings.search_space)
        result = train(space.decode(record.arch).architecture, data, recipe, directory,
                       search_space=space.name, resume=True, progress=progress,
                       max_memory=max_memory)
    except (TrainingError, MemoryCapError) as error:
        return _save(record.model_copy(update={"train_error": str(error)}), out)
    update = {"top1": result.top1, "seconds_per_epoch": result.seconds_per_epoch}
    return _save(record.model_copy(update=update), out)


def _line(record: ArchRecord, total: int) -> str:
    top1 = "top-1 -" if record.top1 is None else f"top-1 {100 * record.top1:.1f}%"
    if record.truth is not None:
        top1 = f"test accuracy {record.truth['test_accuracy']:.2f}% (table)"
    epoch = "" if record.seconds_per_epoch is None else f", {record.seconds_per_epoch:.1f} s/epoch"
    layers = "" if record.layers is None else f", layers {record.layers}"
    return f"[{record.index + 1}/{total}] params {record.params:,.0f}{layers}: {top1}{epoch}"


# ---- analysis -----------------------------------------------------------------------------


def kendall_tau(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Kendall's tau-b (ties handled as scipy.stats.kendalltau), vectorised over resamples."""
    x, y = np.moveaxis(np.asarray(x, float), axis, -1), np.moveaxis(np.asarray(y, float), axis, -1)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    concordance = (dx * dy).sum(axis=(-1, -2))
    scale = np.sqrt((dx * dx).sum(axis=(-1, -2)) * (dy * dy).sum(axis=(-1, -2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, concordance / np.where(scale > 0, scale, 1), np.nan)


def spearman_rho(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho (Pearson on average ranks, as scipy.stats.spearmanr), vectorised."""
    from scipy.stats import rankdata

    rx = rankdata(np.moveaxis(np.asarray(x, float), axis, -1), axis=-1)
    ry = rankdata(np.moveaxis(np.asarray(y, float), axis, -1), axis=-1)
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    scale = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (rx * ry).sum(-1) / np.where(scale > 0, scale, 1), np.nan)


Statistic = Callable[..., np.ndarray]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def rank_correlation(
    x: Sequence[float], y: Sequence[float], statistic: Statistic, seed: int,
) -> dict[str, Any]:
    """A rank correlation and its percentile bootstrap interval (pairs resampled together)."""
    from scipy.stats import bootstrap

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < MIN_PAIRS or len(set(xs)) < 2 or len(set(ys)) < 2:
        reason = "too few pairs or a constant variable"
        return {"value": None, "ci": None, "reason": reason, "ci_reason": reason}
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")  # resamples with a constant side give NaN; dropped
        value = float(statistic(xs, ys))
        batch = max(1, MAX_BOOTSTRAP_ELEMENTS // len(xs) ** 2)
        result = bootstrap(
            (xs, ys), statistic, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed),
            batch=batch if batch < BOOTSTRAP_RESAMPLES else None,
        )
    undefined = int(np.count_nonzero(~np.isfinite(result.bootstrap_distribution)))
    low, high = result.confidence_interval
    interval = [_finite_or_none(float(low)), _finite_or_none(float(high))]
    if undefined or None in interval:
        return {"value": _finite_or_none(value), "ci": None, "reason": None,
                "ci_reason": f"{undefined} of {BOOTSTRAP_RESAMPLES} bootstrap resamples have a "
                             "constant score or top-1, where it is undefined"}
    return {"value": _finite_or_none(value), "ci": interval, "reason": None, "ci_reason": None}


def score_accuracy_pairs(records: Sequence[ArchRecord], proxy: str) -> list[tuple[float, float]]:
    """(raw proxy score, top-1) of every architecture that has both."""
    pairs = []
    for record in records:
        result = record.scores.get(proxy)
        if result is not None and result.score is not None and record.top1 is not None:
            pairs.append((result.score, record.top1))
    return pairs


def analyse(
    records: Sequence[ArchRecord], settings: StudySettings,
    normalisation: Normalisation | None = None, truth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Per proxy: pairs used, failures, what it read, Kendall's tau and Spearman's rho with
    intervals; the study's truth and the combined proxy's normalisation beside them."""
    trained = [r for r in records if r.top1 is not None]
    proxies = []
    for name in settings.proxies:
        higher = higher_is_better(name, settings.search_space)
        pairs = score_accuracy_pairs(trained, name)
        xs, ys = [(1.0 if higher else -1.0) * p[0] for p in pairs], [p[1] for p in pairs]
        proxies.append({
            "proxy": name, "higher_is_better": higher, "n": len(pairs),
            "failed": sum(name in r.scores and r.scores[name].score is None for r in records),
            "inputs": inputs_used(settings.score_settings(name, 1)),
            "kendall_tau": rank_correlation(xs, ys, kendall_tau, settings.seed),
            "spearman_rho": rank_correlation(xs, ys, spearman_rho, settings.seed),
        })
    times = [r.seconds_per_epoch for r in trained if r.seconds_per_epoch is not None]
    accuracies = [float(r.top1) for r in trained if r.top1 is not None]
    return {
        "settings": settings.model_dump(mode="json"),
        "architectures": len(records), "trained": len(trained),
        "train_failures": [r.train_error for r in records if r.train_error],
        "seconds_per_epoch_mean": sum(times) / len(times) if times else None,
        "top1_range": [min(accuracies), max(accuracies)] if accuracies else None,
        "confidence": CONFIDENCE, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
        "ci_rule": CI_RULE, "truth": truth or study_truth(settings),
        "combination": normalisation.model_dump(mode="json") if normalisation else None,
        "proxies": proxies, "common": common_cells(trained, settings),
    }


def common_cells(records: Sequence[ArchRecord], settings: StudySettings) -> dict[str, Any]:
    """Each proxy's rank correlations on the architectures every proxy scored: proxies that
    fail on different architectures (NASWOT and the Zen-score on cells whose input never
    reaches the output) compared on the same set. No intervals: they are read side by side."""
    common = [r for r in records if all(
        p in r.scores and r.scores[p].score is not None for p in settings.proxies)]
    ys = np.asarray([float(r.top1 or 0.0) for r in common])
    values: dict[str, Any] = {"n": len(common), "kendall_tau": {}, "spearman_rho": {}}
    for name in settings.proxies if len(common) >= MIN_PAIRS else ():
        sign = 1.0 if higher_is_better(name, settings.search_space) else -1.0
        xs = np.asarray([sign * float(r.scores[name].score or 0.0) for r in common])
        for key, statistic in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho)):
            values[key][name] = _finite_or_none(float(statistic(xs, ys)))
    return values


# ---- outputs ------------------------------------------------------------------------------


def plot_scatter(
    records: Sequence[ArchRecord], entry: dict[str, Any], truth_label: str, path: Path
) -> Path:
    """Proxy score against the study's accuracy, one point per architecture (no pyplot)."""
    from matplotlib.figure import Figure

    proxy, tau = entry["proxy"], entry["kendall_tau"]["value"]
    points = score_accuracy_pairs(records, proxy)
    figure = Figure(figsize=(4.8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([p[0] for p in points], [p[1] for p in points], s=18, color="#1f77b4")
    direction = "higher" if entry["higher_is_better"] else "lower"
    axes.set_xlabel(f"{proxy} score ({direction} is better)")
    axes.set_ylabel(truth_label)
    shown = "n/a" if tau is None else f"{tau:.3f}"
    axes.set_title(f"{proxy}: Kendall tau {shown} (n={len(points)})", fontsize="medium")
    if PROXIES[proxy].log_scale and points and min(p[0] for p in points) > 0:
        axes.set_xscale("log")
    figure.savefig(path, dpi=110)
    return path


def write_outputs(records: Sequence[ArchRecord], settings: StudySettings, out: Path) -> dict:
    """correlation.json, one scatter PNG per proxy and the self-contained correlate.html."""
    stored = _stored_study(out)
    results = analyse(records, settings, stored.normalisation if stored else None)
    write_json(out / RESULTS_FILE, results)
    figures = []
    for entry in results["proxies"]:
        path = out / f"{SCATTER_PREFIX}{entry['proxy']}.png"
        plot_scatter(records, entry, results["truth"]["label"], path)
        figures.append((entry["proxy"], path))
    (out / REPORT_FILE).write_text(render_html(results, records, figures, out), encoding="utf-8")
    return results


def render_html(
    results: dict[str, Any], records: Sequence[ArchRecord], figures: list[tuple[str, Path]],
    out: Path,
) -> str:
    """The study page: no external resource, figures inlined as data URIs."""
    from nasagent.agent.report import _data_uri, _html_environment

    rows = [
        [entry["proxy"], "higher" if entry["higher_is_better"] else "lower (negated)",
         entry.get("inputs", "-"), str(entry["n"]), str(entry["failed"]),
         interval_text(entry["kendall_tau"]), interval_text(entry["spearman_rho"])]
        for entry in results["proxies"]
    ]
    return _html_environment().get_template("correlate.html.j2").render(
        title=out.resolve().name, results=results, rows=rows, records=records,
        proxies=results["settings"]["proxies"],
        figures=[(name, _data_uri(path)) for name, path in figures],
    )


def result_lines(results: dict[str, Any]) -> list[str]:
    """The terminal summary: tau and rho per proxy, then the interval rule if one is missing."""
    lines = [f"{entry['proxy']:>9}: tau {interval_text(entry['kendall_tau'])}, "
             f"rho {interval_text(entry['spearman_rho'])} (n={entry['n']})"
             for entry in results["proxies"]]
    if any(entry[key]["value"] is not None and entry[key]["ci"] is None
           for entry in results["proxies"] for key in ("kendall_tau", "spearman_rho")):
        lines.append(f"{round(100 * results['confidence'])}% intervals: {results['ci_rule']}")
    return lines


def interval_text(entry: dict[str, Any]) -> str:
    """`0.412 [0.18, 0.61]`, `0.667 [no interval: why]`, or the reason there is no value."""
    if entry["value"] is None:
        return f"- ({entry['reason']})" if entry.get("reason") else "-"
    if entry["ci"] is None:
        return f"{entry['value']:.3f} [no interval: {entry.get('ci_reason') or 'not computed'}]"
    low, high = entry["ci"]
    return f"{entry['value']:.3f} [{low:.2f}, {high:.2f}]"
