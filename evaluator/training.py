"""Train an architecture and measure its held-out top-1: the ground truth the proxies stand for.

The network is built with residual links (the form Zen-NAS trains; proxies score the
`no_reslink` form) and trained with a standard recipe: SGD with momentum and Nesterov, a linear
warm-up then a cosine schedule stepped per batch, label smoothing, and weight decay on conv and
linear weights (not on BatchNorm or biases). Every value of the recipe is written to
`metrics.json`.

Determinism: the weights are initialised under the seed, each epoch's order and augmentation
come from a generator seeded with (seed, epoch), and deterministic algorithms are requested
while training, so on a CPU the same seed gives the same network. A checkpoint is written
before the first epoch and after each one, so Ctrl-C loses at most the epoch in progress and
`resume=True` continues from the last complete epoch to the same result.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from nasagent.evaluator import cpu_kernels
from nasagent.evaluator.datasets import Batches, ImageData
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.memory import AUTO as AUTO_CAP
from nasagent.evaluator.memory import check_memory, read_cap
from nasagent.evaluator.proxies import DeviceName, resolve_device
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.base import SearchSpace
from nasagent.evaluator.validation import Constraints

TRAIN_SPACE = "all"
"""The space a Zen-NAS architecture is trained in when none is named: every super block."""

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_FILE = "checkpoint.pt"
CURVE_STEM = "learning_curve"
EVAL_BATCH_SIZE = 512
EPOCH_SEED_STRIDE = 1_000_003
"""Epoch e of seed s draws from a generator seeded with s * stride + e."""


class TrainingError(NasAgentError):
    """An architecture or a checkpoint that cannot be trained or resumed."""


class TrainingInterrupted(NasAgentError):  # noqa: N818  (it is how a run ends, not a bug)
    """Training stopped by Ctrl-C; the checkpoint of the last complete epoch is on disk."""

    def __init__(self, out: Path, epochs_done: int) -> None:
        self.out = out
        self.epochs_done = epochs_done
        super().__init__(
            f"interrupted after {epochs_done} complete epoch(s); checkpoint in "
            f"{out / CHECKPOINT_FILE}, continue with --resume"
        )


class Recipe(BaseModel):
    """The training recipe; every field is written to metrics.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=128, ge=2)
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(default=5e-4, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    warmup_epochs: float = Field(default=1.0, ge=0)
    augment: bool = True
    seed: int = 0
    device: DeviceName = "auto"

    def comparable(self) -> dict[str, Any]:
        """The fields that change the result (device is where it runs, not what it computes)."""
        return self.model_dump(mode="json", exclude={"device"})


class EpochRecord(BaseModel):
    """One epoch of the learning curve."""

    model_config = ConfigDict(frozen=True)

    epoch: int
    lr: float
    train_loss: float
    train_top1: float
    val_loss: float
    val_top1: float
    seconds: float


class TrainResult(BaseModel):
    """What `metrics.json` holds."""

    model_config = ConfigDict(frozen=True)

    arch: str
    data: dict[str, Any]
    recipe: dict[str, Any]
    params: int
    device: str
    torch_version: str
    finished: bool
    epochs: list[EpochRecord]

    @property
    def top1(self) -> float | None:
        """Held-out top-1 after the last epoch (the reported accuracy)."""
        return self.epochs[-1].val_top1 if self.epochs else None

    @property
    def seconds_per_epoch(self) -> float | None:
        times = [e.seconds for e in self.epochs]
        return sum(times) / len(times) if times else None

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "top1": self.top1,
                "best_top1": max((e.val_top1 for e in self.epochs), default=None),
                "seconds_per_epoch": self.seconds_per_epoch}


EpochHook = Callable[[EpochRecord], None]


def check_trainable(arch: Any, data: ImageData, space: SearchSpace) -> None:
    """Refuse an architecture the data cannot feed (chaining, strides below one pixel).

    Raises:
        TrainingError: the first structural problem, located.
    """
    constraints = Constraints(search_space=space.name, num_classes=data.num_classes,
                              resolution=data.resolution).unbudgeted()
    problems = space.violations(arch, constraints)
    if problems:
        raise TrainingError(f"cannot train {space.encode(arch)}: {problems[0].message}")


def train(
    arch: Any,
    data: ImageData,
    recipe: Recipe,
    out: Path,
    *,
    search_space: str = TRAIN_SPACE,
    resume: bool = False,
    progress: bool = True,
    on_epoch: EpochHook | None = None,
    max_memory: object = AUTO_CAP,
) -> TrainResult:
    """Train `arch` on `data` with `recipe`, writing metrics, curve, weights and checkpoints.

    Args:
        arch: the architecture (of `search_space`); the head is sized to the data's classes.
        data: train and held-out images.
        recipe: the training recipe (epochs, optimiser, schedule, seed, device).
        out: the output directory (created).
        search_space: the space `arch` belongs to (its rules and network).
        resume: continue from `out`'s checkpoint (it must be for the same arch, data, recipe).
        progress: show a progress bar per epoch.
        on_epoch: called after each epoch's checkpoint is written (tests interrupt here).
        max_memory: the memory cap in MB (evaluator.memory; "auto": half this machine's
            memory; 0 or None: none), checked against the estimate at the recipe's batch.

    Raises:
        TrainingError: the architecture cannot be trained, or the checkpoint does not match.
        MemoryCapError: training it would pass the memory cap (nothing was built or written).
        TrainingInterrupted: Ctrl-C; the last complete epoch's checkpoint is on disk.
        DeviceUnavailableError: CUDA was asked for but is not available.
    """
    space = get_space(search_space)
    check_trainable(arch, data, space)
    task = Constraints(search_space=space.name, num_classes=data.num_classes,
                       resolution=data.resolution)
    check_memory(space, arch, task, recipe.batch_size, read_cap(max_memory), purpose="train")
    cpu_kernels.pin()  # the same kernels as scoring, on every x86-64 machine
    device = resolve_device(recipe.device)
    out.mkdir(parents=True, exist_ok=True)
    with _deterministic():
        session = _Session.start(_Model(arch, space), data, recipe, device, out, resume)
        try:
            session.run(progress, on_epoch)
        except KeyboardInterrupt:
            session.save_checkpoint()
            raise TrainingInterrupted(out, len(session.history)) from None
    return session.finish()


@contextmanager
def _deterministic() -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


@dataclass(frozen=True)
class _Model:
    """An architecture and the space that builds it."""

    arch: Any
    space: SearchSpace

    def __str__(self) -> str:
        return self.space.encode(self.arch)


def seeded_model(arch: Any, num_classes: int, seed: int,
                 space: SearchSpace | str = TRAIN_SPACE) -> nn.Module:
    """The trained form of `arch` (Zen-NAS: with residual links), initialised under `seed`."""
    space = get_space(space) if isinstance(space, str) else space
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.train_model(arch, num_classes)


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            plain = isinstance(module, nn.BatchNorm2d) or name == "bias"
            (no_decay if plain else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1 over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    full, rest = divmod(train_size, batch_size)
    return full + (rest >= 2)


class _Session:
    """One training run's mutable state: model, optimiser, schedule and the curve so far."""

    def __init__(self, arch: _Model, data: ImageData, recipe: Recipe,
                 device: torch.device, out: Path) -> None:
        self.arch, self.data, self.recipe, self.device, self.out = arch, data, recipe, device, out
        self.model = seeded_model(arch.arch, data.num_classes, recipe.seed, arch.space).to(device)
        self.optimizer = torch.optim.SGD(
            _parameter_groups(self.model, recipe.weight_decay), lr=recipe.lr,
            momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0,
        )
        per_epoch = steps_per_epoch(len(data.train_labels), recipe.batch_size)
        total, warmup = per_epoch * recipe.epochs, round(per_epoch * recipe.warmup_epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, total)
        )
        self.loss = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.batches = Batches.of(data)
        self.history: list[EpochRecord] = []

    @classmethod
    def start(cls, arch: _Model, data: ImageData, recipe: Recipe, device: torch.device,
              out: Path, resume: bool) -> _Session:
        session = cls(arch, data, recipe, device, out)
        if resume and (out / CHECKPOINT_FILE).exists():
            session.load_checkpoint()
        else:
            if resume:
                logger.info("no checkpoint in %s: starting from epoch 0", out)
            session.save_checkpoint()
        return session

    # ---- checkpoints ----

    def _identity(self) -> dict[str, Any]:
        return {"arch": str(self.arch), "data": self.data.spec, "recipe": self.recipe.comparable()}

    def save_checkpoint(self) -> None:
        state = {
            **self._identity(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": [record.model_dump() for record in self.history],
        }
        temporary = self.out / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, temporary)
        temporary.replace(self.out / CHECKPOINT_FILE)

    def load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT_FILE
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as error:  # a torn or foreign file: say so, never unpickle further
            raise TrainingError(f"cannot read checkpoint {path}: {error}") from None
        stored = {key: state.get(key) for key in ("arch", "data", "recipe")}
        if stored != self._identity():
            raise TrainingError(
                f"{path} was written for another training ({_difference(stored, self._identity())})"
                f"; use another --out or the same settings"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochRecord.model_validate(r) for r in state["history"]]
        logger.info("resumed %s after epoch %d", self.out, len(self.history))

    # ---- the loop ----

    def run(self, progress: bool, on_epoch: EpochHook | None) -> None:
        for epoch in range(len(self.history), self.recipe.epochs):
            record = self.epoch(epoch, progress)
            self.history.append(record)
            self.save_checkpoint()
            logger.info("epoch %d: val top-1 %.4f", epoch + 1, record.val_top1)
            if on_epoch is not None:
                on_epoch(record)

    def epoch(self, epoch: int, progress: bool) -> EpochRecord:
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(self.recipe.seed * EPOCH_SEED_STRIDE + epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        batches = self.batches.train(self.recipe.batch_size, generator, self.recipe.augment)
        steps = steps_per_epoch(len(self.data.train_labels), self.recipe.batch_size)
        with _progress(progress, f"epoch {epoch + 1}/{self.recipe.epochs}", steps) as advance:
            train_loss, train_top1 = self._train_batches(batches, advance)
        val_loss, val_top1 = self.evaluate()
        return EpochRecord(
            epoch=epoch + 1, lr=lr, train_loss=train_loss, train_top1=train_top1,
            val_loss=val_loss, val_top1=val_top1, seconds=time.perf_counter() - start,
        )

    def _train_batches(
        self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], advance: Callable[[], None]
    ) -> tuple[float, float]:
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in batches:
            x, y = x.to(self.device), y.to(self.device)
            logits = self.model(x)
            loss = self.loss(logits, y)
            if not torch.isfinite(loss):
                raise TrainingError(f"training diverged (loss {loss.item()}) at lr "
                                    f"{self.optimizer.param_groups[0]['lr']:.4g}; lower --lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            advance()
        return total_loss / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss (without smoothing) and top-1 on the held-out split."""
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self.batches.val(EVAL_BATCH_SIZE):
            x, y = x.to(self.device), y.to(self.device)
            logits = self.model(x)
            total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return total_loss / max(seen, 1), correct / max(seen, 1)

    # ---- the outputs ----

    def finish(self) -> TrainResult:
        result = TrainResult(
            arch=str(self.arch), data=self.data.describe(),
            recipe=self.recipe.model_dump(mode="json"),
            params=sum(p.numel() for p in self.model.parameters()),
            device=str(self.device), torch_version=torch.__version__,
            finished=len(self.history) >= self.recipe.epochs, epochs=self.history,
        )
        torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                   self.out / WEIGHTS_FILE)
        write_metrics(self.out, result)
        plot_learning_curve(result, self.out / f"{CURVE_STEM}.png")
        return result


def _difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = [key for key in wanted if stored.get(key) != wanted[key]]
    return ", ".join(f"{key} differs" for key in keys) or "unknown difference"


@contextmanager
def _progress(enabled: bool, label: str, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def write_metrics(out: Path, result: TrainResult) -> Path:
    from nasagent.agent.runlog import write_json  # the one atomic JSON writer

    path = out / METRICS_FILE
    write_json(path, result.to_json())
    return path


def read_metrics(out: Path) -> TrainResult | None:
    """The metrics.json of a training directory, or None when there is none (or it is torn)."""
    import json

    path = out / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TrainResult.model_validate(data)
    except (OSError, ValueError):
        return None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict saved as weights.pt, loaded without unpickling arbitrary objects."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TrainingError(f"{path} does not hold a state dict")
    return state


def plot_learning_curve(result: TrainResult, path: Path) -> Path:
    """Training loss and held-out top-1 per epoch (matplotlib Figure, no pyplot)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [e.epoch for e in result.epochs]
    figure = Figure(figsize=(6, 3.6), layout="constrained")
    loss_axes = figure.add_subplot()
    loss_axes.plot(epochs, [e.train_loss for e in result.epochs], "o-", color="#7f7f7f",
                   label="train loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axes.set_ylabel("train loss (label-smoothed)")
    top1_axes = loss_axes.twinx()
    top1_axes.plot(epochs, [e.val_top1 for e in result.epochs], "o-", color="#1f77b4",
                   label="held-out top-1")
    top1_axes.set_ylabel("held-out top-1")
    top1_axes.set_ylim(0, 1)
    figure.legend(loc="outside upper center", ncols=2, fontsize="small")
    figure.savefig(path, dpi=110)
    return path
