"""The service's bounded queues: 429 with Retry-After when full; shutdown keeps runs queued."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from bench.service_load import RUN_CONFIG, SMALL
from nasagent.agent.config import RunConfig
from nasagent.agent.service.app import ScoreQueue
from nasagent.agent.service.errors import Busy
from nasagent.agent.service.models import RunState
from nasagent.agent.service.runs import ManagerSettings, RunManager

pytestmark = pytest.mark.timeout(120)

LONG = RunConfig.model_validate({**RUN_CONFIG, "seed_arch": SMALL, "iterations": 500,
                                 "concurrency": 1})


def wait_state(manager: RunManager, run_id: str, state: RunState) -> None:
    deadline = time.monotonic() + 60
    while manager.get(run_id).record.state is not state:
        assert time.monotonic() < deadline, f"{run_id} never became {state}"
        time.sleep(0.05)


def test_a_full_run_queue_answers_busy_and_shutdown_keeps_runs_for_restart(
    tmp_path: Path,
) -> None:
    settings = ManagerSettings(runs_dir=tmp_path, max_running=1, max_queued=1, retry_after_s=7)
    manager = RunManager(settings)
    manager.start()
    try:
        running = manager.submit_search(LONG).record.id
        wait_state(manager, running, RunState.RUNNING)
        queued = manager.submit_search(LONG).record.id
        with pytest.raises(Busy) as busy:
            manager.submit_search(LONG)
        assert busy.value.status == 429 and busy.value.headers == {"Retry-After": "7"}
        assert manager.get(queued).record.state is RunState.QUEUED
    finally:
        manager.close()
    assert manager.get(running).record.state is RunState.QUEUED  # resumes on restart

    again = RunManager(settings)
    again.start()
    try:
        wait_state(again, running, RunState.RUNNING)
        assert again.stop(queued).record.state is RunState.STOPPED
        again.stop(running)
        wait_state(again, running, RunState.STOPPED)
        assert "DELETE" in (again.get(running).record.stopped_reason or "")
    finally:
        again.close()


def test_a_full_score_queue_answers_busy() -> None:
    queue = ScoreQueue(limit=1, retry_after_s=3)
    release = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(queue.run(lambda: release.wait(30)))
        await asyncio.sleep(0)  # the first request is now waiting on the worker
        with pytest.raises(Busy) as busy:
            await queue.run(lambda: True)
        assert busy.value.headers == {"Retry-After": "3"}
        release.set()
        assert await first is True
        assert await queue.run(lambda: 5) == 5

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        queue.close()
