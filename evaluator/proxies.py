"""Zero-cost proxies: a registry of scoring functions whose failures are results, not numbers.

Every torch proxy follows the seeded protocol of zennas-semantics section 10 on the global
torch RNG (inside `torch.random.fork_rng`, so the caller's random stream is left as it was):
seed, build the scoring model (Zen-NAS's `no_reslink` model unless `residual=True`),
Gaussian re-initialisation in module order, then draw the inputs. Model and inputs are made
on the CPU and then moved, so a seed means the same weights and batch on every device.

What changes between spaces is the space's business (`SearchSpace.proxy_protocol`): the
initialisation, whether a run's real proxy data replaces the Gaussian inputs, whose definition
of a proxy applies and its direction. The Zen-NAS spaces keep Zen-NAS's protocol for every
proxy; NB201 follows the papers that judged each proxy there (`spaces.nb201.protocols`).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nasagent.evaluator import cpu_kernels
from nasagent.evaluator.combined import Combination
from nasagent.evaluator.errors import ArchitectureError, NasAgentError, UnknownNameError
from nasagent.evaluator.memory import check_memory, default_cap_mb, memory_refusal, read_cap
from nasagent.evaluator.registry import PluginError, Registry
from nasagent.evaluator.validation import Constraints

if TYPE_CHECKING:
    import torch

    from nasagent.evaluator.spaces.base import SearchSpace

logger = logging.getLogger(__name__)

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda")


class ProxyStatus(StrEnum):
    """How a scoring attempt ended; only OK carries a score."""

    OK = "ok"
    NONFINITE = "nonfinite"
    ERROR = "error"
    OVER_BUDGET = "over_budget"
    """The memory estimate is over the cap (`max_memory`): nothing was built or allocated."""
    INVALID = "invalid"
    TIMEOUT = "timeout"
    """The scoring ran past the run's `score_timeout`; its worker process was killed."""
    CRASHED = "crashed"
    """The worker process died while scoring (OOM kill, segfault); it was replaced."""
    MEMORY = "memory"
    """The scoring's worker went past the run's `score_memory`; it was killed and replaced."""


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
    search_space: str = "zennas-cifar"
    """The space that decodes and builds what is scored (its proxy protocol)."""
    max_memory: float | None = Field(default_factory=default_cap_mb)
    """The memory cap in MB (evaluator.memory): an architecture whose estimate is over it is
    not built (status `over_budget`). Default: half this machine's memory ("auto"); 0, "none"
    or None: no cap. It decides whether a score is computed, never its value."""

    proxy_data: str | None = None
    """A data spec (`cifar10:DIR`, `imagefolder:DIR`, ...): the proxies whose protocol takes
    real data read one seeded minibatch of its training images and labels; None: Gaussian
    images and random labels."""
    combination: Combination = Field(default_factory=Combination)
    """The members and the fixed normalisation of the `combined` proxy."""

    @field_validator("max_memory", mode="before")
    @classmethod
    def _cap(cls, value: Any) -> float | None:
        return read_cap(value)

    @field_validator("search_space")
    @classmethod
    def _known_space(cls, name: str) -> str:
        from nasagent.evaluator.spaces import get_space

        try:
            get_space(name)
        except NasAgentError as error:
            raise ValueError(str(error)) from None
        return name

    @field_validator("proxy_data")
    @classmethod
    def _a_data_spec(cls, spec: str | None) -> str | None:
        return checked_data_spec(spec)

    @model_validator(mode="after")
    def _options_of_the_space(self) -> ScoreSettings:
        problems = self.space.option_problems({"residual": self.residual})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def space(self) -> SearchSpace:
        from nasagent.evaluator.spaces import get_space

        return get_space(self.search_space)

    def of(self, proxy: str) -> ScoreSettings:
        """These settings for another proxy (a combined proxy's member)."""
        return self.model_copy(update={"proxy": proxy})

    def cache_key(self) -> str:
        """A stable string of the settings a score depends on (all but the memory cap): equal
        keys mean interchangeable scores."""
        return json.dumps(self.model_dump(mode="json", exclude={"max_memory"}), sort_keys=True,
                          separators=(",", ":"))

    def memory_refusal(self, arch: Any, what: str = "the architecture") -> str | None:
        """The sentence refusing `arch` (an architecture of the space that passed its rules)
        when scoring it with this proxy would pass the memory cap, else None.

        Raises:
            ArchitectureError: `arch` cannot be costed.
        """
        if not get_proxy(self.proxy).allocates:
            return None
        return memory_refusal(self.space, arch, self._task(), self.batch_size, self.max_memory,
                              what=what)

    def check_memory(self, arch: Any, what: str = "the architecture") -> None:
        """`memory_refusal` as an exception.

        Raises:
            MemoryCapError: scoring `arch` would pass the memory cap (nothing was built).
        """
        if get_proxy(self.proxy).allocates:
            check_memory(self.space, arch, self._task(), self.batch_size, self.max_memory,
                         what=what)

    def _task(self) -> Constraints:
        return Constraints(search_space=self.search_space, num_classes=self.num_classes,
                           resolution=self.resolution)

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
    """What a proxy's compute function gets for one seed: the architecture (an object of
    `space`), the settings, the seed and the device."""

    arch: Any
    settings: ScoreSettings
    seed: int
    device: torch.device
    space: SearchSpace


ProxyFunction = Callable[[ProxyRun], float]


@dataclass(frozen=True)
class ProxySpec:
    """One registered proxy.

    Attributes:
        name: the registry key (`--proxy NAME`).
        higher_is_better: the direction the search should optimise.
        description: one paragraph for the LLM prompt: what the proxy rewards.
        compute: returns the raw score of one seeded evaluation; may raise or return inf/nan.
            Either the function or its "module:function" path, imported on first use (so the
            registry, the prompt and config validation never import torch).
        about: what the proxy rewards in words true of every search space, for prompt
            version 3 and later (empty: `description`). `description` is also what the
            frozen Zen-NAS prompt versions 1 and 2 state, so it never changes.
        inputs: what one evaluation reads: `batch` (a minibatch: the run's real proxy data
            where the space's protocol takes it, Gaussian images otherwise), `gaussian`
            (Gaussian images always: the Zen-score is defined on them), `ones` (one all-ones
            image), `none` (nothing: a count), `members` (other proxies).
        log_scale: the scores are multiplicative (counts, gradient magnitudes): a
            combination takes their log before standardising them.
        prepare: fixes what the proxy needs before a run's first scoring and returns the
            settings that carry it (the combined proxy: its normalisation), or None.
            A function or its "module:function" path.
    """

    name: str
    higher_is_better: bool
    description: str
    compute: ProxyFunction | str
    about: str = ""
    inputs: str = "batch"
    log_scale: bool = False
    prepare: Callable[[ScoreSettings], ScoreSettings] | str | None = None

    @property
    def allocates(self) -> bool:
        """Whether the proxy builds the network (the memory cap applies): all but the counts."""
        return self.inputs != "none"

    @property
    def summary(self) -> str:
        """What prompt version 3 states about the proxy."""
        return (self.about or self.description).strip()

    @property
    def function(self) -> ProxyFunction:
        """The compute function, imported if `compute` is a path."""
        function: ProxyFunction = self._resolve(self.compute)
        return function

    def prepared(self, settings: ScoreSettings) -> ScoreSettings:
        """`settings` with what the proxy fixes per run (see `prepare`); unchanged if nothing."""
        if self.prepare is None:
            return settings
        prepared: ScoreSettings = self._resolve(self.prepare)(settings)
        return prepared

    def _resolve(self, target: Any) -> Any:
        if not isinstance(target, str):
            return target
        module, _, attribute = target.partition(":")
        try:
            return getattr(import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            message = f"proxy {self.name!r}: cannot import {target}: {error}"
            raise PluginError(message) from None


def resolve_device(name: str) -> torch.device:
    """Map `auto` / `cpu` / `cuda` to a torch device (`auto` prefers CUDA when present).

    Raises:
        UnknownNameError: a name other than the three above.
        DeviceUnavailableError: `cuda` on a machine without a usable GPU.
    """
    if name not in DEVICE_NAMES:
        raise UnknownNameError("device", name, DEVICE_NAMES)
    from nasagent.evaluator.torch_proxies import torch_device

    return torch_device(name)


def get_proxy(name: str) -> ProxySpec:
    """Return the registered proxy called `name` or raise an error listing the valid names."""
    return PROXIES.get(name)


def higher_is_better(proxy: str, search_space: str) -> bool:
    """Whether a higher score of `proxy` is better in `search_space`: the space's protocol
    may set the direction (NB201's SynFlow, as zero-cost-nas, is higher-is-better; Zen-NAS's
    is lower-is-better), otherwise the proxy's registered one.

    Raises:
        UnknownNameError: the proxy or the space is not registered.
    """
    from nasagent.evaluator.spaces import get_space

    spec = get_proxy(proxy)
    direction = get_space(search_space).proxy_protocol(proxy).higher_is_better
    return spec.higher_is_better if direction is None else direction


def inputs_used(settings: ScoreSettings) -> str:
    """What the proxy of `settings` reads, for records: `real:SPEC` (the proxy data),
    `gaussian` (Gaussian images, random labels), `ones`, `none`, or the members' inputs."""
    spec = get_proxy(settings.proxy)
    if spec.inputs == "members":
        return "; ".join(f"{member}: {inputs_used(settings.of(member))}"
                         for member in settings.combination.members)
    if spec.inputs != "batch":
        return spec.inputs
    return f"real:{settings.proxy_data}" if reads_real_data(settings) else "gaussian"


def reads_real_data(settings: ScoreSettings) -> bool:
    """Whether the proxy of `settings` reads the run's proxy data: it reads a batch, its
    space's protocol takes real data, and the settings give some."""
    from nasagent.evaluator.spaces.base import REAL_DATA

    if settings.proxy_data is None or get_proxy(settings.proxy).inputs != "batch":
        return False
    return settings.space.proxy_protocol(settings.proxy).data == REAL_DATA


def checked_data_spec(spec: str | None) -> str | None:
    """`spec` unchanged when it is a data spec (`cifar10:DIR`, ...) or None.

    Raises:
        ValueError: the spec cannot be read, with the reason (for pydantic validators).
    """
    if spec is not None:
        from nasagent.evaluator.datasets import parse_spec  # torch: only when data is given

        try:
            parse_spec(spec)
        except NasAgentError as error:
            raise ValueError(str(error)) from None
    return spec


def prepare_settings(settings: ScoreSettings) -> ScoreSettings:
    """The settings a run scores with, checked before its first scoring: the proxy data read
    once (an unusable folder is an error here, not a failed score per candidate), then the
    proxy's per-run preparation applied (the combined proxy's normalisation, measured once
    and carried by the settings to every worker).

    Raises:
        DataError: the proxy data cannot be read or does not fit the task.
        CombinationError: the combined proxy cannot be normalised (see evaluator.combined).
    """
    check_proxy_data(settings)
    return get_proxy(settings.proxy).prepared(settings)


def check_proxy_data(settings: ScoreSettings) -> None:
    """Read the first proxy batch of `settings` (kept for the scorings), if it gives data.

    Raises:
        DataError: the data cannot be read, holds too few images or other classes.
    """
    if settings.proxy_data is not None:
        from nasagent.evaluator.datasets import proxy_batch

        proxy_batch(settings.proxy_data, settings.batch_size, settings.resolution,
                    settings.num_classes, settings.seed)


def score(arch: Any, settings: ScoreSettings) -> ScoreResult:
    """Score `arch` with the proxy of `settings`; the mean over `settings.repeats` seeds.

    `arch` is an architecture of `settings.search_space` or its string (decoded first: a
    string that does not decode raises its BlockStringError).

    A candidate that cannot be built is INVALID, one whose memory estimate is over
    `settings.max_memory` is OVER_BUDGET (checked first: nothing is built), one whose
    evaluation raises (out of memory, a 1x1 feature map in a batch of one, ...) is ERROR, and
    an inf/nan value is NONFINITE. `seconds` covers building and scoring, all repeats together.

    Torch's CPU kernels are pinned to AVX2 first (evaluator.cpu_kernels), so that scores are
    the same on every x86-64 machine.

    Raises:
        UnknownNameError: the proxy or device name is not registered.
        DeviceUnavailableError: CUDA was requested but is not available.
        KernelChoiceError: NASAGENT_CPU_KERNELS holds an unknown value.
    """
    cpu_kernels.pin()
    from nasagent.evaluator.torch_proxies import release_device_memory

    space = settings.space
    if isinstance(arch, str):
        arch = space.decode(arch).architecture
    spec = get_proxy(settings.proxy)
    compute = spec.function
    device = resolve_device(settings.device)
    start = time.perf_counter()

    def result(value: float | None, status: ProxyStatus, message: str = "") -> ScoreResult:
        return ScoreResult(
            proxy=spec.name, score=value, status=status, seconds=time.perf_counter() - start,
            message=message, seed=settings.seed,
            higher_is_better=higher_is_better(spec.name, settings.search_space),
        )

    try:
        refusal = settings.memory_refusal(arch)
        if refusal is not None:  # the last line of defence: every caller checked already
            return result(None, ProxyStatus.OVER_BUDGET, refusal)
        values = [compute(ProxyRun(arch, settings, seed, device, space))
                  for seed in settings.seeds()]
    except ArchitectureError as error:
        return result(None, ProxyStatus.INVALID, str(error))
    except Exception as error:  # a failing candidate is data for the search, not a crash
        logger.debug("proxy %s failed on %s", spec.name, arch, exc_info=True)
        release_device_memory(device)
        return result(None, ProxyStatus.ERROR, f"{type(error).__name__}: {error}")
    if not all(math.isfinite(value) for value in values):
        return result(None, ProxyStatus.NONFINITE, f"{spec.name} gave non-finite values {values}")
    return result(statistics.fmean(values), ProxyStatus.OK)


PROXIES: Registry[ProxySpec] = Registry("proxy", ProxySpec, group="nasagent.proxies")
"""The registered zero-cost proxies, by name; plugins add theirs through `nasagent.proxies`."""

_TORCH = "nasagent.evaluator.torch_proxies"

_BUILT_IN = (
    ProxySpec(
        "gradnorm", True,
        "GradNorm: the norm of the loss gradient over all weights at a random Gaussian "
        "initialisation, on one batch of random images with random labels. It rewards "
        "networks whose gradients are large, which grows with depth and width when there "
        "are no residual links (the model is scored without them), so deeper and wider "
        "plain stacks score higher.",
        f"{_TORCH}:gradnorm",
        about="GradNorm: the size of the gradient of the cross-entropy loss with respect to "
              "the weights, at a random initialisation, on one batch of images with labels. It "
              "rewards networks through which the loss gradient reaches many weights strongly, "
              "which grows with the number and width of the convolutions on the paths from "
              "input to output.",
        log_scale=True,
    ),
    ProxySpec(
        "zen", True,
        "Zen-score: the log of how much the pre-pooling feature map moves when the input "
        "is perturbed slightly, plus the log scales of every BatchNorm layer, at a random "
        "Gaussian initialisation. It approximates the network's expressivity and rewards "
        "depth and width, favouring many channels in the later stages.",
        f"{_TORCH}:zen",
        inputs="gaussian",
        about="Zen-score: the log of how much the feature map before global pooling moves "
              "when a batch of Gaussian images is perturbed slightly, plus the log scales of "
              "every BatchNorm layer, at a random Gaussian initialisation. It approximates the "
              "network's expressivity and rewards depth and width, favouring many channels in "
              "the later stages.",
    ),
    ProxySpec(
        "synflow", False,
        "SynFlow: the summed |weight x gradient| saliency of every conv and linear layer "
        "with all-positive weights and an all-ones input, a measure of how much signal "
        "flows through the parameters. As in Zen-NAS, the search prefers smaller values, "
        "so lower is better here.",
        f"{_TORCH}:synflow",
        about="SynFlow: the summed |weight x gradient| saliency of every convolution and "
              "linear layer, with all weights made positive and one all-ones image as input: "
              "a measure of how much signal flows through the parameters along the paths from "
              "input to output, which grows with the number of parameterised operations on "
              "those paths.",
        inputs="ones", log_scale=True,
    ),
    ProxySpec(
        "naswot", True,
        "NASWOT: the log-determinant of the kernel that compares which ReLUs are active "
        "for each pair of images in a batch. It rewards networks whose activation "
        "patterns tell different inputs apart, which grows with the number of ReLU units.",
        f"{_TORCH}:naswot",
    ),
    ProxySpec(
        "snip", True,
        "SNIP: the summed |weight x gradient| of the cross-entropy loss over every "
        "convolution and linear layer, at a random initialisation on one batch of images "
        "with labels: how much the loss would change if each weight were removed. It "
        "rewards networks with many weights that matter to the loss.",
        f"{_TORCH}:snip",
        log_scale=True,
    ),
    ProxySpec(
        "params", True,
        "Params: the Zen-NAS parameter count of the network without residual links. It "
        "simply rewards larger models, up to the budget.",
        f"{_TORCH}:params",
        about="Params: the network's parameter count, as the search space counts the scored "
              "network. It simply rewards larger models, up to the budget.",
        inputs="none", log_scale=True,
    ),
    ProxySpec(
        "flops", True,
        "FLOPs: the Zen-NAS multiply-accumulate count of the network without residual "
        "links at the scoring resolution. It rewards more computation, up to the budget.",
        f"{_TORCH}:flops",
        about="FLOPs: the network's multiply-accumulates per image at the scoring resolution, "
              "as the search space counts the scored network. It rewards more computation, up "
              "to the budget.",
        inputs="none", log_scale=True,
    ),
    ProxySpec(
        "combined", True,
        "Combined: the mean of several zero-cost proxies' scores (the run's members), each "
        "standardised with statistics measured once per run on a fixed random sample of the "
        "search space (after a log for count-like proxies) and signed so that higher is "
        "better. It rewards architectures that several proxies agree are good.",
        "nasagent.evaluator.combined:combined",
        inputs="members", prepare="nasagent.evaluator.combined:normalised",
    ),
)
for _spec in _BUILT_IN:
    PROXIES.register(_spec.name, _spec)
