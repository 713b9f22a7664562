"""The torch side of the zero-cost proxies: the seeded protocol and the six compute functions.

Imported only when something is scored, so that validating, costing and prompting never load
torch. Every function takes a `ProxyRun` and returns the raw score of one seeded evaluation;
`evaluator.proxies.score` turns failures into results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nasagent.evaluator.proxies import DeviceUnavailableError, ProxyRun

ZEN_MIXUP_GAMMA = 1e-2
"""Zen-NAS `--gamma`: the size of the input perturbation of the Zen-score."""


def torch_device(name: str) -> torch.device:
    """The device of a checked name: `auto` prefers CUDA when present.

    Raises:
        DeviceUnavailableError: `cuda` on a machine without a usable GPU.
    """
    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise DeviceUnavailableError("device 'cuda' was requested but CUDA is not available")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and has_cuda) else "cpu")


def release_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- the seeded protocol shared by the torch proxies --------------------------------------


_GLOBAL_RNG = threading.RLock()
"""Held while a proxy draws from torch's global RNG: two threads scoring at once (a server
running several searches) would otherwise interleave their draws and neither score would be
reproducible."""


@contextmanager
def _seeded(run: ProxyRun) -> Iterator[None]:
    """Seed the global torch RNG (as the reference does) and restore it afterwards.

    `manual_seed` also reseeds the CUDA generators, so the scoring device's state is saved too.
    """
    cuda_devices = [run.device] if run.device.type == "cuda" else []
    with _GLOBAL_RNG, torch.random.fork_rng(devices=cuda_devices):
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


def _scoring_model(run: ProxyRun) -> nn.Module:
    """Steps 2-3 of the protocol: the space builds its scoring model (consuming the seeded RNG
    as its reference does) and initialises it; then onto the device, in train mode."""
    return run.space.scoring_model(run.arch, run.settings).to(run.device).train()


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
        features = _pre_gap(model)(images)
        perturbed = _pre_gap(model)(images + ZEN_MIXUP_GAMMA * noise)
    change = (features - perturbed).abs().sum(dim=(1, 2, 3)).mean()
    # The reference reads running_var after both passes (momentum 0.1 from 1), on purpose.
    bn_scale = sum(
        (torch.log(torch.sqrt(var.mean())) for var in _running_variances(model)),
        torch.zeros((), device=run.device),
    )
    return float(torch.log(change) + bn_scale)


def _pre_gap(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network's feature map before global pooling (every space's scoring model has it)."""
    return cast(Callable[[torch.Tensor], torch.Tensor], model.forward_pre_gap)


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
    """The parameter count of the scoring model as its space counts it (Zen-NAS:
    `get_model_size()` of the no_reslink model unless residual)."""
    return float(run.space.scoring_cost(run.arch, run.settings).params)


def flops(run: ProxyRun) -> float:
    """The FLOPs of the scoring model at the scoring resolution as its space counts them."""
    return float(run.space.scoring_cost(run.arch, run.settings).flops)
