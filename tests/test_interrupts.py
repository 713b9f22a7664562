"""Interrupts and progress: the run folder is printed, Ctrl-C and SIGTERM stop cleanly with
the exact resume command, a resumed bar continues its counters, compare names arm and seed,
and the manual backend says where its requests wait."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nasagent.agent.llm import LLMError, LLMRequest, ManualBackend, Message, SamplingParams
from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import EVENTS_FILE, SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import run_search
from tests.test_search import _wait_for_events, scripted_config

BUDGET = 10_000
"""Iterations no interrupted run can finish before its signal (400 took 2.5 s with params)."""
FAST = ["--llm", "scripted", "--proxy", "params", "--batch-size", "8", "--concurrency", "2",
        "--population", "16"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent", *args]


def _default_sigint() -> None:
    """Ctrl-C's default action in the child: a test run from a background job inherits SIGINT
    ignored (as nohup leaves it), and the CLI rightly keeps an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args: list[str], events: Path, sig: signal.Signals) -> tuple[int, str]:
    """Start the CLI, send `sig` once a few iterations are logged; its exit code and stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, preexec_fn=_default_sigint)
    _wait_for_events(events, at_least=4, process=process)
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the interrupted command did not stop")
    return process.returncode, stderr.decode()


def _resume_command(stderr: str) -> list[str]:
    match = re.search(r"resume with: (nasagent .+)$", stderr, flags=re.MULTILINE)
    assert match, stderr
    return shlex.split(match.group(1))


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_search_stops_cleanly_and_prints_the_exact_resume_command(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    run = tmp_path / "run dir"  # a space: the printed command must quote it
    args = ["search", *FAST, "--iterations", str(BUDGET), "--out", str(run), "--no-progress"]
    returncode, stderr = _interrupt(args, run / EVENTS_FILE, sig)
    assert returncode == code, stderr
    assert f"run folder: {run} (new, {BUDGET} iterations)" in stderr
    assert f"interrupted by {sig.name}" in stderr and "Traceback" not in stderr
    command = _resume_command(stderr)
    assert command == ["nasagent", "search", "--resume", str(run)]
    summary = read_json(run / SUMMARY_FILE)
    assert summary["finished"] is False and "interrupted" in summary["stopped_reason"]
    logged = [e.iteration for e in read_events(run) if e.phase == "search"]
    assert logged == list(range(1, len(logged) + 1)) and len(logged) < BUDGET
    resumed = subprocess.run(_cli(*command[1:], "--iterations", str(len(logged) + 2),
                                  "--no-progress"), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after iteration {len(logged)}" in resumed.stderr
    assert len([e for e in read_events(run) if e.phase == "search"]) == len(logged) + 2


@pytest.mark.timeout(180)
def test_compare_stops_on_sigterm_and_prints_the_compare_resume_command(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    returncode, stderr = _interrupt(
        ["compare", *FAST, "--iterations", str(BUDGET), "--seeds", "1", "--out", str(out),
         "--no-progress"], out / "llm" / "seed-0" / EVENTS_FILE, signal.SIGTERM)
    assert returncode == 143, stderr
    assert "llm seed 0: run folder:" in stderr
    assert _resume_command(stderr) == ["nasagent", "compare", "--out", str(out)]
    assert (out / "compare.toml").exists() and "Traceback" not in stderr


def test_progress_continues_its_counters_after_a_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    config = scripted_config(iterations=6, proxy="params")
    run_search(config, run, progress=False)
    capsys.readouterr()
    run_search(config.model_copy(update={"iterations": 10}), run, resume=True, progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if "iteration 10/10" in line]
    events = [e for e in read_events(run) if e.phase == "search"]
    valid = sum(e.outcome is Outcome.OK for e in events)
    tokens = sum(e.tokens for e in read_events(run))
    assert lines and lines[-1].startswith("search: iteration 10/10: ")
    assert f"valid {valid}/10" in lines[-1] and f"tokens {tokens}" in lines[-1]
    assert sum(e.outcome is Outcome.OK for e in events[:6]) > 0  # counted before the resume


def test_manual_backend_says_where_its_request_waits(tmp_path: Path) -> None:
    notices: list[str] = []
    backend = ManualBackend(tmp_path / "queue", timeout_s=0.05, poll_interval_s=0.01,
                            notify=notices.append)
    request = LLMRequest(purpose="mutation", messages=(Message(role="user", content="Go."),),
                         params=SamplingParams(model="manual", temperature=0.0), iteration=1)
    with pytest.raises(LLMError):
        asyncio.run(backend.complete(request))
    (posted,) = (tmp_path / "queue" / "requests").glob("*.json")
    (notice,) = notices
    assert str(posted) in notice
    assert str(tmp_path / "queue" / "responses" / posted.stem) + ".json or .txt" in notice
    assert "README.txt" in notice
