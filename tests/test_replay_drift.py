"""Replay that survives floating-point drift: recorded scores within `score_rtol` are kept.

Without a second CPU, the drift is simulated: every proxy result is multiplied by (1 + r).
At r = 1e-4 (the size GradNorm differs by between CPUs) the shipped transcript replays to the
same trajectory; at r = 5e-3 (beyond the 1e-3 default tolerance) the replay reports a
difference and the CLI exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli.replay_command  # noqa: F401  (registers the command on the app)
import nasagent.agent.cli.search_command  # noqa: F401
import nasagent.evaluator.proxies as proxies
from nasagent.agent.cli.app import app
from nasagent.agent.config import RunConfig, load_config
from nasagent.agent.demo import DEFAULT_TRANSCRIPT, demo_plan, transcript_dir
from nasagent.agent.outcomes import Outcome
from nasagent.agent.reference import ReferenceScores, drift_summary, relative_drift
from nasagent.agent.replay import replay_run
from nasagent.agent.runlog import DRIFT_FILE, SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import reference_for, run_search
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult

TRANSCRIPT = transcript_dir(DEFAULT_TRANSCRIPT)


def perturb_proxy(monkeypatch: pytest.MonkeyPatch, relative: float) -> list[str]:
    """Make every proxy result (1 + relative) times the true one; returns the archs scored."""
    real: Callable[..., ScoreResult] = proxies.score
    scored: list[str] = []

    def perturbed(architecture: object, settings: object) -> ScoreResult:
        result = real(architecture, settings)
        scored.append(str(architecture))
        if result.score is None:
            return result
        return result.model_copy(update={"score": result.score * (1 + relative)})

    # In-process scoring (the default, workers 0) looks `score` up at call time.
    monkeypatch.setattr(proxies, "score", perturbed)
    return scored


def test_small_drift_replays_the_transcript_to_the_same_trajectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    perturb_proxy(monkeypatch, 1e-4)
    report = replay_run(TRANSCRIPT / "seed-0", tmp_path / "replayed")
    assert report.identical, [d.describe() for d in report.differences]
    drift = report.drift
    assert drift["rescored"] == 21 and drift["beyond_tolerance"] == 0
    assert 0.5e-4 < drift["median_relative_drift"] <= drift["max_relative_drift"] < 2e-4
    assert json.loads((tmp_path / "replayed" / DRIFT_FILE).read_text()) == drift
    recorded = {e.arch: e.score for e in read_events(TRANSCRIPT / "seed-0")}
    for event in read_events(tmp_path / "replayed"):
        if event.outcome is Outcome.OK:  # decided from the recorded score, rescored kept aside
            assert event.score == recorded[event.arch] and event.rescored is not None
            assert event.rescored != event.score
    summary = read_json(tmp_path / "replayed" / SUMMARY_FILE)
    assert summary["finished"] and summary["score_drift"]["beyond_tolerance"] == 0


def test_drift_beyond_the_tolerance_is_a_reported_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    perturb_proxy(monkeypatch, 5e-3)
    out = tmp_path / "replayed"
    args = ["replay", str(TRANSCRIPT / "seed-0"), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "events differ" in result.output and "score: recorded 6.41" in result.output
    assert "tolerance 0.001" in result.output
    drift = json.loads((out / DRIFT_FILE).read_text())
    assert drift["beyond_tolerance"] >= 1 and drift["max_relative_drift"] > 1e-3


def test_reference_keeps_the_recorded_score_within_the_tolerance_only() -> None:
    reference = ReferenceScores({"a": 100.0}, rtol=1e-3)

    def result(value: float | None, status: ProxyStatus = ProxyStatus.OK) -> ScoreResult:
        return ScoreResult(proxy="gradnorm", score=value, status=status, seconds=0.0, seed=0,
                           higher_is_better=True)

    kept, rescored = reference.reconcile("a", result(100.05))
    assert (kept.score, rescored) == (100.0, 100.05)
    beyond, rescored = reference.reconcile("a", result(100.2))
    assert (beyond.score, rescored) == (100.2, 100.2)
    unknown, rescored = reference.reconcile("b", result(3.0))
    assert (unknown.score, rescored) == (3.0, None)
    failed, rescored = reference.reconcile("a", result(None, ProxyStatus.NONFINITE))
    assert failed.score is None and rescored is None
    assert relative_drift(0.0, 0.0) == 0.0 and relative_drift(0.0, 1.0) == float("inf")
    summary = drift_summary([reference.drift("a", 100.2)], 1e-3)  # type: ignore[list-item]
    assert summary["beyond_tolerance"] == 1 and summary["beyond"][0]["recorded"] == 100.0


def test_compare_and_demo_arms_that_replay_use_the_recorded_scores(tmp_path: Path) -> None:
    plan = demo_plan(tmp_path / "demo")
    reference = reference_for(plan.run_config("llm", 1))
    assert reference is not None
    recorded = read_events(TRANSCRIPT / "seed-1")
    assert reference.scores == {e.arch: e.score for e in recorded if e.outcome is Outcome.OK}
    assert reference.rtol == 1e-3
    assert reference_for(RunConfig(llm="scripted")) is None
    assert reference_for(RunConfig(llm=f"replay:{TRANSCRIPT / 'seed-1'}")) is not None


def test_a_resumed_run_rescores_nothing_it_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(mutator="random", iterations=6, batch_size=8, proxy="gradnorm",
                       concurrency=2, init_population=2)
    run_search(config, tmp_path / "run", progress=False)
    logged = read_events(tmp_path / "run")
    scored = perturb_proxy(monkeypatch, 5e-3)  # "another machine"
    longer = config.model_copy(update={"iterations": 9})
    run_search(longer, tmp_path / "run", resume=True, progress=False)
    resumed = read_events(tmp_path / "run")
    assert resumed[: len(logged)] == logged
    assert not set(scored) & {e.arch for e in logged if e.status is not None}


def test_search_and_replay_accept_score_rtol(tmp_path: Path) -> None:
    bad = CliRunner().invoke(app, ["replay", str(TRANSCRIPT / "seed-0"), "--score-rtol", "-1"])
    assert bad.exit_code == 2
    refused = CliRunner().invoke(app, [
        "search", "--mutator", "random", "--iterations", "1", "--score-rtol", "-0.5",
        "--out", str(tmp_path / "x"), "--no-progress",
    ])
    assert refused.exit_code == 2 and "--score-rtol" in refused.output  # named as its flag


def test_a_ray_run_replays_locally_without_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import sys

    recorded = tmp_path / "ray-run"
    shutil.copytree(TRANSCRIPT / "seed-0", recorded)
    with (recorded / "config.toml").open("a") as config:
        config.write('executor = "ray"\nray_address = "127.0.0.1:1"\n')
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as without the extra
    report = replay_run(recorded, tmp_path / "replayed", rescore=False)
    assert report.identical, [d.describe() for d in report.differences]
    assert 'executor = "local"' in (tmp_path / "replayed" / "config.toml").read_text()


def test_a_ray_run_with_scoring_limits_replays_them_in_a_local_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import sys

    recorded = tmp_path / "ray-run"
    shutil.copytree(TRANSCRIPT / "seed-0", recorded)
    with (recorded / "config.toml").open("a") as config:  # on Ray, limits need no `workers`
        config.write('executor = "ray"\nscore_timeout = 600.0\nscore_memory = 4000.0\n')
    monkeypatch.setitem(sys.modules, "ray", None)
    report = replay_run(recorded, tmp_path / "replayed", rescore=False)
    assert report.identical, [d.describe() for d in report.differences]
    replayed = load_config(tmp_path / "replayed" / "config.toml")
    assert (replayed.executor, replayed.workers) == ("local", 1)
    assert (replayed.score_timeout, replayed.score_memory) == (600.0, 4000.0)
