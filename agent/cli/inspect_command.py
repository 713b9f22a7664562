"""`nasagent inspect`: validate and cost block strings, as a table or as JSON Lines.

The JSON field names (`input`, `valid`, `canonical`, `errors`, `params`, `flops`, `layers`)
are read by external tools; keep them stable.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Annotated, Any

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    MaxFlopsOption,
    MaxLayersOption,
    MaxParamsOption,
    NumClassesOption,
    ResolutionOption,
    SearchSpaceOption,
    constraints_from_flags,
    read_architectures,
)
from nasagent.agent.outcomes import whole
from nasagent.evaluator.validation import Report, check_string

logger = logging.getLogger(__name__)


class Counting(StrEnum):
    """`--counting`: how a Zen-NAS space counts params and FLOPs (others refuse zennas)."""

    EXACT = "exact"
    ZENNAS = "zennas"

EXIT_OK, EXIT_INVALID = 0, 1


@app.command("inspect")
def inspect_command(
    archs: Annotated[
        list[str] | None, typer.Argument(help="Block strings to check.", show_default=False)
    ] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", help="One block string per line, # comments skipped; '-': stdin."),
    ] = None,
    search_space: SearchSpaceOption = None,
    num_classes: NumClassesOption = None,
    resolution: ResolutionOption = None,
    counting: Annotated[Counting, typer.Option(
        help="Counting convention of the Zen-NAS spaces.")] = Counting.EXACT,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    structure: Annotated[str, typer.Option(
        help="Structural rules: none, or zennas in a Zen-NAS space (stem, 1x1 head with "
        "stride 1, the space seed's strides).",
    )] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per input.")] = False,
) -> None:
    """Check block strings against the search space and budgets; print costs and every error.

    Resolution, classes and budgets default to the search space's (as in `search`); a
    budget of 0 or none turns it off.

    Exit code 0 when every input is valid, 1 when any is invalid, 2 on usage errors.
    """
    constraints = constraints_from_flags(
        search_space=search_space, num_classes=num_classes, resolution=resolution,
        counting=counting, max_params=max_params, max_flops=max_flops, max_layers=max_layers,
        structure=structure,
    )
    inputs = read_architectures(archs or [], file)
    if not inputs:
        raise typer.BadParameter(
            "give at least one block string, or --file PATH ('-' for stdin)", param_hint="ARCHS"
        )
    reports = [check_string(text, constraints) for text in inputs]
    if as_json:
        for report in reports:
            typer.echo(json.dumps(report_json(report)))
    else:
        _print_table(reports)
    raise typer.Exit(EXIT_OK if all(report.valid for report in reports) else EXIT_INVALID)


def report_json(report: Report) -> dict[str, Any]:
    """The JSON Lines record of one report, with the field names external tools rely on."""
    cost = report.cost
    return {
        "input": report.input,
        "valid": report.valid,
        "canonical": report.canonical,
        "errors": [
            {"block": error.block, "field": error.field, "message": error.message}
            for error in report.errors
        ],
        "params": None if cost is None else whole(cost.params),
        "flops": None if cost is None else whole(cost.flops),
        "layers": None if cost is None else cost.layers,
    }


def _print_table(reports: list[Report]) -> None:
    from rich.console import Console  # rich loads for the table only, not for --json
    from rich.table import Table

    console = Console(soft_wrap=False)
    table = Table(show_lines=True)
    for column in ("#", "valid", "params", "FLOPs", "layers"):
        table.add_column(column, justify="left" if column == "valid" else "right")
    table.add_column("architecture / problems", overflow="fold")
    for number, report in enumerate(reports):
        table.add_row(str(number), *_row(report))
    console.print(table)


def _row(report: Report) -> tuple[str, str, str, str, str]:
    cost = report.cost
    params, flops, layers = (
        ("-", "-", "-") if cost is None
        else (f"{cost.params:,.0f}", f"{cost.flops:,.0f}",
              "-" if cost.layers is None else str(cost.layers))
    )
    lines = [report.canonical or report.input]
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"error: {line}" for line in report.error_lines()]
    from rich.markup import escape

    verdict = "[green]yes[/green]" if report.valid else "[red]no[/red]"
    # Inputs and messages may hold '[', which rich would otherwise read as markup.
    return verdict, params, flops, layers, escape("\n".join(lines))
