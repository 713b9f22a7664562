"""The search loop through the real `openai` SDK against a loopback endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback_openai import LoopbackOpenAI, RateLimited, ServerError, scripted_reply

from nasagent.agent.config import RunConfig
from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import read_events
from nasagent.agent.search import run_search

SECRET = "sk-test-SECRET-do-not-log-4242"


@pytest.fixture()
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


def test_a_search_through_the_sdk_never_writes_the_key(tmp_path: Path, api_key: str) -> None:
    with LoopbackOpenAI(default=scripted_reply) as server:
        server.enqueue(RateLimited(retry_after_s=0.05), ServerError(503))
        config = RunConfig(
            llm="openai:loopback-model", base_url=server.base_url, iterations=6,
            concurrency=2, reflect_every=3, batch_size=8, max_attempts=4,
        )
        result = run_search(config, tmp_path / "run", progress=False)
        authorizations = {r.headers.get("authorization") for r in server.received}
    assert result.finished
    assert authorizations == {f"Bearer {api_key}"}
    events = [e for e in read_events(tmp_path / "run") if e.phase == "search"]
    assert len(events) == 6 and any(e.outcome is Outcome.OK for e in events)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert api_key not in path.read_text(encoding="utf-8", errors="replace"), path


def test_a_dead_endpoint_stops_the_run_cleanly(tmp_path: Path, api_key: str) -> None:
    with LoopbackOpenAI() as server:
        base_url = server.base_url
    config = RunConfig(
        llm="openai:loopback-model", base_url=base_url, iterations=10, concurrency=2,
        batch_size=8, max_attempts=1, max_consecutive_failures=3, llm_timeout=2,
    )
    result = run_search(config, tmp_path / "run", progress=False)
    assert not result.finished and "resume" in (result.stopped_reason or "")
    events = [e for e in read_events(tmp_path / "run") if e.phase == "search"]
    assert [e.outcome for e in events] == [Outcome.LLM_ERROR] * 3
