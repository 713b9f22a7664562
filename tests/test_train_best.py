"""`compare --train-best E`: each run's best architecture trained, top-1 beside the proxy score
in the table, the summary, the Mann-Whitney tests and the report; structure rules per arm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from image_data import TINY_ARCH, write_imagefolder
from test_compare import FakeRun
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command)
import nasagent.agent.compare as compare_module
from nasagent.agent.cli.app import app
from nasagent.agent.runlog import write_json
from nasagent.agent.train_best import TargetError, best_architecture, trained_summary

WIDER = TINY_ARCH.replace("(8,16,2,8,1)SuperConvK1BNRELU(16,", "(8,24,2,8,1)SuperConvK1BNRELU(24,")


def write_best(run_dir: Path, arch: str) -> None:
    write_json(run_dir / "best.json", {
        "iteration": 4, "mutator": "random", "parent": None, "parent_score": None,
        "outcome": "ok", "arch": arch, "score": 12.0,
    })


def test_compare_train_best_adds_top1_to_table_tests_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compare_module, "_default_run", lambda: FakeRun())
    out, images = tmp_path / "cmp", write_imagefolder(tmp_path / "images")
    args = ["compare", "--out", str(out), "--iterations", "5", "--seed-list", "0,1",
            "--batch-size", "8", "--structure", "zennas", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    for arm, arch in (("llm", TINY_ARCH), ("random", WIDER)):
        for seed in (0, 1):
            write_best(out / arm / f"seed-{seed}", arch)
    trained = CliRunner().invoke(app, ["compare", "--out", str(out), "--train-best", "1",
                                       "--data", f"imagefolder:{images}", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    assert "held-out top-1 after training" in trained.output
    summary = json.loads((out / "summary.json").read_text())
    top1 = summary["trained"]
    assert top1["arms"]["llm"]["n"] == 2 and top1["arms"]["random"]["n"] == 2
    assert top1["comparisons"][0]["metric"] == "top1_after_training"
    assert summary["arms"]["llm"]["structure"].startswith("zennas: The first block")
    html = (out / "report.html").read_text()
    assert "held-out top-1 after training on imagefolder" in html
    assert "structure rules" in html and "Exactly 3 blocks have stride 2" in html
    assert (out / "llm" / "seed-1" / "trained" / "metrics.json").exists()


def test_runs_without_training_leave_the_summary_as_it_was(tmp_path: Path) -> None:
    assert trained_summary({"llm": [tmp_path / "a"], "random": [tmp_path / "b"]},
                           "random") is None


def test_a_run_without_best_json_is_explained(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no best.json"):
        best_architecture(tmp_path)
    write_json(tmp_path / "best.json", {"arch": "x"})
    with pytest.raises(TargetError, match="not a best-architecture record"):
        best_architecture(tmp_path)
