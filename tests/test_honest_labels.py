"""Honest labels and exit codes: every arm names its backend and model, estimated tokens say so,
runs that stopped or whose LLM calls all failed are not counted, and the report says what ran."""

from __future__ import annotations

import asyncio
import json
import math
import random
import shutil
from pathlib import Path

import pytest
from test_compare import FakeRun, tiny_plan
from typer.testing import CliRunner

import nasagent
import nasagent.agent.cli.compare_commands  # noqa: F401  (registers the commands on the app)
import nasagent.agent.cli.search_command  # noqa: F401
from nasagent.agent.cli.app import app
from nasagent.agent.compare import make_plan, run_compare
from nasagent.agent.config import RunConfig
from nasagent.agent.demo import DEFAULT_TRANSCRIPT, demo_plan, transcript_dir
from nasagent.agent.labels import arm_label, llm_record, tokens_estimated
from nasagent.agent.llm.base import LLMRequest, Message, SamplingParams, TokenUsage
from nasagent.agent.llm.recording import CallRecord, RecordedResponse
from nasagent.agent.llm.replay import replay_record
from nasagent.agent.llm.scripted import ScriptedBackend
from nasagent.agent.outcomes import Outcome
from nasagent.agent.prompting import mutation_messages
from nasagent.agent.proposers import ProposalContext, RandomProposer, prompt_settings_for
from nasagent.agent.report import build_report, header_lines, p_value_lines, table_rows
from nasagent.agent.runlog import SUMMARY_FILE, read_json
from nasagent.agent.search import run_search
from nasagent.agent.stats import mean_range_band, smallest_p_value
from nasagent.evaluator.spaces.zennas.mutation import RandomMutator

TRANSCRIPT = transcript_dir(DEFAULT_TRANSCRIPT)
FAST = {"batch_size": 8, "proxy": "params", "concurrency": 2}


def test_each_backend_is_named_with_its_model(tmp_path: Path) -> None:
    assert arm_label("llm", RunConfig(llm="scripted")) == "llm (scripted stand-in, not a model)"
    assert arm_label("llm", RunConfig(llm="openai:gpt-4o")) == "llm (openai:gpt-4o)"
    assert arm_label("llm", RunConfig(llm="manual:q", model="claude")) == "llm (manual: claude)"
    demo_llm = demo_plan(tmp_path / "demo").run_config("llm", 0)
    assert arm_label("llm", demo_llm) == "llm (manual: Claude, recorded 2026-11-23)"
    assert arm_label("random", RunConfig(mutator="random")).startswith("random (")
    assert "no LLM" in arm_label("random", RunConfig(mutator="random"))
    assert llm_record(RunConfig(mutator="random")) is None


def test_estimated_token_counts_are_marked() -> None:
    assert tokens_estimated(RunConfig(llm="scripted"))
    assert tokens_estimated(RunConfig(llm=f"replay:{TRANSCRIPT / 'seed-0'}"))  # manual, replayed
    assert not tokens_estimated(RunConfig(llm="openai:gpt-4o"))
    assert not tokens_estimated(RunConfig(mutator="random", llm="scripted"))
    request = LLMRequest(purpose="mutation", messages=(Message(role="user", content="hi"),),
                         params=SamplingParams(model="m"))
    for backend in ("manual:q", "scripted", "openai:gpt-4o"):
        record = CallRecord.of(request, backend, None, None).model_copy(update={
            "response": RecordedResponse(text="[]", finish_reason="stop", latency_s=0.0,
                                         usage=TokenUsage(prompt_tokens=3), attempts=1,
                                         model=None)})
        assert replay_record(record).usage.estimated is (backend != "openai:gpt-4o")


def test_scripted_backend_marks_its_tokens_as_estimates() -> None:
    config = RunConfig(llm="scripted")
    messages = mutation_messages(config.seed_arch, 1.0, prompt_settings_for(config))
    request = LLMRequest(purpose="mutation", params=SamplingParams(model="scripted"),
                         messages=tuple(Message.model_validate(m) for m in messages))
    response = asyncio.run(ScriptedBackend("zennas-cifar").complete(request))
    assert response.usage.estimated


def test_run_summary_names_the_llm_or_none(tmp_path: Path) -> None:
    run_search(RunConfig(mutator="random", iterations=2, **FAST), tmp_path / "r", progress=False)
    assert read_json(tmp_path / "r" / SUMMARY_FILE)["llm"] is None
    run_search(RunConfig(llm="scripted", iterations=2, **FAST), tmp_path / "s", progress=False)
    llm = read_json(tmp_path / "s" / SUMMARY_FILE)["llm"]
    assert llm["label"] == "scripted stand-in, not a model" and llm["tokens_estimated"]


class AlwaysFails:
    name = "failing"

    async def complete(self, request: LLMRequest) -> object:
        from nasagent.agent.llm.base import LLMError

        raise LLMError("endpoint unreachable", kind="connection")

    async def aclose(self) -> None:
        return None


def test_a_run_whose_llm_calls_all_failed_is_not_finished(tmp_path: Path) -> None:
    config = RunConfig(llm="scripted", iterations=3, **FAST)
    result = run_search(config, tmp_path / "run", progress=False, backend=AlwaysFails())
    assert not result.finished and "all 3 proposals failed" in (result.stopped_reason or "")
    summary = read_json(tmp_path / "run" / SUMMARY_FILE)
    assert summary["finished"] is False and "failed at the LLM call" in summary["stopped_reason"]


def test_search_exits_non_zero_when_every_llm_call_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(app, [
        "search", "--llm", f"replay:{empty}", "--iterations", "2", "--proxy", "params",
        "--batch-size", "8", "--out", str(tmp_path / "run"), "--no-progress",
    ])
    assert result.exit_code == 3 and "all 2 proposals failed" in result.output


def test_compare_flags_stopped_and_missing_runs_and_report_exits_non_zero(
    tmp_path: Path
) -> None:
    run_compare(tiny_plan(seeds=3, iterations=6), tmp_path,
                run=FakeRun(stop_first=(("llm", 1),)), progress=False)
    shutil.rmtree(tmp_path / "random" / "seed-2")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert "llm seed 1" in result.output and "did not finish" in result.output
    assert "random seed 2" in result.output and "missing" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["arms"]["llm"]["counted_seeds"] == [0, 2]
    assert summary["arms"]["llm"]["best_at_budget"]["n"] == 2
    header, _ = table_rows(summary)
    assert header[1] == "llm (openai:gpt-4o) (n=2)"
    assert "Incomplete runs" in (tmp_path / "report.html").read_text()


def test_report_counts_the_seeds_of_compare_toml_only(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=2, iterations=4), tmp_path, run=FakeRun(), progress=False)
    shutil.copytree(tmp_path / "llm" / "seed-0", tmp_path / "llm" / "seed-0-replay")
    shutil.copytree(tmp_path / "llm" / "seed-1", tmp_path / "llm" / "seed-7")
    summary = build_report(tmp_path).summary
    assert summary["arms"]["llm"]["seeds"] == [0, 1] and summary["problems"] == []
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_report_header_and_version(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=3, iterations=5), tmp_path, run=FakeRun(), progress=False)
    summary = build_report(tmp_path).summary
    header = summary["header"]
    assert header["tool"] == f"nasagent {nasagent.__version__}"
    assert header["seeds"] == [0, 1, 2] and header["iterations"] == 5
    assert header["search_space"] == "zennas-cifar" and header["budgets"]["max_params"] == 1e6
    assert header["proxy"]["name"] == "gradnorm" and header["proxy"]["batch_size"] == 8
    assert header["date"] == "1970-01-01"  # the synthetic events' timestamps
    page = (tmp_path / "report.html").read_text()
    assert f"nasagent {nasagent.__version__}" in page and "llm (openai:gpt-4o)" in page
    assert "smallest p reachable with these seeds is 0.05" in p_value_lines(summary)[0]
    version = CliRunner().invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"nasagent {nasagent.__version__}"


def test_the_baseline_is_not_measured_against_itself(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=2, iterations=4), tmp_path, run=FakeRun(), progress=False)
    summary = build_report(tmp_path).summary
    (test,) = json.loads((tmp_path / "summary.json").read_text())["comparisons"]
    # 2 vs 2 seeds: exact, recorded as such, and never below the floor it states
    assert test["method"] == "exact" and test["assignments"] == 6
    assert test["p_value"] >= test["smallest_p_value"] >= 1 / 6
    assert "(exact, over all 6 assignments" in p_value_lines(summary)[0]
    _, rows = table_rows(summary)
    reach = next(row for row in rows if row[0].startswith("iterations to reach"))
    assert reach[2] == "- (baseline)" and reach[1] != "- (baseline)"


def test_best_so_far_band_is_over_all_seeds_and_within_their_range() -> None:
    nan = math.nan
    band = mean_range_band([[1.0, 2.0, 4.0], [3.0, nan, 8.0], [5.0, 6.0, 6.0]])
    assert band.mean[0] == 3.0 and math.isnan(band.mean[1]) and band.mean[2] == 6.0
    assert (band.low[0], band.high[0]) == (1.0, 5.0) and (band.low[2], band.high[2]) == (4.0, 8.0)
    assert smallest_p_value(3, 3) == pytest.approx(0.05) and smallest_p_value(0, 3) is None
    assert smallest_p_value(5, 5) == pytest.approx(1 / 252)


def test_a_random_child_identical_to_its_parent_is_no_change(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(mutator="random", **FAST)
    monkeypatch.setattr(RandomMutator, "mutate", lambda self, parent, num_replaces: parent)
    context = ProposalContext(iteration=1, parent=config.seed_arch, parent_score=1.0,
                              num_replaces=1, rng=random.Random(0))
    proposal = asyncio.run(RandomProposer(config).propose(context))
    assert proposal.outcome is Outcome.NO_CHANGE


def test_demo_exits_non_zero_and_names_a_run_that_did_not_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasagent.agent.cli.demo_command  # noqa: F401
    import nasagent.agent.compare as compare_module

    fake = FakeRun(stop_first=(("llm", 2),))
    monkeypatch.setattr(compare_module, "_default_run", lambda: fake)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--no-progress"])
    assert result.exit_code == 3, result.output
    assert "llm seed 2" in result.output and "resume with: nasagent demo" in result.output


# ---- one description per arm; estimated tokens and costs are marked --------------------------

ESTIMATES = {
    "stand_in": {"llm": "scripted"},
    "priced": {"llm": "scripted", "model": "gpt-4o"},  # a price, but estimated tokens
    "random": {"mutator": "random"},
}


@pytest.fixture(scope="module")
def estimated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A real comparison of two scripted arms (one priced) and random, one seed each."""
    out = tmp_path_factory.mktemp("estimated")
    config = RunConfig(iterations=3, population=8, reflection=False, **FAST)
    plan = make_plan(config, list(ESTIMATES), [0], defined=ESTIMATES)
    result = run_compare(plan, out, progress=False)
    assert result.report is not None and not result.stopped
    return out, result.report.summary


def row(summary: dict, label: str) -> list[str]:
    _, rows = table_rows(summary)
    return next(r for r in rows if r[0] == label)


def test_estimated_tokens_are_marked_in_both_token_rows(estimated: tuple[Path, dict]) -> None:
    _, summary = estimated
    for label in ("tokens (sum / per seed)", "tokens in / out (sum)"):
        stand_in, priced, rand = row(summary, label)[1:]
        assert stand_in.startswith("~") and stand_in.endswith(" (estimated)"), label
        assert priced.startswith("~") and priced.endswith(" (estimated)"), label
        assert rand == "0 / 0", label
    metered = {**summary, "arms": {arm: {**stats, "tokens_estimated": False}
                                   for arm, stats in summary["arms"].items()}}
    assert "~" not in row(metered, "tokens in / out (sum)")[1]


def test_a_cost_from_estimated_tokens_is_marked_and_an_unknown_one_says_so(
    estimated: tuple[Path, dict],
) -> None:
    out, summary = estimated
    stand_in, priced, rand = row(summary, "cost USD (sum / per seed)")[1:]
    assert stand_in == "unknown (no price for 1 run)"
    assert summary["arms"]["priced"]["cost_usd"]["sum"] > 0
    assert priced.startswith("~") and priced.endswith(" (estimated)")
    assert rand == "0.0000 / 0.0000"  # the random arm makes no call: exactly 0, measured
    assert summary["spend"]["estimated_arms"] == ["stand_in", "priced"]
    html = (out / "report.html").read_text()
    assert "the counts of stand_in, priced are estimates" in html
    assert "~" + priced.lstrip("~").split(" (")[0] in html


def test_one_description_names_each_arm_everywhere(
    estimated: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, summary = estimated
    import nasagent.agent.report as report_module

    legends: list[dict[str, str]] = []
    for name in ("plot_best_so_far", "plot_score_distribution"):
        monkeypatch.setattr(report_module, name,
                            lambda *args: legends.append(dict(args[-1])) or [])
    rebuilt = build_report(out).summary
    labels = {arm: stats["label"] for arm, stats in rebuilt["arms"].items()}
    assert labels == {"stand_in": "stand_in (scripted stand-in, not a model)",
                      "priced": "priced (scripted stand-in, not a model)",
                      "random": "random (Zen-NAS random mutation, no LLM)"}
    assert legends == [labels, labels]
    header, _ = table_rows(rebuilt)
    assert header[1:] == [f"{label} (n=1)" for label in labels.values()]
    for arm, stats in rebuilt["arms"].items():
        assert stats["label"] == f"{arm} ({stats['backend']['description']})"
    assert rebuilt["arms"]["priced"]["backend"]["model"] is None  # a stand-in is no model
    assert set(labels.values()) <= set(header_lines(rebuilt))
