"""`nasagent inspect`, driven through the typer app as a user would call it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

import nasagent.agent.cli.inspect_command  # noqa: F401  (registers the command on the app)
from nasagent.agent.cli.app import app
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED

JSON_FIELDS = ["input", "valid", "canonical", "errors", "params", "flops", "layers"]
BAD_CHANNELS = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,20,1,8,1)"


def invoke(*args: str, stdin: str | None = None, columns: int = 80) -> Result:
    # Typer runs a lone registered command without its name; with several it is a group.
    is_group = isinstance(typer.main.get_command(app), TyperGroup)
    argv = ["inspect", *args] if is_group else list(args)
    return CliRunner().invoke(app, argv, input=stdin, env={"COLUMNS": str(columns)})


def records(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_record_of_the_seed_has_exactly_the_documented_fields() -> None:
    result = invoke(CIFAR_SEED, "--json")
    assert result.exit_code == 0, result.output
    (record,) = records(result)
    assert list(record) == JSON_FIELDS
    assert record == {
        "input": CIFAR_SEED, "valid": True, "canonical": CIFAR_SEED, "errors": [],
        "params": 102_572, "flops": 6_806_528, "layers": 6,
    }


def test_zennas_counting() -> None:
    (record,) = records(invoke(CIFAR_SEED, "--json", "--counting", "zennas"))
    assert (record["params"], record["flops"]) == (101_721, 6_550_784)


def test_invalid_input_exits_one_with_errors_block_field_message() -> None:
    result = invoke(CIFAR_SEED, BAD_CHANNELS, "--json")
    assert result.exit_code == 1
    good, bad = records(result)
    assert good["valid"] is True and bad["valid"] is False
    assert bad["errors"] == [
        {"block": 1, "field": "out_channels",
         "message": "block 1 SuperResK3K3: out_channels 20 is not a multiple of 8; use 16 or 24"},
    ]
    assert bad["canonical"] == BAD_CHANNELS and bad["layers"] == 2


def test_syntax_error_record_has_null_costs() -> None:
    result = invoke("SuperFoo(3,8,1,1)", "--json")
    assert result.exit_code == 1
    (record,) = records(result)
    assert list(record) == JSON_FIELDS
    assert record["canonical"] is None and record["params"] is None
    assert record["flops"] is None and record["layers"] is None
    (error,) = record["errors"]
    assert error["block"] == 0 and error["field"] == "syntax"
    assert "unknown block 'SuperFoo'" in error["message"]


def test_budgets_accept_scientific_notation() -> None:
    result = invoke(CIFAR_SEED, "--json", "--max-params", "1e5", "--max-flops", "6.5e6",
                    "--max-layers", "5")
    assert result.exit_code == 1
    (record,) = records(result)
    assert [e["field"] for e in record["errors"]] == ["params", "flops", "layers"]
    assert record["errors"][0]["message"] == (
        "params 102,572 exceed the budget of 100,000; shrink channels or sub-layers"
    )
    assert invoke(CIFAR_SEED, "--max-params", "1e6", "--max-flops", "1e7").exit_code == 0


def test_search_space_resolution_and_classes_are_passed_on() -> None:
    assert invoke(IMAGENET_SEED, "--json").exit_code == 1
    result = invoke(IMAGENET_SEED, "--json", "--search-space", "zennas-imagenet",
                    "--resolution", "224", "--num-classes", "1000", "--counting", "zennas")
    assert result.exit_code == 0, result.output
    (record,) = records(result)
    assert (record["params"], record["flops"]) == (2_813_889, 162_396_776)


def test_file_reads_one_architecture_per_non_empty_line(tmp_path: Path) -> None:
    path = tmp_path / "archs.txt"
    path.write_text(f"{CIFAR_SEED}\n\n   \n{BAD_CHANNELS}\n", encoding="utf-8")
    result = invoke("--file", str(path), "--json")
    assert result.exit_code == 1
    assert [r["input"] for r in records(result)] == [CIFAR_SEED, BAD_CHANNELS]


def test_file_dash_reads_stdin_after_the_arguments() -> None:
    result = invoke(BAD_CHANNELS, "--file", "-", "--json", stdin=f"{CIFAR_SEED}\n")
    assert [r["input"] for r in records(result)] == [BAD_CHANNELS, CIFAR_SEED]


def test_lenient_input_is_reported_canonical() -> None:
    result = invoke("ConvK3BNRELU(3,8,1,1) ResK3K3(8,16,1,8)", "--json")
    assert result.exit_code == 0
    (record,) = records(result)
    assert record["canonical"] == "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"


def test_table_output_shows_costs_and_errors() -> None:
    result = invoke(CIFAR_SEED, BAD_CHANNELS, "[not a block]", columns=400)
    assert result.exit_code == 1
    assert "102,572" in result.stdout and "6,806,528" in result.stdout
    assert "out_channels 20 is not a multiple of 8; use 16 or 24" in result.stdout
    assert "[not a block]" in result.stdout  # printed as text, not read as rich markup


def test_all_valid_table_exits_zero() -> None:
    assert invoke(CIFAR_SEED).exit_code == 0


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert invoke().exit_code == 2
    assert invoke(CIFAR_SEED, "--search-space", "nope").exit_code == 2
    assert invoke(CIFAR_SEED, "--counting", "approximate").exit_code == 2
    assert invoke(CIFAR_SEED, "--max-params", "lots").exit_code == 2
    assert invoke(CIFAR_SEED, "--max-params", "-1").exit_code == 2
    assert invoke(CIFAR_SEED, "--num-classes", "0").exit_code == 2
    assert invoke("--file", str(tmp_path / "missing.txt")).exit_code == 2
