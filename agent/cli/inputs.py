"""Reading architectures given on the command line or in a file, the same way everywhere."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import typer

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
