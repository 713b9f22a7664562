"""`--executor ray`: scorings as tasks on a real local Ray instance (loopback only) give the
same events as a local run; without Ray the flag is a one-line error naming the extra."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli.search_command  # noqa: F401  (registers the command on the app)
from nasagent.agent.cli.app import app
from nasagent.agent.compare import make_plan, run_compare
from nasagent.agent.config import RunConfig
from nasagent.agent.execution import start_scoring
from nasagent.agent.ray_scoring import RayScoring, largest_node_mb
from nasagent.agent.replay import compare_events
from nasagent.agent.runlog import SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import run_search
from nasagent.agent.workerpool import ScoringSetupError
from nasagent.evaluator.proxies import ProxyStatus, ScoreSettings

VALUES = {"llm": "scripted", "iterations": 8, "concurrency": 3, "batch_size": 8,
          "population": 8, "reflect_every": 4, "threads": 1}


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_scoring_gives_the_local_events(tmp_path: Path, ray_instance: Any) -> None:
    config = RunConfig.model_validate(VALUES)
    run_search(config, tmp_path / "local", progress=False)
    run_search(config.model_copy(update={"executor": "ray"}), tmp_path / "ray", progress=False)
    assert not compare_events(read_events(tmp_path / "local"), read_events(tmp_path / "ray"))
    execution = read_json(tmp_path / "ray" / SUMMARY_FILE)["execution"]
    assert execution["executor"] == "ray" and execution["workers"] == 2
    assert ray_instance.is_initialized()  # a Ray the caller started is left running


def test_ray_compare_writes_resumable_run_dirs_on_the_driver(
    tmp_path: Path, ray_instance: Any
) -> None:
    config = RunConfig.model_validate({**VALUES, "iterations": 5})
    plan = make_plan(config, ("llm", "random"), (0,))
    run_compare(plan, tmp_path / "local", progress=False)
    on_ray = plan.model_copy(update={"config": config.model_copy(update={"executor": "ray"})})
    result = run_compare(on_ray, tmp_path / "ray", progress=False, jobs=2)
    assert not result.stopped
    for arm in ("llm", "random"):
        local, ray = (tmp_path / d / arm / "seed-0" for d in ("local", "ray"))
        assert not compare_events(read_events(local), read_events(ray)), arm
    resumed = run_search(
        on_ray.run_config("random", 0).model_copy(update={"iterations": 7}),
        tmp_path / "ray" / "random" / "seed-0", resume=True, progress=False,
    )
    assert resumed.finished


def test_without_ray_the_flag_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(app, [
        "search", "--llm", "scripted", "--iterations", "2", "--executor", "ray",
        "--out", str(tmp_path / "run"), "--no-progress",
    ])
    assert result.exit_code == 2
    assert "pip install 'nasagent[ray]'" in result.output and "Traceback" not in result.output


def test_score_memory_is_each_ray_tasks_reservation(ray_instance: Any) -> None:
    node_mb = largest_node_mb(ray_instance)
    config = RunConfig.model_validate({**VALUES, "executor": "ray",
                                       "score_memory": round(node_mb * 0.6)})
    scoring = start_scoring(config)
    try:  # 2 CPUs would take 2 tasks at once; the node's memory holds one reservation
        assert (scoring.plan.workers, scoring.plan.score_memory) == (1, config.score_memory)
        result = scoring.submit(config.seed_arch, ScoreSettings(batch_size=4)).result(120)
        assert result.status is ProxyStatus.OK  # a reservation the node holds is scheduled
    finally:
        scoring.close()
    with pytest.raises(ScoringSetupError, match="more memory than any Ray node offers"):
        start_scoring(config.model_copy(update={"score_memory": round(node_mb * 2)}))


def test_a_task_rays_memory_monitor_killed_is_status_memory(ray_instance: Any) -> None:
    def killed(*_args: Any, **_kwargs: Any) -> Any:
        raise ray_instance.exceptions.OutOfMemoryError(
            "Task was killed due to the node running low on memory.\nMemory on the node ...")

    ray = SimpleNamespace(remote=ray_instance.remote, exceptions=ray_instance.exceptions,
                          get=killed, cancel=ray_instance.cancel)
    backend = RayScoring(ray, slots=1, threads=1, gpus=0.0, timeout=None, owns_ray=False,
                         memory_mb=512)
    try:
        result = backend.submit(RunConfig().seed_arch, ScoreSettings()).result(60)
    finally:
        backend.close()
    assert result.status is ProxyStatus.MEMORY and result.score is None
    assert "memory monitor killed" in result.message
    assert "score_memory=512 MB reserved per task" in result.message
    assert "node running low on memory" in result.message
