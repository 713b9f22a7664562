"""Prompt versions: v1 stays the recorded text, v2 tells the model what is true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from nasagent.agent.compare import make_plan, read_plan, write_plan
from nasagent.agent.config import (
    ConfigError,
    RunConfig,
    dump_config,
    load_config,
    load_run_config,
)
from nasagent.agent.demo import transcript_dir
from nasagent.agent.llm.base import LLMRequest, LLMResponse, TokenUsage
from nasagent.agent.outcomes import HistoryEntry, Outcome, ScoredArch
from nasagent.agent.prompting import (
    PromptSettings,
    SearchFacts,
    mutation_messages,
    reflection_messages,
)
from nasagent.agent.proposers import prompt_settings_for
from nasagent.agent.response import judge_reply
from nasagent.agent.runlog import CONFIG_FILE, LLM_CALLS_FILE
from nasagent.agent.search import run_search
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED
from nasagent.evaluator.spaces.zennas.facts import LEGACY_NOISE as PROXY_NOISE
from nasagent.evaluator.validation import Constraints
from nasagent.prompts import LATEST_PROMPT_VERSION

CIFAR = Constraints(max_params=1e6, max_layers=18)
CHILD = CIFAR_SEED.replace("SuperResK3K3(8,16,1,8,1)", "SuperResK1K3K1(8,16,1,8,2)")
SEED_RUN = transcript_dir("claude-manual-cifar") / "seed-0"


def _recorded_calls() -> list[dict[str, object]]:
    lines = (SEED_RUN / LLM_CALLS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if '"request_hash"' in line]


def test_a_run_folder_without_the_key_was_prompted_with_version_1(tmp_path: Path) -> None:
    recorded = load_run_config(SEED_RUN / CONFIG_FILE)
    assert recorded.prompt_version == 1
    assert load_config(SEED_RUN / CONFIG_FILE).prompt_version == LATEST_PROMPT_VERSION
    assert RunConfig().prompt_version == LATEST_PROMPT_VERSION == 3
    assert "prompt_version = 3" in dump_config(RunConfig())
    path = tmp_path / "config.toml"
    path.write_text(dump_config(RunConfig(prompt_version=1)), encoding="utf-8")
    assert load_run_config(path, {"iterations": 3}).prompt_version == 1
    path.write_text(dump_config(RunConfig()), encoding="utf-8")
    assert load_run_config(path).prompt_version == 3


def test_an_unshipped_prompt_version_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="prompt_version 7 is not shipped; valid: 1, 2"):
        load_config(None, {"prompt_version": 7})


def test_a_compare_toml_without_the_key_keeps_version_1(tmp_path: Path) -> None:
    path = tmp_path / "compare.toml"
    write_plan(make_plan(RunConfig(), ["llm", "random"], [0]), path)
    assert read_plan(path).config.prompt_version == 3
    data = {"arms": ["llm"], "seeds": [0], "config": {"iterations": 5}}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert read_plan(path).config.prompt_version == 1


def test_version_1_rebuilds_the_recorded_first_request_byte_for_byte() -> None:
    settings = prompt_settings_for(load_run_config(SEED_RUN / CONFIG_FILE))
    first = _recorded_calls()[0]
    assert first["purpose"] == "mutation" and first["iteration"] == 1
    parent = json.loads(first["messages"][1]["content"].split("```json\n")[1].split("\n```")[0])
    rebuilt = mutation_messages(parent["arch"], parent["score"], settings)
    assert rebuilt == first["messages"]


def _v2(counting: str = "exact", **search: object) -> PromptSettings:
    constraints = CIFAR.model_copy(update={"counting": counting})
    return PromptSettings(constraints=constraints, search=SearchFacts.model_validate(search),
                          version=2)


def test_v2_states_the_resolution_rule_of_the_convention_in_force() -> None:
    exact = mutation_messages(CIFAR_SEED, None, _v2("exact"))[0]["content"]
    zennas = mutation_messages(CIFAR_SEED, None, _v2("zennas"))[0]["content"]
    assert "ceil(R/2)" in exact and "7x7 becomes 4x4" in exact
    assert "R // 2" in zennas and "7x7 becomes 3x3" in zennas
    assert "integer division" not in exact
    imagenet = PromptSettings(constraints=Constraints(
        search_space="zennas-imagenet", resolution=224, max_flops=4e8, max_layers=14,
    ))
    text = mutation_messages(IMAGENET_SEED, None, imagenet)[0]["content"]
    assert "7 -> 4 -> 2 -> 1, so at most 8 blocks may have stride 2" in text
    assert "D2 = E*C_out" in text and "1x1 conv B->D2" in text


def test_v2_states_the_search_rules_and_the_measured_noise() -> None:
    system = mutation_messages(CIFAR_SEED, None, _v2(parent_selection="tournament"))[0]["content"]
    assert "rebuilding the whole network is allowed" in system
    assert "10 scored architectures or fewer, the parent is always the seed" in system
    assert "the best of 4 members drawn at random (tournament)" in system
    assert "outcome `duplicate` and spends an iteration" in system
    assert f"by {PROXY_NOISE['gradnorm'].describe()} (standard deviation" in system
    assert "by a median of 9.6% (up to 25.0%) of its value" in system
    zen = mutation_messages(CIFAR_SEED, None,
                            PromptSettings(constraints=CIFAR, proxy="zen", version=2))
    assert "by a median of 0.042 (up to 0.14) in score units" in zen[0]["content"]
    assert "has not been measured" in mutation_messages(
        CIFAR_SEED, None, PromptSettings(constraints=CIFAR, proxy="synflow", version=2)
    )[0]["content"]


def test_the_validator_accepts_a_rebuilt_network_as_the_prompt_says() -> None:
    rebuilt = "SuperConvK3BNRELU(3,16,2,2)SuperResK1K5K1(16,48,2,16,3)SuperConvK1BNRELU(48,256,1,1)"
    reply = json.dumps({"arch": rebuilt, "type": "gradnorm", "score": None})
    assert judge_reply(reply, "stop", parent=CIFAR_SEED, constraints=CIFAR).outcome is Outcome.OK


def _entry(iteration: int, outcome: Outcome, **changes: object) -> HistoryEntry:
    values: dict[str, object] = {
        "iteration": iteration, "parent": CIFAR_SEED, "parent_score": 6.411, "arch": CHILD,
        "outcome": outcome, "score": 13.77125, "params": 123456, "flops": 7_000_000,
        "layers": 7, "expected_score": 20.0,
    }
    return HistoryEntry.model_validate({**values, **changes})


HISTORY = [
    _entry(1, Outcome.OK),
    _entry(2, Outcome.OVER_BUDGET, score=None, params=1_200_000,
           errors=("params 1,200,000 exceed the budget of 1,000,000; shrink channels",)),
    _entry(3, Outcome.DUPLICATE),
    _entry(4, Outcome.NO_CHANGE, arch=None, score=None, params=None, flops=None, layers=None,
           expected_score=None),
    _entry(5, Outcome.INVALID, score=None, params=None, flops=None, layers=None,
           errors=("block 2 SuperResK3K3: in_channels 8 must equal block 1's out_channels 16",)),
]


def test_v2_user_message_shows_costs_budgets_expectations_and_the_best() -> None:
    best = ScoredArch(arch=CHILD, score=13.771249, iteration=1)
    user = mutation_messages(CIFAR_SEED, 6.411, _v2(), HISTORY, best=best)[1]["content"]
    assert "Parent: measured 6.411; cost 102,572 params (budget 1,000,000)" in user
    assert "6 layers (budget 18)" in user
    assert f"Best architecture so far (score 13.771, iteration 1): {CHILD}" in user
    assert "ok; score 6.411 -> 13.771 (+7.36); you expected 20" in user
    cost = "cost:   123,456 params (budget 1,000,000), 7,000,000 FLOPs, 7 layers (budget 18)"
    assert cost in user
    assert "why:    this architecture had been scored before" in user
    seed_best = ScoredArch(arch=CIFAR_SEED, score=6.411, iteration=0)
    user = mutation_messages(CIFAR_SEED, 6.411, _v2(), best=seed_best)[1]["content"]
    assert "The parent is the best architecture so far (score 6.411, the seed)." in user


def test_v2_reflection_sees_every_rejected_proposal_and_its_errors() -> None:
    system, user = (m["content"] for m in reflection_messages(HISTORY, [], _v2()))
    assert "the rejected ones too" in system
    for iteration, outcome in enumerate(["ok", "over_budget", "duplicate", "no_change",
                                         "invalid"], start=1):
        assert f"- Iteration {iteration}: {outcome}" in user
    assert "error: params 1,200,000 exceed the budget" in user
    assert "error: block 2 SuperResK3K3: in_channels 8 must equal" in user
    assert "why:    the answer kept the parent unchanged" in user


def test_the_prompt_command_shows_either_version() -> None:
    from typer.testing import CliRunner

    import nasagent.agent.cli.prompt_commands  # noqa: F401  (registers the command)
    from nasagent.agent.cli.app import app

    runner = CliRunner()
    latest = runner.invoke(app, ["prompt", CIFAR_SEED, "--score", "6.411"])
    assert latest.exit_code == 0 and "7x7 becomes 4x4" in latest.output
    assert "Parent: measured 6.411; cost 102,572 params (budget 1,000,000)" in latest.output
    first = runner.invoke(app, ["prompt", CIFAR_SEED, "--prompt-version", "1"])
    assert first.exit_code == 0 and "halves the resolution (integer division)" in first.output
    bad = runner.invoke(app, ["prompt", CIFAR_SEED, "--prompt-version", "9"])
    assert bad.exit_code == 2 and "prompt version 9 is not shipped" in bad.output


class ScriptedByIteration:
    """Answers mutation requests from a per-iteration table and keeps every request."""

    name = "by-iteration"

    def __init__(self, answers: dict[int, str]) -> None:
        self.answers = answers
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if request.purpose == "reflection":
            text = '```json\n{"lessons": ["keep the head narrow"]}\n```'
        else:
            arch = self.answers[request.iteration]
            text = f'```json\n{{"arch": "{arch}", "type": "gradnorm", "score": 8.5}}\n```'
        return LLMResponse(text=text, finish_reason="stop", latency_s=0.0,
                           usage=TokenUsage(prompt_tokens=10, completion_tokens=5))

    async def aclose(self) -> None:
        return None


def test_the_loop_shows_rejected_proposals_costs_and_the_best_to_the_model(
    tmp_path: Path,
) -> None:
    wide = CIFAR_SEED.replace("SuperConvK1BNRELU(64,128,1,1)", "SuperConvK1BNRELU(64,2048,1,4)")
    backend = ScriptedByIteration({1: CHILD, 2: wide, 3: CHILD, 4: CIFAR_SEED, 5: CHILD})
    config = RunConfig(
        llm="scripted", iterations=5, concurrency=1, reflect_every=4, max_repairs=0,
        batch_size=8, population=16,
    )
    run_search(config, tmp_path / "run", progress=False, backend=backend)
    reflection = next(r for r in backend.requests if r.purpose == "reflection")
    shown = reflection.messages[1].content
    for outcome in ("ok", "over_budget", "duplicate", "no_change"):
        assert f": {outcome}" in shown
    assert "error: params" in shown and "exceed the budget of 1,000,000" in shown
    last = [r for r in backend.requests if r.purpose == "mutation"][-1].messages[1].content
    assert "Best architecture so far (score" in last and "iteration 1): " + CHILD in last
    assert "; you expected 8.5" in last and "(budget 1,000,000)" in last


def test_v3_states_the_noise_measured_across_the_depths_the_search_reaches() -> None:
    settings = PromptSettings(constraints=CIFAR)
    system = mutation_messages(CIFAR_SEED, None, settings)[0]["content"]
    assert "grows with depth" in system and "16-18 layers 24% (90% of networks below 44%)" in system
    assert "reverses which of two near-identical networks scores higher in 27% of draws" in system
    assert "9.6%" not in system  # version 2's one-block figure
    zen = mutation_messages(CIFAR_SEED, None, PromptSettings(constraints=CIFAR, proxy="zen"))
    assert "16-18 layers 0.36 (90% of networks below 0.51)" in zen[0]["content"]
    imagenet = PromptSettings(constraints=Constraints(search_space="zennas-imagenet"))
    assert "has not been measured" in mutation_messages(IMAGENET_SEED, None,
                                                        imagenet)[0]["content"]
