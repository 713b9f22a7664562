"""`nasagent report`: summary, figures and a self-contained report.html rebuilt from logs."""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_compare import FakeRun, synthetic_events, tiny_plan, write_synthetic_run

from nasagent.agent.compare import make_plan, run_compare, write_plan
from nasagent.agent.config import load_config, write_config
from nasagent.agent.outcomes import Outcome
from nasagent.agent.plots import SeedScore, score_distribution_figure
from nasagent.agent.report import (
    COMPARE_FILE,
    ReportError,
    build_report,
    p_value_lines,
    table_rows,
)
from nasagent.agent.runlog import EVENTS_FILE, Event, append_jsonl


class Resources(HTMLParser):
    """Collects every URL-bearing attribute and every tag name of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href", "srcset", "action"}]


def parse_page(text: str) -> Resources:
    parser = Resources()
    parser.feed(text)
    return parser


def test_report_is_self_contained(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=2, iterations=6), tmp_path, run=FakeRun(), progress=False)
    page = (tmp_path / "report.html").read_text()
    resources = parse_page(page)
    assert not resources.tags & {"script", "link", "iframe", "object", "embed"}
    assert len(resources.urls) == 2
    assert all(url.startswith("data:image/png;base64,") for url in resources.urls)
    assert not re.search(r"https?://|@import|url\(", page)
    assert "default-src 'none'" in page  # the page itself forbids any other load


def test_report_shows_table_p_value_best_architectures_and_config(tmp_path: Path) -> None:
    result = run_compare(tiny_plan(seeds=3, iterations=6), tmp_path, run=FakeRun(),
                         progress=False)
    assert result.report is not None
    page = (tmp_path / "report.html").read_text()
    header, rows = table_rows(result.report.summary)
    for cell in [*header, *(cell for row in rows for cell in row)]:
        assert cell.replace("&", "&amp;") in page
    assert "p = 0.05" in page and p_value_lines(result.report.summary)[0] in page
    for arm in ("llm", "random"):
        best = result.report.summary["arms"][arm]["best"]
        assert best["arch"] in page
    assert "200,006" in page  # params of the best (iteration 6) with thousands separators
    assert "[config]" in page and "iterations = 6" in page


def test_report_escapes_text_from_the_logs(tmp_path: Path) -> None:
    # a valid backend spec whose model name is markup: names are validated, not trusted
    config = load_config(None, {"iterations": 3, "llm": "openai:<script>alert(1)</script>"})
    write_synthetic_run(config, tmp_path)
    build_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_single_run_directory_is_one_arm_and_keeps_the_loop_summary(tmp_path: Path) -> None:
    config = load_config(None, {"iterations": 6, "mutator": "random"})
    write_synthetic_run(config, tmp_path)
    loop_summary = (tmp_path / "summary.json").read_text()
    result = build_report(tmp_path)
    assert (tmp_path / "summary.json").read_text() == loop_summary
    summary = json.loads((tmp_path / "report_summary.json").read_text())
    assert summary == result.summary and list(summary["arms"]) == ["random"]
    assert summary["comparisons"] == []  # nothing to compare the baseline with
    for name in ("report.html", "best_so_far.png", "score_distribution.csv"):
        assert (tmp_path / name).exists()


def write_compare_file(directory: Path, arms: tuple[str, ...], seeds: tuple[int, ...],
                       **values: object) -> None:
    plan = make_plan(load_config(None, values), arms, seeds)
    directory.mkdir(parents=True, exist_ok=True)
    write_plan(plan, directory / COMPARE_FILE)


def write_synflow_run(run_dir: Path, seed: int, scores: list[float]) -> None:
    config = load_config(None, {"iterations": len(scores), "proxy": "synflow",
                                "mutator": "random", "seed": seed})
    run_dir.mkdir(parents=True)
    write_config(config, run_dir / "config.toml")
    initial = synthetic_events(config, 0)[0].model_copy(update={"score": 10.0})
    append_jsonl(run_dir / EVENTS_FILE, initial.model_dump(mode="json"))
    for i, score in enumerate(scores, start=1):
        event = Event(iteration=i, mutator="random", parent="s", parent_score=None,
                      outcome=Outcome.OK, arch=f"arch-{seed}-{i}", score=score)
        append_jsonl(run_dir / EVENTS_FILE, event.model_dump(mode="json"))


def test_lower_is_better_proxy_picks_the_smallest_scores(tmp_path: Path) -> None:
    write_compare_file(tmp_path, ("random", "llm"), (0, 1), proxy="synflow", iterations=3)
    for arm in ("random", "llm"):
        write_synflow_run(tmp_path / arm / "seed-0", 0, [12.0, 4.0, 8.0])
        write_synflow_run(tmp_path / arm / "seed-1", 1, [9.0, 6.0, 2.0])
    summary = build_report(tmp_path).summary
    arm = summary["arms"]["random"]
    assert summary["higher_is_better"] is False
    assert arm["best_at_budget"]["per_seed"] == [4.0, 2.0]
    assert arm["best"]["arch"] == "arch-1-3" and arm["best"]["score"] == 2.0
    assert summary["baseline_median_best"] == 3.0
    reach = summary["arms"]["llm"]["iterations_to_reach_baseline"]
    assert reach["per_seed"] == [None, 3]
    assert arm["iterations_to_reach_baseline"]["per_seed"] is None  # the baseline itself
    page = (tmp_path / "report.html").read_text()
    assert "lower is better" in page and "not reached" in page


def test_report_refuses_directories_without_runs_or_with_mixed_proxies(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is not a comparison"):
        build_report(tmp_path)
    write_compare_file(tmp_path, ("random",), (0,), iterations=3)
    with pytest.raises(ReportError, match="holds no run logs"):
        build_report(tmp_path)
    (tmp_path / COMPARE_FILE).unlink()
    plan = make_plan(load_config(None, {"iterations": 3}), ("random", "llm"), (0,))
    run_compare(plan, tmp_path, run=FakeRun(), progress=False)
    shutil.rmtree(tmp_path / "llm" / "seed-0")
    write_synflow_run(tmp_path / "llm" / "seed-0", 0, [1.0])
    with pytest.raises(ReportError, match="different proxies"):
        build_report(tmp_path)


def test_incomplete_runs_are_listed_and_left_out_of_best_at_budget(tmp_path: Path) -> None:
    plan = tiny_plan(seeds=2, iterations=6)
    run_compare(plan, tmp_path, run=FakeRun(stop_first=(("random", 0),)), progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["incomplete_runs"] == [str(tmp_path / "random" / "seed-0")]
    assert summary["arms"]["random"]["best_at_budget"]["per_seed"][0] is None
    assert summary["arms"]["random"]["best_at_budget"]["n"] == 1
    assert "Incomplete runs" in (tmp_path / "report.html").read_text()
    # the score distribution holds the counted seeds only, like the table
    with (tmp_path / "score_distribution.csv").open() as handle:
        plotted = {(row["arm"], row["seed"]) for row in csv.DictReader(handle)}
    assert ("random", "1") in plotted and ("random", "0") not in plotted
    assert ("llm", "0") in plotted and ("llm", "1") in plotted


LONG_LABELS = (
    "llm (openai:gpt-4o-2024-08-06-extended-preview)",
    "claude_recorded (manual: claude-sonnet-4-5-20250929-with-long-suffix)",
    "stand_in_no_reflection (scripted stand-in, not a model)",
    "random (Zen-NAS random mutation, no LLM)",
    "llm-noreflect (openai:gpt-4o-mini)",
    "llm (manual: Claude, recorded 2026-11-23)",
)


@pytest.mark.parametrize("count", [2, 3, 4, 6])
def test_distribution_tick_labels_never_overlap(count: int) -> None:
    scores = {f"arm{i}": [SeedScore(0, 1, float(i)), SeedScore(1, 2, i + 0.5)]
              for i in range(count)}
    labels = {f"arm{i}": LONG_LABELS[i] for i in range(count)}
    figure = score_distribution_figure(scores, "gradnorm", True, labels)
    renderer = FigureCanvasAgg(figure).get_renderer()
    ticks = figure.axes[0].get_xticklabels()
    boxes = [tick.get_window_extent(renderer) for tick in ticks]
    assert all(t.get_text().endswith("proposals)") for t in ticks)
    for left, right in itertools.pairwise(boxes):
        assert left.x1 < right.x0, (left, right)


def test_building_figures_leaves_matplotlib_global_state_alone(tmp_path: Path) -> None:
    # In a fresh interpreter: nothing imported pyplot (whose import picks a global backend).
    run_compare(tiny_plan(seeds=2, iterations=4), tmp_path, run=FakeRun(), progress=False)
    code = (
        "import sys, pathlib, agent.report as r; r.build_report(pathlib.Path(sys.argv[1])); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
