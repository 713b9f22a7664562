"""`--help` shows every default a flag falls back to, the same way in every command."""

from __future__ import annotations

import typer.main
from typer.core import TyperOption
from typer.testing import CliRunner

from nasagent.agent.cli.app import COMMANDS, app

DIFFERENT_ON_PURPOSE = {"--workers", "--out"}
"""compare shares a pool between runs at once (--jobs), so its workers default differs; each
command names its own output folder."""


def options(command: str) -> dict[str, TyperOption]:
    group = typer.main.get_command(app)
    click_command = group.get_command(None, command)  # type: ignore[attr-defined]
    return {param.opts[0]: param for param in click_command.params
            if isinstance(param, TyperOption)}


def shown_default(option: TyperOption) -> str | None:
    """What `[default: ...]` says, or None when the help shows no default."""
    if isinstance(option.show_default, str):
        return option.show_default
    if option.show_default is False or option.default is None or option.is_flag:
        return None
    return str(option.default)


def test_compare_shows_the_defaults_search_shows() -> None:
    search, compare = options("search"), options("compare")

    shared = sorted((set(search) & set(compare)) - DIFFERENT_ON_PURPOSE)
    assert len(shared) > 20
    for name in shared:
        assert shown_default(compare[name]) == shown_default(search[name]), name
    for name in DIFFERENT_ON_PURPOSE:
        assert shown_default(compare[name]) and shown_default(search[name]), name


def test_an_option_that_falls_back_to_a_value_says_which() -> None:
    """A flag defaulting to None takes a value from somewhere; help must name it, unless
    leaving it out means "nothing" (no file, no score, no endpoint)."""
    means_nothing = {
        "--config", "--file", "--resume", "--seed-list", "--train-best", "--score", "--history",
        "--lesson", "--record", "--base-url", "--llm-seed", "--price-in", "--price-out",
        "--model",
    }
    missing = [f"{command} {name}" for command in COMMANDS for name, option in
               options(command).items()
               if option.default is None and not option.required and not option.is_flag
               and name not in means_nothing
               and not isinstance(option.show_default, str)]
    assert missing == []


def test_help_renders_bracketed_names_instead_of_eating_them() -> None:
    shown = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).stdout

    assert "[arms.NAME] of the config" in shown
