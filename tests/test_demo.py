"""The shipped transcript and the offline demo built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasagent.agent.config import load_run_config
from nasagent.agent.demo import (
    DEFAULT_TRANSCRIPT,
    demo_plan,
    transcript_dir,
    transcript_header,
    transcript_seeds,
)
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.replay import replay_run
from nasagent.agent.session import llm_spec

TRANSCRIPT = transcript_dir(DEFAULT_TRANSCRIPT)


def test_the_transcript_says_how_it_was_produced() -> None:
    header = transcript_header(TRANSCRIPT)
    assert {"backend", "model", "date", "command"} <= set(header)
    assert header["backend"].startswith("manual") and "Claude" in header["model"]


def test_the_transcript_covers_every_seed_of_the_demo() -> None:
    seeds = transcript_seeds(TRANSCRIPT)
    assert seeds == [0, 1, 2]
    for seed in seeds:
        calls = load_calls(TRANSCRIPT / f"seed-{seed}")
        assert calls and all(c.response is not None for c in calls)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replaying_the_transcript_reproduces_the_recorded_run(seed: int, tmp_path: Path) -> None:
    report = replay_run(TRANSCRIPT / f"seed-{seed}", tmp_path / "replayed", rescore=False)
    assert report.identical, [d.describe() for d in report.differences]


def test_the_demo_replays_the_recorded_configuration(tmp_path: Path) -> None:
    plan = demo_plan(tmp_path / "demo")
    assert tuple(plan.arms) == ("llm", "random") and tuple(plan.seeds) == (0, 1, 2)
    recorded = load_run_config(TRANSCRIPT / "seed-1" / "config.toml")
    replayed = plan.run_config("llm", 1)
    spec = llm_spec(replayed)
    assert spec.startswith("replay:") and spec.endswith("seed-1/llm_calls.jsonl")
    assert replayed.model_dump(exclude={"llm", "model"}) == recorded.model_dump(
        exclude={"llm", "model"}
    )
    assert replayed.llm_model == recorded.llm_model
    assert plan.run_config("random", 1).mutator == "random"


def test_the_demo_passes_when_every_score_drifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nasagent demo` on "another CPU": every proxy result 5e-3 off; the LLM arm still replays
    every seed (all arms counted, exit 0) and the report states each replay's drift verdict."""
    import json

    from drift import perturb_proxy
    from typer.testing import CliRunner

    import nasagent.agent.cli.demo_command  # noqa: F401  (registers the command)
    from nasagent.agent.cli.app import app

    perturb_proxy(monkeypatch, 5e-3)
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["problems"]
    assert [len(arm["counted_seeds"]) for arm in summary["arms"].values()] == [3, 3]
    checks = summary["score_checks"]
    assert [(c["arm"], c["seed"]) for c in checks] == [("llm", 0), ("llm", 1), ("llm", 2)]
    assert all(c["rescored"] == 21 and c["verdict"].startswith("scores: ") for c in checks)
    report = (out / "report.html").read_text()
    assert 'id="score-checks"' in report and checks[0]["verdict"] in report
    assert "llm seed 0: scores: " in result.output
