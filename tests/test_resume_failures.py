"""Resume never turns failure into success (issue 16, item 3).

A run stopped by a streak of failed LLM calls stays unfinished; a resume sets that streak
aside (side files in the run folder) and runs those iterations again; the run finishes, and
compare counts it as a seed, only once they succeed. The scenarios: a backend that fails for
a while then recovers, and a replay whose recording lacks replies (the issue's demo case).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command on the app)
from nasagent.agent.cli.app import app
from nasagent.agent.compare import RunState, run_state
from nasagent.agent.config import RunConfig
from nasagent.agent.failed_streak import set_aside_events, stopping_streak
from nasagent.agent.llm.base import ErrorKind, LLMError, LLMRequest, LLMResponse
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.llm.scripted import ScriptedBackend
from nasagent.agent.outcomes import Outcome
from nasagent.agent.replay import compare_events, replay_run
from nasagent.agent.report import build_report, load_run
from nasagent.agent.runlog import (
    EVENTS_FILE,
    LLM_CALLS_FILE,
    SET_ASIDE_CALLS_FILE,
    SET_ASIDE_EVENTS_FILE,
    SUMMARY_FILE,
    Event,
    read_events,
    read_json,
    write_json,
)
from nasagent.agent.search import run_search
from nasagent.agent.stats import mann_whitney

FAST = {"batch_size": 8, "population": 16, "max_params": 1e6, "max_layers": 18,
        "proxy": "params"}
runner = CliRunner()


def config(**changes: object) -> RunConfig:
    values = {"llm": "scripted", "iterations": 8, "concurrency": 1, "reflect_every": 5,
              "max_consecutive_failures": 3, **FAST}
    return RunConfig.model_validate({**values, **changes})


def search(run_dir: Path) -> list[Event]:
    return [e for e in read_events(run_dir) if e.phase == "search"]


class Outage:
    """The scripted stand-in behind an endpoint that refuses mutation calls from iteration
    `down_from` on while `down` is set (reflection calls still answer, and cost tokens)."""

    name = "scripted"

    def __init__(self, down_from: int) -> None:
        self.inner = ScriptedBackend()
        self.down_from = down_from
        self.down = True
        self.asked: list[int | None] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.asked.append(request.iteration)
        if self.down and request.purpose != "reflection" and (
                request.iteration or 0) >= self.down_from:
            raise LLMError("503 service unavailable", kind=ErrorKind.SERVER, attempts=3)
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# ---- a backend that fails, stays down, then recovers -----------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_stopped_run_stays_unfinished_until_the_failed_iterations_succeed(
    tmp_path: Path, concurrency: int
) -> None:
    run, cfg, endpoint = tmp_path / "run", config(concurrency=concurrency), Outage(down_from=5)
    first = run_search(cfg, run, progress=False, backend=endpoint)
    assert not first.finished and "3 consecutive failed LLM calls" in (first.stopped_reason or "")
    assert [e.outcome for e in search(run)][4:] == [Outcome.LLM_ERROR] * 3
    assert read_json(run / SUMMARY_FILE)["finished"] is False

    # the endpoint is still down: the streak is set aside, run again, and stops the run again
    endpoint.asked.clear()
    again = run_search(cfg, run, resume=True, progress=False, backend=endpoint)
    assert not again.finished and again.stopped_reason == first.stopped_reason
    if concurrency == 1:  # asked again, once each (+ the reflection due at 5); no loop
        assert sorted(i for i in endpoint.asked if i is not None) == [5, 5, 6, 7]
    assert [e.iteration for e in search(run)] == list(range(1, 8))
    assert [e.iteration for e in set_aside_events(run)] == [5, 6, 7]
    summary = read_json(run / SUMMARY_FILE)
    assert summary["finished"] is False and summary["set_aside"]["events"] == 3
    assert run_state(run, cfg) is RunState.PARTIAL

    endpoint.down = False
    done = run_search(cfg, run, resume=True, progress=False, backend=endpoint)
    assert done.finished and done.stopped_reason is None
    events = search(run)
    assert [e.iteration for e in events] == list(range(1, 9))
    assert Outcome.LLM_ERROR not in {e.outcome for e in events}
    assert [e.iteration for e in set_aside_events(run)] == [5, 6, 7, 5, 6, 7]
    assert run_state(run, cfg) is RunState.FINISHED

    # as if the failures had never happened: the same events as a run that never saw them
    run_search(cfg, tmp_path / "reference", progress=False)
    assert not compare_events(read_events(tmp_path / "reference"), read_events(run))
    # and the recorded calls are those of the events: a replay reproduces the run
    moved = {c.iteration for c in load_calls(run / SET_ASIDE_CALLS_FILE)}
    assert {5, 6, 7} <= moved and min(moved) == 5  # with iterations in flight at the stop
    replayed = replay_run(run, tmp_path / "replayed", rescore=False)
    assert replayed.identical, [d.describe() for d in replayed.differences]


def test_what_set_aside_attempts_cost_stays_in_the_run_spend(tmp_path: Path) -> None:
    run, cfg, endpoint = tmp_path / "run", config(), Outage(down_from=5)
    run_search(cfg, run, progress=False, backend=endpoint)
    paid = [e for e in search(run) if e.outcome is Outcome.LLM_ERROR and e.tokens]
    assert [e.iteration for e in paid] == [5]  # its reflection call answered
    endpoint.down = False
    run_search(cfg, run, resume=True, progress=False, backend=endpoint)
    summary = read_json(run / SUMMARY_FILE)
    logged = sum(e.tokens for e in read_events(run))
    assert summary["set_aside"]["tokens"] == paid[0].tokens
    assert summary["tokens"] == logged + paid[0].tokens
    assert summary["tokens_in"] + summary["tokens_out"] == summary["tokens"]
    assert summary["llm_calls"] == sum(e.llm_calls for e in read_events(run)) + 1
    assert summary["outcomes"]["llm_error"] == 0  # the result leaves them out
    assert paid[0] in load_run("llm", run).spent_events


def test_a_kill_between_the_two_moves_sets_the_streak_aside_once(tmp_path: Path) -> None:
    run, cfg = tmp_path / "run", config()
    run_search(cfg, run, progress=False, backend=Outage(down_from=5))
    streak_lines = (run / EVENTS_FILE).read_text().splitlines(keepends=True)[-3:]
    (run / SET_ASIDE_EVENTS_FILE).write_text("".join(streak_lines))  # killed before the rename
    run_search(cfg, run, resume=True, progress=False, backend=ScriptedBackend())
    assert [e.iteration for e in set_aside_events(run)] == [5, 6, 7]
    assert [e.iteration for e in search(run)] == list(range(1, 9))
    assert Outcome.LLM_ERROR not in {e.outcome for e in search(run)}


def test_only_the_streak_that_stopped_the_run_is_set_aside(tmp_path: Path) -> None:
    cfg = config(max_consecutive_failures=4)
    short = Outage(down_from=6)  # iterations 6-8 fail: 3 < 4, the run finishes with them
    assert run_search(cfg, tmp_path / "run", progress=False, backend=short).finished
    assert stopping_streak(read_events(tmp_path / "run"), cfg) == []
    again = run_search(cfg, tmp_path / "run", resume=True, progress=False, backend=short)
    assert again.finished and not (tmp_path / "run" / SET_ASIDE_EVENTS_FILE).exists()


def test_a_run_whose_every_call_failed_is_run_again_on_resume(tmp_path: Path) -> None:
    cfg = config(iterations=2, max_consecutive_failures=10, reflection=False)
    endpoint = Outage(down_from=1)
    first = run_search(cfg, tmp_path / "run", progress=False, backend=endpoint)
    assert not first.finished and "resume with: nasagent search --resume" in (
        first.stopped_reason or "")
    endpoint.down = False
    assert run_search(cfg, tmp_path / "run", resume=True, progress=False, backend=endpoint).finished
    assert len(set_aside_events(tmp_path / "run")) == 2


def test_a_summary_that_says_finished_over_a_stopping_streak_is_not_believed(
    tmp_path: Path,
) -> None:
    """Folders marked finished by the bug of issue 16 are resumed, and not counted meanwhile."""
    run, cfg = tmp_path / "run", config(iterations=7)
    run_search(cfg, run, progress=False, backend=Outage(down_from=5))
    write_json(run / SUMMARY_FILE, {**read_json(run / SUMMARY_FILE), "finished": True,
                                    "stopped_reason": None})
    assert run_state(run, cfg) is RunState.PARTIAL
    problem = load_run("llm", run).problem or ""
    assert "3 consecutive failed LLM calls (iterations 5-7" in problem
    assert f"resume with: nasagent search --resume {run}" in problem
    assert build_report(run).summary["problems"]
    assert run_search(cfg, run, resume=True, progress=False, backend=ScriptedBackend()).finished


# ---- a replay whose recording lacks replies: the demo case, through the CLI -----------


def recorded_transcript(root: Path, seeds: tuple[int, ...]) -> Path:
    """One scripted run per seed, as a demo transcript holds them (seed-S/ run folders)."""
    for seed in seeds:
        run_search(config(seed=seed, iterations=6), root / f"seed-{seed}", progress=False)
    return root


def drop_replies(calls: Path, from_iteration: int) -> str:
    """Remove the recorded replies of iterations >= `from_iteration`; return the original."""
    original = calls.read_text()
    kept = [line for line in original.splitlines(keepends=True)
            if (json.loads(line).get("iteration") or 0) < from_iteration]
    calls.write_text("".join(kept))
    return original


def compare_config(path: Path, transcript: Path) -> Path:
    values = config(iterations=6).model_dump(mode="json", exclude_none=True,
                                               exclude={"seed", "mutator", "llm"})
    values.update(llm=f"replay:{transcript}/seed-{{seed}}/{LLM_CALLS_FILE}", model="scripted")
    path.write_text(tomli_w.dumps(values))
    return path


def llm_p_value(summary: dict) -> float | None:
    return summary["comparisons"][0]["p_value"]


def test_compare_counts_a_replayed_run_only_once_it_finishes(tmp_path: Path) -> None:
    transcript = recorded_transcript(tmp_path / "transcript", (0, 1, 2))
    original = drop_replies(transcript / "seed-0" / LLM_CALLS_FILE, from_iteration=3)
    cfg, out = compare_config(tmp_path / "cmp.toml", transcript), tmp_path / "cmp"
    first = runner.invoke(app, ["compare", "--config", str(cfg), "--out", str(out),
                                "--seed-list", "0,1,2", "--no-progress"])
    assert first.exit_code == 3, first.output
    assert "llm seed 0" in first.stderr and "consecutive failed LLM calls" in first.stderr
    summary = read_json(out / SUMMARY_FILE)
    assert summary["arms"]["llm"]["counted_seeds"] == [1, 2]
    finals = summary["arms"]["llm"]["best_at_budget"]["per_seed"]
    assert finals[0] is None
    random_finals = summary["arms"]["random"]["best_at_budget"]["per_seed"]
    expected = mann_whitney(finals[1:], random_finals, summary["higher_is_better"])
    assert llm_p_value(summary) == expected.p_value

    # the replay misses again (deterministic): stopped again, not counted, same p, no loop
    again = runner.invoke(app, ["compare", "--out", str(out), "--no-progress"])
    assert again.exit_code == 3, again.output
    assert "set aside 3 consecutive failed LLM calls (iterations 3-5" in again.stderr
    rerun = read_json(out / SUMMARY_FILE)
    assert rerun["arms"]["llm"]["counted_seeds"] == [1, 2]
    assert llm_p_value(rerun) == llm_p_value(summary)
    seed0 = out / "llm" / "seed-0"
    assert read_json(seed0 / SUMMARY_FILE)["finished"] is False
    assert [e.iteration for e in set_aside_events(seed0)] == [3, 4, 5]

    # the recording is whole again: the run finishes and counts, every iteration valid
    (transcript / "seed-0" / LLM_CALLS_FILE).write_text(original)
    last = runner.invoke(app, ["compare", "--out", str(out), "--no-progress"])
    assert last.exit_code == 0, last.output
    done = read_json(out / SUMMARY_FILE)
    assert done["arms"]["llm"]["counted_seeds"] == [0, 1, 2] and done["problems"] == []
    assert Outcome.LLM_ERROR not in {e.outcome for e in search(seed0)}
    assert not compare_events(read_events(transcript / "seed-0"), read_events(seed0))


def test_search_resume_exits_3_until_the_recording_answers(tmp_path: Path) -> None:
    transcript = recorded_transcript(tmp_path / "transcript", (0,))
    calls = transcript / "seed-0" / LLM_CALLS_FILE
    original = drop_replies(calls, from_iteration=4)
    run, settings = tmp_path / "run", tmp_path / "search.toml"
    values = config(iterations=6).model_dump(mode="json", exclude_none=True,
                                             exclude={"llm"})
    settings.write_text(tomli_w.dumps({**values, "llm": f"replay:{calls}", "model": "scripted"}))
    first = runner.invoke(app, ["search", "--config", str(settings), "--out", str(run),
                                "--no-progress"])
    assert first.exit_code == 3 and "3 consecutive failed LLM calls" in first.stderr
    for _ in range(2):
        again = runner.invoke(app, ["search", "--resume", str(run), "--no-progress"])
        assert again.exit_code == 3, again.output
        assert "stopped: stopped after 3 consecutive failed LLM calls" in again.stderr
        assert json.loads(again.stdout)["finished"] is False
    calls.write_text(original)
    last = runner.invoke(app, ["search", "--resume", str(run), "--no-progress"])
    assert last.exit_code == 0, last.output
    assert [e.iteration for e in search(run)] == list(range(1, 7))
    assert not compare_events(read_events(transcript / "seed-0"), read_events(run))


@pytest.mark.parametrize("kind", ["llm_error", "ok"])
def test_stopping_streak_needs_the_limit_or_every_call(kind: str) -> None:
    cfg = config(iterations=5, max_consecutive_failures=3)

    def event(i: int, outcome: Outcome) -> Event:
        return Event(iteration=i, mutator="llm", parent="x", parent_score=None, outcome=outcome,
                     arch=None, score=None)

    head = [event(1, Outcome(kind))]
    failed = [event(i, Outcome.LLM_ERROR) for i in range(2, 5)]
    assert [e.iteration for e in stopping_streak(head + failed, cfg)] == (
        [1, 2, 3, 4] if kind == "llm_error" else [2, 3, 4])
    assert [e.iteration for e in stopping_streak(head + failed[:2], cfg)] == (
        [1, 2, 3] if kind == "llm_error" else [])
    assert stopping_streak(failed[:2], config(iterations=2)) == failed[:2]  # every call failed
    assert stopping_streak(failed[:2], cfg) == []  # killed before the limit: resumed as it is
