"""`nasagent mutate`, driven through the typer app as a user would call it."""

from __future__ import annotations

import json
import random

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

import nasagent
import nasagent.agent.cli.mutate_command  # noqa: F401  (registers the command on the app)
from nasagent.agent.cli.app import app
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.spaces import get_space


def invoke(*args: str) -> Result:
    # Typer runs a lone registered command without its name; with several it is a group.
    is_group = isinstance(typer.main.get_command(app), TyperGroup)
    return CliRunner().invoke(app, ["mutate", *args] if is_group else list(args))


def test_prints_n_canonical_children_deterministically() -> None:
    first = invoke(CIFAR_SEED, "--n", "5", "--seed", "3")
    assert first.exit_code == 0, first.output
    children = first.stdout.splitlines()
    assert len(children) == 5
    assert all(str(parse(child)) == child for child in children)
    assert invoke(CIFAR_SEED, "--n", "5", "--seed", "3").stdout == first.stdout
    assert invoke(CIFAR_SEED, "--n", "5", "--seed", "4").stdout != first.stdout


def test_proposal_i_is_the_python_api_child_of_seed_plus_i() -> None:
    result = invoke(CIFAR_SEED, "--n", "4", "--seed", "9", "--replaces", "2")
    expected = [nasagent.mutate(CIFAR_SEED, seed=seed, num_replaces=2).arch
                for seed in range(9, 13)]
    assert result.stdout.splitlines() == expected


def test_each_line_can_be_drawn_again_on_its_own() -> None:
    five = invoke(CIFAR_SEED, "--n", "5", "--seed", "20").stdout.splitlines()
    assert invoke(CIFAR_SEED, "--seed", "23").stdout.splitlines() == [five[3]]


def test_defaults_print_one_child_of_seed_zero() -> None:
    result = invoke(CIFAR_SEED)
    mutator = get_space("zennas-cifar").drawn_mutator(random.Random(0), {})
    assert result.stdout.splitlines() == [str(mutator.mutate(parse(CIFAR_SEED)))]


def test_json_lines_name_parent_child_and_seed() -> None:
    result = invoke(IMAGENET_SEED, "--n", "3", "--seed", "2", "--json",
                    "--search-space", "zennas-imagenet", "--type-weights", "uniform")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    space = get_space("zennas-imagenet")
    assert [line["seed"] for line in lines] == [2, 3, 4]
    for line in lines:
        assert set(line) == {"parent", "child", "seed"}
        assert line["parent"] == IMAGENET_SEED
        assert all(block.op in space for block in parse(line["child"]).blocks)


def test_lenient_input_is_normalised_with_notes_on_stderr() -> None:
    result = invoke("SuperConvK3BNRELU(3,8,1,1) ResK3K3(8,16,1,8)", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["parent"] == (
        "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"
    )
    assert "short name ResK3K3" in result.stderr


def test_bad_input_is_a_usage_error_naming_the_problem() -> None:
    result = invoke("Foo(1)")
    assert result.exit_code == 2
    assert "unknown block 'Foo'" in result.output
    result = invoke(CIFAR_SEED, "--search-space", "nope")
    assert result.exit_code == 2
    assert "zennas-cifar" in result.output
    assert invoke(CIFAR_SEED, "--type-weights", "skewed").exit_code == 2
    assert invoke(CIFAR_SEED, "--n", "0").exit_code == 2
