"""Runs through the service: events, stop and resume, a SIGKILL'd server, and a small load."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.service_load import (
    RUN_CONFIG,
    SMALL,
    Server,
    lost_against_logs,
    read_events,
    run_load,
    serving,
    start_server,
)
from nasagent.agent.runlog import EVENTS_FILE, SUMMARY_FILE, read_json
from nasagent.agent.runlog import read_events as logged_events

pytestmark = pytest.mark.timeout(300)

FAST = {**RUN_CONFIG, "seed_arch": SMALL}
"""Scripted LLM, a small seed architecture: the runs' scoring takes little time."""


def wait_for(check: Callable[[], Any], seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {seconds}s")


def status(server: Server, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.base_url}/v1/runs/{run_id}", timeout=30).json())


def in_state(server: Server, run_id: str, *states: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        current = status(server, run_id)
        return current if current["state"] in states else None

    return check


def start_run(server: Server, body: dict[str, Any]) -> str:
    response = httpx.post(f"{server.base_url}/v1/runs", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def search_iterations(run_dir: Path) -> list[int]:
    return [e.iteration for e in logged_events(run_dir) if e.phase == "search"]


def streamed(server: Server, run_id: str, **headers: str) -> list[Any]:
    async def read() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
            return await read_events(client, f"/v1/runs/{run_id}/events", headers)

    return asyncio.run(read())


def test_a_search_run_streams_every_logged_event_from_any_offset(server: Server) -> None:
    run_id = start_run(server, {"kind": "search", "config": {**FAST, "iterations": 5}})
    messages = streamed(server, run_id)
    final = status(server, run_id)
    assert final["state"] == "finished" and final["best"]["score"] is not None
    assert final["progress"]["iterations"] == final["progress"]["total"] == 5
    lines = (server.runs_dir / run_id / EVENTS_FILE).read_text().splitlines()
    events = [m for m in messages if m.event == "event"]
    assert [json.loads(m.data) for m in events] == [json.loads(x) for x in lines]
    assert messages[-1].event == "end" and json.loads(messages[-1].data)["state"] == "finished"
    again = streamed(server, run_id, **{"Last-Event-ID": "3"})
    assert [m.id for m in again if m.event == "event"] == [str(i) for i in range(4, len(lines))]
    report = httpx.get(f"{server.base_url}/v1/runs/{run_id}/report", timeout=120)
    assert report.status_code == 200 and "<html" in report.text.lower()
    listed = httpx.get(f"{server.base_url}/v1/runs").json()["runs"]
    assert run_id in [run["id"] for run in listed]


def stop_when(server: Server, run_id: str, iterations: int) -> dict[str, Any]:
    """Wait for `iterations` applied iterations, DELETE the run, wait for it to stop."""
    wait_for(lambda: len(search_iterations(server.runs_dir / run_id)) >= iterations)
    assert httpx.delete(f"{server.base_url}/v1/runs/{run_id}").status_code == 202
    return wait_for(in_state(server, run_id, "stopped", "finished"))  # type: ignore[no-any-return]


def test_delete_stops_a_run_cleanly_and_resume_continues_it(server: Server) -> None:
    config = {**FAST, "iterations": 300, "concurrency": 1}
    run_id = start_run(server, {"kind": "search", "config": config})
    run_dir = server.runs_dir / run_id
    stopped = stop_when(server, run_id, 2)
    assert stopped["state"] == "stopped" and "DELETE" in stopped["stopped_reason"]
    summary = read_json(run_dir / SUMMARY_FILE)
    assert summary["finished"] is False and "--resume" in summary["stopped_reason"]
    before = search_iterations(run_dir)
    assert before == list(range(1, len(before) + 1)) and len(before) < 300
    resumed = httpx.post(f"{server.base_url}/v1/runs/{run_id}/resume")
    assert resumed.status_code == 202
    assert stop_when(server, run_id, len(before) + 2)["state"] == "stopped"
    after = search_iterations(run_dir)
    assert after == list(range(1, len(after) + 1)) and len(after) > len(before)
    assert httpx.post(f"{server.base_url}/v1/runs/{run_id}/resume").status_code == 202
    assert httpx.post(f"{server.base_url}/v1/runs/{run_id}/resume").status_code == 409
    httpx.delete(f"{server.base_url}/v1/runs/{run_id}")
    wait_for(in_state(server, run_id, "stopped", "finished"))


def test_a_sigkilled_server_resumes_its_runs_on_restart_and_loses_nothing(
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / "runs"
    config = {**FAST, "iterations": 60, "concurrency": 2}
    server = start_server(runs_dir)
    try:
        search_id = start_run(server, {"kind": "search", "config": config})
        compare_id = start_run(server, {"kind": "compare", "arms": ["llm", "random"],
                                        "seeds": [0], "config": {**config, "iterations": 4}})
        wait_for(lambda: len(search_iterations(runs_dir / search_id)) >= 3)
    finally:
        server.kill()
    log = runs_dir / search_id / EVENTS_FILE
    before = log.read_text().splitlines(keepends=True)
    whole = [line for line in before if line.endswith("\n")]  # the last may be torn
    assert status_file(runs_dir, search_id) in ("running", "queued")
    with serving(runs_dir) as restarted:
        listed = {r["id"] for r in httpx.get(f"{restarted.base_url}/v1/runs").json()["runs"]}
        assert listed == {search_id, compare_id}
        wait_for(in_state(restarted, search_id, "finished"), 240)
        compared = wait_for(in_state(restarted, compare_id, "finished", "failed", "stopped"), 240)
        assert compared["state"] == "finished" and compared["progress"]["runs_finished"] == 2
        messages = streamed(restarted, search_id)
    after = log.read_text().splitlines(keepends=True)
    assert after[:len(whole)] == whole  # what was logged before the kill is kept as it was
    assert search_iterations(runs_dir / search_id) == list(range(1, 61))
    assert [json.loads(m.data) for m in messages if m.event == "event"] == [
        json.loads(line) for line in after
    ]
    assert read_json(runs_dir / search_id / SUMMARY_FILE)["finished"] is True


def status_file(runs_dir: Path, run_id: str) -> str:
    return str(read_json(runs_dir / run_id / "service.json")["state"])


def test_a_small_load_has_no_errors_and_loses_no_events(server: Server) -> None:
    report = asyncio.run(run_load(server.base_url, checks=40, scores=4, runs=2, iterations=3,
                                  batch_size=4, seed_arch=SMALL, timeout_s=240))
    assert not report.errors and not report.lost_events
    assert not lost_against_logs(report, server.runs_dir)
    assert len(report.latencies["POST /v1/check"]) == 40 and len(report.runs) == 2
