"""`nasagent prompt` and `nasagent check-response`: see and test what the model reads and writes.

Resolution, classes and budgets default to the search space's, as in `search` (zennas-cifar:
at most 1e6 parameters and 18 layers, 100 classes, 32x32 inputs). A budget of 0 or none means
"no budget". An invalid architecture or parent is refused with exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    fail,
    require_valid,
)
from nasagent.agent.outcomes import Outcome
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import PROXIES
from nasagent.prompts import LATEST_PROMPT_VERSION, PROMPT_VERSIONS

if TYPE_CHECKING:  # the prompt and reply modules (jinja2, the reader) load when a command runs
    from nasagent.agent.prompting import Chat
    from nasagent.agent.response import Verdict
    from nasagent.evaluator.spaces.base import SearchSpace

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OpNamesOption = Annotated[str, typer.Option(
    help="How the prompt names the space's elements: standard, or neutral (a benchmark "
    "space's contamination control: op_a, op_b, ...).")]


@app.command("prompt")
def prompt_command(
    arch: Annotated[str, typer.Argument(help="The parent architecture string.")],
    search_space: SearchSpaceOption = None,
    proxy: Annotated[
        str, typer.Option(help=f"Zero-cost proxy: {PROXIES.describe()}.")
    ] = "gradnorm",
    score: Annotated[float | None, typer.Option(help="The parent's score.")] = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    num_classes: NumClassesOption = None,
    resolution: ResolutionOption = None,
    include_proxy_source: Annotated[
        bool, typer.Option(help="Show the proxy's source code to the model.")
    ] = False,
    prompt_version: Annotated[int | None, typer.Option(
        help=f"Prompt version ({', '.join(map(str, PROMPT_VERSIONS))}).",
        show_default="the search space's: 2 for Zen-NAS spaces, else "
        f"{LATEST_PROMPT_VERSION}",
    )] = None,
    structure: Annotated[str, typer.Option(help="Structural rules: none or zennas.")] = "none",
    op_names: OpNamesOption = "standard",
    as_json: JsonOption = False,
) -> None:
    """Print the mutation prompt the model would receive for ARCH."""
    constraints = constraints_from_flags(
        search_space=search_space, max_params=max_params, max_flops=max_flops,
        max_layers=max_layers, num_classes=num_classes, resolution=resolution,
        structure=structure,
    )
    space = constraints.space
    version = space.defaults.prompt_version if prompt_version is None else prompt_version
    if version not in PROMPT_VERSIONS:
        valid = ", ".join(map(str, PROMPT_VERSIONS))
        raise typer.BadParameter(f"prompt version {version} is not shipped; valid: {valid}")
    if version not in space.prompt_versions:
        valid = ", ".join(map(str, space.prompt_versions))
        raise typer.BadParameter(f"prompt version {version} is not offered by search space "
                                 f"{space.name}; valid: {valid}")
    parent = require_valid(arch, constraints, "the parent ARCH").canonical or arch
    from nasagent.agent.prompting import PromptSettings, SearchFacts, mutation_messages

    try:
        settings = PromptSettings(
            constraints=constraints, proxy=proxy, include_proxy_source=include_proxy_source,
            version=version, op_names=_naming(space, op_names),
            search=SearchFacts(init_population=space.defaults.init_population),
        )
        messages = mutation_messages(parent, score, settings)
    except (NasAgentError, ValueError) as error:
        fail(str(error))
    typer.echo(json.dumps(messages, indent=2, ensure_ascii=False) if as_json else _show(messages))


def _naming(space: SearchSpace, op_names: str) -> str:
    """`--op-names`, refused in one line when the search space does not offer it."""
    problems = space.option_problems({"op_names": op_names})
    if problems:
        fail(f"--op-names: {'; '.join(problems)}")
    return op_names


def _show(messages: Chat) -> str:
    return "\n\n".join(f"=== {m['role']} ===\n{m['content']}" for m in messages)


@app.command("check-response")
def check_response_command(
    file: Annotated[str, typer.Argument(help="A file holding one raw reply, or - for stdin.")],
    parent: Annotated[str, typer.Option(help="The parent block string the reply mutates.")],
    search_space: SearchSpaceOption = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    num_classes: NumClassesOption = None,
    resolution: ResolutionOption = None,
    finish_reason: Annotated[
        str, typer.Option(help="The API's finish_reason (length = cut off).")
    ] = "stop",
    op_names: OpNamesOption = "standard",
    as_json: JsonOption = False,
) -> None:
    """Run one raw LLM reply through extraction and validation (no repair).

    Prints the outcome, the canonical architecture, errors and notes; exits 0 when the outcome
    is ok or no_change and 1 otherwise.
    """
    constraints = constraints_from_flags(
        search_space=search_space, max_params=max_params, max_flops=max_flops,
        max_layers=max_layers, num_classes=num_classes, resolution=resolution,
    )
    from nasagent.agent.response import judge_reply

    require_valid(parent, constraints, "--parent")
    naming = _naming(constraints.space, op_names)
    verdict = judge_reply(_read_reply(file), finish_reason, parent=parent,
                          constraints=constraints, naming=naming)
    if as_json:
        typer.echo(json.dumps(verdict_summary(verdict), indent=2, ensure_ascii=False))
    else:
        typer.echo(_lines(verdict))
    if verdict.outcome not in (Outcome.OK, Outcome.NO_CHANGE):
        raise typer.Exit(1)


def verdict_summary(verdict: Verdict) -> dict[str, object]:
    """The verdict as `check-response --json` prints it: arch is the canonical form of the
    proposed architecture whenever it decodes, else null."""
    return {
        "outcome": verdict.outcome.value,
        "arch": verdict.canonical,
        "errors": list(verdict.errors),
        "notes": list(verdict.notes),
    }


def _lines(verdict: Verdict) -> str:
    lines = [f"outcome: {verdict.outcome.value}", f"arch: {verdict.canonical or '-'}"]
    lines += [f"error: {error}" for error in verdict.errors]
    lines += [f"note: {note}" for note in verdict.notes]
    return "\n".join(lines)


def _read_reply(file: str) -> str:
    """The reply text; reading stops just past the size cap (the judge refuses longer ones)."""
    from nasagent.agent.response import MAX_REPLY_CHARS

    try:
        if file == "-":
            return sys.stdin.read(MAX_REPLY_CHARS + 1)
        with Path(file).open(encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_REPLY_CHARS + 1)
    except OSError as error:
        raise typer.BadParameter(f"cannot read {file}: {error.strerror or error}") from None
