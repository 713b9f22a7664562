"""`nasagent train ARCH|RUN_DIR`: train an architecture and report its held-out top-1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import MaxMemoryOption, memory_cap_flag
from nasagent.evaluator.errors import NasAgentError

if TYPE_CHECKING:
    from nasagent.evaluator.training import Recipe

EXIT_ERROR = 2
DEFAULT_TRAIN_RESOLUTION = 32
"""The data's resolution when neither --resolution nor the run gives one (datasets')."""
EXIT_INTERRUPTED = 3
DATA_HELP = "digits, cifar10:DIR, cifar100:DIR or imagefolder:DIR (train/ and val/)."

Opt = typer.Option


@app.command()
def train(
    target: Annotated[str, typer.Argument(
        help="An architecture string, or a run directory (its best.json architecture is "
        "trained).", show_default=False,
    )],
    search_space: Annotated[str | None, Opt(
        help="The search space of an architecture string.",
        show_default="the run's, else the first built-in space that accepts the string (all "
        "Zen-NAS blocks first)",
    )] = None,
    data: Annotated[str, Opt(help=DATA_HELP)] = "digits",
    epochs: Annotated[int, Opt(min=1, help="Training epochs.")] = 30,
    batch_size: Annotated[int, Opt(min=2, help="Training batch size.")] = 128,
    lr: Annotated[float, Opt(min=0.0, help="Peak learning rate (after warm-up).")] = 0.1,
    seed: Annotated[int, Opt(help="Seed of initialisation, data order and augmentation.")] = 0,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    resolution: Annotated[int | None, Opt(
        min=1, help="Training resolution.", show_default="the run's search resolution, else 32",
    )] = None,
    out: Annotated[Path | None, Opt(
        help="Output directory.",
        show_default="RUN_DIR/trained, or runs/train-<hash> for a block string",
    )] = None,
    resume: Annotated[bool, Opt("--resume", help="Continue from the checkpoint in --out.")] = False,
    max_memory: MaxMemoryOption = None,
    progress: Annotated[bool, Opt("--progress/--no-progress")] = True,
) -> None:
    """Train with residual links (SGD + Nesterov, warm-up + cosine, label smoothing).

    Writes metrics.json (recipe, learning curve, top-1), learning_curve.png and weights.pt.
    Ctrl-C keeps the checkpoint of the last complete epoch; --resume continues it.
    """
    from nasagent.agent.preflight import check_out_folder
    from nasagent.agent.train_best import default_out, resolve_target, run_resolution

    cap = memory_cap_flag(max_memory)
    try:  # before torch and the data load, which take a second or more
        chosen = resolve_target(target, search_space)
        resolution = resolution or run_resolution(chosen.run_dir)
        _refuse_over_cap(chosen.arch, chosen.search_space, resolution, batch_size, cap)
    except NasAgentError as error:
        _fail(str(error))
    from nasagent.evaluator.datasets import load_data
    from nasagent.evaluator.training import TrainingInterrupted
    from nasagent.evaluator.training import train as train_arch

    try:
        recipe = _recipe(epochs, batch_size, lr, seed, device)
        directory = out or default_out(chosen, data, seed)
        check_out_folder(directory, "train")
        images = load_data(data, resolution)
        result = train_arch(chosen.arch, images, recipe, directory, max_memory=cap,
                            search_space=chosen.search_space, resume=resume, progress=progress)
    except TrainingInterrupted as stop:
        typer.echo(f"stopped: {stop}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (NasAgentError, OSError) as error:
        _fail(str(error))
    typer.echo(json.dumps({
        "out": str(directory), "arch": result.arch, "data": images.spec,
        "epochs": len(result.epochs), "top1": result.top1,
        "seconds_per_epoch": result.seconds_per_epoch, "params": result.params,
    }))


def _refuse_over_cap(
    arch: Any, search_space: str, resolution: int | None, batch_size: int, cap: float | None
) -> None:
    """Refuse an architecture over the memory cap before torch and the data load (a second or
    more); with one class the estimate can only be lower than the data's, so this refusal
    stands, and `train` checks again with the data's classes.

    Raises:
        MemoryCapError: training it would pass the cap.
    """
    from nasagent.evaluator.memory import check_memory
    from nasagent.evaluator.spaces import get_space
    from nasagent.evaluator.validation import Constraints

    space = get_space(search_space)
    task = Constraints(search_space=space.name, num_classes=1,
                       resolution=resolution or DEFAULT_TRAIN_RESOLUTION)
    if not space.violations(arch, task.unbudgeted()):  # a broken one: `train` says what
        check_memory(space, arch, task, batch_size, cap, purpose="train")


def _recipe(epochs: int, batch_size: int, lr: float, seed: int, device: str) -> Recipe:
    if device not in ("auto", "cpu", "cuda"):
        _fail(f"unknown device {device!r}; valid: auto, cpu, cuda")
    from nasagent.evaluator.training import Recipe  # torch loads with it

    try:
        return Recipe.model_validate({"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                      "seed": seed, "device": device})
    except ValidationError as error:
        problems = "; ".join(f"--{'-'.join(str(e['loc'][0]).split('_'))}: {e['msg']}"
                             for e in error.errors())
        _fail(problems)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
