"""Training: the recipe, its outputs, determinism on CPU, Ctrl-C and --resume, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_data import TINY_ARCH, write_imagefolder
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command)
from nasagent.agent.cli.app import app
from nasagent.agent.runlog import write_json
from nasagent.evaluator import parse
from nasagent.evaluator.datasets import ImageData, load_data
from nasagent.evaluator.spaces.zennas.builder import build_model
from nasagent.evaluator.training import (
    EpochRecord,
    Recipe,
    TrainingError,
    TrainingInterrupted,
    load_weights,
    lr_factor,
    read_metrics,
    train,
)

RECIPE = Recipe(epochs=2, batch_size=8, seed=5, device="cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ImageData:
    return load_data(f"imagefolder:{write_imagefolder(tmp_path_factory.mktemp('images'))}", 8)


def weights_close(a: Path, b: Path) -> bool:
    first, second = load_weights(a / "weights.pt"), load_weights(b / "weights.pt")
    return first.keys() == second.keys() and all(
        torch.allclose(first[k].float(), second[k].float(), rtol=1e-4, atol=1e-6) for k in first
    )


def test_training_writes_metrics_curve_and_loadable_weights(data: ImageData, tmp_path: Path):
    result = train(parse(TINY_ARCH), data, RECIPE, tmp_path, progress=False)
    assert result.finished and [e.epoch for e in result.epochs] == [1, 2]
    assert result.top1 is not None and 0 <= result.top1 <= 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["recipe"]["nesterov"] is True and metrics["recipe"]["label_smoothing"] == 0.1
    assert metrics["data"]["num_classes"] == 2 and metrics["top1"] == result.top1
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    model = build_model(parse(TINY_ARCH), num_classes=2, residual=True)
    model.load_state_dict(load_weights(tmp_path / "weights.pt"))  # the trained, residual form
    assert model.fc.out_features == 2


def test_the_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(step, 3, 10) for step in range(10)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    assert lr_factor(10, 3, 10) == pytest.approx(0.0)


def test_the_same_seed_trains_the_same_network(data: ImageData, tmp_path: Path) -> None:
    first = train(parse(TINY_ARCH), data, RECIPE, tmp_path / "a", progress=False)
    second = train(parse(TINY_ARCH), data, RECIPE, tmp_path / "b", progress=False)
    assert weights_close(tmp_path / "a", tmp_path / "b")
    assert first.epochs[-1].train_loss == pytest.approx(second.epochs[-1].train_loss, rel=1e-4)
    other = train(parse(TINY_ARCH), data, RECIPE.model_copy(update={"seed": 6}), tmp_path / "c",
                  progress=False)
    assert not weights_close(tmp_path / "a", tmp_path / "c")
    assert other.finished


def test_ctrl_c_keeps_a_checkpoint_that_resume_continues(data: ImageData, tmp_path: Path):
    def interrupt(record: EpochRecord) -> None:
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="after 1 complete epoch"):
        train(parse(TINY_ARCH), data, RECIPE, tmp_path / "cut", progress=False,
              on_epoch=interrupt)
    assert (tmp_path / "cut" / "checkpoint.pt").exists()
    resumed = train(parse(TINY_ARCH), data, RECIPE, tmp_path / "cut", resume=True,
                    progress=False)
    straight = train(parse(TINY_ARCH), data, RECIPE, tmp_path / "whole", progress=False)
    assert len(resumed.epochs) == 2
    assert weights_close(tmp_path / "cut", tmp_path / "whole")
    assert resumed.epochs[1].val_loss == pytest.approx(straight.epochs[1].val_loss, rel=1e-3)


def test_resuming_another_recipe_is_refused(data: ImageData, tmp_path: Path) -> None:
    train(parse(TINY_ARCH), data, RECIPE.model_copy(update={"epochs": 1}), tmp_path,
          progress=False)
    with pytest.raises(TrainingError, match="recipe differs"):
        train(parse(TINY_ARCH), data, RECIPE.model_copy(update={"lr": 0.05}), tmp_path,
              resume=True, progress=False)


def test_an_architecture_the_resolution_cannot_feed_is_refused(data: ImageData, tmp_path: Path):
    too_deep = ("SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)SuperResK3K3(16,16,2,8,1)"
                "SuperResK3K3(16,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)")
    with pytest.raises(TrainingError, match="block 3"):
        train(parse(too_deep), data, RECIPE, tmp_path, progress=False)


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["train", *args])


def test_the_command_trains_a_block_string(tmp_path: Path) -> None:
    images = write_imagefolder(tmp_path / "images")
    out = tmp_path / "out"
    result = invoke(TINY_ARCH, "--data", f"imagefolder:{images}", "--epochs", "1",
                    "--batch-size", "8", "--resolution", "8", "--device", "cpu", "--out",
                    str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["epochs"] == 1 and line["out"] == str(out)
    assert read_metrics(out) is not None


def test_the_command_trains_a_run_directorys_best_architecture(tmp_path: Path) -> None:
    images = write_imagefolder(tmp_path / "images")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / "best.json", {
        "iteration": 3, "mutator": "random", "parent": None, "parent_score": None,
        "outcome": "ok", "arch": TINY_ARCH, "score": 1.0,
    })
    result = invoke(str(run_dir), "--data", f"imagefolder:{images}", "--epochs", "1",
                    "--batch-size", "8", "--resolution", "8", "--no-progress")
    assert result.exit_code == 0, result.output
    assert read_metrics(run_dir / "trained").arch == TINY_ARCH  # type: ignore[union-attr]


@pytest.mark.parametrize("args, message", [
    (["NotABlock(1)"], "neither a run directory nor a block string"),
    ([TINY_ARCH, "--data", "cifar10:/nonexistent"], "cifar-10-batches-py/ folder"),
    ([TINY_ARCH, "--device", "tpu"], "unknown device"),
])
def test_bad_inputs_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = invoke(*args, "--no-progress")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
