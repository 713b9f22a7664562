"""NATS-Bench's random sampling and one-edge mutation: the draws, the changes, the frequencies."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from typing import Any

from nasagent.evaluator.spaces.nb201.cell import EDGES, OPS, Cell, parse
from nasagent.evaluator.spaces.nb201.mutation import EDGE_PROBABILITIES, mutate, random_cell

BEST_C10 = parse(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|"
)


class ScriptedRandom(random.Random):
    """Answers randint and choice from a script and records each call."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__(0)
        self.answers = answers
        self.calls: list[str] = []

    def randint(self, a: int, b: int) -> int:
        self.calls.append(f"randint({a}, {b})")
        return int(self.answers.pop(0))

    def choice(self, seq: Any) -> Any:
        self.calls.append(f"choice({len(seq)})")
        return self.answers.pop(0)


def test_mutation_draws_node_then_edge_then_ops_until_one_differs() -> None:
    # Node index 2 (node 3), its edge 1 (from node 1), then the current op, then a new one.
    rng = ScriptedRandom([2, 1, "nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3"])
    child = mutate(BEST_C10, rng)
    assert rng.calls == ["randint(0, 2)", "randint(0, 2)", "choice(5)", "choice(5)", "choice(5)"]
    assert child.ops == BEST_C10.ops[:4] + ("avg_pool_3x3",) + BEST_C10.ops[5:]
    rng = ScriptedRandom([0, 0, "none"])
    assert mutate(BEST_C10, rng).ops[0] == "none"
    assert rng.calls == ["randint(0, 2)", "randint(0, 0)", "choice(5)"]


def test_a_mutation_changes_exactly_one_edge_to_another_op() -> None:
    rng = random.Random(11)
    cell = BEST_C10
    for _ in range(2_000):
        child = mutate(cell, rng)
        changed = [i for i in range(len(EDGES)) if child.ops[i] != cell.ops[i]]
        assert len(changed) == 1
        cell = child


def test_edge_and_op_frequencies_match_the_documented_probabilities() -> None:
    draws = 60_000
    rng = random.Random(2024)
    edges: Counter[tuple[int, int]] = Counter()
    new_ops: Counter[str] = Counter()
    for _ in range(draws):
        child = mutate(BEST_C10, rng)
        edge = next(i for i in range(len(EDGES)) if child.ops[i] != BEST_C10.ops[i])
        edges[EDGES[edge]] += 1
        if EDGES[edge] == (0, 1):
            new_ops[child.ops[edge]] += 1
    assert list(EDGE_PROBABILITIES.values()) == [
        Fraction(1, 3), Fraction(1, 6), Fraction(1, 6), Fraction(1, 9), Fraction(1, 9),
        Fraction(1, 9),
    ]
    for edge, probability in EDGE_PROBABILITIES.items():
        expected = draws * float(probability)
        sigma = (expected * (1 - float(probability))) ** 0.5
        assert abs(edges[edge] - expected) < 5 * sigma, (edge, edges[edge], expected)
    # The op on edge (0, 1) is nor_conv_3x3: each of the 4 others a quarter of the time.
    assert set(new_ops) == set(OPS) - {"nor_conv_3x3"}
    total = sum(new_ops.values())
    for count in new_ops.values():
        assert abs(count - total / 4) < 5 * (total * 0.25 * 0.75) ** 0.5


def test_random_cells_draw_one_op_per_edge_in_string_order() -> None:
    rng, reference = random.Random(3), random.Random(3)
    cell = random_cell(rng)
    assert cell == Cell(tuple(reference.choice(OPS) for _ in EDGES))
    counts = Counter(op for _ in range(5_000) for op in random_cell(rng).ops)
    assert all(abs(count - 6_000) < 5 * (30_000 * 0.2 * 0.8) ** 0.5 for count in counts.values())


def test_the_global_rng_is_never_touched() -> None:
    state = random.getstate()
    rng = random.Random(1)
    for _ in range(100):
        mutate(random_cell(rng), rng)
    assert random.getstate() == state
    first = [mutate(BEST_C10, random.Random(9)) for _ in range(2)]
    assert first[0] == first[1]
