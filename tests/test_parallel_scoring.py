"""Scoring in worker processes: same events for any number of workers, crashes and timeouts
cost one candidate, execution settings resolve per machine and device."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from scoring_faults import GROW_LIMIT_MB, crash_on_some, crashes, faulty, grow_on_some
from typer.testing import CliRunner

import nasagent.agent.cli.search_command  # noqa: F401  (registers the command on the app)
from nasagent.agent.cli.app import app
from nasagent.agent.config import ConfigError, RunConfig, load_config
from nasagent.agent.execution import (
    ExecutionPlan,
    Scoring,
    default_threads,
    plan_local,
    start_method_for,
    worker_gpus,
)
from nasagent.agent.outcomes import Outcome
from nasagent.agent.replay import compare_events
from nasagent.agent.runlog import SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import run_search
from nasagent.agent.workerpool import Limits, ScoringSetupError, WorkerPool, _past_memory
from nasagent.evaluator.proxies import DeviceUnavailableError, ProxyStatus, ScoreSettings

FAST = {"batch_size": 8, "population": 16, "max_params": 1e6, "max_layers": 18}
SEED_ARCH = RunConfig().seed_arch
SETTINGS = ScoreSettings(batch_size=4)
CAP_MB = 900
"""A memory cap well above an idle worker (~300 MB with torch) and a seed scoring at batch 4,
well below what `grow` reaches."""


def scripted(**changes: object) -> RunConfig:
    values = {"llm": "scripted", "iterations": 10, "concurrency": 4, "reflect_every": 5,
              "threads": 1, **FAST}
    return RunConfig.model_validate({**values, **changes})


def test_events_are_identical_for_0_1_2_and_4_workers(tmp_path: Path) -> None:
    runs = {}
    for workers in (0, 1, 2, 4):
        run_search(scripted(workers=workers), tmp_path / f"w{workers}", progress=False)
        runs[workers] = read_events(tmp_path / f"w{workers}")
    assert any(e.outcome is Outcome.OK and e.phase == "search" for e in runs[0])
    for workers in (1, 2, 4):
        assert not compare_events(runs[0], runs[workers]), workers
    execution = read_json(tmp_path / "w2" / SUMMARY_FILE)["execution"]
    assert execution["workers"] == 2 and execution["threads"] == 1
    assert execution["start_method"] in ("forkserver", "spawn")


def test_resume_may_change_the_workers_and_writes_the_same_events(tmp_path: Path) -> None:
    run_search(scripted(iterations=12), tmp_path / "whole", progress=False)
    run_search(scripted(iterations=6, workers=2), tmp_path / "cut", progress=False)
    result = CliRunner().invoke(app, [
        "search", "--resume", str(tmp_path / "cut"), "--iterations", "12", "--workers", "1",
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert not compare_events(read_events(tmp_path / "whole"), read_events(tmp_path / "cut"))
    assert read_json(tmp_path / "cut" / SUMMARY_FILE)["execution"]["workers"] == 1
    assert load_config(tmp_path / "cut" / "config.toml").workers == 1


def test_a_worker_that_dies_fails_only_its_candidate(tmp_path: Path) -> None:
    pool = WorkerPool(2, 1, task=faulty)
    try:
        futures = [pool.submit(arch, SETTINGS) for arch in (SEED_ARCH, "exit:3", SEED_ARCH)]
        good, dead, other = (future.result(timeout=240) for future in futures)
        assert good.status is ProxyStatus.OK and other.score == good.score
        assert dead.status is ProxyStatus.CRASHED and dead.score is None
        assert "exited with code 3" in dead.message and "new worker" in dead.message
        assert pool.submit(SEED_ARCH, SETTINGS).result(timeout=240).score == good.score
        assert pool.replaced == 1
    finally:
        pool.close()


def test_a_killed_worker_is_replaced_and_the_pool_goes_on(tmp_path: Path) -> None:
    pool = WorkerPool(1, 1, task=faulty)
    started = tmp_path / "started"
    try:
        future = pool.submit(f"sleep:{started}", SETTINGS)
        _wait_for(started)
        os.kill(int(started.read_text(encoding="utf-8")), signal.SIGKILL)
        killed = future.result(timeout=60)
        assert killed.status is ProxyStatus.CRASHED and "SIGKILL" in killed.message
        assert pool.submit(SEED_ARCH, SETTINGS).result(timeout=240).status is ProxyStatus.OK
    finally:
        pool.close()


def test_score_timeout_kills_a_runaway_scoring(tmp_path: Path) -> None:
    pool = WorkerPool(1, 1, task=faulty, timeout=1.0)
    try:
        assert pool.submit(SEED_ARCH, SETTINGS).result(timeout=240).status is ProxyStatus.OK
        stuck = pool.submit(f"sleep:{tmp_path / 'started'}", SETTINGS).result(timeout=60)
        assert stuck.status is ProxyStatus.TIMEOUT and "score_timeout=1 s" in stuck.message
        assert stuck.seconds < 30
        assert pool.submit(SEED_ARCH, SETTINGS).result(timeout=240).status is ProxyStatus.OK
    finally:
        pool.close()


def test_settings_nothing_can_be_scored_with_stop_the_run_with_the_reason() -> None:
    pool = WorkerPool(1, 1, task=faulty)
    try:
        with pytest.raises(ScoringSetupError, match="cannot run with these settings: no GPU"):
            pool.submit("raise:no GPU", SETTINGS).result(timeout=240)
    finally:
        pool.close()


def test_cuda_workers_without_a_gpu_are_a_one_line_cli_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: nothing to refuse")
    result = CliRunner().invoke(app, [
        "search", "--llm", "scripted", "--iterations", "2", "--device", "cuda",
        "--workers", "2", "--out", str(tmp_path / "run"), "--no-progress",
    ])
    assert result.exit_code == 2 and "CUDA is not available" in result.output
    assert "Traceback" not in result.output


def _run_with_faults(run_dir: Path, pool: WorkerPool) -> bool:
    plan = ExecutionPlan(executor="local", workers=2, threads=1, cores=2)
    scoring = Scoring(plan, pool)
    try:
        return run_search(scripted(workers=2, iterations=12), run_dir, progress=False,
                          scoring=scoring).finished
    finally:
        scoring.close()


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose worker dies on about a third of the candidates (`crashes`)."""
    run_dir = tmp_path_factory.mktemp("crashed") / "run"
    assert _run_with_faults(run_dir, WorkerPool(2, 1, task=crash_on_some))
    return run_dir


def test_crashed_scorings_are_score_failed_and_the_run_finishes(crashed_run: Path) -> None:
    events = [e for e in read_events(crashed_run) if e.status is not None]
    assert [e.iteration for e in read_events(crashed_run)][-1] == 12
    crashed = [e for e in events if e.status == "crashed"]
    assert crashed and all(crashes(e.arch or "") for e in crashed)
    assert all(e.outcome is Outcome.SCORE_FAILED and "worker" in " ".join(e.notes)
               for e in crashed)
    assert all(e.outcome is Outcome.OK for e in events if not crashes(e.arch or ""))


def test_a_scoring_past_score_memory_fails_only_its_candidate() -> None:
    pool = WorkerPool(1, 1, task=faulty, memory_mb=CAP_MB)
    try:
        before = pool.submit(SEED_ARCH, SETTINGS).result(timeout=240)
        first_pid = pool.pids()[0]
        hog = pool.submit(f"grow:{GROW_LIMIT_MB}", SETTINGS).result(timeout=120)
        after = pool.submit(SEED_ARCH, SETTINGS).result(timeout=240)
    finally:
        pool.close()
    assert hog.status is ProxyStatus.MEMORY and hog.score is None
    reached = re.search(r"score_memory=900 MB \(its worker reached (\d+) MB resident\)",
                        hog.message)
    assert reached and CAP_MB < int(reached.group(1)) < GROW_LIMIT_MB, hog.message
    assert "killed and replaced" in hog.message
    assert pool.replaced == 1 and pool.pids()[0] != first_pid
    assert before.status is ProxyStatus.OK and after.score == before.score  # the new worker


def test_the_size_reached_past_the_cap_never_reads_as_the_cap() -> None:
    status, message = _past_memory(900.4, Limits(memory_mb=900))
    assert status is ProxyStatus.MEMORY and "worker reached 901 MB resident" in message


def test_a_memory_cap_below_an_idle_worker_stops_before_any_scoring() -> None:
    pool = WorkerPool(1, 1, memory_mb=20)
    try:
        with pytest.raises(ScoringSetupError, match=r"score_memory=20 MB is below what an idle "
                                                    r"scoring worker already holds \(\d+ MB"):
            pool.submit(SEED_ARCH, SETTINGS).result(timeout=240)
    finally:
        pool.close()


def test_memory_runaways_cost_only_their_candidates(tmp_path: Path, crashed_run: Path) -> None:
    """The same candidates failing by memory instead of by a crash: every other event, and
    the run's course, are the same."""
    run_dir = tmp_path / "run"
    assert _run_with_faults(run_dir, WorkerPool(2, 1, task=grow_on_some, memory_mb=CAP_MB))
    memory, crashed = read_events(run_dir), read_events(crashed_run)
    failed = [e for e in memory if e.status == "memory"]
    assert failed and all(e.outcome is Outcome.SCORE_FAILED and crashes(e.arch or "")
                          and "score_memory=900 MB" in " ".join(e.notes) for e in failed)
    differences = compare_events(crashed, memory)
    assert differences and {name for d in differences for name in d.fields} <= {
        "status", "notes"}
    noted = {e.iteration for e in memory if "score_memory" in " ".join(e.notes)}  # + duplicates
    assert {d.iteration for d in differences} == noted >= {e.iteration for e in failed}


def _wait_for(path: Path, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)


# ---- settings -------------------------------------------------------------------------------


def test_threads_default_to_cores_per_worker() -> None:
    assert [default_threads(w, 8) for w in (0, 1, 2, 3, 8, 16)] == [8, 8, 4, 2, 1, 1]
    plan = plan_local(RunConfig(workers=2, device="cpu"), cores=8)
    assert (plan.workers, plan.threads, plan.gpus) == (2, 4, (None, None))
    assert plan_local(RunConfig(workers=2, threads=3), cores=8, cuda_devices=0).threads == 3
    import torch

    assert plan_local(RunConfig(), cores=8).threads == torch.get_num_threads()  # torch's own


def test_cuda_workers_get_their_own_gpu_and_are_spawned() -> None:
    assert worker_gpus("cuda", 3, 2) == (0, 1, 0)
    assert worker_gpus("auto", 2, 1) == (0, 0)
    assert worker_gpus("auto", 2, 0) == (None, None)
    assert worker_gpus("cpu", 2, 4) == (None, None)
    assert start_method_for((0, 1)) == "spawn"
    assert start_method_for((None,)) in ("forkserver", "spawn")
    plan = plan_local(RunConfig(workers=4, device="cuda"), cores=16, cuda_devices=2)
    assert plan.gpus == (0, 1, 0, 1) and plan.start_method == "spawn" and plan.threads == 4
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        plan_local(RunConfig(workers=2, device="cuda"), cores=2, cuda_devices=0)


def test_score_timeout_needs_workers() -> None:
    with pytest.raises(ConfigError, match="score_timeout needs scoring in worker processes"):
        load_config(None, {"score_timeout": 5.0})
    assert load_config(None, {"score_timeout": 5.0, "workers": 1}).score_timeout == 5.0


def test_score_timeout_without_workers_is_a_one_line_cli_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "search", "--llm", "scripted", "--iterations", "2", "--score-timeout", "3",
        "--out", str(tmp_path / "run"), "--no-progress",
    ])
    assert result.exit_code == 2
    assert "score_timeout needs scoring in worker processes" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("key", ["score_timeout", "score_memory"])
def test_scoring_limits_need_workers_and_0_or_none_turns_them_off(key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} needs scoring in worker processes"):
        load_config(None, {key: 500})
    assert getattr(load_config(None, {key: "500", "workers": 1}), key) == 500.0
    for off in (0, "0", "none", "NONE"):
        assert getattr(load_config(None, {key: off}), key) is None  # no worker needed then
    for bad in ("-1", "nan", "lots"):
        with pytest.raises(ConfigError, match=f"--{key.replace('_', '-')}: must be a positive "
                                              "number, or 0 or 'none' for no limit"):
            load_config(None, {key: bad, "workers": 1})


def test_score_memory_is_recorded_and_may_change_or_go_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["--llm", "scripted", "--batch-size", "8", "--population", "16", "--no-progress"]
    first = CliRunner().invoke(app, ["search", *common, "--iterations", "3", "--workers", "1",
                                     "--threads", "1", "--score-memory", "4000", "--out",
                                     str(run)])
    assert first.exit_code == 0, first.output
    assert read_json(run / SUMMARY_FILE)["execution"]["score_memory"] == 4000
    assert load_config(run / "config.toml").score_memory == 4000
    again = CliRunner().invoke(app, ["search", "--resume", str(run), "--iterations", "5",
                                     "--score-memory", "none", "--no-progress"])
    assert again.exit_code == 0, again.output
    assert read_json(run / SUMMARY_FILE)["execution"]["score_memory"] is None
    assert load_config(run / "config.toml").score_memory is None
    bad = CliRunner().invoke(app, ["search", *common, "--iterations", "2", "--score-memory",
                                   "4000", "--out", str(tmp_path / "other")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "score_memory needs scoring in worker processes" in bad.output
