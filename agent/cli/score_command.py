"""`nasagent score`: score block strings with a zero-cost proxy, one result per input.

With `--json` every input gives one JSON object per line (JSON Lines) with the keys
`input`, `canonical`, `proxy`, `score`, `status`, `seconds`, `seed` and `message`; external
tools rely on those names. An input that does not decode or breaks a rule of the block
registry (channels, chaining, strides) gets status `invalid`, a null score and the reasons,
and the command exits 1 after printing every row. All inputs are scored in one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import EXIT_INVALID, read_architectures
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import PROXIES, ProxyStatus, ScoreResult, ScoreSettings, score
from nasagent.evaluator.validation import Constraints, check_string

Opt = typer.Option


@app.command("score")
def score_command(
    archs: Annotated[list[str] | None, typer.Argument(
        help="Block strings to score (quote them in the shell).", show_default=False,
    )] = None,
    file: Annotated[Path | None, Opt(
        "--file", help="File with one block string per line ('-' reads stdin); "
        "blank lines and lines starting with # are skipped.",
    )] = None,
    proxy: Annotated[str, Opt(help=f"Zero-cost proxy: {PROXIES.describe()}.")] = "gradnorm",
    batch_size: Annotated[int, Opt(min=1, help="Proxy batch size.")] = 64,
    resolution: Annotated[int, Opt(min=1, help="Input resolution.")] = 32,
    num_classes: Annotated[int, Opt(min=1, help="Classes of the linear head.")] = 100,
    seed: Annotated[int, Opt(help="Seed of the proxy protocol.")] = 0,
    repeats: Annotated[int, Opt(min=1, help="Mean over seeds seed .. seed+repeats-1.")] = 1,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    residual: Annotated[bool, Opt(
        "--residual/--no-residual", help="Score the model with residual links (Zen-NAS: no).",
    )] = False,
    as_json: Annotated[bool, Opt("--json", help="Print JSON Lines instead of a table.")] = False,
) -> None:
    """Score architectures with a zero-cost proxy (seeded, reproducible)."""
    settings = _settings(
        proxy, batch_size, resolution, num_classes, seed, repeats, device, residual
    )
    try:
        inputs = read_architectures(archs or [], file)
    except typer.BadParameter as error:
        _fail(str(error.message))
    if not inputs:
        _fail("give block strings as arguments or with --file PATH")
    rows = _score_all(inputs, settings)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        _print_table(rows)
    if any(row["status"] == ProxyStatus.INVALID for row in rows):
        raise typer.Exit(EXIT_INVALID)


def score_row(text: str, settings: ScoreSettings) -> dict[str, Any]:
    """Check and score one input; the JSON object `nasagent score --json` prints for it.

    The rules are those of every registered block (search space `all`), without budgets.
    """
    report = check_string(text, Constraints(
        search_space="all", resolution=settings.resolution, num_classes=settings.num_classes,
    ))
    arch = report.architecture
    if not report.valid or arch is None:
        return _row(text, report.canonical, settings.proxy, None, ProxyStatus.INVALID, 0.0,
                    settings.seed, "; ".join(report.error_lines()))
    result: ScoreResult = score(arch, settings)
    return _row(text, str(arch), result.proxy, result.score, result.status, result.seconds,
                result.seed, result.message)


def _row(
    text: str, canonical: str | None, proxy: str, value: float | None, status: ProxyStatus,
    seconds: float, seed: int, message: str,
) -> dict[str, Any]:
    return {
        "input": text, "canonical": canonical, "proxy": proxy, "score": value,
        "status": str(status), "seconds": round(seconds, 6), "seed": seed, "message": message,
    }


def _settings(
    proxy: str, batch_size: int, resolution: int, num_classes: int, seed: int, repeats: int,
    device: str, residual: bool,
) -> ScoreSettings:
    try:
        PROXIES.get(proxy)  # a plugin's proxy is loaded here; the error lists every name
    except NasAgentError as error:
        _fail(str(error))
    if device not in ("auto", "cpu", "cuda"):
        _fail(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return ScoreSettings.model_validate({
        "proxy": proxy, "batch_size": batch_size, "resolution": resolution,
        "num_classes": num_classes, "seed": seed, "repeats": repeats, "device": device,
        "residual": residual,
    })


def _score_all(inputs: list[str], settings: ScoreSettings) -> list[dict[str, Any]]:
    try:
        return [score_row(text, settings) for text in inputs]
    except NasAgentError as error:  # configuration problems, e.g. cuda on a CPU machine
        _fail(str(error))


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table("#")
    table.add_column("architecture", overflow="fold")
    for name in ("proxy", "score", "status", "seconds", "message"):
        table.add_column(name)
    for index, row in enumerate(rows):
        value = "-" if row["score"] is None else f"{row['score']:.6g}"
        table.add_row(
            str(index), row["canonical"] or row["input"], row["proxy"], value, row["status"],
            f"{row['seconds']:.3f}", row["message"],
        )
    Console().print(table)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
