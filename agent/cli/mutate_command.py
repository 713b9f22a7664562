"""`nasagent mutate`: random Zen-NAS mutations of an architecture string."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.evaluator.architecture import Architecture
from nasagent.evaluator.codec import decode, encode
from nasagent.evaluator.errors import BlockStringError, UnknownNameError
from nasagent.evaluator.mutation import RandomMutator, TypeWeights
from nasagent.evaluator.search_space import DEFAULT_SEARCH_SPACE, SEARCH_SPACES

logger = logging.getLogger(__name__)


@app.command("mutate")
def mutate_command(
    arch: Annotated[str, typer.Argument(help="Parent architecture as a Zen-NAS block string.")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many mutations to print.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mutator's RNG.")] = 0,
    search_space: Annotated[
        str, typer.Option(
            "--search-space",
            help=f"Search space whose block types may appear: {SEARCH_SPACES.describe()}.",
        )
    ] = DEFAULT_SEARCH_SPACE,
    replaces: Annotated[
        int,
        typer.Option("--replaces", min=1, help="Blocks to replace per mutation (Zen-NAS: 1 or 2)."),
    ] = 1,
    type_weights: Annotated[
        TypeWeights,
        typer.Option("--type-weights", help="zennas: the reference's skewed Res type weights."),
    ] = TypeWeights.ZENNAS,
    as_json: Annotated[
        bool, typer.Option("--json", help='JSON lines {"parent", "child", "seed"}.')
    ] = False,
) -> None:
    """Print N random mutations of ARCH, one canonical block string per line.

    The N mutations are independent children of ARCH, drawn in turn from one RNG seeded
    with --seed, so the output is the same for the same arguments.
    """
    parent = _parse_parent(arch)
    mutator = _make_mutator(search_space, seed, type_weights)
    for _ in range(n):
        child = mutator.mutate(parent, replaces)
        typer.echo(_format(parent, child, seed, as_json))


def _parse_parent(text: str) -> Architecture:
    try:
        decoded = decode(text)
    except BlockStringError as error:
        raise typer.BadParameter(str(error), param_hint="ARCH") from None
    for note in decoded.notes:
        typer.echo(f"note: {note}", err=True)
    return decoded.architecture


def _make_mutator(search_space: str, seed: int, type_weights: TypeWeights) -> RandomMutator:
    try:
        return RandomMutator(search_space, seed=seed, type_weights=type_weights)
    except UnknownNameError as error:
        raise typer.BadParameter(str(error), param_hint="--search-space") from None


def _format(parent: Architecture, child: Architecture, seed: int, as_json: bool) -> str:
    if not as_json:
        return encode(child)
    return json.dumps({"parent": encode(parent), "child": encode(child), "seed": seed})
