"""Random cells and one-edge mutations, drawn exactly as NATS-Bench's regularized evolution does.

Both take a seeded `random.Random` and never touch the global RNG. Given a `Random` seeded as
NATS-Bench seeds Python's global RNG, they make the same calls in the same order
(`exps/NATS-algos/regularized_ea.py`: `random_topology_func`, `mutate_topology_func`), so they
return the same cells.

Mutation: pick a node (1, 2 or 3) uniformly, then one of its incoming edges uniformly, then a
new op uniformly among the 4 others (drawn from all 5 until it differs). So an edge's chance
is 1/3 x 1/(edges into its node), see `EDGE_PROBABILITIES`: the single edge into node 1 is
mutated three times as often as each edge into node 3.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType

from nasagent.evaluator.spaces.nb201.cell import EDGES, NODES, OPS, Cell

EDGE_PROBABILITIES: Mapping[tuple[int, int], Fraction] = MappingProxyType({
    (source, target): Fraction(1, NODES - 1) * Fraction(1, target) for source, target in EDGES
})
"""Chance that `mutate` changes the edge (source, target): 1/3, 1/6, 1/6, 1/9, 1/9, 1/9."""


def random_cell(rng: random.Random) -> Cell:
    """A uniformly random cell: one `rng.choice(OPS)` per edge, in string order."""
    return Cell(tuple(rng.choice(OPS) for _ in EDGES))


def mutate(cell: Cell, rng: random.Random) -> Cell:
    """`cell` with the op of one edge replaced by a different op (see the module docstring)."""
    target = rng.randint(0, NODES - 2) + 1
    source = rng.randint(0, target - 1)
    edge = EDGES.index((source, target))
    op = rng.choice(OPS)
    while op == cell.ops[edge]:
        op = rng.choice(OPS)
    return Cell(cell.ops[:edge] + (op,) + cell.ops[edge + 1:])
