"""Cost and token budgets: prices, per-call and per-run cost, the spend guard, stop and resume."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from loopback_openai import LoopbackOpenAI, scripted_reply
from typer.testing import CliRunner

import nasagent.agent.cli.search_command  # noqa: F401  (registers the command on the app)
from nasagent.agent.budget import BudgetGuard
from nasagent.agent.cli.app import app
from nasagent.agent.config import ConfigError, RunConfig, load_config
from nasagent.agent.llm.base import TokenUsage
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.pricing import DEFAULT_PRICES, Price, PriceTable, Spend
from nasagent.agent.runlog import SUMMARY_FILE, read_events, read_json
from nasagent.agent.search import run_search
from nasagent.agent.stats import holm

FAST = {"batch_size": 8, "population": 16, "proxy": "params"}
PRICED = {"price_in": 2.0, "price_out": 8.0}


def scripted(**changes: Any) -> RunConfig:
    values = {"llm": "scripted", "iterations": 12, "concurrency": 3, "reflect_every": 5,
              **FAST, **changes}
    return RunConfig.model_validate(values)


def stable(run_dir: Path) -> list[dict[str, Any]]:
    return [e.stable_view() for e in read_events(run_dir)]


# ---- prices ----------------------------------------------------------------------------


def test_price_of_a_call_keeps_input_cached_and_output_apart() -> None:
    price = Price(input=2.0, cached_input=0.5, output=8.0)
    usage = TokenUsage(prompt_tokens=1000, completion_tokens=100, cached_tokens=400)
    assert price.cost(usage) == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)
    # no cached price: cached tokens cost the full input price, never less
    assert Price(input=2.0, output=8.0).cost(usage) == pytest.approx((1000 * 2 + 800) / 1e6)


def test_user_prices_win_and_an_unknown_model_has_no_cost() -> None:
    table = PriceTable({"gpt-4o": Price(input=1.0, output=1.0)})
    usage = TokenUsage(prompt_tokens=10, completion_tokens=10)
    assert table.get("gpt-4o") == Price(input=1.0, output=1.0)
    assert table.get("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.cost("my-local-qwen", usage) is None


def test_config_prices_from_toml_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('llm = "openai:qwen"\n[prices."gpt-4o"]\ninput = 3.0\noutput = 9.0\n')
    config = load_config(path, {"price_in": 0.1, "price_out": 0.2})
    assert config.price_table().get("gpt-4o") == Price(input=3.0, output=9.0)
    assert config.price_table().get("qwen") == Price(input=0.1, output=0.2)
    with pytest.raises(ConfigError, match="price_in and price_out go together"):
        load_config(None, {"price_in": 1.0})


def test_a_spend_with_one_unpriced_call_has_an_unknown_cost() -> None:
    usage = TokenUsage(prompt_tokens=5, completion_tokens=1)
    spend = Spend().add(usage, 0.5).add(usage, None).add(usage, 0.25)
    assert spend.cost_usd is None and spend.tokens_in == 15 and spend.tokens_out == 3
    assert Spend().cost_usd == 0.0  # no call costs exactly nothing


def test_holm_adjusts_in_step_down_order_and_skips_missing_tests() -> None:
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.6, 0.9]) == [1.0, 1.0]


# ---- cost in the logs --------------------------------------------------------------------


def test_every_call_event_and_summary_carries_its_cost(tmp_path: Path) -> None:
    run_search(scripted(**PRICED), tmp_path / "run", progress=False)
    calls = load_calls(tmp_path / "run")
    for call in calls:
        assert call.response is not None and call.response.cost_usd is not None
        usage = call.response.usage
        expected = (usage.prompt_tokens * 2.0 + usage.completion_tokens * 8.0) / 1e6
        assert call.response.cost_usd == pytest.approx(expected)
    events = read_events(tmp_path / "run")
    summary = read_json(tmp_path / "run" / SUMMARY_FILE)
    total_in = sum(c.response.usage.prompt_tokens for c in calls if c.response)
    assert summary["tokens_in"] == total_in == sum(e.tokens_in for e in events)
    assert summary["tokens_out"] == sum(e.tokens_out for e in events) > 0
    calls_cost = sum(c.response.cost_usd or 0.0 for c in calls if c.response)
    assert summary["cost_usd"] == pytest.approx(calls_cost)


def test_an_unpriced_model_reports_an_unknown_cost_not_zero(tmp_path: Path) -> None:
    run_search(scripted(iterations=4), tmp_path / "run", progress=False)
    assert read_json(tmp_path / "run" / SUMMARY_FILE)["cost_usd"] is None
    assert all(c.response and c.response.cost_usd is None for c in load_calls(tmp_path / "run"))


def test_random_mutator_costs_nothing(tmp_path: Path) -> None:
    run_search(scripted(mutator="random", iterations=4), tmp_path / "run", progress=False)
    assert read_json(tmp_path / "run" / SUMMARY_FILE)["cost_usd"] == 0.0


def test_cost_through_the_sdk_with_cached_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    def cached_half(body: Any) -> Any:
        reply = scripted_reply(body)
        return dataclasses.replace(reply, cached_tokens=reply.prompt_tokens // 2)

    with LoopbackOpenAI(default=cached_half) as server:
        config = RunConfig(
            llm="openai:gpt-4o", base_url=server.base_url, iterations=4, concurrency=2,
            reflect_every=3, **FAST,
        )
        run_search(config, tmp_path / "run", progress=False)
    price = DEFAULT_PRICES["gpt-4o"]
    calls = load_calls(tmp_path / "run")
    assert calls and all(c.response and c.response.usage.cached_tokens > 0 for c in calls)
    for call in calls:
        assert call.response is not None
        assert call.response.cost_usd == pytest.approx(price.cost(call.response.usage))
    summary = read_json(tmp_path / "run" / SUMMARY_FILE)
    assert summary["tokens_cached"] == sum(c.response.usage.cached_tokens for c in calls
                                           if c.response)


# ---- the guard -----------------------------------------------------------------------------


def test_guard_estimates_from_the_applied_mean_and_refuses_past_the_budget() -> None:
    guard = BudgetGuard.of(scripted(max_total_tokens=1000, max_tokens=100))
    assert guard is not None and guard.prior.tokens == 100
    assert guard.refusal(Spend(), 0, 0) is None
    spent = Spend(tokens_in=600, tokens_out=150)  # 250 per iteration over 3
    assert guard.refusal(spent, 3, 0) is None  # 750 + 250 = 1000: at the budget, allowed
    assert "token budget reached" in (guard.refusal(spent, 3, 1) or "")
    assert BudgetGuard.of(scripted(mutator="random", max_total_tokens=1)) is None


def test_max_cost_needs_a_price(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prices\.\"scripted\""):
        run_search(scripted(max_cost=1.0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("budget", [{"max_total_tokens": 6000}, {"max_cost": 0.02}])
def test_stopped_at_the_budget_then_resumed_higher_is_the_uninterrupted_run(
    tmp_path: Path, budget: dict[str, Any]
) -> None:
    key, value = next(iter(budget.items()))
    higher = {key: value * 4}
    stopped = run_search(scripted(**PRICED, **budget), tmp_path / "cut", progress=False)
    assert not stopped.finished and "budget reached" in (stopped.stopped_reason or "")
    assert "--resume" in (stopped.stopped_reason or "")
    cut_events = [e for e in read_events(tmp_path / "cut") if e.phase == "search"]
    assert 0 < len(cut_events) < 12
    refused_after = int(re.search(r"over (\d+) iterations", stopped.stopped_reason or "")[1])
    assert len(cut_events) == min(refused_after + 2, 12)  # the 2 in flight (K = 3) finished
    assert [e.iteration for e in cut_events] == list(range(1, len(cut_events) + 1))
    summary = read_json(tmp_path / "cut" / SUMMARY_FILE)
    assert summary["stopped_reason"] == stopped.stopped_reason and not summary["finished"]

    resumed = run_search(scripted(**PRICED, **higher), tmp_path / "cut", resume=True,
                         progress=False)
    straight = run_search(scripted(**PRICED, **higher), tmp_path / "straight", progress=False)
    assert resumed.finished == straight.finished
    assert stable(tmp_path / "cut") == stable(tmp_path / "straight")
    unbounded = run_search(scripted(**PRICED), tmp_path / "unbounded", progress=False)
    if straight.finished:
        assert stable(tmp_path / "straight") == stable(tmp_path / "unbounded")
    assert unbounded.finished


def test_resuming_with_the_same_budget_stops_at_once_and_adds_nothing(tmp_path: Path) -> None:
    config = scripted(**PRICED, max_total_tokens=6000)
    run_search(config, tmp_path / "run", progress=False)
    before = stable(tmp_path / "run")
    again = run_search(config, tmp_path / "run", resume=True, progress=False)
    assert not again.finished and "token budget" in (again.stopped_reason or "")
    assert stable(tmp_path / "run") == before


def test_cli_stops_at_the_budget_and_resumes_with_a_higher_one(tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    common = ["--llm", "scripted", "--iterations", "8", "--concurrency", "2", "--proxy",
              "params", "--batch-size", "8", "--population", "16", "--no-progress"]
    first = runner.invoke(app, ["search", *common, "--out", str(run), "--max-total-tokens",
                                "3000", "--price-in", "1", "--price-out", "2"])
    assert first.exit_code == 3, first.output
    assert "token budget reached" in first.output
    bad = runner.invoke(app, ["search", "--resume", str(run), "--llm", "openai:x"])
    assert bad.exit_code == 2 and "--max-cost" in bad.output
    second = runner.invoke(app, ["search", "--resume", str(run), "--max-total-tokens",
                                 "1000000", "--no-progress"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.output.splitlines()[-1])["finished"]
    assert len([e for e in read_events(run) if e.phase == "search"]) == 8


def test_resuming_with_the_budget_turned_off_runs_to_the_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["--llm", "scripted", "--iterations", "8", "--concurrency", "2", "--proxy",
              "params", "--batch-size", "8", "--population", "16", "--no-progress"]
    first = CliRunner().invoke(app, ["search", *common, "--out", str(run),
                                     "--max-total-tokens", "3000"])
    assert first.exit_code == 3 and "token budget reached" in first.output
    for off in ("none", "0"):  # "0" again on the finished run: nothing to do, still finished
        again = CliRunner().invoke(app, ["search", "--resume", str(run),
                                         "--max-total-tokens", off, "--no-progress"])
        assert again.exit_code == 0, again.output
        assert json.loads(again.output.splitlines()[-1])["finished"]
    assert load_config(run / "config.toml").max_total_tokens is None
    assert len([e for e in read_events(run) if e.phase == "search"]) == 8


def test_a_compare_budget_turned_off_on_a_re_run(tmp_path: Path) -> None:
    from nasagent.agent.compare import resolve_plan, write_plan

    out = tmp_path / "cmp"
    out.mkdir()
    plan = resolve_plan(out, overrides={"llm": "scripted", "max_total_tokens": 10_000,
                                        "max_cost": 1.0, **PRICED}, seeds=[0])
    write_plan(plan, out / "compare.toml")
    lifted = resolve_plan(out, overrides={"max_total_tokens": "none", "max_cost": 0})
    assert (lifted.config.max_total_tokens, lifted.config.max_cost) == (None, None)
    assert lifted.run_config("llm", 0).max_total_tokens is None
    kept = resolve_plan(out, overrides={"max_cost": "none"})
    assert (kept.config.max_total_tokens, kept.config.max_cost) == (10_000, None)


def test_replay_compares_spend_only_where_the_recorded_log_holds_it() -> None:
    from nasagent.agent.outcomes import Outcome
    from nasagent.agent.replay import compare_events
    from nasagent.agent.runlog import Event

    old = {"iteration": 1, "mutator": "llm", "parent": "p", "parent_score": None,
           "outcome": "invalid", "arch": None, "score": None, "tokens": 30}
    spent = {**old, "tokens_in": 20, "tokens_out": 10, "cost_usd": 0.001}
    replayed = Event.model_validate(spent)
    assert compare_events([Event.model_validate(old)], [replayed]) == []
    recorded = Event.model_validate({**spent, "cost_usd": 0.002})
    (difference,) = compare_events([recorded], [replayed])
    assert difference.fields == {"cost_usd": (0.002, 0.001)}
    assert replayed.outcome is Outcome.INVALID
