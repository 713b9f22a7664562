"""Figures for a comparison: best-so-far per arm and the score distribution of valid proposals.

Figures are built on `matplotlib.figure.Figure` directly, which renders without pyplot and
without touching matplotlib's global backend, so importing this module changes nothing. Every
figure is saved as PNG and PDF together with the CSV of the numbers drawn.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nasagent.agent.stats import Curve, mean_range_band, mean_std_band

ARM_COLOURS: dict[str, str] = {
    "llm": "#1f77b4",
    "random": "#7f7f7f",
    "llm-noreflect": "#2ca02c",
    "oracle": "#000000",
}
"""One fixed colour per known arm, so the same arm looks the same in every figure."""

FALLBACK_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")

BEST_SO_FAR_STEM = "best_so_far"
TRUTH_SO_FAR_STEM = "accuracy_so_far"
DISTRIBUTION_STEM = "score_distribution"
FIGURE_FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class SeedScore:
    """One valid proposal's score, for the distribution plot and its CSV."""

    seed: int
    iteration: int
    score: float


def arm_colour(arm: str, arms: Sequence[str]) -> str:
    """The arm's fixed colour, or a palette colour picked by its position among unknown arms."""
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    unknown = [a for a in arms if a not in ARM_COLOURS]
    return FALLBACK_COLOURS[unknown.index(arm) % len(FALLBACK_COLOURS)]


def score_label(proxy: str, higher_is_better: bool) -> str:
    direction = "higher is better" if higher_is_better else "lower is better"
    return f"{proxy} score ({direction})"


def _save(figure: Figure, stem: Path) -> list[Path]:
    paths = []
    for fmt in FIGURE_FORMATS:
        path = stem.with_suffix(f".{fmt}")
        # No creation date in the metadata: the same logs give the same files.
        metadata = {"CreationDate": None} if fmt == "pdf" else {}
        figure.savefig(path, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    return paths


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else repr(value)


def plot_best_so_far(
    curves: Mapping[str, Sequence[tuple[int, Curve]]],
    proxy: str,
    higher_is_better: bool,
    stem: Path,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Draw best-so-far vs iteration per arm (mean over all seeds, min-max band); PNG, PDF, CSV.

    Args:
        curves: arm -> [(seed, curve)], curves of equal length within an arm.
        proxy: the proxy name, for the axis label.
        higher_is_better: the proxy's direction, for the axis label.
        stem: output path without suffix (e.g. DIR/best_so_far).
        labels: arm -> legend text naming its backend and model (default: the arm name).

    Returns:
        The paths written: PNG, PDF and CSV.
    """
    figure, axes = _curves_figure(curves, labels)
    _log_scale_if_wide(axes, [v for _, c in _all(curves) for v in c])
    axes.set_ylabel(f"best-so-far {score_label(proxy, higher_is_better)}")
    return _save_curves(figure, axes, curves, stem)


def plot_truth_so_far(
    curves: Mapping[str, Sequence[tuple[int, Curve]]],
    best: float,
    stem: Path,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """The anytime curve per arm: the benchmark's test accuracy of the best-by-fitness
    architecture so far vs iteration (mean over all seeds, min-max band), with the space's
    best cell as a dashed line; PNG, PDF, CSV.

    Returns:
        The paths written: PNG, PDF and CSV.
    """
    figure, axes = _curves_figure(curves, labels)
    axes.axhline(best, color="black", linestyle="--", linewidth=1,
                 label=f"best cell of the table ({best:.2f}%)")
    axes.set_ylabel("test accuracy (%) of the best so far")
    return _save_curves(figure, axes, curves, stem)


def _curves_figure(
    curves: Mapping[str, Sequence[tuple[int, Curve]]], labels: Mapping[str, str] | None
) -> tuple[Figure, Axes]:
    """A figure with one mean line and min-max band per arm against the search iteration."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    arms = list(curves)
    for arm, seeded in curves.items():
        label = (labels or {}).get(arm, arm)
        _draw_band(axes, label, [curve for _, curve in seeded], arm_colour(arm, arms))
    axes.set_xlabel("search iteration (proposals, invalid ones included)")
    axes.grid(alpha=0.3)
    return figure, axes


LEGEND_WIDTH = 70
"""Characters per line of a curve figure's legend entry (arm labels name backend and model)."""


def _save_curves(
    figure: Figure, axes: Axes, curves: Mapping[str, Sequence[tuple[int, Curve]]], stem: Path
) -> list[Path]:
    handles, labels = axes.get_legend_handles_labels()
    if handles:  # below the axes, so that long arm labels never cover a curve
        wrapped = ["\n".join(textwrap.wrap(label, LEGEND_WIDTH)) for label in labels]
        axes.legend(handles, wrapped, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                    frameon=False, fontsize="small")
    paths = _save(figure, stem)
    csv_path = stem.with_suffix(".csv")
    _write_curve_csv(curves, csv_path)
    return [*paths, csv_path]


LOG_SCALE_DECADES = 3.0
"""Scores spanning more decades than this (all positive) are drawn on a log axis: GradNorm of
plain networks grows geometrically with depth, and a linear axis would flatten the rest."""


def _all(curves: Mapping[str, Sequence[tuple[int, Curve]]]) -> list[tuple[int, Curve]]:
    return [pair for seeded in curves.values() for pair in seeded]


def _log_scale_if_wide(axes: Axes, values: Sequence[float]) -> None:
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and math.log10(max(finite) / min(finite)) > LOG_SCALE_DECADES:
        axes.set_yscale("log")


def _draw_band(axes: Axes, label: str, curves: Sequence[Curve], colour: str) -> None:
    # min-max, not mean ± std: a std band can leave the range of what any seed reached
    band = mean_range_band(curves)
    x = list(range(1, len(band.mean) + 1))
    axes.plot(x, band.mean, color=colour, label=f"{label} (n={len(curves)})", linewidth=1.8)
    axes.fill_between(x, band.low, band.high, color=colour, alpha=0.2, linewidth=0)


def _write_curve_csv(curves: Mapping[str, Sequence[tuple[int, Curve]]], path: Path) -> None:
    seeds = sorted({seed for seeded in curves.values() for seed, _ in seeded})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "arm", "mean", "min", "max", "std", "n",
                         *(f"seed_{s}" for s in seeds)])
        for arm, seeded in curves.items():
            band = mean_std_band([curve for _, curve in seeded])
            drawn = mean_range_band([curve for _, curve in seeded])
            by_seed = dict(seeded)
            for index, mean in enumerate(drawn.mean):
                per_seed = [_cell(by_seed[s][index]) if s in by_seed else "" for s in seeds]
                row = [index + 1, arm, _cell(mean), _cell(drawn.low[index]),
                       _cell(drawn.high[index]), _cell(band.std[index]), band.n[index]]
                writer.writerow([*row, *per_seed])


def plot_score_distribution(
    scores: Mapping[str, Sequence[SeedScore]],
    proxy: str,
    higher_is_better: bool,
    stem: Path,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Box (quartiles, median, min-max whiskers) and points of every valid proposal's score per
    arm; PNG, PDF, CSV. `scores` holds the counted seeds only: the caller leaves out any run
    that is not a seed, so the figure agrees with the table.

    Returns:
        The paths written: PNG, PDF and CSV.
    """
    figure = score_distribution_figure(scores, proxy, higher_is_better, labels)
    paths = _save(figure, stem)
    csv_path = stem.with_suffix(".csv")
    _write_distribution_csv(scores, csv_path)
    return [*paths, csv_path]


DISTRIBUTION_WIDTH_IN = 7.0
"""The figure's width for up to `ARMS_PER_WIDTH` arms; it grows by `INCHES_PER_ARM` beyond."""
ARMS_PER_WIDTH = 3
INCHES_PER_ARM = 2.0
AXES_FRACTION = 0.775
"""The share of the figure's width the axes take (matplotlib's default subplot margins)."""
CHARS_PER_INCH = 11
"""Characters of a 10-point tick label that fit in an inch with room to spare (DejaVu Sans
sets about 13 of a label's characters per inch)."""


def score_distribution_figure(
    scores: Mapping[str, Sequence[SeedScore]],
    proxy: str,
    higher_is_better: bool,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The score-distribution figure, unsaved; its tick labels are wrapped to the room each arm
    has, and the figure widens past three arms, so no two labels overlap."""
    arms = list(scores)
    width = DISTRIBUTION_WIDTH_IN + INCHES_PER_ARM * max(0, len(arms) - ARMS_PER_WIDTH)
    figure = Figure(figsize=(width, 4.5))
    axes = figure.add_subplot()
    for position, arm in enumerate(arms, start=1):
        _draw_distribution(axes, position, [s.score for s in scores[arm]], arm_colour(arm, arms))
    axes.set_xlim(0.4, len(arms) + 0.6)
    axes.set_xticks(range(1, len(arms) + 1))
    room = max(6, int(width * AXES_FRACTION * CHARS_PER_INCH / max(1, len(arms))) - 1)
    axes.set_xticklabels([
        _tick_label((labels or {}).get(arm, arm), scores[arm], room) for arm in arms
    ])
    _log_scale_if_wide(axes, [s.score for arm in arms for s in scores[arm]])
    axes.set_ylabel(score_label(proxy, higher_is_better))
    axes.set_title("scores of all valid proposals of the counted seeds")
    axes.grid(alpha=0.3, axis="y")
    return figure


def _tick_label(label: str, scores: Sequence[SeedScore], room: int) -> str:
    counts = f"({len(scores)} valid proposal{'s' if len(scores) != 1 else ''})"
    return "\n".join([*textwrap.wrap(label, room), *textwrap.wrap(counts, room)])


def _draw_distribution(axes: Axes, position: int, values: list[float], colour: str) -> None:
    if not values:
        return
    # Drawn by hand: Axes.boxplot reads every rcParam, which resolves (imports) pyplot's
    # global backend, and this module promises to leave global state alone.
    low, q1, median, q3, high = np.percentile(values, [0, 25, 50, 75, 100])
    half = 0.25
    axes.add_patch(Rectangle((position - half, q1), 2 * half, q3 - q1, facecolor=colour,
                             alpha=0.35, edgecolor="black", linewidth=1))
    axes.plot([position - half, position + half], [median] * 2, color="black", linewidth=1.5)
    axes.plot([position] * 2, [low, q1], [position] * 2, [q3, high], color="black", linewidth=1)
    # A deterministic jitter (no RNG) keeps the figure identical across rebuilds.
    offsets = [((i * 0.618) % 1.0 - 0.5) * 0.3 for i in range(len(values))]
    axes.scatter([position + o for o in offsets], values, s=8, color=colour, alpha=0.7)


def _write_distribution_csv(scores: Mapping[str, Sequence[SeedScore]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arm", "seed", "iteration", "score"])
        for arm, values in scores.items():
            for value in values:
                writer.writerow([arm, value.seed, value.iteration, repr(value.score)])
