"""A `replay:PATH` backend takes the model from the recording: a recording made with the Python
API (llm="scripted") replays with `mutate`, `nasagent mutate --llm replay:...` and a search
config without repeating the model, and a model that disagrees is refused with the one the
recording holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent
import nasagent.agent.cli  # noqa: F401  (registers every command)
from nasagent.agent.cli.app import app
from nasagent.agent.config import ConfigError, RunConfig, load_config
from nasagent.agent.llm.recording import TRANSCRIPT_HEADER_KEY, recorded_model
from nasagent.agent.runlog import EVENTS_FILE, LLM_CALLS_FILE
from nasagent.agent.search import run_search
from nasagent.evaluator import CIFAR_SEED

FAST = {"batch_size": 8, "proxy": "params", "concurrency": 1}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """A call record made with the Python API and the scripted stand-in, and its child.

    The scripted mutation is drawn from the request's hash, so a prompt change can make seed 2
    draw a no-op; the first seed from 2 whose child differs from the parent is recorded.
    """
    folder = tmp_path_factory.mktemp("api")
    for seed in range(2, 12):
        path = folder / f"calls-{seed}.jsonl"
        result = nasagent.mutate(CIFAR_SEED, mutator="llm", llm="scripted", seed=seed,
                                 record=path)
        if result.outcome is nasagent.Outcome.OK:
            assert result.arch is not None
            return path, result.arch, seed
    raise AssertionError("the scripted stand-in changed nothing for seeds 2..11")


def test_the_recording_names_its_model(recording: tuple[Path, str, int], tmp_path: Path) -> None:
    path, _, _ = recording
    assert recorded_model(path) == "scripted"
    headed = tmp_path / "headed.jsonl"
    headed.write_text(json.dumps({TRANSCRIPT_HEADER_KEY: {"model": "prose"}}) + "\n"
                      + "{torn\n" + path.read_text())
    assert recorded_model(headed) == "scripted"  # the requests' model, not the header's prose
    assert recorded_model(tmp_path / "missing.jsonl") is None
    assert RunConfig(llm=f"replay:{path}").llm_model == "scripted"


def test_the_python_api_replays_without_naming_the_model(recording: tuple[Path, str, int]) -> None:
    path, child, seed = recording
    replayed = nasagent.mutate(CIFAR_SEED, mutator="llm", llm=f"replay:{path}", seed=seed)
    assert replayed.outcome is nasagent.Outcome.OK and replayed.arch == child
    same = nasagent.mutate(CIFAR_SEED, mutator="llm", llm=f"replay:{path}", seed=seed,
                           config={"model": "scripted"})
    assert same.arch == child


def test_a_model_the_recording_does_not_hold_is_refused(recording: tuple[Path, str, int]) -> None:
    path, _, _ = recording
    with pytest.raises(ConfigError, match="the recording .* holds \\('scripted'\\)"):
        nasagent.mutate(CIFAR_SEED, mutator="llm", llm=f"replay:{path}",
                        config={"model": "gpt-4o"})
    # sequential replay serves replies whatever the request, so another model may ask
    config = RunConfig(llm=f"replay:{path}", model="gpt-4o", replay_mode="sequential")
    assert config.llm_model == "gpt-4o"


def test_the_mutate_command_replays_and_names_the_recorded_model(
    recording: tuple[Path, str, int]
) -> None:
    path, child, seed = recording
    base = ["mutate", CIFAR_SEED, "--mutator", "llm", "--llm", f"replay:{path}",
            "--seed", str(seed)]
    result = CliRunner().invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arch"] == child
    refused = CliRunner().invoke(app, [*base, "--model", "gpt-4o"])
    assert refused.exit_code == 2 and "holds ('scripted')" in refused.output
    assert "Traceback" not in refused.output


def test_a_search_config_replays_a_recorded_run(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    run_search(RunConfig(llm="scripted", iterations=3, **FAST), recorded, progress=False)
    config_file = tmp_path / "replay.toml"
    config_file.write_text(f'llm = "replay:{recorded}"\niterations = 3\nbatch_size = 8\n'
                           'proxy = "params"\nconcurrency = 1\n')
    config = load_config(config_file)
    assert config.model == "scripted"
    result = run_search(config, tmp_path / "again", progress=False)
    assert result.finished
    events = [json.loads(line) for line in (tmp_path / "again" / EVENTS_FILE).open()]
    original = [json.loads(line) for line in (recorded / EVENTS_FILE).open()]
    assert [e["arch"] for e in events] == [e["arch"] for e in original]
    assert all(e["outcome"] != "llm_error" for e in events)
    assert (tmp_path / "again" / LLM_CALLS_FILE).exists()
