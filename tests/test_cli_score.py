"""`nasagent score`: JSON Lines with stable names, invalid inputs as results (exit 1), a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (the package registers every command module)
import nasagent.agent.cli.score_command  # noqa: F401  (registers `score` on the app)
from nasagent.agent.cli.app import app
from nasagent.evaluator import CIFAR_SEED

JSON_KEYS = {"input", "canonical", "proxy", "score", "status", "seconds", "seed", "message",
             "inputs"}
SMALL = "SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,2,1)"


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["score", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_json_lines_carry_the_documented_names() -> None:
    code, out, _ = invoke(CIFAR_SEED, "--json")
    (row,) = json_lines(out)

    assert code == 0
    assert set(row) == JSON_KEYS
    assert row["canonical"] == CIFAR_SEED and row["proxy"] == "gradnorm"
    assert row["status"] == "ok" and row["seed"] == 0
    assert row["score"] == pytest.approx(6.4110, abs=2e-3)


def test_many_inputs_in_one_process_with_invalid_ones_as_results() -> None:
    code, out, _ = invoke(SMALL, "NotABlock(1,2)", " " + SMALL, "--json", "--seed", "2")
    rows = json_lines(out)

    assert code == 1  # every row is printed, and the command says that one input was refused
    assert [r["status"] for r in rows] == ["ok", "invalid", "ok"]
    assert rows[1]["score"] is None and rows[1]["canonical"] is None
    assert "NotABlock" in str(rows[1]["message"])
    assert rows[2]["canonical"] == SMALL and rows[2]["score"] == rows[0]["score"]
    assert all(r["seed"] == 2 for r in rows)


def test_file_and_stdin_inputs_skip_blank_lines_and_comments(tmp_path: Path) -> None:
    listing = tmp_path / "archs.txt"
    listing.write_text(f"# candidates\n{SMALL}\n\n{CIFAR_SEED}\n", encoding="utf-8")

    _, from_file, _ = invoke("--file", str(listing), "--json", "--proxy", "params")
    _, from_stdin, _ = invoke("--file", "-", "--json", "--proxy", "params",
                              stdin=listing.read_text(encoding="utf-8"))

    assert [r["input"] for r in json_lines(from_file)] == [SMALL, CIFAR_SEED]
    assert json_lines(from_stdin)[1]["score"] == 94_761.0
    assert json_lines(from_file)[1]["proxy"] == "params"


def test_settings_flags_reach_the_proxy() -> None:
    _, out, _ = invoke(SMALL, "--json", "--proxy", "naswot", "--batch-size", "4",
                       "--resolution", "16", "--num-classes", "10", "--repeats", "2",
                       "--device", "cpu", "--residual")
    (row,) = json_lines(out)

    assert row["status"] == "ok" and row["proxy"] == "naswot"


def test_table_output_is_readable() -> None:
    code, out, _ = invoke(SMALL, "bad", "--proxy", "params")

    assert code == 1
    assert "status" in out and "ok" in out and "invalid" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--proxy", "gradflow", SMALL), "gradnorm"),
        (("--device", "tpu", SMALL), "auto, cpu, cuda"),
        ((), "architecture strings"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: tuple[str, ...], expected: str) -> None:
    code, _, err = invoke(*args)

    assert code == 2
    assert expected in err
