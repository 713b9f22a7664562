"""No input can exhaust memory: every path that builds a network checks the estimate first.

The hostile input of issue 16 is a 2048-channel, 600-sub-layer plain block (22.6 billion
parameters, about 1.9 TB to score at batch 64): `nasagent score` allocated for 23 s on it and
the service was killed at 24 GB. Here it is refused by every door, with nothing built: the
scoring and training networks' builders are replaced by ones that fail the test if called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

import nasagent
import nasagent.agent.cli  # noqa: F401  (the package registers every command module)
import nasagent.evaluator.memory as memory
from bench.memory_estimate import CASES, run_case
from nasagent.agent.cli.app import app
from nasagent.agent.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    dump_config,
    load_config,
)
from nasagent.agent.execution import ExecutionPlan, InProcessScoring, Scoring
from nasagent.agent.outcomes import Outcome
from nasagent.agent.replay import replay_run
from nasagent.agent.runlog import EVENTS_FILE, read_events
from nasagent.agent.search import run_search
from nasagent.agent.workerpool import score_arch_string
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.memory import MB, MemoryCapError, default_cap_mb, read_cap
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.base import SearchSpace
from nasagent.evaluator.validation import Constraints

HUGE = "SuperConvK3BNRELU(3,2048,1,600)"
ZENNET_1M = (
    "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
    "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
    "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"
)
NB201_LARGEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "nor_conv_3x3~2|"
)
ORDINARY = [("zennas-cifar", CIFAR_SEED), ("zennas-cifar", ZENNET_1M),
            *((space, NB201_LARGEST) for space in ("nb201-cifar10", "nb201-cifar100",
                                                   "nb201-imagenet16"))]
SIXTEEN_GB = 16 * 2**30
OVER_CAP = "over the memory cap"
FAST = {"batch_size": 8, "population": 16}


@pytest.fixture()
def nothing_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every space's scoring and training networks fail the test if anything builds one."""
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a network over the memory cap was built")

    for space in {type(get_space("zennas-cifar")), type(get_space("nb201-cifar10"))}:
        monkeypatch.setattr(space, "scoring_model", refuse)
        monkeypatch.setattr(space, "train_model", refuse)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# ---- the cap and the estimate -----------------------------------------------------------------


def test_the_default_cap_is_half_the_machines_memory() -> None:
    assert default_cap_mb(SIXTEEN_GB) == 8192.0
    assert default_cap_mb(3 * 2**30 + 5) == 1536.0  # whole MB, rounded down
    total = memory.machine_memory()
    assert 0 < total <= psutil.virtual_memory().total
    assert read_cap("auto") == read_cap(" AUTO ") == default_cap_mb() == total // 2 // MB
    assert ScoreSettings().max_memory == RunConfig().memory_cap_mb == default_cap_mb()


def test_a_container_limit_counts_as_the_machines_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited, unlimited = tmp_path / "memory.max", tmp_path / "v1-limit"
    limited.write_text(f"{2**30}\n", encoding="ascii")
    unlimited.write_text("max\n", encoding="ascii")
    monkeypatch.setattr(memory, "CGROUP_LIMITS", (unlimited, limited, tmp_path / "missing"))
    assert memory.machine_memory() == 2**30
    monkeypatch.setattr(memory, "CGROUP_LIMITS", (unlimited,))
    assert memory.machine_memory() == psutil.virtual_memory().total


@pytest.mark.parametrize("value, cap", [
    (0, None), ("0", None), ("none", None), (None, None), (2048, 2048.0), ("1.5e3", 1500.0),
])
def test_a_cap_is_read_like_every_limit(value: object, cap: float | None) -> None:
    assert read_cap(value) == cap
    assert RunConfig(max_memory=value).memory_cap_mb == cap
    assert ScoreSettings(max_memory=value).max_memory == cap


@pytest.mark.parametrize("value", [-1, "lots", float("nan")])
def test_a_bad_cap_names_the_key_and_the_flag(value: object) -> None:
    with pytest.raises(ConfigError, match="max_memory: must be a positive number.*'auto'"):
        config_from_dict({"max_memory": value})
    code, _, err = invoke("score", CIFAR_SEED, "--max-memory", str(value))
    assert code == 2 and "--max-memory: must be a positive number" in one_error_line(err)


def test_the_config_key_round_trips_through_config_toml(tmp_path: Path) -> None:
    assert 'max_memory = "auto"' in dump_config(RunConfig())
    for given, written in ((0, 'max_memory = "none"'), (4096, "max_memory = 4096.0")):
        text = dump_config(RunConfig(max_memory=given))
        assert written in text
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        assert load_config(path).max_memory == RunConfig(max_memory=given).max_memory


@pytest.mark.parametrize("space, arch", ORDINARY)
def test_ordinary_networks_are_far_under_the_default_cap(space: str, arch: str) -> None:
    searched = get_space(space)
    estimate = searched.memory(searched.decode(arch).architecture,
                               Constraints(search_space=space), 64)
    assert estimate.bytes * 4 < default_cap_mb(SIXTEEN_GB) * MB  # a 16 GB machine's cap / 4
    assert estimate.bytes < 2.1 * 2**30


@pytest.mark.parametrize("name", ["CIFAR seed", "NB201 all skip"])
def test_the_estimate_is_above_what_a_real_scoring_needs(name: str) -> None:
    """A fresh process scores once; its peak resident memory over the memory before scoring
    is the need (python -m bench.memory_estimate measures every case and proxy)."""
    space, _, arch = next(case for case in CASES if case[1] == name)
    measured = run_case(space, arch, "gradnorm", 64, 1)
    assert measured["status"] == "ok"
    assert measured["estimate_mb"] > measured["need_mb"] > 0


def test_the_huge_block_is_refused_with_its_parts_and_the_flag(nothing_is_built: None) -> None:
    settings = ScoreSettings(max_memory=8192)
    message = settings.memory_refusal(get_space("all").decode(HUGE).architecture, "input 1")
    assert message is not None and message.startswith("input 1 needs an estimated 1,855.6 GB")
    for part in ("22,614,210,660 parameters", "GB for activations", "over the memory cap of "
                 "8.0 GB (8,192 MB)", "--max-memory MB", "max_memory", "0 or none: no cap"):
        assert part in message
    assert "\n" not in message


# ---- the evaluator and the Python API ---------------------------------------------------------


def test_score_is_the_last_line_of_defence(nothing_is_built: None) -> None:
    result = nasagent.score(HUGE, ScoreSettings(search_space="all"))
    assert result.status is ProxyStatus.OVER_BUDGET and result.score is None
    assert OVER_CAP in result.message
    # proxies computed from the analytic cost build nothing, so the cap does not apply
    counted = nasagent.score(HUGE, ScoreSettings(search_space="all", proxy="params"))
    assert counted.status is ProxyStatus.OK and counted.score == pytest.approx(2.26e10, rel=1e-2)


def test_mutate_refuses_a_parent_over_the_cap(nothing_is_built: None) -> None:
    with pytest.raises(MemoryCapError, match="^parent needs an estimated .*over the memory cap"):
        nasagent.mutate(HUGE, config={"search_space": "all", "max_params": None,
                                      "max_layers": None})


def test_mutate_marks_a_child_over_the_cap_over_budget() -> None:
    config = {"max_memory": 143, "batch_size": 8}  # the seed is 142 MB at batch 8
    children = [nasagent.mutate(CIFAR_SEED, seed=seed, config=config) for seed in range(8)]
    refused = [child for child in children if child.outcome is Outcome.OVER_BUDGET
               and any(OVER_CAP in error for error in child.errors)]
    assert refused and all(child.arch for child in refused)
    roomy = nasagent.mutate(CIFAR_SEED, seed=0, config={**config, "max_memory": None})
    assert not any(OVER_CAP in error for error in roomy.errors)


def test_run_search_refuses_a_seed_over_the_cap_before_writing(
    tmp_path: Path, nothing_is_built: None
) -> None:
    config = RunConfig(mutator="random", iterations=2, seed_arch=CIFAR_SEED, max_memory=100)
    with pytest.raises(MemoryCapError, match="^seed_arch needs an estimated 224 MB"):
        run_search(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_train_refuses_before_writing(tmp_path: Path, nothing_is_built: None) -> None:
    from nasagent.evaluator.datasets import load_data
    from nasagent.evaluator.training import Recipe, train

    with pytest.raises(MemoryCapError, match="to train at batch 128"):
        train(get_space("all").decode(HUGE).architecture, load_data("digits", 32),
              Recipe(epochs=1), tmp_path / "out", max_memory=8192)
    assert not (tmp_path / "out").exists()


# ---- the search loop and replays ----------------------------------------------------------------


def recording_scoring(scored: list[str]) -> Scoring:
    def task(arch: str, settings: ScoreSettings) -> ScoreResult:
        scored.append(arch)
        return score_arch_string(arch, settings)

    plan = ExecutionPlan(executor="local", workers=0, threads=1, cores=1)
    return Scoring(plan, InProcessScoring(1, task))


def test_a_proposal_over_the_cap_is_over_budget_and_never_scored(tmp_path: Path) -> None:
    scored: list[str] = []
    scoring = recording_scoring(scored)
    config = RunConfig(mutator="random", iterations=12, max_memory=143, **FAST)
    try:
        result = run_search(config, tmp_path / "run", progress=False, scoring=scoring)
    finally:
        scoring.close()
    events = read_events(tmp_path / "run")
    refused = [e for e in events if e.status == ProxyStatus.OVER_BUDGET]
    assert result.finished and refused
    for event in refused:
        assert event.outcome is Outcome.OVER_BUDGET and event.score is None
        assert event.errors[-1].startswith("the architecture needs an estimated")
        assert OVER_CAP in event.errors[-1] and event.arch not in scored
    assert any(e.outcome is Outcome.OK and e.phase == "search" for e in events)
    assert len(scored) == len(set(scored)) == sum(
        e.outcome in (Outcome.OK, Outcome.SCORE_FAILED) for e in events)


def test_an_ordinary_run_is_unchanged_by_the_cap(tmp_path: Path) -> None:
    config = RunConfig(mutator="random", iterations=8, **FAST)
    run_search(config, tmp_path / "capped", progress=False)
    run_search(config.model_copy(update={"max_memory": None}), tmp_path / "free",
               progress=False)
    capped, free = read_events(tmp_path / "capped"), read_events(tmp_path / "free")
    assert [e.stable_view() for e in capped] == [e.stable_view() for e in free]


def test_a_replay_never_rebuilds_what_is_over_the_cap_yet_reproduces_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasagent.agent.demo import DEFAULT_TRANSCRIPT, transcript_dir

    recorded_run = transcript_dir(DEFAULT_TRANSCRIPT) / "seed-0"
    recorded = {e.arch: e.score for e in read_events(recorded_run) if e.score is not None}
    built: list[str] = []

    def fake(architecture: object, settings: ScoreSettings) -> ScoreResult:
        arch = get_space(settings.search_space).encode(architecture) if not isinstance(
            architecture, str) else architecture
        built.append(arch)
        return ScoreResult(proxy="gradnorm", score=recorded[arch], status=ProxyStatus.OK,
                           seconds=0.0, seed=0, higher_is_better=True)

    import nasagent.evaluator.proxies as proxies

    monkeypatch.setattr(proxies, "score", fake)
    report = replay_run(recorded_run, tmp_path / "replayed", max_memory=1000)
    assert report.identical, [d.describe() for d in report.differences[:3]]
    skipped = report.drift["not_rescored"]
    assert 0 < skipped < len(recorded) and "were not rescored" in report.drift["verdict"]
    events = read_events(tmp_path / "replayed")
    over = {e.arch for e in events if e.rescore_status == "not_rescored"}
    assert len(over) == skipped and not over & set(built)
    settings = ScoreSettings(max_memory=1000)
    space = get_space("zennas-cifar")
    assert all(settings.memory_refusal(space.decode(arch).architecture) for arch in over)


def test_a_replay_keeps_the_recordings_refusals_on_a_roomier_machine(tmp_path: Path) -> None:
    recorded_run = tmp_path / "small-machine"
    run_search(RunConfig(mutator="random", iterations=10, max_memory=143, **FAST), recorded_run,
               progress=False)
    refused = [e for e in read_events(recorded_run) if e.status == ProxyStatus.OVER_BUDGET]
    assert refused
    report = replay_run(recorded_run, tmp_path / "roomy", max_memory=None)
    assert report.identical, [d.describe() for d in report.differences[:3]]
    replayed = {e.arch: e for e in read_events(tmp_path / "roomy")}
    for event in refused:  # decided from the recording: over_budget, with its sentence
        again = replayed[event.arch]
        assert again.outcome is Outcome.OVER_BUDGET and again.errors == event.errors
        assert again.rescore_status == "ok"  # this machine scored it, as a check


# ---- the command line ----------------------------------------------------------------------------


def test_cli_score_refuses_before_scoring_anything(nothing_is_built: None) -> None:
    code, out, err = invoke("score", CIFAR_SEED, HUGE, "--json")
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"error: input 2 ({HUGE}) needs an estimated 1,855.6 GB to score")
    assert line.endswith("nothing was scored")
    code, out, _ = invoke("score", HUGE, "--proxy", "flops", "--json")
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_cli_score_obeys_the_flag(nothing_is_built: None) -> None:
    code, _, err = invoke("score", CIFAR_SEED, "--max-memory", "100")
    assert code == 2 and "input 1" in one_error_line(err)
    assert "over the memory cap of 100 MB;" in err


def test_cli_mutate_refuses_an_llm_parent_over_the_cap_and_obeys_the_flag(
    nothing_is_built: None
) -> None:
    base = ("mutate", HUGE, "--mutator", "llm", "--llm", "scripted", "--max-params", "none",
            "--max-layers", "none")
    code, out, err = invoke(*base)
    assert code == 2 and out == ""
    assert one_error_line(err).startswith("error: parent needs an estimated 1,855.6 GB")
    code, _, err = invoke("mutate", CIFAR_SEED, "--mutator", "llm", "--llm", "scripted",
                          "--max-memory", "10")
    assert code == 2 and "over the memory cap of 10 MB" in one_error_line(err)
    code, _, err = invoke("mutate", CIFAR_SEED, "--max-memory", "10")  # random builds nothing
    assert code == 2 and "only an LLM mutator reads --max-memory" in err


def test_cli_search_refuses_the_seed_before_writing(tmp_path: Path, nothing_is_built: None
                                                    ) -> None:
    out = tmp_path / "run"
    code, _, err = invoke("search", "--llm", "scripted", "--search-space", "all", "--seed-arch",
                          HUGE, "--max-params", "none", "--max-layers", "none", "--out", str(out),
                          "--no-progress")
    assert code == 2 and one_error_line(err).startswith("error: seed_arch needs an estimated")
    assert not out.exists()


def test_cli_compare_refuses_the_seed_before_writing(tmp_path: Path, nothing_is_built: None
                                                     ) -> None:
    out = tmp_path / "cmp"
    code, _, err = invoke("compare", "--llm", "scripted", "--seed-arch", CIFAR_SEED,
                          "--max-memory", "100", "--iterations", "2", "--seeds", "2",
                          "--out", str(out), "--no-progress")
    assert code == 2 and one_error_line(err).startswith("error: seed_arch needs an estimated")
    assert not out.exists()


def test_cli_train_refuses_before_writing(tmp_path: Path, nothing_is_built: None) -> None:
    out = tmp_path / "trained"
    code, _, err = invoke("train", HUGE, "--out", str(out), "--max-memory", "8192",
                          "--no-progress")
    assert code == 2 and "to train at batch 128" in one_error_line(err)
    assert not out.exists()


def test_cli_correlate_refuses_the_seed(tmp_path: Path, nothing_is_built: None) -> None:
    code, _, err = invoke("correlate", "--out", str(tmp_path / "study"), "--archs", "3",
                          "--max-memory", "100")
    assert code == 2 and one_error_line(err).startswith("error: seed_arch needs an estimated")


def test_cli_replay_takes_this_machines_cap_not_the_recordings(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_search(RunConfig(mutator="random", iterations=3, proxy="params", max_memory=None,
                         **FAST), run, progress=False)
    code, out, _ = invoke("replay", str(run), "--out", str(tmp_path / "again"),
                          "--max-memory", "100", "--no-progress")
    assert code == 0 and "reproduced" in out
    assert (tmp_path / "again" / EVENTS_FILE).exists()
    assert load_config(tmp_path / "again" / "config.toml").max_memory == 100.0


def test_train_best_reports_a_best_over_the_cap_as_not_trained(tmp_path: Path) -> None:
    from nasagent.agent.train_best import train_runs

    run = tmp_path / "run"
    run_search(RunConfig(mutator="random", iterations=2, proxy="params", **FAST), run,
               progress=False)
    (trained,) = train_runs(run, epochs=1, data_spec="digits", progress=False,
                            max_memory=50)
    assert trained.top1 is None and OVER_CAP in trained.message
    assert "to train at batch 128" in trained.message


def test_every_space_estimates(nothing_is_built: None) -> None:
    """The interface method every built-in space implements, without torch."""
    from nasagent.evaluator.spaces import SEARCH_SPACES

    for name in SEARCH_SPACES.builtin_names():
        space: SearchSpace = SEARCH_SPACES.get(name)
        arch = space.decode(space.defaults.seed_arch).architecture
        estimate = space.memory(arch, Constraints(search_space=name), 64)
        assert estimate.params > 0 and estimate.activations > 0
        assert estimate.bytes == estimate.param_bytes + estimate.activation_bytes + (
            estimate.WORKSPACE)
