"""`nasagent compare`: arms x seeds as run directories, resume, and the derived artifacts.

Most tests inject a fake run function that writes a synthetic run directory (config.toml,
events.jsonl, summary.json) in the format of agent.search; one test drives the real search.
"""

from __future__ import annotations

import csv
import json
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli.compare_commands  # noqa: F401  (registers the commands on the app)
import nasagent.agent.compare as compare_module
from nasagent.agent.cli.app import app
from nasagent.agent.compare import (
    CompareError,
    ComparePlan,
    RunState,
    make_plan,
    read_plan,
    resolve_plan,
    run_compare,
    run_state,
)
from nasagent.agent.config import RunConfig, load_config, write_config
from nasagent.agent.outcomes import Outcome
from nasagent.agent.runlog import EVENTS_FILE, SUMMARY_FILE, Event, append_jsonl, write_json

SEED_ARCH = RunConfig().seed_arch
DERIVED = (
    "summary.json", "report.html", "best_so_far.png", "best_so_far.pdf", "best_so_far.csv",
    "score_distribution.png", "score_distribution.pdf", "score_distribution.csv",
)


def arch_for(iteration: int, seed: int, mutator: str) -> str:
    # A distinct, syntactically plausible block string per proposal (never parsed here).
    return f"{SEED_ARCH}#{mutator}-{seed}-{iteration}"


def synthetic_events(config: RunConfig, upto: int | None = None) -> list[Event]:
    """A seeded log: the LLM arm climbs faster than random; every 5th proposal is invalid."""
    rng = random.Random(f"{config.mutator}:{config.seed}")
    step = 2.0 if config.mutator == "llm" else 0.5
    events = [Event(iteration=0, phase="init", mutator="seed", parent=None, parent_score=None,
                    outcome=Outcome.OK, arch=SEED_ARCH, score=10.0, params=1e5, layers=6)]
    best = 10.0
    calls, tokens = (1, 100) if config.mutator == "llm" else (0, 0)
    for i in range(1, (upto or config.iterations) + 1):
        if i % 5 == 0:
            events.append(Event(iteration=i, mutator=str(config.mutator), parent=SEED_ARCH,
                                parent_score=10.0, outcome=Outcome.INVALID, arch=None, score=None,
                                best_score=best, llm_calls=calls, tokens=tokens))
            continue
        score = 10.0 + step * i + rng.uniform(-0.1, 0.1)
        best = max(best, score)
        events.append(Event(iteration=i, mutator=str(config.mutator), parent=SEED_ARCH,
                            parent_score=10.0, outcome=Outcome.OK,
                            arch=arch_for(i, config.seed, str(config.mutator)), score=score,
                            params=2e5 + i, flops=1e7, layers=7, best_score=best,
                            llm_calls=calls, tokens=tokens, timestamp=1000.0 + i))
    return events


def write_synthetic_run(
    config: RunConfig, run_dir: Path, *, upto: int | None = None, start: int = 0
) -> bool:
    """Write (or extend) a run directory; returns whether it reached the budget."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(config, run_dir / "config.toml")
    for event in synthetic_events(config, upto)[start:]:
        append_jsonl(run_dir / EVENTS_FILE, event.model_dump(mode="json"))
    finished = upto is None or upto >= config.iterations
    write_json(run_dir / SUMMARY_FILE, {
        "finished": finished, "iterations": config.iterations, "proxy": config.proxy,
        "higher_is_better": True, "wall_seconds": 1.5,
    })
    return finished


@dataclass
class FakeResult:
    run_dir: Path
    finished: bool
    stopped_reason: str | None = None


@dataclass
class FakeRun:
    """Stands in for agent.search.run_search; `stop_first` runs stop halfway the first time."""

    stop_first: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def __call__(
        self, config: RunConfig, run_dir: Path, *, resume: bool = False, progress: bool = True,
        label: str = "search",
    ) -> FakeResult:
        key = (str(config.mutator), config.seed)
        assert label.endswith(f" seed {config.seed}")  # the progress bar names arm and seed
        self.calls.append((*key, resume))
        if key in self.stop_first and not resume:
            write_synthetic_run(config, run_dir, upto=config.iterations // 2)
            return FakeResult(run_dir, False, "stopped for the test")
        logged = len(synthetic_events(config, config.iterations // 2)) if resume else 0
        write_synthetic_run(config, run_dir, start=logged)
        return FakeResult(run_dir, True)


def tiny_plan(seeds: int = 4, iterations: int = 10) -> ComparePlan:
    config = load_config(None, {"iterations": iterations, "batch_size": 8})
    return make_plan(config, ("llm", "random"), range(seeds))


def test_compare_writes_every_run_dir_and_artifact(tmp_path: Path) -> None:
    fake = FakeRun()
    result = run_compare(tiny_plan(), tmp_path, run=fake, progress=False)
    assert len(fake.calls) == 8 and not result.stopped
    for arm in ("llm", "random"):
        for seed in range(4):
            run_dir = tmp_path / arm / f"seed-{seed}"
            assert load_config(run_dir / "config.toml").mutator == arm
            assert load_config(run_dir / "config.toml").seed == seed
    for name in (*DERIVED, "compare.toml"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "best_so_far.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "best_so_far.pdf").read_bytes().startswith(b"%PDF")


def test_compare_summary_has_the_promised_statistics(tmp_path: Path) -> None:
    result = run_compare(tiny_plan(), tmp_path, run=FakeRun(), progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.report is not None and result.report.summary == summary
    llm, rand = summary["arms"]["llm"], summary["arms"]["random"]
    assert llm["best_at_budget"]["n"] == 4 and llm["best_at_budget"]["std"] is not None
    assert llm["best_at_budget"]["mean"] > rand["best_at_budget"]["mean"]
    assert llm["valid_rate"] == pytest.approx(0.8) and llm["duplicate_rate"] == 0.0
    assert llm["llm_calls"] == {"sum": 40.0, "mean": 10.0}
    assert rand["tokens"] == {"sum": 0.0, "mean": 0.0}
    assert llm["wall_seconds"] == {"sum": 6.0, "mean": 1.5}
    # LLM reaches the random arm's median final best (~14.5) at iteration 3. Half the random
    # seeds end below their own median, so with 4 seeds the median seed is "not reached".
    assert llm["iterations_to_reach_baseline"]["median"] == 3.0
    # only other arms are measured against the baseline's median
    assert rand["iterations_to_reach_baseline"] == {
        "median": None, "per_seed": None, "reached": None,
        "reason": "the baseline arm sets the threshold"}
    (test,) = summary["comparisons"]
    assert test["arm"] == "llm" and test["alternative"] == "greater"
    assert test["p_value"] == pytest.approx(1 / 70)  # 4 vs 4, fully separated, exact
    assert test["smallest_p_value"] == pytest.approx(1 / 70)  # the floor 4 vs 4 seeds allow
    assert llm["best"]["arch"] == arch_for(9, llm["best"]["seed"], "llm")


def test_compare_curve_csv_has_per_seed_columns(tmp_path: Path) -> None:
    run_compare(tiny_plan(seeds=2, iterations=5), tmp_path, run=FakeRun(), progress=False)
    with (tmp_path / "best_so_far.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "iteration", "arm", "mean", "min", "max", "std", "n", "seed_0", "seed_1"]
    assert len(rows) == 10 and {r["arm"] for r in rows} == {"llm", "random"}
    first_llm = rows[0]
    assert first_llm["n"] == "2"
    per_seed = [float(first_llm["seed_0"]), float(first_llm["seed_1"])]
    assert float(first_llm["mean"]) == pytest.approx(sum(per_seed) / 2)
    assert (float(first_llm["min"]), float(first_llm["max"])) == (min(per_seed), max(per_seed))


def test_rerun_skips_finished_runs(tmp_path: Path) -> None:
    plan = tiny_plan(seeds=2, iterations=4)
    run_compare(plan, tmp_path, run=FakeRun(), progress=False)
    again = FakeRun()
    result = run_compare(plan, tmp_path, run=again, progress=False)
    assert again.calls == []
    assert {r.state_before for r in result.runs} == {RunState.FINISHED}


def test_rerun_resumes_partial_runs(tmp_path: Path) -> None:
    plan = tiny_plan(seeds=2, iterations=6)
    first = FakeRun(stop_first=(("llm", 1),))
    result = run_compare(plan, tmp_path, run=first, progress=False)
    assert [(r.arm, r.seed) for r in result.stopped] == [("llm", 1)]
    assert result.report is not None
    assert str(tmp_path / "llm" / "seed-1") in result.report.summary["incomplete_runs"]
    second = FakeRun()
    result = run_compare(plan, tmp_path, run=second, progress=False)
    assert second.calls == [("llm", 1, True)] and not result.stopped
    events = (tmp_path / "llm" / "seed-1" / EVENTS_FILE).read_text().splitlines()
    assert len(events) == 7  # the seed + 6 iterations, none written twice


def test_run_state(tmp_path: Path) -> None:
    config = load_config(None, {"iterations": 4})
    assert run_state(tmp_path / "x", config) is RunState.NEW
    write_synthetic_run(config, tmp_path / "x", upto=2)
    assert run_state(tmp_path / "x", config) is RunState.PARTIAL
    write_synthetic_run(config, tmp_path / "x", start=3)
    assert run_state(tmp_path / "x", config) is RunState.FINISHED
    longer = load_config(None, {"iterations": 8})
    assert run_state(tmp_path / "x", longer) is RunState.PARTIAL


def test_plan_round_trips_and_runs_share_everything_but_arm_and_seed(tmp_path: Path) -> None:
    plan = make_plan(load_config(None, {"iterations": 7, "proxy": "synflow", "mutator": "random",
                                        "seed": 9}), ("random", "llm"), (3, 5))
    run_compare(plan, tmp_path, run=FakeRun(), progress=False)
    assert read_plan(tmp_path / "compare.toml") == plan
    stored = tomllib.loads((tmp_path / "compare.toml").read_text())
    assert "mutator" not in stored["config"]  # only the arms set it
    assert stored["arm_settings"] == {"random": {"mutator": "random"}, "llm": {"mutator": "llm"}}
    llm, rand = plan.run_config("llm", 5), plan.run_config("random", 5)
    assert llm.model_dump(exclude={"mutator"}) == rand.model_dump(exclude={"mutator"})
    assert (llm.seed, llm.iterations, llm.proxy) == (5, 7, "synflow")


def test_resolve_plan_uses_or_checks_the_stored_plan(tmp_path: Path) -> None:
    stored = tiny_plan(seeds=2, iterations=4)
    run_compare(stored, tmp_path, run=FakeRun(), progress=False)
    assert resolve_plan(tmp_path) == stored
    assert resolve_plan(tmp_path, overrides={"iterations": 4, "proxy": None}) == stored
    with pytest.raises(CompareError, match="iterations: stored 4, requested 5"):
        resolve_plan(tmp_path, overrides={"iterations": 5})
    with pytest.raises(CompareError, match="seeds"):
        resolve_plan(tmp_path, seeds=[0, 1, 2])


def test_resolve_plan_defaults_for_a_new_directory(tmp_path: Path) -> None:
    plan = resolve_plan(tmp_path / "new", overrides={"iterations": 3})
    assert plan.arms == ("llm", "random") and plan.seeds == (0, 1, 2, 3, 4)
    with pytest.raises(KeyError, match="valid: llm, oracle, random"):
        resolve_plan(tmp_path / "new", arms=["llm", "evolution"])
    with pytest.raises(CompareError, match="twice"):
        resolve_plan(tmp_path / "new", seeds=[1, 1])
    with pytest.raises(CompareError, match="at least one value in seeds"):
        resolve_plan(tmp_path / "new", seeds=[])


def test_cli_compare_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun()
    monkeypatch.setattr(compare_module, "_default_run", lambda: fake)
    out = tmp_path / "cmp"
    args = ["compare", "--out", str(out), "--iterations", "5", "--seed-list", "0,1,2",
            "--batch-size", "8", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "best at budget" in result.output and "p = 0.05" in result.output
    assert len(fake.calls) == 6
    clash = CliRunner().invoke(app, ["compare", "--out", str(out), "--iterations", "6"])
    assert clash.exit_code == 2 and "different comparison" in clash.output
    for name in DERIVED:
        (out / name).unlink()
    rebuilt = CliRunner().invoke(app, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert all((out / name).exists() for name in DERIVED)


def test_report_rebuilds_the_same_summary_from_logs(tmp_path: Path) -> None:
    result = run_compare(tiny_plan(seeds=3, iterations=6), tmp_path, run=FakeRun(),
                         progress=False)
    before = (tmp_path / "summary.json").read_text()
    for name in DERIVED:
        (tmp_path / name).unlink()
    from nasagent.agent.report import build_report

    rebuilt = build_report(tmp_path)
    assert (tmp_path / "summary.json").read_text() == before
    assert result.report is not None and rebuilt.summary == result.report.summary
    assert all((tmp_path / name).exists() for name in DERIVED)


def test_end_to_end_with_the_real_search(tmp_path: Path) -> None:
    config = load_config(None, {"llm": "scripted", "iterations": 3, "batch_size": 8,
                                "proxy": "params", "concurrency": 1})
    plan = make_plan(config, ("llm", "random"), (0, 1))
    result = run_compare(plan, tmp_path, progress=False)
    assert not result.stopped and result.report is not None
    summary = result.report.summary
    assert summary["incomplete_runs"] == [] and summary["proxy"] == "params"
    assert summary["arms"]["llm"]["llm_calls"]["sum"] > 0
    assert summary["arms"]["random"]["llm_calls"]["sum"] == 0
    assert summary["comparisons"][0]["arm"] == "llm"
    for name in DERIVED:
        assert (tmp_path / name).exists(), name
    again = run_compare(plan, tmp_path, progress=False)
    assert {r.state_before for r in again.runs} == {RunState.FINISHED}
    assert again.report is not None and again.report.summary == summary
