"""The torch side of the zero-cost proxies: the seeded protocol and the compute functions.

Imported only when something is scored, so that validating, costing and prompting never load
torch. Every function takes a `ProxyRun` and returns the raw score of one seeded evaluation;
`evaluator.proxies.score` turns failures into results. What a space changes is read from its
`proxy_protocol`: the inputs (`_batch`: the run's real proxy data, or Gaussian images and
random labels drawn from the seeded RNG exactly as before) and, for GradNorm and SynFlow,
whose definition applies (`GRADNORM_FORMS`, `SYNFLOW_FORMS`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nasagent.evaluator.proxies import DeviceUnavailableError, ProxyRun, reads_real_data
from nasagent.evaluator.spaces.base import ZENNAS_FORM, ZERO_COST_FORM

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


def _batch(run: ProxyRun) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels a data-dependent proxy reads: the run's proxy data where the
    space's protocol takes it (`evaluator.datasets.proxy_batch`, seeded by the run's seed,
    not the torch RNG), else Gaussian images then random labels from the seeded RNG."""
    if reads_real_data(run.settings):
        from nasagent.evaluator.datasets import proxy_batch

        settings = run.settings
        images, labels = proxy_batch(str(settings.proxy_data), settings.batch_size,
                                     settings.resolution, settings.num_classes, run.seed)
        return images.to(run.device), labels.to(run.device)
    images = _images(run)
    labels = torch.randint(0, run.settings.num_classes, (run.settings.batch_size,))
    return images, labels.to(run.device)


def _loss(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The mean cross-entropy, written as Zen-NAS writes it (one-hot targets)."""
    targets = F.one_hot(labels, num_classes).float()
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


# --- the proxies ----------------------------------------------------------------------------


def gradnorm(run: ProxyRun) -> float:
    """GradNorm of the mean cross-entropy on one batch, in the space's form (`GRADNORM_FORMS`)."""
    form = run.space.proxy_protocol(run.settings.proxy).form
    with _seeded(run):
        model = _scoring_model(run)
        images, labels = _batch(run)
        logits = model(images)
    loss = _loss(logits, labels, run.settings.num_classes)
    return GRADNORM_FORMS[form](model, loss)


def _zennas_gradnorm(model: nn.Module, loss: torch.Tensor) -> float:
    """Zen-NAS: sqrt of the summed squared gradients of every parameter (BatchNorm too)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    squares = [g.pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt())


def _zero_cost_gradnorm(model: nn.Module, loss: torch.Tensor) -> float:
    """zero-cost-nas `grad_norm`: the sum over conv and linear layers of the L2 norm of the
    weight's gradient."""
    weights = [layer.weight for layer in _weighted_layers(model)]
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return sum(float(g.norm()) for g in grads if g is not None)


GRADNORM_FORMS: dict[str, Callable[[nn.Module, torch.Tensor], float]] = {
    ZENNAS_FORM: _zennas_gradnorm, ZERO_COST_FORM: _zero_cost_gradnorm,
}
"""GradNorm as each protocol's reference computes it from the loss of one batch."""


def snip(run: ProxyRun) -> float:
    """SNIP (zero-cost-nas `snip`): the sum over conv and linear weights of |w * dL/dw| for
    the mean cross-entropy of one batch; the gradient of zero-cost-nas's all-ones weight mask
    is exactly w * dL/dw."""
    with _seeded(run):
        model = _scoring_model(run)
        images, labels = _batch(run)
        logits = model(images)
    loss = _loss(logits, labels, run.settings.num_classes)
    weights = [layer.weight for layer in _weighted_layers(model)]
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    with torch.no_grad():
        return sum(float((w * g).abs().sum()) for w, g in zip(weights, grads, strict=True)
                   if g is not None)


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
    """SynFlow: |w * dR/dw| of every conv/linear weight for R the summed output of the
    network with all-positive weights on an all-ones image, reduced as the space's form says
    (`SYNFLOW_FORMS`).

    Zen-NAS returns minus its sum, so its search prefers *smaller* synflow; we report the
    positive sum and declare `higher_is_better=False`, which orders candidates identically.
    zero-cost-nas (NB201) prefers larger values; its protocol says so.
    """
    form = run.space.proxy_protocol(run.settings.proxy).form
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
    return float(sum(SYNFLOW_FORMS[form](layer) for layer in _weighted_layers(model)))


def _weighted_layers(model: nn.Module) -> Iterator[nn.Conv2d | nn.Linear]:
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            yield module


def _synflow_of(layer: nn.Conv2d | nn.Linear) -> float:
    """Zen-NAS: the mean over output units of each unit's summed saliency."""
    if layer.weight.grad is None:
        return 0.0
    with torch.no_grad():
        saliency = (layer.weight * layer.weight.grad).abs()
        return float(saliency.sum(dim=tuple(range(1, saliency.dim()))).mean())


def _summed_synflow_of(layer: nn.Conv2d | nn.Linear) -> float:
    """zero-cost-nas: the layer's summed saliency."""
    if layer.weight.grad is None:
        return 0.0
    with torch.no_grad():
        return float((layer.weight * layer.weight.grad).abs().sum())


SYNFLOW_FORMS: dict[str, Callable[[nn.Conv2d | nn.Linear], float]] = {
    ZENNAS_FORM: _synflow_of, ZERO_COST_FORM: _summed_synflow_of,
}
"""One layer's SynFlow as each protocol's reference reduces it (summed over layers)."""


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
        model(_batch(run)[0] if reads_real_data(run.settings) else _images(run))
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
