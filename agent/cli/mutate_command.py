"""`nasagent mutate`: random mutations of an architecture, or an LLM's proposals.

`--mutator random` (the default) prints children drawn by the search space's own random
operator (Zen-NAS mutation, NB201's one-edge mutation, ...) and imports
neither the configuration nor the LLM layer. Any other mutator (`llm`, or a plugin's) runs the
proposer the search loop runs, through `nasagent.mutate`: the LLM sees the search's prompt
(budgets, ops, proxy, the parent's score, history and lessons), its reply is parsed as data,
validated and repaired, and each proposal is printed with its outcome, errors and tokens.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import (
    EXIT_INVALID,
    EXIT_USAGE,
    MaxFlopsOption,
    MaxLayersOption,
    MaxMemoryOption,
    MaxParamsOption,
    fail,
)
from nasagent.evaluator.errors import BlockStringError, NasAgentError
from nasagent.evaluator.spaces import SEARCH_SPACES
from nasagent.evaluator.spaces.base import Mutator, SearchSpace, spaces_holding

if TYPE_CHECKING:  # the configuration and the LLM layer load for an LLM mutator only
    from nasagent.agent.config import RunConfig
    from nasagent.agent.mutate import MutationResult

logger = logging.getLogger(__name__)


class TypeWeights(StrEnum):
    """`--type-weights` of the Zen-NAS random mutation (other spaces take the default)."""

    ZENNAS = "zennas"
    UNIFORM = "uniform"

RANDOM = "random"
LLM_PANEL = "LLM mutator (--mutator llm)"


@app.command("mutate")
def mutate_command(
    arch: Annotated[str, typer.Argument(
        help="Parent architecture: a block string, an NB201 cell string, ...")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many mutations to print.")] = 1,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the first proposal; proposal i uses seed + i, and gives the "
        "child nasagent.mutate and POST /v1/mutate give for that seed.",
    )] = 0,
    search_space: Annotated[str | None, typer.Option(
        "--search-space", help="Search space whose elements may appear; it must hold the "
        "parent's.", show_default="the first built-in space (zennas-cifar, zennas-imagenet, "
        "all, nb201-...) that holds the parent's elements",
    )] = None,
    replaces: Annotated[
        int,
        typer.Option("--replaces", min=1,
                     help="Elements to replace per mutation (Zen-NAS blocks: 1 or 2)."),
    ] = 1,
    type_weights: Annotated[
        TypeWeights,
        typer.Option("--type-weights", help="Zen-NAS spaces: zennas, the reference's skewed "
                     "Res type weights, or uniform."),
    ] = TypeWeights.ZENNAS,
    as_json: Annotated[bool, typer.Option("--json", help='JSON lines {"parent", "child", '
                                          '"seed"}; an LLM mutator: {"outcome", "arch", '
                                          '"errors", "tokens", ...}.')] = False,
    mutator: Annotated[str, typer.Option(
        "--mutator", help="random (the space's own), llm, or a plugin's mutator.")] = RANDOM,
    llm: Annotated[str | None, typer.Option(
        help="LLM backend spec: openai:MODEL, azure:DEPLOYMENT, scripted, manual:DIR, "
             "replay:PATH (the key comes from the environment).",
        show_default="the config's llm, else openai:gpt-4o", rich_help_panel=LLM_PANEL,
    )] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML file like `search`'s: budgets, proxy, temperature, repairs, ...",
        rich_help_panel=LLM_PANEL,
    )] = None,
    model: Annotated[str | None, typer.Option(
        help="Model name sent to the endpoint (replaying: the recorded one).",
        show_default="--llm's name", rich_help_panel=LLM_PANEL,
    )] = None,
    base_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible endpoint (vLLM, Ollama, ...).", rich_help_panel=LLM_PANEL,
    )] = None,
    score: Annotated[float | None, typer.Option(
        help="The parent's score, shown to the LLM.", rich_help_panel=LLM_PANEL)] = None,
    history: Annotated[str | None, typer.Option(
        help="Recent proposals shown to the LLM: a JSON list or JSON lines of history entries "
             "(iteration, parent, parent_score, arch, outcome, score, errors); '-': stdin.",
        rich_help_panel=LLM_PANEL,
    )] = None,
    lesson: Annotated[list[str] | None, typer.Option(
        "--lesson", help="A reflection lesson shown to the LLM (repeat for several).",
        rich_help_panel=LLM_PANEL,
    )] = None,
    record: Annotated[Path | None, typer.Option(
        "--record", help="Append every LLM call to DIR/llm_calls.jsonl (replay:DIR serves it "
        "again).", metavar="DIR", rich_help_panel=LLM_PANEL,
    )] = None,
    max_params: MaxParamsOption = None,
    max_flops: MaxFlopsOption = None,
    max_layers: MaxLayersOption = None,
    max_memory: MaxMemoryOption = None,
) -> None:
    """Propose mutations of ARCH: random ones of its search space, or an LLM's proposals.

    Random: N mutations, one canonical architecture string per line: independent children of
    ARCH, proposal i seeded with --seed + i, so each line can be drawn again on its own (the
    Python API and the service give the same child for the same seed).

    An LLM mutator: N proposals, each with its outcome, architecture, errors and tokens.
    Budgets and the rest of the setting come from the flags, then --config, then the
    search space's defaults, as in `search` (with --config, its search space unless
    --search-space is given); nothing is scored.

    Exit code 0 when every proposal is ok, 1 when one is not (or ARCH is invalid), 2 on
    usage errors (a bad flag, config or history file, or a backend without its API key).
    """
    if mutator != RANDOM:
        llm_inputs = {"llm": llm, "model": model, "base_url": base_url, "max_params": max_params,
                      "max_flops": max_flops, "max_layers": max_layers, "max_memory": max_memory}
        _llm_command(arch, mutator, n=n, seed=seed, search_space=search_space,
                     replaces=replaces, as_json=as_json, config=config, score=score,
                     history=history, lessons=lesson or [], record=record, flags=llm_inputs)
        return
    _refuse_llm_flags(llm=llm, model=model, config=config, base_url=base_url, score=score,
                      history=history, lesson=lesson, record=record, max_params=max_params,
                      max_flops=max_flops, max_layers=max_layers, max_memory=max_memory)
    space = _parent_space(arch, search_space)
    parent = _parse_parent(arch, space)
    for proposal_seed in range(seed, seed + n):
        child = _make_mutator(space, proposal_seed, type_weights).mutate(parent, replaces)
        typer.echo(_format(space, parent, child, proposal_seed, as_json))


def _refuse_llm_flags(**given: object) -> None:
    """The random operator takes no LLM inputs: say so rather than ignore them."""
    used = [f"--{name.replace('_', '-')}" for name, value in given.items()
            if value is not None and value != []]
    if used:
        fail(f"only an LLM mutator reads {', '.join(used)}; add --mutator llm")


def _parse_parent(text: str, space: SearchSpace) -> Any:
    try:
        decoded = space.decode(text)
    except BlockStringError as error:
        raise typer.BadParameter(str(error), param_hint="ARCH") from None
    for note in decoded.notes:
        typer.echo(f"note: {note}", err=True)
    return decoded.architecture


def _parent_space(text: str, requested: str | None) -> SearchSpace:
    """The space children are drawn from: one that holds every element of the parent."""
    if requested is not None and requested not in SEARCH_SPACES:
        raise typer.BadParameter(
            f"unknown search space {requested!r}; valid: {', '.join(SEARCH_SPACES)}",
            param_hint="--search-space",
        )
    built_in = [SEARCH_SPACES.get(name) for name in SEARCH_SPACES.builtin_names()]
    holding = spaces_holding(text, built_in if requested is None else [
        SEARCH_SPACES.get(requested), *built_in])
    if requested is not None and requested in holding:
        return SEARCH_SPACES.get(requested)
    if requested is None and holding:
        return SEARCH_SPACES.get(holding[0])
    if not holding:  # no space decodes it: the default space's decoder says why
        _parse_parent(text, SEARCH_SPACES.get(requested or built_in[0].name))
        fail(f"no built-in search space holds every element of {text[:80]!r}", EXIT_INVALID)
    fail(f"the parent holds elements {requested} does not, so its children would leave the "
         f"parent's space; use --search-space {holding[0]}", EXIT_INVALID)


def _make_mutator(space: SearchSpace, seed: int, type_weights: TypeWeights) -> Mutator:
    """The mutator of the proposal seeded `seed`, seeded as `nasagent.mutate` seeds it."""
    problems = space.option_problems({"type_weights": str(type_weights)})
    if problems:
        raise typer.BadParameter("; ".join(problems), param_hint="--type-weights")
    return space.drawn_mutator(random.Random(seed), {"type_weights": str(type_weights)})


def _format(space: SearchSpace, parent: Any, child: Any, seed: int, as_json: bool) -> str:
    if not as_json:
        return space.encode(child)
    return json.dumps({"parent": space.encode(parent), "child": space.encode(child),
                       "seed": seed})


# ---- an LLM mutator --------------------------------------------------------------------------


def _llm_command(
    arch: str, mutator: str, *, n: int, seed: int, search_space: str | None, replaces: int,
    as_json: bool, config: Path | None, score: float | None, history: str | None,
    lessons: list[str], record: Path | None, flags: dict[str, Any],
) -> None:
    """Print N proposals of an LLM mutator; exit 1 unless every one is ok."""
    from nasagent.agent.outcomes import Outcome

    if search_space is None and config is None:  # as the random operator picks it
        search_space = _parent_space(arch, None).name
    settings = _llm_settings(config, {**flags, "mutator": mutator, "seed": seed,
                                      "search_space": search_space})
    entries = _read_history(history)
    results = _propose(arch, settings, n=n, seed=seed, replaces=replaces, score=score,
                       history=entries, lessons=lessons, record=record)
    for offset, result in enumerate(results):
        typer.echo(_proposal_json(arch, seed + offset, result) if as_json
                   else _proposal_lines(result, numbered=n > 1, index=offset))
    if any(result.outcome is not Outcome.OK for result in results):
        raise typer.Exit(EXIT_INVALID)


def _llm_settings(config: Path | None, overrides: dict[str, Any]) -> RunConfig:
    from nasagent.agent.config import load_config

    try:
        return load_config(config, overrides)
    except NasAgentError as error:  # ConfigError: names the key or the flag
        fail(str(error))


def _read_history(source: str | None) -> list[dict[str, Any]]:
    """History entries from a JSON list or JSON lines ('-': stdin); validated by `mutate`."""
    if source is None:
        return []
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"--history: cannot read {source}: {getattr(error, 'strerror', None) or error}")
    try:
        value = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
    except json.JSONDecodeError as error:
        fail(f"--history: {source} is neither a JSON list nor JSON lines: {error}")
    if not all(isinstance(entry, dict) for entry in value):
        fail(f"--history: {source} must hold JSON objects, one per proposal")
    return value


def _propose(
    arch: str, settings: RunConfig, *, n: int, seed: int, replaces: int,
    score: float | None, history: list[dict[str, Any]], lessons: list[str],
    record: Path | None,
) -> list[MutationResult]:
    import asyncio

    from nasagent.agent.mutate import amutate
    from nasagent.agent.runlog import LLM_CALLS_FILE

    calls = None if record is None else record / LLM_CALLS_FILE

    async def proposals() -> list[MutationResult]:
        return [
            await amutate(arch, mutator=settings.mutator, score=score, history=history,
                          lessons=lessons, seed=seed + offset, num_replaces=replaces,
                          config=settings, record=calls)
            for offset in range(n)
        ]

    try:
        return asyncio.run(proposals())
    except BlockStringError as error:
        raise typer.BadParameter(str(error), param_hint="ARCH") from None
    except NasAgentError as error:
        from nasagent.agent.mutate import InvalidParentError

        message = getattr(error, "message", None) or str(error)  # LLMConfigError: no kind
        fail(message, EXIT_INVALID if isinstance(error, InvalidParentError) else EXIT_USAGE)


def _proposal_json(parent: str, seed: int, result: MutationResult) -> str:
    return json.dumps({"parent": parent, "seed": seed, **result.model_dump(mode="json")})


def _proposal_lines(result: MutationResult, *, numbered: bool, index: int) -> str:
    lines = [f"outcome: {result.outcome.value}", f"arch: {result.arch or '-'}"]
    if result.params is not None:
        layers = "" if result.layers is None else f", {result.layers} layers"
        lines.append(f"cost: {result.params:,.0f} params, {result.flops:,.0f} FLOPs{layers}")
    lines.append(f"tokens: {result.tokens} ({result.llm_calls} LLM calls, "
                 f"{result.repairs} repairs)")
    lines += [f"error: {error}" for error in result.errors]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join([f"=== proposal {index} ===", *lines] if numbered else lines)
