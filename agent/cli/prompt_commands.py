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

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("prompt")
def prompt_command(
    arch: Annotated[str, typer.Argument(help="The parent block string.")],
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
    prompt_version: Annotated[
        int, typer.Option(help=f"Prompt version ({', '.join(map(str, PROMPT_VERSIONS))}).")
    ] = LATEST_PROMPT_VERSION,
    structure: Annotated[str, typer.Option(help="Structural rules: none or zennas.")] = "none",
    as_json: JsonOption = False,
) -> None:
    """Print the mutation prompt the model would receive for ARCH."""
    constraints = constraints_from_flags(
        search_space=search_space, max_params=max_params, max_flops=max_flops,
        max_layers=max_layers, num_classes=num_classes, resolution=resolution,
        structure=structure,
    )
    require_valid(arch, constraints, "the parent ARCH")
    if prompt_version not in PROMPT_VERSIONS:
        valid = ", ".join(map(str, PROMPT_VERSIONS))
        raise typer.BadParameter(f"prompt version {prompt_version} is not shipped; valid: {valid}")
    from nasagent.agent.prompting import PromptSettings, mutation_messages

    try:
        settings = PromptSettings(
            constraints=constraints, proxy=proxy, include_proxy_source=include_proxy_source,
            version=prompt_version,
        )
        messages = mutation_messages(arch, score, settings)
    except (NasAgentError, ValueError) as error:
        fail(str(error))
    typer.echo(json.dumps(messages, indent=2, ensure_ascii=False) if as_json else _show(messages))


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
    verdict = judge_reply(_read_reply(file), finish_reason, parent=parent, constraints=constraints)
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
