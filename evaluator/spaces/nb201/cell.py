"""NAS-Bench-201 cells and their string codec: one decoder, one encoder, two namings.

A cell is a small DAG of 4 nodes. Node 0 is the cell's input and node 3 its output; every node
i > 0 is the sum of one op applied to each earlier node j < i. That makes 6 edges of 5 ops each,
5**6 = 15,625 cells. The wire format is NATS-Bench's: one group per node i = 1, 2, 3, joined by
'+', each listing the node's incoming edges `op~j` for j = 0 .. i-1 between pipes:

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

The decoder reads the string once, left to right, and never evaluates anything. Its only
leniency is whitespace around separators and names, which it removes and says so in a note.
Under the `neutral` naming the ops are written `op_a` .. `op_e`, so that a model reading the
prompt cannot recall published results by op name; the cell decoded is the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The 5 ops, in NATS-Bench's order (the order of its search-space list and of `Cell.code`)."""

OP_DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "none": "outputs zeros: the edge carries nothing, as if it were cut.",
    "skip_connect": "passes its input through unchanged (identity).",
    "nor_conv_1x1": (
        "ReLU, then a 1x1 convolution (stride 1, no bias), then BatchNorm; keeps the channels "
        "and the spatial size."
    ),
    "nor_conv_3x3": (
        "ReLU, then a 3x3 convolution (stride 1, padding 1, no bias), then BatchNorm; keeps the "
        "channels and the spatial size."
    ),
    "avg_pool_3x3": (
        "3x3 average pooling, stride 1, padding 1, averaging only the pixels inside the image "
        "(count_include_pad False); no parameters."
    ),
})
"""What each op computes in the network `builder.build_network` makes, one sentence each."""

NODES = 4
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(source j, target i) of the 6 edges in string order: `op~j` in group i connects j to i."""

TEMPLATE = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
MAX_INPUT_CHARS = 4096
"""Longest cell string accepted; a real one is at most 101 characters."""

_WHITESPACE = " \t\r\n"


class CellError(NasAgentError, ValueError):
    """A `Cell` built from code with the wrong number of edges or an unknown op, or a bad code."""


class CellStringError(BlockStringError):
    """A cell string that cannot be decoded; the message says where and what to write instead.

    Attributes:
        message: the problem, naming the node, the edge and the valid choices.
        position: 0-based character offset of the problem in the input.
        kind: which check failed: `too_large`, `empty`, `groups`, `group`, `edges`, `edge`,
            `index` or `op`.
        node: the node (1, 2 or 3) whose group holds the problem, or None.
        edge: the index in `EDGES` of the edge holding the problem, or None.
    """

    def __init__(
        self, message: str, position: int, kind: str, *, node: int | None = None,
        edge: int | None = None,
    ) -> None:
        super().__init__(message, position)
        self.kind = kind
        self.node = node
        self.edge = edge


@dataclass(frozen=True)
class Naming:
    """How ops are spelled in a cell string.

    Attributes:
        name: the scheme's name (`standard` or `neutral`).
        spellings: the spelling of each op of `OPS`, in the same order.
    """

    name: str
    spellings: tuple[str, ...]

    def spell(self, op: str) -> str:
        return self.spellings[OPS.index(op)]

    def op_of(self, spelling: str) -> str | None:
        """The op written `spelling`, or None when this scheme has no such name."""
        return OPS[self.spellings.index(spelling)] if spelling in self.spellings else None

    @property
    def valid(self) -> tuple[str, ...]:
        """The names a cell string may use under this scheme, sorted."""
        return tuple(sorted(self.spellings))


NAMINGS: Mapping[str, Naming] = MappingProxyType({
    "standard": Naming("standard", OPS),
    # The letters deliberately do not follow NATS-Bench's op order, which a model may know.
    "neutral": Naming("neutral", ("op_c", "op_e", "op_a", "op_d", "op_b")),
})
"""Every naming scheme; the one table both the encoder and the decoder read."""


def naming(names: str) -> Naming:
    """The naming scheme called `names`.

    Raises:
        UnknownNameError: no such scheme; the message lists the valid ones.
    """
    if names not in NAMINGS:
        raise UnknownNameError("naming", names, NAMINGS)
    return NAMINGS[names]


def describe_ops(names: str = "standard") -> tuple[tuple[str, str], ...]:
    """(name, description) of each op as spelled under `names`, sorted by name."""
    scheme = naming(names)
    return tuple(sorted((scheme.spell(op), OP_DESCRIPTIONS[op]) for op in OPS))


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the op on each edge, in string order (see `EDGES`).

    `str(cell)` is the canonical NATS-Bench string, the cell's key everywhere.

    Raises:
        CellError: not 6 ops, or a name that is not in `OPS`.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise CellError(f"a cell has {len(EDGES)} edges, got {len(self.ops)} ops")
        for op in self.ops:
            if op not in OPS:
                raise CellError(f"unknown op {op!r}; valid ops: {', '.join(OPS)}")

    def __str__(self) -> str:
        return encode(self)

    def op(self, source: int, target: int) -> str:
        """The op on the edge from node `source` to node `target`."""
        return self.ops[EDGES.index((source, target))]

    def edges(self) -> Iterator[tuple[int, int, str]]:
        """(source, target, op) of every edge, in string order."""
        for (source, target), op in zip(EDGES, self.ops, strict=True):
            yield source, target, op

    @property
    def code(self) -> int:
        """A dense, stable integer in [0, 15625): the ops' indices in `OPS` read as base-5
        digits, the first edge most significant. Not NATS-Bench's index (see `bench`)."""
        value = 0
        for op in self.ops:
            value = value * len(OPS) + OPS.index(op)
        return value

    @classmethod
    def from_code(cls, code: int) -> Cell:
        """The cell whose `code` is `code`.

        Raises:
            CellError: `code` is not in [0, 15625).
        """
        if not 0 <= code < CELL_COUNT:
            raise CellError(f"cell code {code} is outside [0, {CELL_COUNT})")
        digits = []
        for _ in EDGES:
            code, digit = divmod(code, len(OPS))
            digits.append(OPS[digit])
        return cls(tuple(reversed(digits)))


CELL_COUNT = len(OPS) ** len(EDGES)


@cache
def all_cells() -> tuple[Cell, ...]:
    """Every cell, in `Cell.code` order (15,625)."""
    return tuple(Cell.from_code(code) for code in range(CELL_COUNT))


def encode(cell: Cell, names: str = "standard") -> str:
    """The cell's string, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, with ops spelled by `names`.

    Raises:
        UnknownNameError: `names` is not a naming scheme.
    """
    scheme = naming(names)
    groups = (
        "|".join(f"{scheme.spell(cell.op(source, target))}~{source}" for source in range(target))
        for target in range(1, NODES)
    )
    return "+".join(f"|{group}|" for group in groups)


@dataclass(frozen=True)
class DecodedCell:
    """A decoded cell string and the notes on what the decoder normalised."""

    cell: Cell
    notes: tuple[str, ...] = ()


def decode(text: str, names: str = "standard") -> DecodedCell:
    """Decode a cell string written with the op names of `names`.

    Raises:
        UnknownNameError: `names` is not a naming scheme.
        CellStringError: the string is not a cell; the message names the node, the edge and
            what to write there.
    """
    reader = _Reader(naming(names))
    if len(text) > MAX_INPUT_CHARS:
        raise CellStringError(
            f"cell string has {len(text)} characters; at most {MAX_INPUT_CHARS} are accepted",
            MAX_INPUT_CHARS, "too_large",
        )
    start, body = reader.strip(0, text)
    if not body:
        raise CellStringError(f"cell string is empty; expected {TEMPLATE}", 0, "empty")
    groups = _split(start, body, "+")
    if len(groups) != NODES - 1:
        at = groups[NODES - 1][0] - 1 if len(groups) >= NODES else start + len(body)
        raise CellStringError(
            f"a cell has {NODES - 1} groups joined by '+' (nodes 1, 2, 3), found "
            f"{len(groups)}; write {TEMPLATE}", at, "groups",
        )
    ops = [op for node, group in enumerate(groups, 1) for op in reader.group(node, *group)]
    notes = ("removed whitespace",) if reader.saw_whitespace else ()
    return DecodedCell(Cell(tuple(ops)), notes)


def parse(text: str, names: str = "standard") -> Cell:
    """Decode a cell string into a `Cell` (see `decode`)."""
    return decode(text, names).cell


def _split(start: int, text: str, separator: str) -> list[tuple[int, str]]:
    """The pieces of `text` between separators, each with its offset in the input."""
    pieces = []
    for piece in text.split(separator):
        pieces.append((start, piece))
        start += len(piece) + 1
    return pieces


def _group_template(node: int) -> str:
    return "|" + "|".join(f"op~{source}" for source in range(node)) + "|"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _Reader:
    """Reads groups and edges, remembering whether it removed any whitespace."""

    def __init__(self, scheme: Naming) -> None:
        self.scheme = scheme
        self.saw_whitespace = False

    def strip(self, start: int, text: str) -> tuple[int, str]:
        stripped = text.strip(_WHITESPACE)
        if stripped != text:
            self.saw_whitespace = True
        return start + len(text) - len(text.lstrip(_WHITESPACE)), stripped

    def group(self, node: int, start: int, text: str) -> list[str]:
        start, body = self.strip(start, text)
        expected = _group_template(node)
        if len(body) < 2 or body[0] != "|" or body[-1] != "|":
            raise CellStringError(
                f"node {node}: write its group between pipes as {expected}, found {_shown(body)}",
                start, "group", node=node,
            )
        edges = _split(start + 1, body[1:-1], "|")
        if len(edges) != node:
            plural = "edge" if node == 1 else "edges"
            raise CellStringError(
                f"node {node} needs exactly {node} incoming {plural} ({expected}), found "
                f"{len(edges)}", start, "edges", node=node,
            )
        return [self.edge(node, source, *edge) for source, edge in enumerate(edges)]

    def edge(self, node: int, source: int, start: int, text: str) -> str:
        start, body = self.strip(start, text)
        edge = EDGES.index((source, node))
        where = f"node {node}, edge node {source} -> node {node}"
        name, tilde, index = body.partition("~")
        if not tilde or not name.strip(_WHITESPACE):
            raise CellStringError(
                f"{where}: write op~{source} with op one of {', '.join(self.scheme.valid)}, "
                f"found {_shown(body)}", start, "edge", node=node, edge=edge,
            )
        name_at, name = self.strip(start, name)
        index_at, index = self.strip(start + len(body) - len(index), index)
        if index != str(source):
            raise CellStringError(
                f"{where}: expected '~{source}' (edge {source + 1} of node {node} comes from "
                f"node {source}), found '~{index}'", index_at, "index", node=node, edge=edge,
            )
        return self.op(name, name_at, where, node, edge)

    def op(self, name: str, start: int, where: str, node: int, edge: int) -> str:
        op = self.scheme.op_of(name)
        if op is not None:
            return op
        other = next((s.name for s in NAMINGS.values() if s.op_of(name) is not None), None)
        problem = (
            f"unknown op {_shown(name)}" if other is None
            else f"{name!r} is a {other} op name, but this cell is written in {self.scheme.name} "
            "names"
        )
        raise CellStringError(
            f"{where}: {problem}; valid ops: {', '.join(self.scheme.valid)}", start, "op",
            node=node, edge=edge,
        )
