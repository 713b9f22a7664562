"""`compare --jobs J`: J runs at once on one shared scoring pool, the same run dirs as one at
a time; execution flags may change on a re-run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from test_compare import FakeRun, tiny_plan
from typer.testing import CliRunner

import nasagent.agent.cli.compare_commands  # noqa: F401  (registers the commands on the app)
import nasagent.agent.compare as compare_module
from nasagent.agent.cli.app import app
from nasagent.agent.compare import make_plan, resolve_plan, run_compare
from nasagent.agent.config import RunConfig, load_config
from nasagent.agent.parallel_runs import run_at_once, shared_config
from nasagent.agent.replay import compare_events
from nasagent.agent.runlog import SUMMARY_FILE, read_events, read_json


class CountingRun(FakeRun):
    """A fake run that records how many runs were in progress at once."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, config: RunConfig, run_dir: Path, **kwargs: bool):  # noqa: ANN204
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        try:
            return super().__call__(config, run_dir, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def test_jobs_run_that_many_at_once_and_keep_plan_order(tmp_path: Path) -> None:
    fake = CountingRun()
    result = run_compare(tiny_plan(seeds=3), tmp_path, run=fake, progress=False, jobs=3)
    assert fake.most == 3 and len(fake.calls) == 6 and not result.stopped
    assert [(r.arm, r.seed) for r in result.runs] == [
        (arm, seed) for seed in range(3) for arm in ("llm", "random")
    ]


def test_run_at_once_returns_results_in_task_order() -> None:
    def task(k: int):  # noqa: ANN202
        return lambda: (time.sleep(0.05 * (3 - k)), k)[1]

    assert run_at_once([task(k) for k in range(4)], 3) == [0, 1, 2, 3]
    assert run_at_once([task(k) for k in range(2)], 1) == [0, 1]


def test_a_shared_pool_takes_the_cores_unless_workers_are_given() -> None:
    assert shared_config(RunConfig(), cores=6).workers == 6
    assert shared_config(RunConfig(workers=3), cores=6).workers == 3
    assert shared_config(RunConfig(executor="ray"), cores=6).workers == 0


def test_parallel_compare_writes_the_same_runs_as_a_sequential_one(tmp_path: Path) -> None:
    values = {"llm": "scripted", "iterations": 6, "concurrency": 3, "batch_size": 8,
              "population": 8, "reflect_every": 3, "threads": 1}
    plan = make_plan(RunConfig.model_validate(values), ("llm", "random"), (0, 1))
    run_compare(plan, tmp_path / "one", progress=False)
    parallel = plan.model_copy(update={"config": plan.config.model_copy(update={"workers": 2})})
    run_compare(parallel, tmp_path / "many", progress=False, jobs=3)
    for arm in ("llm", "random"):
        for seed in (0, 1):
            one, many = (tmp_path / d / arm / f"seed-{seed}" for d in ("one", "many"))
            assert not compare_events(read_events(one), read_events(many)), (arm, seed)
            assert read_json(many / SUMMARY_FILE)["execution"]["workers"] == 2


def test_execution_flags_may_change_on_a_rerun(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=1), tmp_path, run=FakeRun(), progress=False)
    plan = resolve_plan(tmp_path, overrides={"workers": 2, "threads": 1})
    assert (plan.config.workers, plan.config.threads) == (2, 1)
    assert plan.run_config("llm", 0).workers == 2
    assert load_config(None, {"iterations": 10, "batch_size": 8}).workers == 0


def test_cli_compare_jobs_prints_a_line_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = CountingRun()
    monkeypatch.setattr(compare_module, "_sharing_run", lambda scoring: fake)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, [
        "compare", "--out", str(out), "--iterations", "5", "--seed-list", "0,1",
        "--batch-size", "8", "--jobs", "4", "--workers", "1", "--threads", "1",
    ])
    assert result.exit_code == 0, result.output
    assert fake.most == 4
    assert result.output.count(": finished") == 4
    assert load_config(out / "llm" / "seed-1" / "config.toml").workers == 1
