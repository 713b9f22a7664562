"""A bug in nasagent reaches the user as one `error: internal error` line and exit code 70,
never a traceback; NASAGENT_DEBUG=1 lets it raise for a developer."""

from __future__ import annotations

import sys

import pytest

import nasagent.agent.cli.app as app_module
from nasagent.agent.cli import DEBUG_VARIABLE, EXIT_INTERNAL, main


def _boom() -> None:
    raise KeyError("best_at_budget")


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["nasagent", "report", "runs/x"])
    app_module.import_command(["report"])  # registered on the real app before it is swapped
    monkeypatch.setattr(app_module, "app", _boom)
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)


def test_an_internal_error_is_one_line_and_exit_70(
    buggy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: internal error in nasagent report: KeyError: 'best_at_budget'")


def test_the_debug_variable_lets_it_raise(buggy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(KeyError):
        main()


def test_a_refusal_keeps_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["nasagent", "inspect", "NotABlock(1)"])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 1 and "internal error" not in capsys.readouterr().err
