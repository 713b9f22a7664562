"""Named arms: [arms.NAME] in the config, fairness checks, every arm against the baseline with
Holm's correction, the backend of each arm in the report, and a comparison-wide budget."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli.compare_commands  # noqa: F401  (registers the commands on the app)
import nasagent.agent.compare as compare_module
from nasagent.agent.cli.app import app
from nasagent.agent.compare import CompareError, read_plan, resolve_plan, run_compare
from nasagent.agent.config import ConfigError, load_config
from nasagent.agent.report import table_rows
from nasagent.agent.runlog import read_events
from tests.test_compare import FakeRun

CONFIG = """\
iterations = 10
batch_size = 8
baseline = "random"

[prices."gpt-4o"]
input = 2.5
output = 10.0

[arms.gpt4o]
llm = "openai:gpt-4o"

[arms.stand_in]
llm = "scripted"
reflection = false
population = 32

[arms.random]
mutator = "random"
"""


def config_file(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "compare.config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_arms_come_from_the_config_in_file_order(tmp_path: Path) -> None:
    plan = resolve_plan(tmp_path / "out", config_path=config_file(tmp_path), seeds=[0, 1])
    assert plan.arms == ("gpt4o", "stand_in", "random") and plan.baseline == "random"
    gpt, stand_in = plan.run_config("gpt4o", 1), plan.run_config("stand_in", 1)
    assert (gpt.llm, gpt.reflection, gpt.population) == ("openai:gpt-4o", True, 512)
    assert (stand_in.llm, stand_in.reflection, stand_in.population) == ("scripted", False, 32)
    assert str(plan.run_config("random", 1).mutator) == "random"
    for key in ("iterations", "proxy", "max_params", "search_space", "batch_size", "seed"):
        assert getattr(gpt, key) == getattr(stand_in, key), key


def test_built_in_arms_still_work_next_to_named_ones(tmp_path: Path) -> None:
    plan = resolve_plan(tmp_path / "out", config_path=config_file(tmp_path),
                        arms=["llm", "stand_in", "random"], seeds=[0])
    assert str(plan.run_config("llm", 0).mutator) == "llm"
    with pytest.raises(KeyError, match="valid: gpt4o, llm, oracle, random, stand_in"):
        resolve_plan(tmp_path / "out", config_path=config_file(tmp_path), arms=["gpt5"])


@pytest.mark.parametrize("key, value", [
    ("proxy", '"synflow"'), ("iterations", "99"), ("max_params", "2e6"), ("seed", "3"),
    ("search_space", '"all"'), ("resolution", "64"), ("max_cost", "5.0"),
])
def test_an_arm_may_not_change_a_shared_setting(tmp_path: Path, key: str, value: str) -> None:
    path = config_file(tmp_path, CONFIG + f"\n[arms.unfair]\n{key} = {value}\n")
    with pytest.raises(CompareError, match=f"arm 'unfair' sets {key}, which every arm shares"):
        resolve_plan(tmp_path / "out", config_path=path)


def test_bad_arm_settings_and_baselines_are_one_line_errors(tmp_path: Path) -> None:
    bad = config_file(tmp_path, CONFIG + '\n[arms.broken]\nreflection = "maybe"\n')
    with pytest.raises(ConfigError, match=r"\[arms\.broken\]: reflection"):
        resolve_plan(tmp_path / "out", config_path=bad)
    typo = config_file(tmp_path, CONFIG + '\n[arms.typo]\nllm_modle = "x"\n')
    with pytest.raises(ConfigError, match="llm_modle"):
        resolve_plan(tmp_path / "out", config_path=typo)
    with pytest.raises(CompareError, match="baseline 'gpt4o' is not one of the arms"):
        resolve_plan(tmp_path / "out", config_path=config_file(tmp_path, CONFIG.replace(
            'baseline = "random"', 'baseline = "gpt4o"')), arms=["stand_in", "random"])


def test_a_search_reads_the_same_config_file_and_ignores_the_arms(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path))
    assert config.iterations == 10 and "gpt-4o" in config.prices


def test_compare_toml_records_the_arms_so_a_rerun_resumes(tmp_path: Path) -> None:
    path, out = config_file(tmp_path), tmp_path / "out"
    plan = resolve_plan(out, config_path=path, seeds=[0, 1])
    fake = FakeRun(stop_first=(("llm", 1),))
    first = run_compare(plan, out, run=fake, progress=False)
    assert first.stopped
    assert read_plan(out / "compare.toml") == plan
    assert resolve_plan(out) == plan
    assert resolve_plan(out, config_path=path, seeds=[0, 1]) == plan
    changed = config_file(tmp_path, CONFIG.replace("population = 32", "population = 64"))
    with pytest.raises(CompareError, match="arm_settings"):
        resolve_plan(out, config_path=changed, seeds=[0, 1])
    again = run_compare(resolve_plan(out), out, run=fake, progress=False)
    assert not again.stopped


@pytest.fixture(scope="module")
def three_arms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One comparison of gpt4o, stand_in and random over 4 seeds (fake runs), and its summary."""
    out = tmp_path_factory.mktemp("three-arms")
    plan = resolve_plan(out, config_path=config_file(out), seeds=[0, 1, 2, 3])
    result = run_compare(plan, out, run=FakeRun(), progress=False)
    assert result.report is not None
    return out, result.report.summary


def test_every_arm_is_tested_against_the_baseline_with_holm(
    three_arms: tuple[Path, dict],
) -> None:
    tmp_path, summary = three_arms
    tests = {test["arm"]: test for test in summary["comparisons"]}
    assert set(tests) == {"gpt4o", "stand_in"}
    for test in tests.values():
        assert test["baseline"] == "random" and test["family"] == 2
        assert test["p_holm"] >= test["p_value"]
    with (tmp_path / "best_so_far.csv").open() as handle:
        assert {row["arm"] for row in csv.DictReader(handle)} == {"gpt4o", "stand_in", "random"}
    html = (tmp_path / "report.html").read_text()
    assert "Holm-adjusted p" in html and "Holm's correction" in html


def test_the_report_names_each_arm_backend_and_the_shared_settings(
    three_arms: tuple[Path, dict],
) -> None:
    tmp_path, summary = three_arms
    backends = {arm: stats["backend"] for arm, stats in summary["arms"].items()}
    assert backends["gpt4o"]["model"] == "gpt-4o"
    assert backends["stand_in"] == {"mutator": "llm", "llm": "scripted", "model": None,
                                    "description": "scripted stand-in, not a model"}
    assert backends["random"]["llm"] is None
    assert backends["gpt4o"]["description"] == "openai:gpt-4o"
    for arm, stats in summary["arms"].items():  # one description per arm, in every place
        assert stats["label"] == f"{arm} ({stats['backend']['description']})"
        assert "llm" not in stats
    assert summary["shared_settings"]["iterations"] == 10
    assert summary["shared_settings"]["proxy"] == "gradnorm"
    html = (tmp_path / "report.html").read_text()
    assert "<td>openai:gpt-4o</td>" in html and "scripted stand-in, not a model" in html
    assert "Zen-NAS random mutation, no LLM" in html
    header, _ = table_rows(summary)
    assert header[1:] == [f"{stats['label']} (n=4)" for stats in summary["arms"].values()]
    assert 'id="shared"' in html and "search_space = zennas-cifar" in html


def test_a_custom_baseline(tmp_path: Path) -> None:
    text = CONFIG.replace('baseline = "random"', 'baseline = "stand_in"')
    plan = resolve_plan(tmp_path, config_path=config_file(tmp_path, text), seeds=[0, 1, 2])
    result = run_compare(plan, tmp_path, run=FakeRun(), progress=False)
    assert result.report is not None
    tests = result.report.summary["comparisons"]
    assert {t["arm"] for t in tests} == {"gpt4o", "random"}
    assert {t["baseline"] for t in tests} == {"stand_in"}


def test_a_comparison_budget_is_shared_equally_by_its_llm_runs(tmp_path: Path) -> None:
    plan = resolve_plan(tmp_path, config_path=config_file(tmp_path, CONFIG.replace(
        'llm = "scripted"', 'llm = "openai:gpt-4o-mini"')), seeds=[0, 1],
        overrides={"max_cost": 2.0, "max_total_tokens": 1001})
    assert plan.llm_runs() == 4
    assert plan.run_config("gpt4o", 0).max_cost == pytest.approx(0.5)
    assert plan.run_config("stand_in", 1).max_total_tokens == 250
    assert plan.run_config("random", 0).max_cost is None
    with pytest.raises(ConfigError, match="arm 'stand_in': max_cost needs the price"):
        resolve_plan(tmp_path / "other", config_path=config_file(tmp_path),
                     overrides={"max_cost": 2.0})


def test_a_compare_stopped_at_its_budget_resumes_with_a_higher_one(tmp_path: Path) -> None:
    flags = {"llm": "scripted", "iterations": 6, "batch_size": 8, "proxy": "params",
             "concurrency": 2, "population": 16, "price_in": 1.0, "price_out": 2.0}
    cut, straight = tmp_path / "cut", tmp_path / "straight"
    plan = resolve_plan(cut, overrides={**flags, "max_total_tokens": 2 * 5000}, seeds=[0, 1])
    first = run_compare(plan, cut, progress=False)
    assert first.stopped and all("token budget" in (r.stopped_reason or "")
                                 for r in first.stopped)
    assert {r.arm for r in first.stopped} == {"llm"}
    higher = resolve_plan(cut, overrides={"max_total_tokens": 2 * 12000})
    assert higher.config.max_total_tokens == 24000
    assert read_plan(cut / "compare.toml").config.max_total_tokens == 10000
    done = run_compare(higher, cut, progress=False)
    assert read_plan(cut / "compare.toml").config.max_total_tokens == 24000
    assert done.report is not None
    spend = done.report.summary["spend"]
    assert spend["budgets"] == {"max_cost": None, "max_total_tokens": 24000}
    assert 0 < spend["tokens_in"] + spend["tokens_out"] and spend["cost_usd"] > 0
    assert "token budget 24000, shared equally" in (cut / "report.html").read_text()
    fresh = resolve_plan(straight, overrides={**flags, "max_total_tokens": 24000}, seeds=[0, 1])
    run_compare(fresh, straight, progress=False)
    for run in ("llm/seed-0", "llm/seed-1", "random/seed-0"):
        assert [e.stable_view() for e in read_events(cut / run)] == [
            e.stable_view() for e in read_events(straight / run)], run


def test_cli_compare_with_named_arms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare_module, "_default_run", lambda: FakeRun())
    result = CliRunner().invoke(app, [
        "compare", "--config", str(config_file(tmp_path)), "--seeds", "3",
        "--out", str(tmp_path / "out"), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "gpt4o vs random" in result.output and "stand_in vs random" in result.output
    assert "Holm-adjusted p" in result.output
    unfair = config_file(tmp_path, CONFIG + '\n[arms.unfair]\nproxy = "zen"\n')
    bad = CliRunner().invoke(app, ["compare", "--config", str(unfair), "--out",
                                   str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "which every arm shares" in bad.output
    assert "Traceback" not in bad.output


def test_the_readme_example_is_a_valid_comparison(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("# compare.config.toml", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    plan = resolve_plan(tmp_path, config_path=config_file(tmp_path, block), seeds=range(5))
    assert plan.arms == ("gpt4o", "qwen", "noreflect", "random")
    assert plan.run_config("noreflect", 0).reflection is False
    assert plan.run_config("qwen", 0).max_cost == pytest.approx(200.0 / 15)
