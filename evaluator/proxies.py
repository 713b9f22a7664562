"""Zero-cost proxies: a registry of scoring functions whose failures are results, not numbers.

Every torch proxy follows the seeded protocol of zennas-semantics section 10 on the global
torch RNG (inside `torch.random.fork_rng`, so the caller's random stream is left as it was):
seed, build the scoring model (Zen-NAS's `no_reslink` model unless `residual=True`),
Gaussian re-initialisation in module order, then draw the inputs. Model and inputs are made
on the CPU and then moved, so a seed means the same weights and batch on every device.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from nasagent.evaluator.architecture import Architecture
from nasagent.evaluator.builder import MasterNet, ModelBuildError, build_model
from nasagent.evaluator.cost import Cost, CostError, Counting, count_cost
from nasagent.evaluator.errors import NasAgentError, UnknownNameError

logger = logging.getLogger(__name__)

ZEN_MIXUP_GAMMA = 1e-2
"""Zen-NAS `--gamma`: the size of the input perturbation of the Zen-score."""

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda")


class ProxyStatus(StrEnum):
    """How a scoring attempt ended; only OK carries a score."""

    OK = "ok"
    NONFINITE = "nonfinite"
    ERROR = "error"
    OVER_BUDGET = "over_budget"
    INVALID = "invalid"
    TIMEOUT = "timeout"
    """The scoring ran past the run's `score_timeout`; its worker process was killed."""
    CRASHED = "crashed"
    """The worker process died while scoring (OOM kill, segfault); it was replaced."""


class DeviceUnavailableError(NasAgentError, RuntimeError):
    """A device was asked for by name but this machine does not have it."""


class ScoreSettings(BaseModel):
    """Everything that determines a proxy score besides the architecture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proxy: str = "gradnorm"
    batch_size: int = Field(default=64, ge=1)
    resolution: int = Field(default=32, ge=1)
    num_classes: int = Field(default=100, ge=1)
    seed: int = 0
    repeats: int = Field(default=1, ge=1)
    device: DeviceName = "auto"
    residual: bool = False
    """Zen-NAS scores the `no_reslink` model, so False is the faithful default."""

    def cache_key(self) -> str:
        """A stable string of all settings: equal keys mean interchangeable scores."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def seeds(self) -> list[int]:
        """The seeds of the repeats: seed, seed + 1, ..., seed + repeats - 1."""
        return [self.seed + offset for offset in range(self.repeats)]


class ScoreResult(BaseModel):
    """One proxy evaluation: a score when `status` is OK, otherwise None and a message."""

    model_config = ConfigDict(frozen=True)

    proxy: str
    score: float | None
    status: ProxyStatus
    seconds: float
    message: str = ""
    seed: int
    higher_is_better: bool


@dataclass(frozen=True)
class ProxyRun:
    """What a proxy's compute function gets for one seed."""

    arch: Architecture
    settings: ScoreSettings
    seed: int
    device: torch.device


ProxyFunction = Callable[[ProxyRun], float]


@dataclass(frozen=True)
class ProxySpec:
    """One registered proxy.

    Attributes:
        name: the registry key (`--proxy NAME`).
        higher_is_better: the direction the search should optimise.
        description: one paragraph for the LLM prompt: what the proxy rewards.
        compute: returns the raw score of one seeded evaluation; may raise or return inf/nan.
    """

    name: str
    higher_is_better: bool
    description: str
    compute: ProxyFunction


def resolve_device(name: str) -> torch.device:
    """Map `auto` / `cpu` / `cuda` to a torch device (`auto` prefers CUDA when present).

    Raises:
        UnknownNameError: a name other than the three above.
        DeviceUnavailableError: `cuda` on a machine without a usable GPU.
    """
    if name not in DEVICE_NAMES:
        raise UnknownNameError("device", name, DEVICE_NAMES)
    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise DeviceUnavailableError("device 'cuda' was requested but CUDA is not available")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and has_cuda) else "cpu")


def get_proxy(name: str) -> ProxySpec:
    """Return the registered proxy called `name` or raise an error listing the valid names."""
    try:
        return PROXIES[name]
    except KeyError:
        raise UnknownNameError("proxy", name, PROXIES) from None


def score(arch: Architecture, settings: ScoreSettings) -> ScoreResult:
    """Score `arch` with the proxy of `settings`; the mean over `settings.repeats` seeds.

    A candidate that cannot be built is INVALID, one whose evaluation raises (out of memory,
    a 1x1 feature map in a batch of one, ...) is ERROR, and an inf/nan value is NONFINITE.
    `seconds` covers building and scoring, all repeats together.

    Raises:
        UnknownNameError: the proxy or device name is not registered.
        DeviceUnavailableError: CUDA was requested but is not available.
    """
    spec = get_proxy(settings.proxy)
    device = resolve_device(settings.device)
    start = time.perf_counter()

    def result(value: float | None, status: ProxyStatus, message: str = "") -> ScoreResult:
        return ScoreResult(
            proxy=spec.name, score=value, status=status, seconds=time.perf_counter() - start,
            message=message, seed=settings.seed, higher_is_better=spec.higher_is_better,
        )

    try:
        values = [spec.compute(ProxyRun(arch, settings, seed, device)) for seed in settings.seeds()]
    except (ModelBuildError, CostError) as error:
        return result(None, ProxyStatus.INVALID, str(error))
    except Exception as error:  # a failing candidate is data for the search, not a crash
        logger.debug("proxy %s failed on %s", spec.name, arch, exc_info=True)
        _release_device_memory(device)
        return result(None, ProxyStatus.ERROR, f"{type(error).__name__}: {error}")
    if not all(math.isfinite(value) for value in values):
        return result(None, ProxyStatus.NONFINITE, f"{spec.name} gave non-finite values {values}")
    return result(statistics.fmean(values), ProxyStatus.OK)


def _release_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- the seeded protocol shared by the torch proxies --------------------------------------


@contextmanager
def _seeded(run: ProxyRun) -> Iterator[None]:
    """Seed the global torch RNG (as the reference does) and restore it afterwards.

    `manual_seed` also reseeds the CUDA generators, so the scoring device's state is saved too.
    """
    cuda_devices = [run.device] if run.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(run.seed)
        yield


def gaussian_init(model: nn.Module) -> None:
    """Zen-NAS `network_weight_gaussian_init`: N(0, 1) conv/linear weights, in module order.

    Biases become 0, BatchNorm weights 1 and biases 0.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _scoring_model(run: ProxyRun) -> MasterNet:
    """Steps 2-3 of the protocol: build (consuming the RNG as the reference), re-initialise."""
    model = build_model(
        run.arch, num_classes=run.settings.num_classes, residual=run.settings.residual
    )
    gaussian_init(model)
    return model.to(run.device).train()


def _images(run: ProxyRun, batch_size: int | None = None) -> torch.Tensor:
    size = run.settings.resolution
    batch = run.settings.batch_size if batch_size is None else batch_size
    return torch.randn(batch, 3, size, size).to(run.device)


# --- the proxies ----------------------------------------------------------------------------


def gradnorm(run: ProxyRun) -> float:
    """sqrt of the summed squared gradient norms of the mean cross-entropy on random labels."""
    with _seeded(run):
        model = _scoring_model(run)
        logits = model(_images(run))
        labels = torch.randint(0, run.settings.num_classes, (run.settings.batch_size,))
        targets = F.one_hot(labels, run.settings.num_classes).float().to(run.device)
    loss = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    squares = [g.pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt())


def zen(run: ProxyRun) -> float:
    """Zen-score: log feature sensitivity to a small input perturbation plus the BN scales."""
    with _seeded(run), torch.no_grad():
        model = _scoring_model(run)
        images, noise = _images(run), _images(run)
        features = model.forward_pre_gap(images)
        perturbed = model.forward_pre_gap(images + ZEN_MIXUP_GAMMA * noise)
    change = (features - perturbed).abs().sum(dim=(1, 2, 3)).mean()
    # The reference reads running_var after both passes (momentum 0.1 from 1), on purpose.
    bn_scale = sum(
        (torch.log(torch.sqrt(var.mean())) for var in _running_variances(model)),
        torch.zeros((), device=run.device),
    )
    return float(torch.log(change) + bn_scale)


def _running_variances(model: nn.Module) -> Iterator[torch.Tensor]:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and module.running_var is not None:
            yield module.running_var


def synflow(run: ProxyRun) -> float:
    """SynFlow: sum over conv/linear layers of the mean per-unit sum of |w * dR/dw|.

    Zen-NAS returns minus this sum, so its search prefers *smaller* synflow; we report the
    positive sum and declare `higher_is_better=False`, which orders candidates identically.
    """
    with _seeded(run):
        model = _scoring_model(run)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    model.double()
    size = run.settings.resolution
    ones = torch.ones(1, 3, size, size, dtype=torch.float64, device=run.device)
    model(ones).sum().backward()
    return float(sum(_synflow_of(layer) for layer in _weighted_layers(model)))


def _weighted_layers(model: nn.Module) -> Iterator[nn.Conv2d | nn.Linear]:
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            yield module


def _synflow_of(layer: nn.Conv2d | nn.Linear) -> float:
    if layer.weight.grad is None:
        return 0.0
    with torch.no_grad():
        saliency = (layer.weight * layer.weight.grad).abs()
        return float(saliency.sum(dim=tuple(range(1, saliency.dim()))).mean())


def naswot(run: ProxyRun) -> float:
    """NASWOT: log|det K| of the Hamming-similarity kernel of the ReLU activation codes."""
    batch = run.settings.batch_size
    kernel = torch.zeros(batch, batch, dtype=torch.float64, device=run.device)

    def add_codes(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].reshape(batch, -1) > 0).double()
        kernel.add_(codes @ codes.T).add_((1.0 - codes) @ (1.0 - codes).T)

    with _seeded(run), torch.no_grad():
        model = _scoring_model(run)
        # Pre-hooks see a ReLU's input before the in-place ReLU overwrites it.
        hooks = [
            module.register_forward_pre_hook(add_codes)
            for module in model.modules() if isinstance(module, nn.ReLU)
        ]
        model(_images(run))
    for hook in hooks:
        hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def params(run: ProxyRun) -> float:
    """Zen-NAS `get_model_size()` of the scoring model (no_reslink unless residual)."""
    return float(_cost(run).params)


def flops(run: ProxyRun) -> float:
    """Zen-NAS `get_FLOPs(resolution)` of the scoring model (no_reslink unless residual)."""
    return float(_cost(run).flops)


def _cost(run: ProxyRun) -> Cost:
    return count_cost(
        run.arch, num_classes=run.settings.num_classes, resolution=run.settings.resolution,
        counting=Counting.ZENNAS, residual=run.settings.residual,
    )


PROXIES: dict[str, ProxySpec] = {
    spec.name: spec
    for spec in (
        ProxySpec(
            "gradnorm", True,
            "GradNorm: the norm of the loss gradient over all weights at a random Gaussian "
            "initialisation, on one batch of random images with random labels. It rewards "
            "networks whose gradients are large, which grows with depth and width when there "
            "are no residual links (the model is scored without them), so deeper and wider "
            "plain stacks score higher.",
            gradnorm,
        ),
        ProxySpec(
            "zen", True,
            "Zen-score: the log of how much the pre-pooling feature map moves when the input "
            "is perturbed slightly, plus the log scales of every BatchNorm layer, at a random "
            "Gaussian initialisation. It approximates the network's expressivity and rewards "
            "depth and width, favouring many channels in the later stages.",
            zen,
        ),
        ProxySpec(
            "synflow", False,
            "SynFlow: the summed |weight x gradient| saliency of every conv and linear layer "
            "with all-positive weights and an all-ones input, a measure of how much signal "
            "flows through the parameters. As in Zen-NAS, the search prefers smaller values, "
            "so lower is better here.",
            synflow,
        ),
        ProxySpec(
            "naswot", True,
            "NASWOT: the log-determinant of the kernel that compares which ReLUs are active "
            "for each pair of images in a batch. It rewards networks whose activation "
            "patterns tell different inputs apart, which grows with the number of ReLU units.",
            naswot,
        ),
        ProxySpec(
            "params", True,
            "Params: the Zen-NAS parameter count of the network without residual links. It "
            "simply rewards larger models, up to the budget.",
            params,
        ),
        ProxySpec(
            "flops", True,
            "FLOPs: the Zen-NAS multiply-accumulate count of the network without residual "
            "links at the scoring resolution. It rewards more computation, up to the budget.",
            flops,
        ),
    )
}
"""The registered zero-cost proxies, by name."""
