"""No command writes over another command's folder (issue 16, item 4).

Every command that writes a result folder (search, replay, compare, demo, train, correlate)
refuses an --out that holds another kind of result, or unknown files: exit 2, one `error:`
line saying what the folder holds and what to do, and not one byte changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command on the app)
from nasagent.agent import correlate
from nasagent.agent.cli.app import app
from nasagent.agent.compare import make_plan, run_compare
from nasagent.agent.config import ConfigError, RunConfig, load_config
from nasagent.agent.preflight import (
    FOLDER_KINDS,
    FolderKindError,
    check_out_folder,
    folder_kinds,
)
from nasagent.agent.replay import replay_run
from nasagent.agent.search import run_search
from nasagent.evaluator import training
from tests.test_compare import FakeRun
from tests.test_inputs import FAST, one_line_error

runner = CliRunner()
SMALL = "SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,1,1)"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under `folder`, with the bytes of each file."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def make_run(folder: Path) -> None:
    result = runner.invoke(app, ["search", "--out", str(folder), *FAST, "--iterations", "1"])
    assert result.exit_code == 0, result.output


def make_compare(folder: Path) -> None:
    plan = make_plan(load_config(None, {"iterations": 3, "batch_size": 8}), ("llm", "random"),
                     (0, 1))
    run_compare(plan, folder, run=FakeRun(), progress=False)


def make_train(folder: Path) -> None:
    # What `nasagent train` leaves (training for real takes seconds per epoch here)
    folder.mkdir()
    (folder / training.METRICS_FILE).write_text('{"top1": 0.5, "epochs": []}\n')
    (folder / training.CHECKPOINT_FILE).write_bytes(b"\x80\x02checkpoint")
    (folder / training.WEIGHTS_FILE).write_bytes(b"\x80\x02weights")
    (folder / "learning_curve.png").write_bytes(b"\x89PNG")


def make_study(folder: Path) -> None:
    (folder / correlate.ARCHS_DIR).mkdir(parents=True)
    (folder / correlate.STUDY_FILE).write_text('{"settings": {}, "architectures": []}\n')
    (folder / correlate.ARCHS_DIR / "000.json").write_text('{"index": 0}\n')


def make_unknown(folder: Path) -> None:
    """Something else's folder, holding a file each command would write over."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "notes.txt").write_text("my own notes\n")
    (folder / "summary.json").write_text('{"not": "ours"}\n')
    (folder / "learning_curve.png").write_bytes(b"\x89PNG not ours")
    (folder / "correlation.json").write_text('{"not": "ours"}\n')


MAKERS = {"run": make_run, "compare": make_compare, "train": make_train, "study": make_study,
          "unknown": make_unknown}
HOLDS = {"run": "holds a single run", "compare": "holds a comparison",
         "train": "holds a training", "study": "holds a correlation study",
         "unknown": "holds no nasagent result but"}
ADVICE = {"run": "nasagent search --resume", "compare": "nasagent compare --out",
          "train": "--resume", "study": "nasagent correlate --out",
          "unknown": "choose a new or empty folder"}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kinds")
    for kind, make in MAKERS.items():
        make(root / kind)
    return {kind: root / kind for kind in MAKERS}


@pytest.fixture
def folders(templates: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    copies = {kind: tmp_path / kind for kind in templates}
    for kind, template in templates.items():
        shutil.copytree(template, copies[kind])
    return copies


def command(name: str, out: Path, run: Path) -> list[str]:
    """The command line of `name` writing to `out` (`run`: a run folder to replay)."""
    lines = {
        "search": ["search", "--out", str(out), *FAST, "--iterations", "1"],
        "replay": ["replay", str(run), "--out", str(out), "--no-progress"],
        "compare": ["compare", "--out", str(out), *FAST, "--iterations", "1", "--seeds", "1"],
        "demo": ["demo", "--out", str(out), "--no-progress"],
        "train": ["train", SMALL, "--out", str(out), "--epochs", "1", "--no-progress"],
        "correlate": ["correlate", "--out", str(out), "--archs", "3", "--epochs", "1"],
    }
    return lines[name]


OWN = {"search": "run", "replay": "run", "compare": "compare", "demo": "compare",
       "train": "train", "correlate": "study"}
PAIRS = [(name, kind) for name, own in OWN.items() for kind in MAKERS if kind != own]


@pytest.mark.parametrize(("name", "kind"), PAIRS)
def test_a_command_refuses_an_out_that_holds_another_kind_of_result(
    name: str, kind: str, folders: dict[str, Path], tmp_path: Path
) -> None:
    target = folders[kind]
    run = tmp_path / "to-replay"
    shutil.copytree(folders["run"], run)
    before = snapshot(target)
    result = runner.invoke(app, command(name, target, run))
    assert result.exit_code == 2, result.output
    line = one_line_error(result.stderr)
    assert f"--out {target} {HOLDS[kind]}" in line and ADVICE[kind] in line
    if kind != "unknown":
        assert f"not {FOLDER_KINDS[OWN[name]].holds}" in line
    assert snapshot(target) == before


def test_search_into_the_demo_folder_keeps_the_comparison_summary(
    folders: dict[str, Path],
) -> None:
    """The issue's case: `search --llm scripted --iterations 1 --out runs/demo`."""
    summary = (folders["compare"] / "summary.json").read_bytes()
    result = runner.invoke(app, ["search", "--llm", "scripted", "--iterations", "1",
                                 "--out", str(folders["compare"])])
    assert result.exit_code == 2
    assert "nasagent compare --out" in one_line_error(result.stderr)
    assert (folders["compare"] / "summary.json").read_bytes() == summary


@pytest.mark.parametrize("kind", ["compare", "train", "study", "unknown"])
def test_run_search_and_replay_run_refuse_a_foreign_folder(
    kind: str, folders: dict[str, Path]
) -> None:
    target, before = folders[kind], snapshot(folders[kind])
    config = RunConfig(llm="scripted", iterations=1, batch_size=8, proxy="params")
    with pytest.raises(FolderKindError, match=HOLDS[kind]):
        run_search(config, target, progress=False)
    with pytest.raises(FolderKindError, match=HOLDS[kind]):
        replay_run(folders["run"], target, rescore=False)
    assert snapshot(target) == before


@pytest.mark.parametrize("kind", ["run", "train", "study", "unknown"])
def test_run_compare_refuses_a_foreign_folder(kind: str, folders: dict[str, Path]) -> None:
    target, before = folders[kind], snapshot(folders[kind])
    plan = make_plan(load_config(None, {"iterations": 2, "batch_size": 8}), ("llm",), (0,))
    with pytest.raises(ConfigError, match=HOLDS[kind]):
        run_compare(plan, target, run=FakeRun(), progress=False)
    assert snapshot(target) == before


def test_new_empty_or_unrelated_folders_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    mine = tmp_path / "mine"
    (mine / "older-runs").mkdir(parents=True)
    (mine / "notes.txt").write_text("the config is beside the results\n")
    (mine / "search.toml").write_text('llm = "scripted"\niterations = 1\n')
    for own in FOLDER_KINDS:
        for folder in ("new", "empty", "mine"):
            check_out_folder(tmp_path / folder, own)
    before = snapshot(mine)
    result = runner.invoke(app, ["search", "--config", str(mine / "search.toml"), "--out",
                                 str(mine), *FAST])
    assert result.exit_code == 0, result.output
    assert folder_kinds(mine) == ["run"]
    assert {k: v for k, v in snapshot(mine).items() if k in before} == before


def test_each_kind_accepts_its_own_folder(folders: dict[str, Path]) -> None:
    for own in FOLDER_KINDS:
        check_out_folder(folders[own], own)
        assert folder_kinds(folders[own]) == [own]
    assert folder_kinds(folders["unknown"]) == []


def test_a_file_is_refused_before_its_kind(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_out_folder(tmp_path / "file", "run")


def test_the_registry_names_the_files_their_writers_write() -> None:
    from nasagent.agent import plots, report

    assert set(FOLDER_KINDS["train"].markers) == {
        training.METRICS_FILE, training.CHECKPOINT_FILE, training.WEIGHTS_FILE}
    assert FOLDER_KINDS["train"].writes == (f"{training.CURVE_STEM}.png",)
    assert FOLDER_KINDS["study"].markers == (correlate.STUDY_FILE,)
    assert FOLDER_KINDS["study"].writes == (correlate.RESULTS_FILE, correlate.REPORT_FILE)
    compare_writes = set(FOLDER_KINDS["compare"].writes)
    assert report.REPORT_FILE in compare_writes and report.SUMMARY_FILE in compare_writes
    assert {f"{stem}.csv" for stem in (plots.BEST_SO_FAR_STEM, plots.DISTRIBUTION_STEM)} <= (
        compare_writes)
    assert sorted(c for kind in FOLDER_KINDS.values() for c in kind.commands) == sorted(OWN)
    assert all(OWN[c] == name for name, kind in FOLDER_KINDS.items() for c in kind.commands)
