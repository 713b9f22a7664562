"""`nasagent mutate --mutator llm`: the library's LLM mutation on the command line.

Scripted and replayed backends in-process; the OpenAI backend through the real SDK against the
loopback server (tests/loopback_openai.py). No real LLM service is called.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopback_openai import LoopbackOpenAI, ServerError, scripted_reply
from typer.testing import CliRunner, Result

from nasagent.agent.cli.app import app
from nasagent.agent.llm.recording import load_calls
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED

SECRET = "sk-test-SECRET-mutate-cli-7331"
LLM = ["--mutator", "llm"]
HISTORY = [{"iteration": 3, "parent": CIFAR_SEED, "parent_score": 6.4, "arch": None,
            "outcome": "invalid", "score": None, "errors": ["block 2: a remembered mistake"]}]


def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["mutate", *args], input=stdin, env=env)


def json_lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_a_scripted_proposal_prints_outcome_arch_cost_and_tokens() -> None:
    result = invoke(CIFAR_SEED, *LLM, "--llm", "scripted")

    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["outcome"] == "ok" and lines["arch"] != CIFAR_SEED
    assert "params" in lines["cost"] and lines["tokens"].startswith(tuple("123456789"))


def test_json_proposals_are_recorded_and_replay_gives_the_same_children(tmp_path: Path) -> None:
    # seed 3: both scripted answers change the parent under prompt version 3 (identical
    # requests get identical answers, and some mutations give the parent back)
    inputs = ["--n", "2", "--seed", "3", "--score", "6.41", "--lesson", "deeper stages help",
              "--history", "-", "--json"]
    first = invoke(CIFAR_SEED, *LLM, "--llm", "scripted", "--record", str(tmp_path), *inputs,
                   stdin=json.dumps(HISTORY))

    assert first.exit_code == 0, first.stderr
    proposals = json_lines(first)
    assert [p["seed"] for p in proposals] == [3, 4]
    assert all({"outcome", "arch", "errors", "tokens"} <= set(p) for p in proposals)
    calls = load_calls(tmp_path)
    assert len(calls) == 2 and all(call.backend == "scripted" for call in calls)
    prompt = "\n".join(message.content for message in calls[0].messages)
    assert "deeper stages help" in prompt and "6.41" in prompt
    assert "a remembered mistake" in prompt

    again = invoke(CIFAR_SEED, *LLM, "--llm", f"replay:{tmp_path}", "--model", "scripted",
                   *inputs, stdin=json.dumps(HISTORY))
    assert again.exit_code == 0, again.stderr
    assert [p["arch"] for p in json_lines(again)] == [p["arch"] for p in proposals]


def test_the_openai_backend_through_the_sdk_never_records_the_key(tmp_path: Path) -> None:
    with LoopbackOpenAI(default=scripted_reply) as server:
        server.enqueue(ServerError(503))  # retried once, then answered
        result = invoke(CIFAR_SEED, *LLM, "--llm", "openai:loopback-model", "--base-url",
                        server.base_url, "--record", str(tmp_path), "--json",
                        env={"OPENAI_API_KEY": SECRET})
        authorizations = {request.headers.get("authorization") for request in server.received}

    assert result.exit_code == 0, result.stderr
    (proposal,) = json_lines(result)
    assert proposal["outcome"] == "ok" and int(str(proposal["tokens"])) > 0
    assert authorizations == {f"Bearer {SECRET}"}
    (call,) = load_calls(tmp_path)
    assert call.backend.startswith("openai") and call.params.model == "loopback-model"
    for path in tmp_path.rglob("*"):
        assert SECRET not in path.read_text(encoding="utf-8"), path
    assert SECRET not in result.stdout + result.stderr


def test_a_missing_api_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = invoke(CIFAR_SEED, *LLM, "--llm", "openai:gpt-4o", "--record", str(tmp_path),
                    env={"OPENAI_API_KEY": ""})

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "OPENAI_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_proposal_that_is_not_ok_exits_1_and_says_why() -> None:
    result = invoke(CIFAR_SEED, *LLM, "--llm", "scripted", "--max-params", "1000")

    assert result.exit_code == 1
    assert "outcome: over_budget" in result.stdout and "budget" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([CIFAR_SEED, "--score", "3", "--lesson", "x"], 2, "only an LLM mutator reads --score"),
        ([CIFAR_SEED, *LLM, "--llm", "bogus"], 2, "unknown LLM backend 'bogus'"),
        ([CIFAR_SEED, "--mutator", "bogus"], 2, "unknown mutator 'bogus'"),
        ([CIFAR_SEED, *LLM, "--llm", "scripted", "--history", "/no/such/file"], 2,
         "--history: cannot read"),
        ([CIFAR_SEED, *LLM, "--llm", "scripted", "--config", "/no/such.toml"], 2,
         "does not exist"),
        ([CIFAR_SEED.replace("(8,16,1,8,1)", "(9,16,1,8,1)"), *LLM, "--llm", "scripted"], 1,
         "invalid parent: block 1"),
    ],
    ids=["random-refuses-llm-inputs", "backend", "mutator", "history", "config", "parent"],
)
def test_bad_inputs_are_one_error_line(args: list[str], code: int, message: str) -> None:
    result = invoke(*args)

    assert result.exit_code == code, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_history_entry_that_is_not_one_names_its_fields() -> None:
    result = invoke(CIFAR_SEED, *LLM, "--llm", "scripted", "--history", "-",
                    stdin='{"iteration": "x"}\n')

    assert result.exit_code == 2
    assert "invalid history entry 0: iteration:" in result.stderr and "parent" in result.stderr


def test_without_a_config_the_space_is_the_one_holding_the_parent(tmp_path: Path) -> None:
    result = invoke(IMAGENET_SEED, *LLM, "--llm", "scripted", "--record", str(tmp_path))

    assert result.exit_code == 0, result.stderr
    (call,) = load_calls(tmp_path)
    assert "224" in "\n".join(message.content for message in call.messages)
