"""Training what the searches found: a run's best architecture, and every run of a comparison.

`nasagent train RUN_DIR` and `nasagent compare --train-best E` both train a run's best.json
architecture into RUN_DIR/trained/ (metrics.json, learning curve, weights). The comparison
report reads those metrics back (`trained_summary`): top-1 per arm beside the proxy score and a
one-sided Mann-Whitney test of the arm against the random baseline. Training results are the
only report input not derived from the event log: they are measurements, cached in each run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasagent.agent.runlog import BEST_FILE, CONFIG_FILE, Event, read_json
from nasagent.evaluator.errors import BlockStringError, NasAgentError
from nasagent.evaluator.spaces import SEARCH_SPACES, get_space
from nasagent.evaluator.spaces.base import spaces_holding

logger = logging.getLogger(__name__)

TRAINED_DIR = "trained"
TOP1_METRIC = "top1_after_training"


class TargetError(NasAgentError):
    """A `train` target that is neither an architecture nor a run directory with a best.json."""


TRAIN_SPACES = ("all",)
"""Where an architecture string given alone is looked for first: every Zen-NAS super block
(the other built-in spaces follow, in registry order)."""


@dataclass(frozen=True)
class Target:
    """What to train: the architecture, its search space, and the run it came from (if any)."""

    arch: Any
    search_space: str
    run_dir: Path | None = None

    @property
    def text(self) -> str:
        return get_space(self.search_space).encode(self.arch)


def best_architecture(run_dir: Path) -> Target:
    """The best valid architecture of a run directory (its best.json), in the run's space.

    Raises:
        TargetError: no best.json, or one that does not hold a decodable architecture.
    """
    path = run_dir / BEST_FILE
    if not path.is_file():
        raise TargetError(f"{run_dir} has no {BEST_FILE}: the run found no valid architecture yet")
    try:
        event = Event.model_validate(read_json(path))
        if not event.arch:
            raise TargetError(f"{path} names no architecture")
        space = get_space(_run_space(run_dir) or _accepting_space(event.arch))
        return Target(space.decode(event.arch).architecture, space.name, run_dir)
    except (ValueError, NasAgentError) as error:
        raise TargetError(f"{path} is not a best-architecture record: {error}") from None


def resolve_target(text: str, search_space: str | None = None) -> Target:
    """A run directory (trains its best architecture) or an architecture string of
    `search_space` (default: the first built-in space that accepts it).

    Raises:
        TargetError: a directory without a usable best.json, or text that does not decode.
    """
    path = Path(text)
    if path.is_dir():
        return best_architecture(path)
    name = search_space or _accepting_space(text)
    space = get_space(name)
    try:
        return Target(space.decode(text).architecture, name)
    except BlockStringError as error:
        noun = space.reply_format().answer_noun
        raise TargetError(
            f"{text!r} is neither a run directory nor a {noun}: {error}"
        ) from None


def _run_space(run_dir: Path) -> str | None:
    """The search space of a run folder's config.toml, or None without one."""
    if not (run_dir / CONFIG_FILE).is_file():
        return None
    from nasagent.agent.config import load_run_config

    return load_run_config(run_dir / CONFIG_FILE).search_space


def _accepting_space(text: str) -> str:
    names = [*TRAIN_SPACES, *(n for n in SEARCH_SPACES.builtin_names() if n not in TRAIN_SPACES)]
    fitting = spaces_holding(text, [SEARCH_SPACES.get(name) for name in names])
    return fitting[0] if fitting else TRAIN_SPACES[0]


def default_out(target: Target, data_spec: str, seed: int) -> Path:
    """RUN_DIR/trained for a run; runs/train-<hash of arch, data, seed> for a block string."""
    if target.run_dir is not None:
        return target.run_dir / TRAINED_DIR
    digest = hashlib.sha256(f"{target.text}|{data_spec}|{seed}".encode()).hexdigest()[:12]
    return Path("runs") / f"train-{digest}"


def run_resolution(run_dir: Path | None) -> int | None:
    """The search resolution of a run (its config.toml), which the data is resized to."""
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        return None
    from nasagent.agent.config import load_run_config

    return load_run_config(run_dir / CONFIG_FILE).resolution


# ---- compare --train-best ----------------------------------------------------------------


@dataclass(frozen=True)
class TrainedRun:
    """One run of a comparison after training its best architecture."""

    arm: str
    run_dir: Path
    top1: float | None
    message: str = ""


def train_runs(
    directory: Path, *, epochs: int, data_spec: str, seed: int = 0, device: str = "auto",
    progress: bool = True, max_memory: object = "auto",
) -> list[TrainedRun]:
    """Train the best architecture of every run under a comparison directory.

    A run already trained with the same recipe is read back; a partial one is resumed; a run
    without a best architecture, or whose best would pass the memory cap `max_memory` (MB;
    "auto": half this machine's memory) when trained, is reported, not fatal.

    Raises:
        DataError: the data spec cannot be loaded.
    """
    from nasagent.agent.report import discover_runs
    from nasagent.evaluator.datasets import load_data
    from nasagent.evaluator.training import Recipe

    recipe = Recipe.model_validate({"epochs": epochs, "seed": seed, "device": device})
    cache: dict[int | None, Any] = {}
    trained = []
    found, _missing = discover_runs(directory)  # the report lists the missing runs
    for arm, run_dir in found:
        resolution = run_resolution(run_dir)
        if resolution not in cache:
            cache[resolution] = load_data(data_spec, resolution)
        trained.append(_train_run(arm, run_dir, cache[resolution], recipe, progress,
                                  max_memory))
    return trained


def _train_run(
    arm: str, run_dir: Path, data: Any, recipe: Any, progress: bool, max_memory: object
) -> TrainedRun:
    from nasagent.evaluator.memory import MemoryCapError
    from nasagent.evaluator.training import TrainingError, read_metrics, train

    out = run_dir / TRAINED_DIR
    try:
        target = best_architecture(run_dir)
        done = read_metrics(out)
        if done is not None and done.finished and _same(done, target.text, data, recipe):
            return TrainedRun(arm, run_dir, done.top1)
        logger.info("training the best architecture of %s", run_dir)
        result = train(target.arch, data, recipe, out, search_space=target.search_space,
                       resume=True, progress=progress, max_memory=max_memory)
    except (TargetError, TrainingError, MemoryCapError) as error:
        logger.warning("%s: %s", run_dir, error)
        return TrainedRun(arm, run_dir, None, str(error))
    return TrainedRun(arm, run_dir, result.top1)


def _same(done: Any, arch: str, data: Any, recipe: Any) -> bool:
    stored = {k: v for k, v in done.recipe.items() if k != "device"}
    return done.arch == arch and done.data.get("spec") == data.spec and (
        stored == recipe.comparable()
    )


def trained_summary(arms: dict[str, list[Path]], baseline: str) -> dict[str, Any] | None:
    """Top-1 per arm from each run's trained/metrics.json, and the test against `baseline`.

    None when no run of the comparison has been trained.
    """
    from nasagent.agent.stats import summarize  # scipy: only when a report is built
    from nasagent.evaluator.training import read_metrics

    per_arm: dict[str, list[float | None]] = {}
    data: dict[str, Any] | None = None
    for arm, run_dirs in arms.items():
        results = [read_metrics(run_dir / TRAINED_DIR) for run_dir in run_dirs]
        per_arm[arm] = [r.top1 if r is not None and r.finished else None for r in results]
        data = data or next((r.data for r in results if r is not None), None)
    if all(value is None for values in per_arm.values() for value in values):
        return None
    return {
        "metric": TOP1_METRIC,
        "data": data,
        "arms": {arm: {**vars(summarize(values)), "per_seed": values}
                 for arm, values in per_arm.items()},
        "comparisons": _top1_tests(per_arm, baseline),
    }


def _top1_tests(per_arm: dict[str, list[float | None]], baseline: str) -> list[dict[str, Any]]:
    from nasagent.agent.stats import mann_whitney

    if baseline not in per_arm:
        return []
    return [
        {"arm": arm, "baseline": baseline, "metric": TOP1_METRIC,
         "test": "one-sided Mann-Whitney U",
         **vars(mann_whitney(values, per_arm[baseline], higher_is_better=True))}
        for arm, values in per_arm.items() if arm != baseline
    ]


def top1_cell(arm_stats: dict[str, Any] | None) -> str:
    """`mean ± std (n=k)` of an arm's top-1 in percent, for the comparison table."""
    if not arm_stats or arm_stats["mean"] is None:
        return "-"
    spread = "" if arm_stats["std"] is None else f" ± {100 * arm_stats['std']:.1f}"
    return f"{100 * arm_stats['mean']:.1f}%{spread} (n={arm_stats['n']})"


def top1_test_lines(trained: dict[str, Any] | None) -> list[str]:
    """One sentence per top-1 test, in the style of the proxy tests."""
    if not trained:
        return []
    from nasagent.agent.stats import method_text

    lines = []
    for test in trained["comparisons"]:
        what = f"{test['arm']} vs {test['baseline']}, held-out top-1 after training"
        if test["p_value"] is None:
            lines.append(f"{test['test']} {what}: not computed ({test['reason']})")
        else:
            lines.append(f"{test['test']} {what}: p = {test['p_value']:.4g}{method_text(test)}, "
                         f"U = {test['statistic']:g}")
    return lines


def structure_of(configs: Sequence[Any]) -> str:
    """The structure rules in force for an arm's runs, as one line for the report."""
    from nasagent.agent.proposers import constraints_for

    lines = set()
    for config in configs:
        constraints = constraints_for(config)
        statements = constraints.space.structure_statements(constraints)
        lines.add(config.structure + (f": {' '.join(statements)}" if statements else ""))
    return "; ".join(sorted(lines)) or "-"
