"""What several commands read from their flags, read the same way everywhere: architectures
(arguments or a file), the task and budgets (search space defaults, 0 or "none" = no
budget), and how a refused input is reported (one `error:` line and an exit code)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from nasagent.agent.task_defaults import ARCH_BUDGET_KEYS, NO_BUDGET, parse_budget, space_defaults
from nasagent.evaluator.combined import DEFAULT_MEMBERS, DEFAULT_REFERENCE, MIN_FINITE
from nasagent.evaluator.spaces import SEARCH_SPACES
from nasagent.evaluator.spaces.base import SpaceDefaults
from nasagent.evaluator.validation import Constraints, Report, check_string

STDIN_NAME = "-"
EXIT_INVALID = 1
"""An input architecture (or parent) that is not valid: the command could not do its job."""
EXIT_USAGE = 2
"""A flag, file or configuration that cannot be used; nothing was run."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one `error:` line on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def space_default_text(key: str) -> str:
    """What `--help` shows as the default of a key each search space sets (SpaceDefaults)."""
    return "per search space: " + ", ".join(
        f"{name} {_shown(getattr(SEARCH_SPACES.get(name).defaults, key))}"
        for name in SEARCH_SPACES.builtin_names()  # a plugin scan (and import) costs start-up
    )


def _shown(value: object) -> str:
    if value is None:
        return NO_BUDGET
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:g}"
    return str(value)


def _space_option(help_text: str, key: str, metavar: str) -> Any:
    return typer.Option(
        help=help_text, show_default=space_default_text(key), metavar=metavar
    )


BUDGET_METAVAR = "<number|none>"
MaxParamsOption = Annotated[str | None, _space_option(
    "Parameter budget, e.g. 1e6 (0 or none: no budget).", "max_params", BUDGET_METAVAR)]
MaxFlopsOption = Annotated[str | None, _space_option(
    "FLOPs-per-image budget at the resolution, e.g. 400e6 (0 or none: no budget).",
    "max_flops", BUDGET_METAVAR)]
MaxLayersOption = Annotated[str | None, _space_option(
    "Layer budget, the sum of sub_layers (0 or none: no budget).", "max_layers", BUDGET_METAVAR)]
ResolutionOption = Annotated[int | None, _space_option(
    "Input height and width in pixels.", "resolution", "<int>")]
NumClassesOption = Annotated[int | None, _space_option(
    "Outputs of the linear head.", "num_classes", "<int>")]


def budget_option(
    help_text: str, metavar: str = BUDGET_METAVAR, off: str = "no budget", note: str = ""
) -> Any:
    """A flag read like the budgets (0 or "none": `off`); the configuration parses it
    (agent.config.parse_budget), so it reads the same in a flag, in TOML and on resume."""
    return typer.Option(help=f"{help_text} ({note}0 or none: {off}).", metavar=metavar,
                        show_default="none")


MaxCostOption = Annotated[str | None, budget_option(
    "Stop dispatching once the committed spend would pass USD", "<USD|none>")]
MaxTotalTokensOption = Annotated[str | None, budget_option(
    "Stop dispatching once committed tokens (in + out) would pass N", "<N|none>")]
CompareMaxCostOption = Annotated[str | None, budget_option(
    "USD budget of the whole comparison, shared equally by its LLM runs", "<USD|none>")]
CompareMaxTotalTokensOption = Annotated[str | None, budget_option(
    "Token budget (in + out) of the whole comparison, shared like --max-cost", "<N|none>")]
ScoreTimeoutOption = Annotated[str | None, budget_option(
    "Seconds per scoring before it is score_failed", "<seconds|none>", "no limit",
    "needs workers; ")]
ScoreMemoryOption = Annotated[str | None, budget_option(
    "Resident MB a scoring's worker may reach before the scoring is score_failed and the "
    "worker replaced", "<MB|none>", "no limit",
    "needs workers; on Ray: each task's memory reservation; ")]
ProxyDataOption = Annotated[str | None, typer.Option(
    help="Real proxy inputs: cifar10:DIR, imagefolder:DIR, ... (as --data takes); read by the "
    "proxies whose protocol in the search space takes real data.",
    show_default="none: Gaussian images and random labels")]
CombinedMembersOption = Annotated[str | None, typer.Option(
    help="The combined proxy's members, a comma list.", show_default=",".join(DEFAULT_MEMBERS))]
CombinedReferenceOption = Annotated[int | None, typer.Option(
    min=MIN_FINITE, help="Reference architectures fixing the combined proxy's normalisation.",
    show_default=str(DEFAULT_REFERENCE))]
MaxMemoryOption = Annotated[str | None, typer.Option(
    help="Memory cap in MB: an architecture whose estimated memory to score (or train) at "
    "the batch size is over it is refused before anything is built (auto: half this "
    "machine's memory; 0 or none: no cap).", metavar="<MB|auto|none>",
    show_default="auto")]
SeedArchOption = Annotated[str | None, typer.Option(
    help="Seed architecture block string.", metavar="<str>",
    show_default="the search space's Zen-NAS seed (fixtures/architectures/)")]
SearchSpaceOption = Annotated[str | None, typer.Option(
    help=f"Search space: {', '.join(SEARCH_SPACES.builtin_names())}.", show_default="zennas-cifar")]


def memory_cap_flag(value: str | None) -> float | None:
    """`--max-memory` in MB ("auto" or not given: this machine's default; 0 or none: no cap).

    Exits:
        EXIT_USAGE with one `error:` line: a value that is not a cap.
    """
    from nasagent.evaluator.memory import AUTO, read_cap

    try:
        return read_cap(AUTO if value is None else value)
    except ValueError as error:
        fail(f"--max-memory: {error}")


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
    """Validation constraints from CLI flags, read as `search` reads its configuration.

    A flag left out (None) takes its search space's default (SpaceDefaults); a budget of 0
    or "none" means no budget.

    Exits:
        EXIT_USAGE with one `error:` line naming the flag: an unknown search space, a
        negative, NaN or non-numeric budget, or another bad value.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    space = given.get("search_space", "zennas-cifar")
    if space not in SEARCH_SPACES:
        fail(f"--search-space: unknown search space {space!r}; valid: {', '.join(SEARCH_SPACES)}")
    keys = set(SpaceDefaults.__dataclass_fields__) & set(Constraints.model_fields)
    values = {k: v for k, v in space_defaults(given).items() if k in keys or k in given}
    for key in ARCH_BUDGET_KEYS:
        values[key] = _budget_flag(key, values.get(key))
    try:
        return Constraints.model_validate(values)
    except ValidationError as error:
        fail("; ".join(_flag_problem(item["loc"], item["msg"]) for item in error.errors()))


def _budget_flag(key: str, value: object) -> float | int | None:
    try:
        return parse_budget(value, integer=key == "max_layers")
    except ValueError as error:
        fail(f"--{key.replace('_', '-')}: {error}")


def _flag_problem(location: tuple[int | str, ...], message: str) -> str:
    flag = "--" + str(location[0]).replace("_", "-") if location else "flags"
    return f"{flag}: {message.removeprefix('Value error, ')}"


def require_valid(text: str, constraints: Constraints, what: str) -> Report:
    """The report on `text` as an architecture of `constraints`' search space, budgets aside.

    Exits:
        EXIT_INVALID with one `error:` line when `text` does not decode or breaks a rule.
    """
    unbudgeted = constraints.model_copy(update=dict.fromkeys(ARCH_BUDGET_KEYS))
    report = check_string(text, unbudgeted)
    if not report.valid:
        fail(f"{what} is not a valid architecture: {'; '.join(report.error_lines())}",
             EXIT_INVALID)
    return report
