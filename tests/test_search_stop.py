"""The search loop's stop signal: a clean, resumable stop requested from another thread."""

from __future__ import annotations

from pathlib import Path

from nasagent.agent.config import RunConfig
from nasagent.agent.llm.base import LLMRequest, LLMResponse
from nasagent.agent.llm.scripted import ScriptedBackend
from nasagent.agent.replay import compare_events
from nasagent.agent.runlog import SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import StopSignal, run_search

CONFIG = RunConfig(llm="scripted", iterations=12, concurrency=3, batch_size=8, population=16,
                   reflect_every=5)


class StopsAt:
    """The scripted stand-in, asking the loop to stop when iteration `at` is requested."""

    def __init__(self, stop: StopSignal, at: int) -> None:
        self.inner = ScriptedBackend()
        self.stop = stop
        self.at = at
        self.name = "scripted"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.iteration == self.at:
            self.stop.request("stopped by the test")
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_stop_request_ends_the_run_unfinished_and_resumable(tmp_path: Path) -> None:
    stop = StopSignal()
    result = run_search(CONFIG, tmp_path / "run", progress=False, stop=stop,
                        backend=StopsAt(stop, at=6))
    assert not result.finished and "stopped by the test" in (result.stopped_reason or "")
    assert "--resume" in (result.stopped_reason or "")
    summary = read_json(tmp_path / "run" / SUMMARY_FILE)
    assert summary["finished"] is False and summary["proposals"] < CONFIG.iterations
    applied = [e.iteration for e in read_events(tmp_path / "run") if e.phase == "search"]
    assert applied == list(range(1, len(applied) + 1))

    resumed = run_search(CONFIG, tmp_path / "run", resume=True, progress=False)
    assert resumed.finished
    run_search(CONFIG, tmp_path / "reference", progress=False)
    assert not compare_events(read_events(tmp_path / "reference"), read_events(tmp_path / "run"))


def test_a_stop_requested_before_the_start_scores_nothing_more(tmp_path: Path) -> None:
    stop = StopSignal()
    stop.request("not now")
    stop.request("a second reason is ignored")
    result = run_search(CONFIG.model_copy(update={"init_population": 2}), tmp_path / "run",
                        progress=False, stop=stop)
    assert not result.finished and (result.stopped_reason or "").startswith("not now")
    assert [e.phase for e in read_events(tmp_path / "run")] == ["init"]
