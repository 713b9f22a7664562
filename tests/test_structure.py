"""`--structure zennas`: stem, 1x1 head and the seed's resolution schedule, validated and prompted
from the same rule objects; with no structure the prompt is unchanged."""

from __future__ import annotations

import pytest

from nasagent.agent.config import ConfigError, RunConfig, config_from_dict
from nasagent.agent.prompting import PromptSettings, mutation_messages
from nasagent.agent.proposers import constraints_for
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator
from nasagent.evaluator.spaces.zennas.rules import structure_statements
from nasagent.evaluator.validation import Constraints, ViolationKind, check, check_string

ZENNAS = Constraints(structure="zennas")
LLM_FOUND = "SuperResK1K7K1(3,1176,1,8,18)"
"""The network an LLM converged to under Zen-score: no stem, no head, no downsampling."""


def structure_errors(text: str, constraints: Constraints = ZENNAS) -> list[tuple[int | None, str]]:
    report = check_string(text, constraints)
    return [(e.block, e.field) for e in report.errors if e.kind is ViolationKind.STRUCTURE]


@pytest.mark.parametrize("seed, space", [(CIFAR_SEED, "zennas-cifar"),
                                         (IMAGENET_SEED, "zennas-imagenet")])
def test_the_seeds_meet_their_structure(seed: str, space: str) -> None:
    assert check_string(seed, Constraints(search_space=space, structure="zennas")).valid


def test_the_llm_found_network_breaks_every_rule_with_located_errors() -> None:
    errors = structure_errors(LLM_FOUND)
    assert (0, "op") in errors  # no stem
    assert (None, "stride") in errors  # no stride-2 block at all
    messages = check_string(LLM_FOUND, ZENNAS).error_lines()
    assert any("SuperConv stem" in m for m in messages)
    assert any("SuperConvK1BNRELU head" in m for m in messages)
    assert any("has 3" in m and "0 stride-2" in m for m in messages)


def test_without_structure_the_same_network_breaks_no_structure_rule() -> None:
    assert structure_errors(LLM_FOUND, Constraints()) == []


def test_an_extra_stride_2_block_is_located() -> None:
    text = CIFAR_SEED.replace("SuperResK3K3(8,16,1,8,1)", "SuperResK3K3(8,16,2,8,1)")
    assert structure_errors(text) == [(4, "stride")]


def test_a_missing_head_points_at_the_last_block() -> None:
    text = CIFAR_SEED.replace("SuperConvK1BNRELU(64,128,1,1)", "SuperConvK3BNRELU(64,128,1,1)")
    assert structure_errors(text) == [(5, "op")]


def test_the_schedule_follows_the_run_seed() -> None:
    seed = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
    config = RunConfig(structure="zennas", seed_arch=seed)
    constraints = constraints_for(config)
    assert constraints.stride2_blocks == 1
    assert check(parse(seed), constraints).valid
    assert not check(parse(CIFAR_SEED), constraints).valid


def test_random_mutation_keeps_the_zennas_skeleton() -> None:
    mutator, arch = RandomMutator(seed=3), parse(CIFAR_SEED)
    for _ in range(200):
        arch = mutator.mutate(arch, num_replaces=2)
        assert structure_errors(str(arch)) == []


def test_unknown_structure_is_a_config_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="none, zennas"):
        config_from_dict({"structure": "resnet"})


def system_prompt(constraints: Constraints) -> str:
    return mutation_messages(CIFAR_SEED, None, PromptSettings(constraints=constraints))[0][
        "content"]


def test_the_prompt_states_the_rules_the_validator_checks() -> None:
    prompt = system_prompt(ZENNAS)
    statements = structure_statements(ZENNAS)
    assert len(statements) == 3
    assert all(statement in prompt for statement in statements)
    assert "Exactly 3 blocks have stride 2" in prompt


def test_the_prompt_without_structure_is_the_prompt_with_the_block_removed() -> None:
    plain, structured = system_prompt(Constraints()), system_prompt(ZENNAS)
    block = [line for line in structured.splitlines() if line not in plain.splitlines()]
    assert len(block) == 4 and block[0].startswith("- Structure `zennas`")
    assert "\n".join(line for line in structured.splitlines() if line not in block) == plain
    assert "Structure" not in plain


def test_inspect_and_prompt_take_the_structure_flag() -> None:
    from typer.testing import CliRunner

    import nasagent.agent.cli  # noqa: F401  (registers every command)
    from nasagent.agent.cli.app import app

    inspected = CliRunner().invoke(app, ["inspect", LLM_FOUND, "--structure", "zennas", "--json"])
    assert inspected.exit_code == 1 and "SuperConv stem" in inspected.stdout
    prompt = CliRunner().invoke(app, ["prompt", CIFAR_SEED, "--structure", "zennas"])
    assert prompt.exit_code == 0 and "Exactly 3 blocks have stride 2" in prompt.stdout
    bad = CliRunner().invoke(app, ["inspect", CIFAR_SEED, "--structure", "vgg"])
    assert bad.exit_code == 2 and "unknown structure" in bad.output
