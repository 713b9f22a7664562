"""What several commands read from their flags, read the same way everywhere: architectures
(arguments or a file) and validation constraints (search space, budgets)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from pydantic import ValidationError

from nasagent.evaluator.validation import Constraints

STDIN_NAME = "-"


def read_architectures(archs: Iterable[str], file: str | Path | None) -> list[str]:
    """The block strings given as arguments, then those of `file` ('-' = stdin).

    A file holds one block string per line; blank lines and lines starting with `#` are
    skipped, so the files in fixtures/architectures/ can carry comments.

    Raises:
        typer.BadParameter: the file cannot be read.
    """
    return [*archs, *_file_lines(file)]


def _file_lines(file: str | Path | None) -> list[str]:
    if file is None:
        return []
    try:
        text = sys.stdin.read() if str(file) == STDIN_NAME else Path(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {file}: {error}", param_hint="--file") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def constraints_from_flags(**flags: object) -> Constraints:
    """Validation constraints from CLI flags; a budget of None or 0 means no budget.

    Raises:
        typer.BadParameter: a bad value, named by its flag.
    """
    values = {
        name: None if name.startswith("max_") and value in (None, 0) else value
        for name, value in flags.items()
    }
    try:
        return Constraints.model_validate(values)
    except ValidationError as error:
        problems = [_flag_problem(item["loc"], item["msg"]) for item in error.errors()]
        raise typer.BadParameter("; ".join(problems)) from None


def _flag_problem(location: tuple[int | str, ...], message: str) -> str:
    flag = "--" + str(location[0]).replace("_", "-") if location else "flags"
    return f"{flag}: {message.removeprefix('Value error, ')}"
