"""NAS-Bench-201 end to end: searches, neutral op names, ground truth beside every score and
never in a prompt, and a comparison whose accuracy columns are the table's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from image_data import write_imagefolder
from typer.testing import CliRunner

import nasagent.agent.cli.compare_commands  # noqa: F401  (registers the commands on the app)
import nasagent.agent.cli.search_command  # noqa: F401
from nasagent.agent.cli.app import app
from nasagent.agent.compare import make_plan, run_compare
from nasagent.agent.config import RunConfig
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.replay import replay_run
from nasagent.agent.runlog import read_events, read_json
from nasagent.agent.search import run_search
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.nb201.cell import NAMINGS, OPS

SPACE = get_space("nb201-cifar10")
TABLE = SPACE.benchmark()
FAST = {"search_space": "nb201-cifar10", "proxy": "params", "concurrency": 2}


def scripted(**changes: object) -> RunConfig:
    return RunConfig.model_validate({**FAST, "llm": "scripted", "iterations": 8,
                                     "reflect_every": 4, **changes})


def accuracy_figures(events: list[object]) -> set[str]:
    """Every truth figure of the events as a prompt could write it (2, 3 and 5 digits)."""
    figures = set()
    for event in events:
        truth = getattr(event, "truth", None) or {}
        for value in (truth.get("test_accuracy"), truth.get("test_accuracy_short")):
            if value is not None:
                figures |= {f"{value:.2f}", f"{value:.3g}", f"{value:.5g}"}
    return figures


def test_every_scored_architecture_carries_the_tables_accuracy(tmp_path: Path) -> None:
    result = run_search(scripted(), tmp_path / "run", progress=False)
    assert result.finished
    events = read_events(tmp_path / "run")
    scored = [e for e in events if e.outcome in ("ok", "duplicate")]
    assert scored and all(e.truth is not None for e in scored)
    for event in scored:
        expected = TABLE.lookup(event.arch)  # type: ignore[arg-type]
        assert event.truth == {"test_accuracy": expected.test_accuracy,
                               "test_accuracy_short": expected.short_accuracy,
                               "index": expected.index}
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["truth"]["dataset"] == "cifar10" and "NATS-Bench" in summary["truth"]["source"]
    best = read_json(tmp_path / "run" / "best.json")
    assert best["truth"]["test_accuracy"] == TABLE.lookup(best["arch"]).test_accuracy


def test_the_truth_never_reaches_a_prompt(tmp_path: Path) -> None:
    run_search(scripted(iterations=12, init_population=3), tmp_path / "run", progress=False)
    events = read_events(tmp_path / "run")
    figures = accuracy_figures(events)
    assert figures
    calls = load_calls(tmp_path / "run")
    prompts = "\n".join(m.content for call in calls for m in call.messages)
    assert any(c.purpose == "reflection" for c in calls)  # lessons see history too
    leaked = {figure for figure in figures
              if re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", prompts)}
    assert not leaked, leaked
    assert "accuracy" not in prompts.lower().replace("is not the network's accuracy", "")


def test_neutral_names_hide_the_ops_and_records_keep_the_standard_ones(tmp_path: Path) -> None:
    run = tmp_path / "neutral"
    assert run_search(scripted(op_names="neutral"), run, progress=False).finished
    calls = load_calls(run)
    sent = "\n".join(m.content for call in calls for m in call.messages)
    shown = [op for op in OPS if re.search(rf"\b{op}\b", sent.replace("None yet", ""))]
    assert not shown  # none of the benchmark's op names is shown
    assert "NAS-Bench-201" not in sent and "NATS-Bench" not in sent
    assert all(name in sent for name in NAMINGS["neutral"].spellings)
    events = read_events(run)
    archs = [e.arch for e in events if e.arch]
    assert archs and all(SPACE.canonical(arch) == arch for arch in archs)  # standard names
    assert read_json(run / "summary.json")["op_names"] == "neutral"
    replayed = replay_run(run, tmp_path / "replayed", rescore=False)
    assert replayed.identical, [d.describe() for d in replayed.differences]


def test_a_neutral_answer_is_read_back_and_a_standard_one_refused_with_the_names(
    tmp_path: Path,
) -> None:
    from nasagent.agent.response import judge_reply
    from nasagent.evaluator.validation import Constraints

    rules = Constraints(search_space="nb201-cifar10")
    neutral = SPACE.encode(SPACE.decode(SPACE.defaults.seed_arch).architecture, "neutral")
    child = neutral.replace("op_b~0|+", "op_d~0|+", 1)
    verdict = judge_reply(f'```json\n{{"arch": "{child}"}}\n```', "stop",
                          parent=SPACE.defaults.seed_arch, constraints=rules, naming="neutral")
    assert verdict.outcome == "ok" and verdict.canonical is not None
    assert verdict.canonical.startswith("|nor_conv_3x3~0|+")
    standard = judge_reply(f'```json\n{{"arch": "{SPACE.defaults.seed_arch}"}}\n```', "stop",
                           parent=SPACE.defaults.seed_arch, constraints=rules, naming="neutral")
    assert standard.outcome == "invalid"
    assert "is a standard op name" in standard.errors[0] and "op_a" in standard.errors[0]


def test_located_errors_name_the_node_the_edge_and_the_valid_ops() -> None:
    from nasagent.evaluator.validation import Constraints, check_string

    rules = Constraints(search_space="nb201-cifar10")
    report = check_string("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", rules)
    (error,) = report.error_lines()
    assert "node 1" in error and "node 0 -> node 1" in error
    assert "valid ops: avg_pool_3x3, none, nor_conv_1x1, nor_conv_3x3, skip_connect" in error
    short = check_string("|none~0|+|none~0|+|none~0|none~1|none~2|", rules).error_lines()[0]
    assert "node 2 needs exactly 2 incoming edges" in short


@pytest.mark.parametrize("arms", [("random", "oracle")])
def test_a_comparison_reports_the_tables_accuracy_of_each_runs_best(
    tmp_path: Path, arms: tuple[str, str]
) -> None:
    plan = make_plan(RunConfig.model_validate({**FAST, "iterations": 10}), arms, [0, 1, 2])
    result = run_compare(plan, tmp_path / "cmp", progress=False)
    summary = result.report.summary  # type: ignore[union-attr]
    truth = summary["truth"]
    assert truth["table"]["best_test_accuracy"] == TABLE.best()[1].test_accuracy
    for arm in arms:
        finals = []
        for seed in plan.seeds:
            best = read_json(plan.run_dir(tmp_path / "cmp", arm, seed) / "best.json")
            finals.append(TABLE.lookup(best["arch"]).test_accuracy)
        assert truth["arms"][arm]["final"]["per_seed"] == finals
        regrets = [truth["table"]["best_test_accuracy"] - value for value in finals]
        assert truth["arms"][arm]["regret"]["per_seed"] == pytest.approx(regrets)
    oracle = summary["arms"]["oracle"]
    assert oracle["reference"] and "upper bound" in oracle["label"]
    # its fitness is the table's accuracy: never measured against the proxy's threshold
    assert oracle["iterations_to_reach_baseline"]["reason"].startswith("a reference arm")
    assert [t["arm"] for t in summary["comparisons"]] == []  # no proxy test of the reference
    assert truth["comparisons"] == []  # nor of its accuracy: it is not a search method
    report = (tmp_path / "cmp" / "report.html").read_text()
    assert "true test accuracy of the best" in report and "accuracy_so_far" in report
    assert "(table accuracy, %)" in report and "- (reference arm)" in report
    assert "a reference arm is an upper bound, never tested" in report
    assert (tmp_path / "cmp" / "accuracy_so_far.csv").exists()


def test_the_oracle_arm_needs_a_space_with_a_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "compare", "--arms", "random,oracle", "--seeds", "1", "--iterations", "2",
        "--out", str(tmp_path / "cmp"), "--no-progress",
    ])
    assert result.exit_code == 2 and "zennas-cifar has none" in result.output
    assert not (tmp_path / "cmp").exists()


def test_compare_takes_real_proxy_data_and_labels_the_spaces_own_mutation(
    tmp_path: Path
) -> None:
    images = write_imagefolder(tmp_path / "images", classes=10, per_class=2, val_per_class=1,
                               side=8, held_out="test", suffix=".jpg")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, [
        "compare", "--search-space", "nb201-cifar10", "--arms", "random,oracle", "--seeds", "1",
        "--iterations", "2", "--proxy", "gradnorm", "--batch-size", "8", "--population", "4",
        "--init-population", "2", "--proxy-data", f"imagefolder:{images}", "--out", str(out),
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    run = out / "random" / "seed-0"
    config = (run / "config.toml").read_text()
    assert f'proxy_data = "imagefolder:{images}"' in config and "init_population = 2" in config
    assert read_json(run / "summary.json")["proxy_inputs"] == f"real:imagefolder:{images}"
    arm = read_json(out / "summary.json")["arms"]["random"]
    assert arm["label"] == "random (NATS-Bench REA mutation, no LLM)"


def test_search_takes_the_space_and_the_naming_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "search", "--search-space", "nb201-imagenet16", "--llm", "scripted", "--proxy", "params",
        "--iterations", "3", "--op-names", "neutral", "--out", str(out), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    config = (out / "config.toml").read_text()
    assert 'search_space = "nb201-imagenet16"' in config and 'op_names = "neutral"' in config
    assert "resolution = 16" in config and "num_classes = 120" in config
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truth"]["dataset"] == "imagenet16-120"
