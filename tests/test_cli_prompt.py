"""`nasagent prompt` and `nasagent check-response`, driven like a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli.prompt_commands  # noqa: F401  (registers the commands on the app)
from nasagent.agent.cli.app import app
from nasagent.agent.prompting import PromptSettings, mutation_messages
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.validation import Constraints

CHILD = CIFAR_SEED.replace("SuperResK3K3(8,16,1,8,1)", "SuperResK1K5K1(8,16,1,8,1)")
CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "responses"

runner = CliRunner()


def reply_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "reply.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def fenced(arch: str) -> str:
    return f'```json\n{{"arch": "{arch}", "type": "gradnorm", "score": 7}}\n```\n'


def test_prompt_prints_role_headers() -> None:
    result = runner.invoke(app, ["prompt", CIFAR_SEED, "--score", "6.41"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("=== system ===\n")
    assert "\n\n=== user ===\nMutate the architecture below." in result.output


def test_prompt_json_matches_the_library_with_the_default_setting() -> None:
    result = runner.invoke(app, ["prompt", CIFAR_SEED, "--json"])
    assert result.exit_code == 0, result.output
    settings = PromptSettings(constraints=Constraints(max_params=1e6, max_layers=18))
    assert json.loads(result.output) == mutation_messages(CIFAR_SEED, None, settings)


def test_prompt_options() -> None:
    result = runner.invoke(app, [
        "prompt", CIFAR_SEED, "--proxy", "zen", "--max-params", "0", "--max-layers", "0",
        "--num-classes", "10", "--resolution", "64", "--include-proxy-source", "--json",
    ])
    assert result.exit_code == 0, result.output
    system = json.loads(result.output)[0]["content"]
    assert "No parameter, FLOP or layer budget is in force." in system
    assert "10 outputs" in system and "64x64" in system and "```python" in system
    assert "# Zero-cost proxy: zen" in system


@pytest.mark.parametrize("flags", [["--proxy", "nope"], ["--search-space", "nope"],
                                   ["--resolution", "0"]])
def test_prompt_usage_errors(flags: list[str]) -> None:
    result = runner.invoke(app, ["prompt", CIFAR_SEED, *flags])
    assert result.exit_code == 2
    assert "nope" in result.output or "resolution" in result.output


def test_check_response_ok_json(tmp_path: Path) -> None:
    path = reply_file(tmp_path, fenced(CHILD) + "Rationale.")
    result = runner.invoke(app, ["check-response", path, "--parent", CIFAR_SEED, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"outcome": "ok", "arch": CHILD, "errors": [], "notes": []}


def test_check_response_reads_stdin() -> None:
    result = runner.invoke(app, ["check-response", "-", "--parent", CIFAR_SEED, "--json"],
                           input="[]")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outcome"] == "no_change" and summary["arch"] is None


def test_check_response_invalid_exits_1(tmp_path: Path) -> None:
    path = reply_file(tmp_path, fenced(CHILD.replace("(64,128,1,1)", "(64,130,1,1)")))
    result = runner.invoke(app, ["check-response", path, "--parent", CIFAR_SEED, "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["outcome"] == "invalid"
    assert summary["errors"] == [
        "block 5 SuperConvK1BNRELU: out_channels 130 is not a multiple of 8; use 128 or 136"
    ]


def test_check_response_budget_flags(tmp_path: Path) -> None:
    path = reply_file(tmp_path, fenced(CHILD))
    result = runner.invoke(app, ["check-response", path, "--parent", CIFAR_SEED,
                                 "--max-layers", "5", "--max-flops", "1e6", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["outcome"] == "over_budget" and summary["arch"] == CHILD
    assert len(summary["errors"]) == 2


def test_check_response_finish_reason_length(tmp_path: Path) -> None:
    path = reply_file(tmp_path, '```json\n{"arch": "SuperConvK3BNRELU(3,8,1,1)Sup')
    result = runner.invoke(app, ["check-response", path, "--parent", CIFAR_SEED,
                                 "--finish-reason", "length"])
    assert result.exit_code == 1
    assert result.output.startswith("outcome: invalid\narch: -\nerror: the reply was cut off")


def test_check_response_over_size_cap_file() -> None:
    path = str(CORPUS_DIR / "over_cap.txt")
    result = runner.invoke(app, ["check-response", path, "--parent", CIFAR_SEED, "--json"])
    assert result.exit_code == 1
    assert "at most 1,000,000" in json.loads(result.output)["errors"][0]


def test_check_response_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check-response", str(tmp_path / "none.txt"),
                                 "--parent", CIFAR_SEED])
    assert result.exit_code == 2
    assert "cannot read" in result.output
