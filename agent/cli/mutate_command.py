"""`nasagent mutate`: random Zen-NAS mutations of an architecture string."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import EXIT_INVALID, fail
from nasagent.evaluator.architecture import Architecture
from nasagent.evaluator.codec import decode, encode
from nasagent.evaluator.errors import BlockStringError, UnknownNameError
from nasagent.evaluator.mutation import RandomMutator, TypeWeights
from nasagent.evaluator.search_space import SEARCH_SPACES, spaces_holding

logger = logging.getLogger(__name__)


@app.command("mutate")
def mutate_command(
    arch: Annotated[str, typer.Argument(help="Parent architecture as a Zen-NAS block string.")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many mutations to print.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mutator's RNG.")] = 0,
    search_space: Annotated[str | None, typer.Option(
        "--search-space", help="Search space whose block types may appear; it must hold the "
        "parent's blocks.", show_default="the first of zennas-cifar, zennas-imagenet, all "
        "that holds the parent's blocks",
    )] = None,
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
    mutator = _make_mutator(_parent_space(parent, search_space), seed, type_weights)
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


def _parent_space(parent: Architecture, requested: str | None) -> str:
    """The space children are drawn from: one that holds every block of the parent."""
    if requested is not None and requested not in SEARCH_SPACES:
        raise typer.BadParameter(
            f"unknown search space {requested!r}; valid: {', '.join(SEARCH_SPACES)}",
            param_hint="--search-space",
        )
    holding = spaces_holding(block.op for block in parent.blocks)
    if requested is None or requested in holding:
        return requested or holding[0]
    outside = sorted({b.op for b in parent.blocks} - set(SEARCH_SPACES[requested].ops))
    fail(f"the parent uses {', '.join(outside)}, which {requested} does not hold, so its "
         f"children would leave the parent's space; use --search-space {holding[0]}",
         EXIT_INVALID)


def _make_mutator(search_space: str, seed: int, type_weights: TypeWeights) -> RandomMutator:
    try:
        return RandomMutator(search_space, seed=seed, type_weights=type_weights)
    except UnknownNameError as error:
        raise typer.BadParameter(str(error), param_hint="--search-space") from None


def _format(parent: Architecture, child: Architecture, seed: int, as_json: bool) -> str:
    if not as_json:
        return encode(child)
    return json.dumps({"parent": encode(parent), "child": encode(child), "seed": seed})
