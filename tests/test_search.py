"""The search loop end to end: scripted and random mutators, scoring cache, resume, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasagent.agent.config import RunConfig
from nasagent.agent.failed_streak import set_aside_events
from nasagent.agent.llm.base import LLMError, LLMRequest, LLMResponse, TokenUsage
from nasagent.agent.outcomes import Outcome
from nasagent.agent.replay import compare_events, replay_run
from nasagent.agent.runlog import EVENTS_FILE, LLM_CALLS_FILE, SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import run_search

FAST = {"batch_size": 8, "population": 16, "max_params": 1e6, "max_layers": 18}


def scripted_config(**changes: object) -> RunConfig:
    values = {"llm": "scripted", "iterations": 12, "concurrency": 3, "reflect_every": 5, **FAST}
    return RunConfig.model_validate({**values, **changes})


def search_events(run_dir: Path) -> list:
    return [e for e in read_events(run_dir) if e.phase == "search"]


def test_scripted_run_writes_every_artifact(tmp_path: Path) -> None:
    result = run_search(scripted_config(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert result.finished
    for name in ("config.toml", EVENTS_FILE, LLM_CALLS_FILE, "population.json", "best.json",
                 SUMMARY_FILE):
        assert (run / name).exists(), name
    events = search_events(run)
    assert [e.iteration for e in events] == list(range(1, 13))
    assert all(e.mutator == "llm" and e.llm_calls >= 1 for e in events)
    assert any(e.outcome is Outcome.OK and e.score is not None for e in events)
    reflections = [e for e in events if e.lessons is not None]
    assert [e.iteration for e in reflections] == [5, 10]
    summary = read_json(run / SUMMARY_FILE)
    assert summary["finished"] and summary["proposals"] == 12


def test_random_mutator_needs_no_llm(tmp_path: Path) -> None:
    config = scripted_config(mutator="random", llm="openai:never-called", iterations=15)
    run_search(config, tmp_path / "run", progress=False)
    events = search_events(tmp_path / "run")
    assert len(events) == 15 and all(e.llm_calls == 0 for e in events)
    assert not (tmp_path / "run" / LLM_CALLS_FILE).exists()


def test_same_seed_same_events_at_any_concurrency_run(tmp_path: Path) -> None:
    run_search(scripted_config(), tmp_path / "a", progress=False)
    run_search(scripted_config(), tmp_path / "b", progress=False)
    assert not compare_events(read_events(tmp_path / "a"), read_events(tmp_path / "b"))


def test_duplicates_are_never_scored_twice(tmp_path: Path) -> None:
    config = scripted_config(mutator="random", iterations=40, seed=3)
    run_search(config, tmp_path / "run", progress=False)
    events = read_events(tmp_path / "run")
    scored = [e.arch for e in events if e.status is not None]
    assert len(scored) == len(set(scored))
    assert all(e.score_seconds == 0 for e in events if e.outcome is Outcome.DUPLICATE)


class FailingBackend:
    name = "failing"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise LLMError("endpoint unreachable", kind="connection", attempts=3)

    async def aclose(self) -> None:
        return None


def test_consecutive_failures_stop_the_run_and_lose_nothing(tmp_path: Path) -> None:
    config = scripted_config(max_consecutive_failures=4, iterations=20, concurrency=2)
    result = run_search(config, tmp_path / "run", progress=False, backend=FailingBackend())
    assert not result.finished and "consecutive failed LLM calls" in (result.stopped_reason or "")
    events = search_events(tmp_path / "run")
    assert [e.outcome for e in events] == [Outcome.LLM_ERROR] * 4
    resumed = run_search(config, tmp_path / "run", resume=True, progress=False)
    assert resumed.finished
    assert [e.iteration for e in search_events(tmp_path / "run")] == list(range(1, 21))
    # the failed streak is kept beside the log, not in it: its iterations ran again
    assert Outcome.LLM_ERROR not in {e.outcome for e in search_events(tmp_path / "run")}
    assert [e.iteration for e in set_aside_events(tmp_path / "run")] == [1, 2, 3, 4]


class OneShotReplies:
    """A backend whose reply is always the same valid child, with token usage."""

    name = "fixed"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        text = ('```json\n{"arch": "SuperConvK3BNRELU(3,16,1,1)SuperResK3K3(16,16,1,8,1)'
                'SuperConvK1BNRELU(16,32,1,1)", "type": "gradnorm", "score": 9}\n```')
        return LLMResponse(text=text, finish_reason="stop", latency_s=0.0,
                           usage=TokenUsage(prompt_tokens=100, completion_tokens=20))

    async def aclose(self) -> None:
        return None


def test_repeated_answer_is_a_duplicate(tmp_path: Path) -> None:
    config = scripted_config(iterations=4, concurrency=2, reflection=False)
    run_search(config, tmp_path / "run", progress=False, backend=OneShotReplies())
    outcomes = [e.outcome for e in search_events(tmp_path / "run")]
    assert outcomes == [Outcome.OK, Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert all(e.tokens == 120 for e in search_events(tmp_path / "run"))


def test_replay_reproduces_a_recorded_run(tmp_path: Path) -> None:
    run_search(scripted_config(), tmp_path / "run", progress=False)
    report = replay_run(tmp_path / "run", tmp_path / "replayed")
    assert report.identical, [d.describe() for d in report.differences]
    fast = replay_run(tmp_path / "run", tmp_path / "replayed-fast", rescore=False)
    assert fast.identical


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent", *args]


@pytest.mark.timeout(240)
def test_kill_9_then_resume_gives_the_same_events(tmp_path: Path) -> None:
    args = ["search", "--llm", "scripted", "--iterations", "60", "--concurrency", "4",
            "--batch-size", "8", "--population", "16", "--reflect-every", "7", "--no-progress"]
    reference = tmp_path / "reference"
    subprocess.run(_cli(*args, "--out", str(reference)), check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli(*args, "--out", str(killed)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for_events(killed / EVENTS_FILE, at_least=8, process=process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = len(search_events(killed))
    assert before < 60
    subprocess.run(_cli("search", "--resume", str(killed), "--no-progress"), check=True,
                   capture_output=True)
    differences = compare_events(read_events(reference), read_events(killed))
    assert not differences, [d.describe() for d in differences]
    calls = [json.loads(line) for line in (killed / LLM_CALLS_FILE).read_text().splitlines()]
    reference_calls = (reference / LLM_CALLS_FILE).read_text().splitlines()
    assert len(calls) == len(reference_calls), "a call was asked twice or lost"


def _wait_for_events(path: Path, *, at_least: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= at_least:
            return
        time.sleep(0.02)
    pytest.fail("the search did not write events in time")


def test_random_initial_population_and_tournament_selection(tmp_path: Path) -> None:
    config = scripted_config(mutator="random", init_population=14, population=12,
                             parent_selection="tournament", iterations=10)
    run_search(config, tmp_path / "run", progress=False)
    events = read_events(tmp_path / "run")
    initial = [e for e in events if e.phase == "init"]
    assert [e.mutator for e in initial] == ["seed"] + ["init"] * 14
    population = read_json(tmp_path / "run" / "population.json")["population"]
    assert len(population) <= 12
    parents = {e.parent for e in search_events(tmp_path / "run")}
    assert parents - {initial[0].arch}, "past 10 members, parents come from the population"


def test_a_run_where_nothing_scores_is_not_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasagent.evaluator.proxies as proxies

    def failing(architecture: object, settings: object) -> proxies.ScoreResult:
        return proxies.ScoreResult(proxy="gradnorm", score=None, status=proxies.ProxyStatus.ERROR,
                                   seconds=0.0, message="out of kernels", seed=0,
                                   higher_is_better=True)

    monkeypatch.setattr(proxies, "score", failing)  # in-process scoring looks it up per call
    result = run_search(scripted_config(mutator="random", iterations=4), tmp_path / "run",
                        progress=False)
    assert not result.finished and result.best is None
    assert "no architecture got a score" in (result.stopped_reason or "")
    assert "out of kernels" in (result.stopped_reason or "")
    seed_event = read_events(tmp_path / "run")[0]
    assert seed_event.outcome is Outcome.SCORE_FAILED and seed_event.notes == ("out of kernels",)
    assert read_json(tmp_path / "run" / SUMMARY_FILE)["finished"] is False
