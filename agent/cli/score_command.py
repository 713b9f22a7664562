"""`nasagent score`: score architectures with a zero-cost proxy, one result per input.

With `--json` every input gives one JSON object per line (JSON Lines) with the keys
`input`, `canonical`, `proxy`, `score`, `status`, `seconds`, `seed`, `message` and `inputs`
(what the proxy read: `real:SPEC` for `--proxy-data`, `gaussian`, `ones`, `none`, or a
combined proxy's members' inputs); external tools rely on those names. An input that does
not decode or breaks a rule of its search space (channels, chaining, strides, ...) gets
status `invalid`, a null score and the reasons; any scoring that did not end `ok` makes the
command exit 1, after every row is printed. An input whose estimated memory to score is over
the cap (`--max-memory`, evaluator.memory) is refused before anything is scored: one `error:`
line naming it, exit 2. All inputs are scored in one process. Without `--search-space` each
input is read in the first built-in space that holds it (every Zen-NAS block first, then
NB201, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    EXIT_INVALID,
    CombinedMembersOption,
    CombinedReferenceOption,
    MaxMemoryOption,
    ProxyDataOption,
    memory_cap_flag,
    read_architectures,
)
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import (
    PROXIES,
    ProxyStatus,
    ScoreResult,
    ScoreSettings,
    inputs_used,
    prepare_settings,
    score,
)
from nasagent.evaluator.spaces import SEARCH_SPACES
from nasagent.evaluator.spaces.base import spaces_holding
from nasagent.evaluator.validation import Constraints, Report, check_string

SHOWN_INPUT = 60
"""Characters of an input a message shows."""
NO_CAP = "none"
FIRST_SPACES = ("all",)
"""Where an input is looked for first when no --search-space is given: every Zen-NAS block."""

Opt = typer.Option


@app.command("score")
def score_command(
    archs: Annotated[list[str] | None, typer.Argument(
        help="Architecture strings to score (quote them in the shell).", show_default=False,
    )] = None,
    file: Annotated[Path | None, Opt(
        "--file", help="File with one architecture string per line ('-' reads stdin); "
        "blank lines and lines starting with # are skipped.",
    )] = None,
    search_space: Annotated[str | None, Opt(
        help="Search space of the inputs.", show_default="per input, the first built-in space "
        "that holds it (all Zen-NAS blocks first)",
    )] = None,
    proxy: Annotated[str, Opt(help=f"Zero-cost proxy: {PROXIES.describe()}.")] = "gradnorm",
    batch_size: Annotated[int, Opt(min=1, help="Proxy batch size.")] = 64,
    resolution: Annotated[int | None, Opt(
        min=1, help="Input resolution.", show_default="the search space's (32 for CIFAR)")] = None,
    num_classes: Annotated[int | None, Opt(
        min=1, help="Classes of the linear head.", show_default="the search space's")] = None,
    seed: Annotated[int, Opt(help="Seed of the proxy protocol.")] = 0,
    repeats: Annotated[int, Opt(min=1, help="Mean over seeds seed .. seed+repeats-1.")] = 1,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    residual: Annotated[bool, Opt(
        "--residual/--no-residual", help="Score the model with residual links (Zen-NAS: no).",
    )] = False,
    max_memory: MaxMemoryOption = None,
    proxy_data: ProxyDataOption = None,
    combined_members: CombinedMembersOption = None,
    combined_reference: CombinedReferenceOption = None,
    as_json: Annotated[bool, Opt("--json", help="Print JSON Lines instead of a table.")] = False,
) -> None:
    """Score architectures with a zero-cost proxy (seeded, reproducible).

    Exit code 0 when every input scored, 1 when any did not (invalid, failed, non-finite),
    2 on usage errors and on an input over the memory cap (then nothing is scored).
    """
    values = _values(proxy, batch_size, resolution, num_classes, seed, repeats, device, residual)
    values["max_memory"] = _cap_value(memory_cap_flag(max_memory))
    values["proxy_data"] = proxy_data
    values["combination"] = _combination(combined_members, combined_reference)
    try:
        inputs = read_architectures(archs or [], file)
    except typer.BadParameter as error:
        _fail(str(error.message))
    if not inputs:
        _fail("give architecture strings as arguments or with --file PATH")
    rows = _score_all(inputs, values, search_space)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        _print_table(rows)
    if any(row["status"] != ProxyStatus.OK for row in rows):
        raise typer.Exit(EXIT_INVALID)


def checked_input(text: str, settings: ScoreSettings) -> Report:
    """One input checked against the rules of the settings' search space, without budgets."""
    return check_string(text, Constraints(
        search_space=settings.search_space, resolution=settings.resolution,
        num_classes=settings.num_classes,
    ).unbudgeted())


def over_memory_cap(
    jobs: Sequence[tuple[str, ScoreSettings]], name: Callable[[int, str], str]
) -> list[tuple[int, str]]:
    """(index, sentence) of every valid input whose estimated memory to score is over its
    settings' cap; `name(index, text)` names the input in the sentence. Nothing is built."""
    refused = []
    for index, (text, settings) in enumerate(jobs):
        report = checked_input(text, settings)
        if report.valid:
            refusal = settings.memory_refusal(report.architecture, what=name(index, text))
            if refusal is not None:
                refused.append((index, refusal))
    return refused


def input_name(index: int, text: str) -> str:
    """How the CLI names input `index` in a message: its number and (shortened) string."""
    shown = text if len(text) <= SHOWN_INPUT else text[:SHOWN_INPUT - 3] + "..."
    return f"input {index + 1} ({shown})"


def score_row(
    text: str, settings: ScoreSettings,
    scorer: Callable[[Any, ScoreSettings], ScoreResult] | None = None,
) -> dict[str, Any]:
    """Check and score one input; the JSON object `nasagent score --json` prints for it.

    The rules are those of the settings' search space, without budgets; `scorer` scores a
    valid architecture (the service's scores in worker processes).
    """
    report = checked_input(text, settings)
    arch = report.architecture
    if not report.valid or arch is None:
        return _row(text, report.canonical, settings.proxy, None, ProxyStatus.INVALID, 0.0,
                    settings.seed, "; ".join(report.error_lines()))
    result = (scorer or score)(arch, settings)
    return _row(text, report.canonical, result.proxy, result.score, result.status,
                result.seconds, result.seed, result.message, inputs_used(settings))


def _row(
    text: str, canonical: str | None, proxy: str, value: float | None, status: ProxyStatus,
    seconds: float, seed: int, message: str, inputs: str = "-",
) -> dict[str, Any]:
    return {
        "input": text, "canonical": canonical, "proxy": proxy, "score": value,
        "status": str(status), "seconds": round(seconds, 6), "seed": seed, "message": message,
        "inputs": inputs,
    }


def _combination(members: str | None, reference: int | None) -> dict[str, Any]:
    given: dict[str, Any] = {"reference": reference} if reference is not None else {}
    if members is not None:
        given["members"] = tuple(part.strip() for part in members.split(",") if part.strip())
    return given


def _values(
    proxy: str, batch_size: int, resolution: int | None, num_classes: int | None, seed: int,
    repeats: int, device: str, residual: bool,
) -> dict[str, Any]:
    try:
        PROXIES.get(proxy)  # a plugin's proxy is loaded here; the error lists every name
    except NasAgentError as error:
        _fail(str(error))
    if device not in ("auto", "cpu", "cuda"):
        _fail(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return {
        "proxy": proxy, "batch_size": batch_size, "resolution": resolution,
        "num_classes": num_classes, "seed": seed, "repeats": repeats, "device": device,
        "residual": residual,
    }


def settings_in(space: str, values: dict[str, Any]) -> ScoreSettings:
    """Proxy settings for inputs of `space`: resolution and classes default to the space's.

    Raises:
        NasAgentError: an unknown space; ValueError: settings the space cannot honour.
    """
    defaults = SEARCH_SPACES.get(space).defaults
    task = {"resolution": defaults.resolution, "num_classes": defaults.num_classes}
    given = {key: value for key, value in values.items() if value is not None}
    return ScoreSettings.model_validate({**task, **given, "search_space": space})


def _space_of(text: str, requested: str | None) -> str:
    if requested is not None:
        return requested
    names = [*FIRST_SPACES, *(n for n in SEARCH_SPACES.builtin_names() if n not in FIRST_SPACES)]
    holding = spaces_holding(text, [SEARCH_SPACES.get(name) for name in names])
    return holding[0] if holding else FIRST_SPACES[0]


def _score_all(
    inputs: list[str], values: dict[str, Any], search_space: str | None
) -> list[dict[str, Any]]:
    try:
        spaces = {text: _space_of(text, search_space) for text in inputs}
        plain = {space: settings_in(space, values) for space in set(spaces.values())}
        _refuse_over_cap([(text, plain[spaces[text]]) for text in inputs])
        prepared = {space: prepare_settings(settings) for space, settings in plain.items()}
        return [score_row(text, prepared[spaces[text]]) for text in inputs]
    except ValidationError as error:
        _fail("; ".join(f"--{'-'.join(str(e['loc'][0]).split('_')) if e['loc'] else 'flags'}: "
                        f"{str(e['msg']).removeprefix('Value error, ')}" for e in error.errors()))
    except NasAgentError as error:  # configuration problems, e.g. cuda on a CPU machine
        _fail(str(error))


def _refuse_over_cap(jobs: list[tuple[str, ScoreSettings]]) -> None:
    refused = over_memory_cap(jobs, input_name)
    if refused:
        others = [str(index + 1) for index, _ in refused[1:]]
        more = f"; inputs {', '.join(others)} are over the cap too" if others else ""
        _fail(f"{refused[0][1]}{more}; nothing was scored")


def _cap_value(cap: float | None) -> float | str:
    return NO_CAP if cap is None else cap  # settings_in drops None values as "not given"


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
