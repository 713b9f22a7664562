"""The proxy validity study: how well does each zero-cost proxy rank architectures by accuracy?

`nasagent correlate` samples N distinct valid architectures under the budgets (chains of
Zen-NAS random mutations of the seed, of varying length, stratified by parameter count so small
and large networks are both present), scores each with every proxy, trains each briefly, and
reports per proxy Kendall's tau and Spearman's rho against held-out top-1, each with a
percentile bootstrap interval, a scatter plot per proxy and a self-contained HTML page.

For a lower-is-better proxy (SynFlow) the score is negated before correlating, so a positive
tau always means "the proxy's preferred architectures train better". Everything is cached in
the study directory (study.json, archs/NNN.json, archs/NNN/ training), so a re-run resumes.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from nasagent.agent.outcomes import Count
from nasagent.agent.runlog import STUDY_FILE, read_json, write_json
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.memory import MemoryCapError, memory_refusal
from nasagent.evaluator.proxies import PROXIES, ScoreResult, ScoreSettings, score
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.base import Mutator
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
CI_RULE = (
    f"An interval is given only when all {BOOTSTRAP_RESAMPLES} bootstrap resamples define the "
    "statistic. A resample whose scores or top-1 values are all equal (likely with few pairs or "
    "tied scores) defines none, and an interval over the other resamples would hide that."
)
"""The rule that decides whether a rank correlation gets an interval; stated with the results."""
NO_BUDGET = "none"
"""An override value that removes a budget (None in an override means "not given")."""


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
    search_space: str = "zennas-cifar"
    seed_arch: str = CIFAR_SEED
    structure: str = "none"
    max_params: float | None = 1e6
    max_flops: float | None = None
    max_layers: int | None = 18
    max_chain: int = Field(default=12, ge=1)
    device: str = "auto"

    @field_validator("proxies")
    @classmethod
    def _known_proxies(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in PROXIES]
        if unknown or not names:
            raise ValueError(f"unknown proxies {unknown}; valid: {', '.join(PROXIES)}")
        return names

    def constraints(self, num_classes: int) -> Constraints:
        constraints = Constraints(
            search_space=self.search_space, num_classes=num_classes, resolution=self.resolution,
            max_params=self.max_params, max_flops=self.max_flops, max_layers=self.max_layers,
            structure=self.structure,
        )
        return constraints.space.constrained_by_seed(constraints, self.seed_arch)


class Study(BaseModel):
    """study.json: the settings and the sampled architectures, in the order they are run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: StudySettings
    num_classes: int
    architectures: tuple[str, ...]


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
    seconds_per_epoch: float | None = None
    train_error: str | None = None


Reporter = Callable[[str], None]


def run_study(
    settings: StudySettings, out: Path, *, report: Reporter = logger.info,
    progress: bool = False, max_memory: float | None = None,
) -> list[ArchRecord]:
    """Sample (or read back) the architectures, score and train each, caching as it goes.

    `max_memory` is the memory cap in MB (None: none): the sample keeps within it, and a
    stored architecture over it is neither scored nor trained (`over_budget`, `train_error`).

    Raises:
        StudyError: see `sample_architectures`; DataError: the data cannot be loaded.
        FolderKindError: `out` holds another kind of result (see agent.preflight).
    """
    from nasagent.agent.preflight import check_out_folder
    from nasagent.evaluator.datasets import load_data

    check_out_folder(out, "study")
    stored = _stored_study(out)
    if stored is None:  # before the data load; `sample_architectures` checks with its classes
        refuse_seed_over_cap(settings, max_memory)
    data = load_data(settings.data, settings.resolution)
    study = stored or _new_study(settings, data.num_classes, out, max_memory)
    records = []
    for index, arch in enumerate(study.architectures):
        record = _scored(_record(out, index, arch, settings, data.num_classes), settings,
                         data.num_classes, out, max_memory)
        record = _trained(record, settings, data, out, progress, max_memory)
        records.append(record)
        report(_line(record, len(study.architectures)))
    return records


def _new_study(
    settings: StudySettings, num_classes: int, out: Path, max_memory: float | None
) -> Study:
    archs = sample_architectures(settings, settings.constraints(num_classes), max_memory)
    study = Study(settings=settings, num_classes=num_classes, architectures=tuple(archs))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / STUDY_FILE, study.model_dump(mode="json"))
    return study


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


def _scored(
    record: ArchRecord, settings: StudySettings, num_classes: int, out: Path,
    max_memory: float | None,
) -> ArchRecord:
    missing = [p for p in settings.proxies if p not in record.scores]
    if not missing:
        return record
    scores = dict(record.scores)
    for proxy in missing:
        scores[proxy] = score(record.arch, ScoreSettings.model_validate({
            "proxy": proxy, "batch_size": settings.score_batch_size,
            "resolution": settings.resolution, "num_classes": num_classes,
            "seed": settings.seed, "device": settings.device,
            "search_space": settings.search_space, "max_memory": max_memory,
        }))
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
    top1 = "-" if record.top1 is None else f"{100 * record.top1:.1f}%"
    epoch = "" if record.seconds_per_epoch is None else f", {record.seconds_per_epoch:.1f} s/epoch"
    layers = "" if record.layers is None else f", layers {record.layers}"
    return (f"[{record.index + 1}/{total}] params {record.params:,.0f}{layers}: "
            f"top-1 {top1}{epoch}")


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
        result = bootstrap(
            (xs, ys), statistic, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed),
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


def analyse(records: Sequence[ArchRecord], settings: StudySettings) -> dict[str, Any]:
    """Per proxy: pairs used, failures, Kendall's tau and Spearman's rho with intervals."""
    trained = [r for r in records if r.top1 is not None]
    proxies = []
    for name in settings.proxies:
        sign = 1.0 if PROXIES[name].higher_is_better else -1.0
        pairs = score_accuracy_pairs(trained, name)
        xs, ys = [sign * p[0] for p in pairs], [p[1] for p in pairs]
        proxies.append({
            "proxy": name, "higher_is_better": PROXIES[name].higher_is_better, "n": len(pairs),
            "failed": sum(name in r.scores and r.scores[name].score is None for r in records),
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
        "ci_rule": CI_RULE, "proxies": proxies,
    }


# ---- outputs ------------------------------------------------------------------------------


def plot_scatter(records: Sequence[ArchRecord], proxy: str, tau: float | None, path: Path) -> Path:
    """Proxy score against held-out top-1, one point per architecture (no pyplot)."""
    from matplotlib.figure import Figure

    points = score_accuracy_pairs(records, proxy)
    figure = Figure(figsize=(4.8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([p[0] for p in points], [p[1] for p in points], s=18, color="#1f77b4")
    direction = "higher" if PROXIES[proxy].higher_is_better else "lower"
    axes.set_xlabel(f"{proxy} score ({direction} is better)")
    axes.set_ylabel("held-out top-1")
    shown = "n/a" if tau is None else f"{tau:.3f}"
    axes.set_title(f"{proxy}: Kendall tau {shown} (n={len(points)})", fontsize="medium")
    if proxy in ("params", "flops", "synflow") and points and min(p[0] for p in points) > 0:
        axes.set_xscale("log")
    figure.savefig(path, dpi=110)
    return path


def write_outputs(records: Sequence[ArchRecord], settings: StudySettings, out: Path) -> dict:
    """correlation.json, one scatter PNG per proxy and the self-contained correlate.html."""
    results = analyse(records, settings)
    write_json(out / RESULTS_FILE, results)
    figures = []
    for entry in results["proxies"]:
        path = out / f"{SCATTER_PREFIX}{entry['proxy']}.png"
        plot_scatter(records, entry["proxy"], entry["kendall_tau"]["value"], path)
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
         str(entry["n"]), str(entry["failed"]), interval_text(entry["kendall_tau"]),
         interval_text(entry["spearman_rho"])]
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
