"""Every cost formula the prompt states, evaluated against `count_cost` on random architectures.

The formula text is parsed as arithmetic (a whitelist of AST nodes, never eval) and evaluated
with the block's numbers, so a wrong word in the prompt's cost model fails here.
"""

from __future__ import annotations

import ast
import math
import operator
import random
from collections.abc import Callable

import pytest

from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, Architecture, parse
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.zennas.architecture import Block
from nasagent.evaluator.spaces.zennas.cost import Counting, block_costs, count_cost, downsample
from nasagent.evaluator.spaces.zennas.cost_facts import (
    cost_facts,
    max_stride2_blocks,
    resolution_chain,
    resolution_rule,
)
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator
from nasagent.evaluator.spaces.zennas.ops import OPS

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
}


def evaluate(formula: str, names: dict[str, float]) -> float:
    """The value of a prompt formula (`^` is a power, comparisons count 1 or 0)."""
    return _value(ast.parse(formula.replace("^", "**"), mode="eval").body, names)


def _value(node: ast.expr, names: dict[str, float]) -> float:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_value(node.left, names), _value(node.right, names))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.NotEq):
        return float(_value(node.left, names) != _value(node.comparators[0], names))
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise AssertionError(f"unexpected syntax in a prompt formula: {ast.dump(node)}")


def _names(block: Block, res_in: int, counting: Counting) -> dict[str, float]:
    spec = OPS[block.op]
    bottleneck = block.bottleneck_channels or 0
    return {
        "C_in": block.in_channels, "C_out": block.out_channels, "B": bottleneck,
        "n": block.sub_layers, "k": spec.kernel, "E": spec.expansion, "s": block.stride,
        "R": res_in, "r": downsample(res_in, block.stride, counting),
        "D1": spec.expansion * bottleneck, "D2": spec.expansion * block.out_channels,
    }


def _random_architectures(space: str, seed_arch: str, count: int) -> list[Architecture]:
    rng = random.Random(f"cost-facts:{space}")
    arch, drawn = parse(seed_arch), []
    for _ in range(count):
        mutator = RandomMutator(space, seed=rng.randrange(2**32))
        arch = mutator.mutate(arch if rng.random() < 0.7 else parse(seed_arch), num_replaces=2)
        drawn.append(arch)
    return drawn


def _close(stated: float, counted: float) -> bool:
    return math.isclose(stated, counted, rel_tol=1e-12, abs_tol=1e-9)


CASES = [
    ("zennas-cifar", CIFAR_SEED, 32), ("zennas-cifar", CIFAR_SEED, 27),
    ("zennas-imagenet", IMAGENET_SEED, 224), ("zennas-imagenet", IMAGENET_SEED, 97),
]


@pytest.mark.parametrize("counting", list(Counting))
@pytest.mark.parametrize(("space", "seed_arch", "resolution"), CASES)
def test_every_stated_formula_matches_count_cost(
    counting: Counting, space: str, seed_arch: str, resolution: int
) -> None:
    facts = cost_facts(counting, get_space(space).specs)
    by_op = {op: family for family in facts.families for op in family.ops}
    for arch in _random_architectures(space, seed_arch, 40):
        res, total_params, total_flops = resolution, 0.0, 0.0
        costs = block_costs(arch, resolution=resolution, counting=counting)
        for block, cost in zip(arch.blocks, costs, strict=True):
            names = _names(block, res, counting)
            params = evaluate(by_op[block.op].params, names)
            flops = evaluate(by_op[block.op].flops, names)
            assert _close(params, cost.params), (block, by_op[block.op].params)
            assert _close(flops, cost.flops), (block, by_op[block.op].flops)
            total_params, total_flops = total_params + params, total_flops + flops
            res = int(names["r"])
        head = {"C": arch.out_channels, "num_classes": 100}
        total = count_cost(arch, num_classes=100, resolution=resolution, counting=counting)
        assert _close(total_params + evaluate(facts.head_params, head), total.params)
        assert _close(total_flops + evaluate(facts.head_flops, head), total.flops)


def test_a_conditional_projection_is_stated_where_the_model_adds_one() -> None:
    facts = cost_facts(Counting.EXACT, get_space("zennas-imagenet").specs)
    idw = next(f for f in facts.families if f.ops[0].startswith("SuperResIDW"))
    assert "(C_out != B)*(C_out*B + 3*C_out)" in idw.params
    assert "1x1 conv B->D2" in idw.layout and "D2->C_out" in idw.layout
    assert "always, even when shapes match" in idw.layout


def test_resolution_rule_follows_the_counting_convention() -> None:
    assert "7x7 becomes 4x4" in resolution_rule("exact")
    assert "7x7 becomes 3x3" in resolution_rule("zennas")
    assert resolution_chain(224, "exact")[-4:] == [7, 4, 2, 1]
    assert resolution_chain(224, "zennas")[-3:] == [7, 3, 1]
    assert max_stride2_blocks(32, "exact") == max_stride2_blocks(32, "zennas") == 5
    assert (max_stride2_blocks(224, "exact"), max_stride2_blocks(224, "zennas")) == (8, 7)
    assert max_stride2_blocks(1, "exact") == 0
