"""What the prompt says about an NB201 space, generated from the code that checks answers.

Every statement is true of the network `builder` makes and the cost `cost` counts: the
per-edge costs are computed from `nats_cost`, not written by hand. Under the `neutral` naming
every op name (in the element list, the example and the cost lines) is written in neutral
names and the benchmark is not named, so that a model cannot recall its published results;
the descriptions of what each op computes are kept. Nothing here knows an accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasagent.evaluator.spaces.base import (
    DEFAULT_INIT,
    REAL_DATA,
    STANDARD_NAMING,
    PromptFacts,
    WorkedExample,
)
from nasagent.evaluator.spaces.nb201.cell import (
    EDGES,
    OP_DESCRIPTIONS,
    OPS,
    TEMPLATE,
    Cell,
    encode,
    naming,
)
from nasagent.evaluator.spaces.nb201.cost import nats_cost

if TYPE_CHECKING:
    from nasagent.evaluator.spaces.nb201.space import Nb201Space
    from nasagent.evaluator.validation import Constraints

CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
EMPTY = Cell(("none",) * len(EDGES))


def prompt_facts(
    space: Nb201Space, constraints: Constraints, names: str, options: Mapping[str, Any]
) -> PromptFacts:
    """Everything the generic prompt states about an NB201 space, in the naming `names`
    (`options`: the run's `proxy` and `proxy_data`, for the scoring note)."""
    scheme = naming(names)
    return PromptFacts(
        title=space.name,
        description=_description(space, names),
        answer_noun="cell string",
        answer_scope="all 6 edges of the cell",
        format=_format(constraints, names),
        elements_title="Operations",
        elements_intro="Every edge holds one of these operations, spelled exactly as written "
                       "here:",
        elements=tuple((scheme.spell(op), OP_DESCRIPTIONS[op]) for op in OPS),
        rules=_rules(names),
        budget_basis=f"counted as {_benchmark(names)} counts them: the parameters of every "
                     "convolution, BatchNorm and the classifier; per image, the "
                     "multiply-accumulates of every convolution and the classifier",
        cost_model=_cost_model(constraints, names),
        iteration_rule=(
            "Your answer may change any number of edges: the validator checks only the format "
            "and the budgets, not how far your answer is from the parent, so choosing a whole "
            f"new cell is allowed. The random mutation it competes with ({_benchmark(names)}'s "
            "regularized evolution) changes the operation of one edge per proposal; small "
            "changes tell you what caused a score change."
        ),
        search_notes=(_scoring_note(space, str(options.get("proxy", "gradnorm")),
                                    options.get("proxy_data")),),
        example=_example(space, names),
    )


def _benchmark(names: str) -> str:
    """The benchmark by name, except under a naming that hides it."""
    return "NATS-Bench" if names == STANDARD_NAMING else "the benchmark"


def _description(space: Nb201Space, names: str) -> str:
    task = f"{space.task_name} ({space.defaults.num_classes} classes, " \
           f"{space.defaults.resolution}x{space.defaults.resolution} images)"
    if names != STANDARD_NAMING:  # the benchmark is not named: its results are public
        return (f"A cell-based search space of {5 ** len(EDGES):,} cells for {task}; the "
                f"operations have neutral names.")
    return (f"NAS-Bench-201 (the NATS-Bench topology search space): {5 ** len(EDGES):,} cells "
            f"for {task}.")


def _format(constraints: Constraints, names: str) -> tuple[str, ...]:
    scheme = naming(names)
    op = scheme.spell("nor_conv_3x3")
    return (
        "An architecture is one cell, written as a cell string: "
        f"`{TEMPLATE}`. The cell is a directed acyclic graph of 4 nodes: node 0 is the cell's "
        "input and node 3 its output; each node i = 1, 2, 3 is the sum of one operation "
        "applied to every earlier node j < i, so the cell has 6 edges. The string has one "
        "group per node i, groups joined by '+', each listing node i's incoming edges as "
        f"`op~j` for j = 0 .. i-1 in that order, between pipes (`|{op}~0|` is the edge from "
        "node 0 to node 1 holding that operation).",
        f"The network: a 3x3 convolution stem with {CHANNELS[0]} channels and BatchNorm; three "
        f"stages of {CELLS_PER_STAGE} copies of the cell at {', '.join(map(str, CHANNELS))} "
        "channels, with a ResNet basic block between stages that halves the resolution (two "
        "ReLU-conv-BN 3x3 convolutions, the first with stride 2, plus a 2x2 average-pool and "
        "1x1 convolution shortcut); then BatchNorm and ReLU, global average pooling and a "
        f"linear classifier with {constraints.num_classes} outputs. Every cell of the network is "
        "the same cell: your answer chooses that one cell.",
    )


def _rules(names: str) -> tuple[str, ...]:
    scheme = naming(names)
    valid = ", ".join(scheme.valid)
    return (
        "Exactly 3 groups, for nodes 1, 2 and 3, joined by '+'.",
        "Group i holds exactly i edges between pipes, `op~0` to `op~(i-1)` in that order; the "
        "number after `~` is the node the edge comes from.",
        f"Every edge holds one of the 5 operations: {valid}.",
        f"Any such cell is valid (all 15,625 of them); a cell in which `{scheme.spell('none')}` "
        "edges cut every path from node 0 to node 3 outputs zeros.",
    )


def _cost_model(constraints: Constraints, names: str) -> tuple[str, ...]:
    """The fixed cost of the network and what each operation adds on one edge (of all 15
    copies of the cell): exact, since every edge of a cell maps its channels to themselves at
    the same resolution."""
    scheme = naming(names)
    base = nats_cost(EMPTY, constraints.num_classes, constraints.resolution)
    lines = [
        f"With every edge `{scheme.spell('none')}` the network has {base.params:,} parameters "
        f"and {base.flops:,} FLOPs per image (stem, the two reduction blocks, the final "
        f"BatchNorm and the classifier). Each edge then adds, over all "
        f"{len(CHANNELS) * CELLS_PER_STAGE} copies of the cell:",
    ]
    for op in OPS:
        extra = _edge_cost(op, constraints)
        lines.append(f"- {scheme.spell(op)}: {extra[0]:,} parameters, {extra[1]:,} FLOPs")
    lines.append("A cell's cost is that base plus the sum over its 6 edges.")
    return tuple(lines)


def _edge_cost(op: str, constraints: Constraints) -> tuple[int, int]:
    base = nats_cost(EMPTY, constraints.num_classes, constraints.resolution)
    one = nats_cost(Cell((op,) + EMPTY.ops[1:]), constraints.num_classes,
                    constraints.resolution)
    return one.params - base.params, one.flops - base.flops


def _scoring_note(space: Nb201Space, proxy: str, proxy_data: str | None) -> str:
    """What the proxy reads, true of its protocol on this space and of the run's data."""
    from nasagent.evaluator.proxies import PROXIES

    inputs = PROXIES.get(proxy).inputs if proxy in PROXIES else "batch"
    protocol = space.proxy_protocol(proxy)
    init = ("initialised at random (PyTorch's default initialisation)"
            if protocol.init == DEFAULT_INIT else "with random Gaussian weights")
    real = proxy_data is not None and protocol.data == REAL_DATA
    what = {
        "none": "The proxy counts the network described above",
        "gaussian": f"The proxy scores the network described above, {init}, on one batch of "
                    "random Gaussian images",
        "ones": f"The proxy scores the network described above, {init}, with every weight made "
                "positive and one all-ones image as input",
        "members": "The proxy combines several proxies' scores of the network described "
                   "above, each computed as its own protocol says",
    }.get(inputs, f"The proxy scores the network described above, {init}, on " + (
        "one batch of real training images with their labels" if real else
        "one batch of random Gaussian images with random labels"))
    return f"{what}; its score is not the network's accuracy."


def _example(space: Nb201Space, names: str) -> WorkedExample:
    """The seed with the op of its first edge (node 0 -> node 1) changed to a 3x3 conv."""
    seed = space.decode(space.defaults.seed_arch).architecture
    scheme = naming(names)
    new = "nor_conv_3x3" if seed.ops[0] != "nor_conv_3x3" else "nor_conv_1x1"
    child = Cell((new, *seed.ops[1:]))
    return WorkedExample(
        parent=encode(seed), answer=encode(child), parent_name="seed cell",
        change=(f"changes the operation on the edge from node 0 to node 1 "
                f"(`{scheme.spell(seed.ops[0])}~0` in the first group) to {scheme.spell(new)}"),
        rationale="The other five edges are copied unchanged, and the score is null because the "
                  "parent has no score to estimate from.",
    )
