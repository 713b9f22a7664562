"""The NAS-Bench-201 search spaces behind the `SearchSpace` interface: `nb201-cifar10`,
`nb201-cifar100` and `nb201-imagenet16` (ImageNet16-120: 16x16 images, 120 classes).

One space per data set of the benchmark: the cell and its network are the same, the task
(classes, resolution) and the ground-truth column differ. Every decodable cell is valid; the
costs are NATS-Bench's; the random mutation is NATS-Bench's regularized-evolution mutation
(one edge to another op), and a run's random initial members are random cells, as there.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasagent.evaluator.spaces.base import (
    GAUSSIAN,
    STANDARD_NAMING,
    Accuracy,
    Cost,
    Decoded,
    MemoryEstimate,
    Metric,
    PromptFacts,
    ProxyProtocol,
    ReplyFormat,
    SearchSpace,
    SpaceDefaults,
)
from nasagent.evaluator.spaces.nb201 import bench as table
from nasagent.evaluator.spaces.nb201 import facts
from nasagent.evaluator.spaces.nb201.cell import NAMINGS, decode, encode, naming
from nasagent.evaluator.spaces.nb201.cost import activation_elements, nats_cost
from nasagent.evaluator.spaces.nb201.mutation import mutate, random_cell
from nasagent.evaluator.spaces.nb201.protocols import protocol_of

if TYPE_CHECKING:
    from torch import nn

    from nasagent.evaluator.proxies import ScoreSettings
    from nasagent.evaluator.validation import Constraints, Violation

NB201_METRICS = (
    Metric("params", "params", "parameter", "at most {limit} parameters",
           "params {value} exceed the budget of {limit}; use cheaper operations (fewer "
           "convolutions, or 1x1 instead of 3x3)"),
    Metric("flops", "FLOPs", "FLOP",
           "at most {limit} FLOPs per image at {resolution}x{resolution}",
           "FLOPs {value} at resolution {resolution} exceed the budget of {limit}; use cheaper "
           "operations (fewer convolutions, or 1x1 instead of 3x3)"),
)
"""NATS-Bench's costs: parameters and FLOPs (the space has no layer count)."""

SEED_CELL = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
    "skip_connect~2|"
)
"""NATS-Bench's cell index 0: the default seed of every NB201 space (no better than the median
cell on any of the three data sets)."""

BROKEN_OP = "nor_conv_5x5"
"""A plausible-looking op name that is not in the space (for deliberately broken answers)."""

UNSUPPORTED: dict[str, tuple[object, str]] = {
    "counting": ("exact", "NB201 spaces count parameters and FLOPs as NATS-Bench does; "
                          "counting 'zennas' is a Zen-NAS option"),
    "structure": ("none", "NB201 cells have no structure rules; structure is a Zen-NAS option"),
    "type_weights": ("zennas", "type_weights weights Zen-NAS block types; NB201's mutation "
                               "changes one edge's operation"),
    "residual": (False, "NB201 networks are scored as built (their reduction blocks keep "
                        "their shortcuts); residual is a Zen-NAS option"),
}
"""The shared options NB201 spaces cannot honour: the one value accepted, and why."""


class Nb201Mutator:
    """NATS-Bench's regularized-evolution mutation with its own seeded RNG: one edge's
    operation replaced by another, whatever `num_replaces` (the benchmark's standard)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def mutate(self, arch: Any, num_replaces: int = 1) -> Any:  # noqa: ARG002
        return mutate(arch, self._rng)


@dataclass(frozen=True)
class Nb201Benchmark:
    """The packaged NATS-Bench table of one data set (`evaluator.spaces.base.Benchmark`)."""

    dataset: str
    source: str = table.SOURCE

    def lookup(self, canonical: str) -> Accuracy:
        record = table.lookup(decode(canonical).cell, self.dataset)
        return Accuracy(record.test_accuracy, record.test_accuracy_12ep, record.nats_index)

    def best(self) -> tuple[str, Accuracy]:
        record = table.best(self.dataset)
        return encode(record.cell), Accuracy(record.test_accuracy, record.test_accuracy_12ep,
                                             record.nats_index)

    def __len__(self) -> int:
        return 5 ** 6


@dataclass(frozen=True, eq=False)
class Nb201Space(SearchSpace):
    """NAS-Bench-201 on one of its data sets (see the module docstring)."""

    name: str
    dataset: str
    task_name: str
    defaults: SpaceDefaults

    metrics = NB201_METRICS
    namings = tuple(NAMINGS)
    prompt_versions = (3,)
    random_mutation = "NATS-Bench REA mutation"

    @property
    def description(self) -> str:  # type: ignore[override]
        return (f"NAS-Bench-201 cells (NATS-Bench topology search space) for {self.task_name}: "
                f"6 edges, 5 operations each, 15,625 cells.")

    # ---- codec ------------------------------------------------------------------------------

    def decode(self, text: str, naming: str = STANDARD_NAMING) -> Decoded:
        decoded = decode(text, naming)
        return Decoded(decoded.cell, decoded.notes)

    def encode(self, arch: Any, naming: str = STANDARD_NAMING) -> str:
        return encode(arch, naming)

    def looks_like(self, line: str) -> bool:
        """`|x~0|+|...|`: a line that starts and ends with a pipe and names sources with '~'."""
        return len(line) > 2 and line[0] == "|" and line[-1] == "|" and "~" in line

    def reply_format(self, naming: str = STANDARD_NAMING) -> ReplyFormat:
        return ReplyFormat(answer_noun="cell string", example=encode(
            decode(self.defaults.seed_arch).cell, naming),
            shape="one cell string of 3 groups joined by '+'")

    # ---- rules and cost ---------------------------------------------------------------------

    def option_problems(self, options: Mapping[str, Any]) -> list[str]:
        problems = super().option_problems(options)
        for key, (accepted, why) in UNSUPPORTED.items():
            if key in options and options[key] != accepted:
                problems.append(f"{key} {options[key]!r}: {why}")
        return problems

    def violations(self, arch: Any, constraints: Constraints) -> list[Violation]:  # noqa: ARG002
        from nasagent.evaluator.validation import Violation, ViolationKind

        if constraints.resolution % 4 == 0:
            return []
        text = (f"the network halves the {constraints.resolution}x{constraints.resolution} "
                f"input twice: the resolution must be a multiple of 4")
        return [Violation(block=None, field="resolution", kind=ViolationKind.RESOLUTION,
                          message=text)]

    def cost(self, arch: Any, constraints: Constraints) -> Cost | None:
        if constraints.resolution % 4:
            return None
        cost = nats_cost(arch, constraints.num_classes, constraints.resolution)
        return Cost(cost.params, cost.flops)

    def memory(self, arch: Any, constraints: Constraints, batch_size: int) -> MemoryEstimate:
        params = nats_cost(arch, constraints.num_classes, constraints.resolution).params
        elements = activation_elements(arch, constraints.resolution, constraints.num_classes)
        return MemoryEstimate(params, elements, batch_size)

    # ---- search -----------------------------------------------------------------------------

    def mutator(self, seed: int, options: Mapping[str, Any]) -> Nb201Mutator:  # noqa: ARG002
        return Nb201Mutator(seed)

    def initial_member(self, seed_arch: Any, rng: random.Random,  # noqa: ARG002
                       options: Mapping[str, Any]) -> Any:  # noqa: ARG002
        """A random cell, as NATS-Bench's regularized evolution starts its population."""
        return random_cell(rng)

    def random_arch(self, rng: random.Random) -> Any:
        return random_cell(rng)

    def broken(self, arch: Any, rng: random.Random) -> tuple[str, str]:
        """One edge's op replaced by a name that is not an operation of the space."""
        pieces = encode(arch).split("|")
        slots = [index for index, piece in enumerate(pieces) if "~" in piece]
        slot = slots[rng.randrange(len(slots))]
        pieces[slot] = BROKEN_OP + pieces[slot][pieces[slot].index("~"):]
        return "|".join(pieces), "(scripted stand-in: a deliberately broken answer, unknown op)"

    # ---- torch ------------------------------------------------------------------------------

    def proxy_protocol(self, proxy: str) -> ProxyProtocol:
        """The literature's protocol of `proxy` on NB201 (see `nb201.protocols`)."""
        return protocol_of(proxy)

    def scoring_model(self, arch: Any, settings: ScoreSettings) -> nn.Module:
        """The NATS-Bench network, initialised as the proxy's protocol says (PyTorch's
        default, or Zen-NAS's Gaussian for the Zen-score), without the BatchNorm layers the
        protocol leaves out (SynFlow)."""
        from nasagent.evaluator.spaces.nb201.builder import build_network
        from nasagent.evaluator.torch_proxies import gaussian_init

        protocol = protocol_of(settings.proxy)
        model = build_network(arch, settings.num_classes, batchnorm=protocol.batchnorm)
        if protocol.init == GAUSSIAN:
            gaussian_init(model)
        return model

    def train_model(self, arch: Any, num_classes: int) -> nn.Module:
        from nasagent.evaluator.spaces.nb201.builder import build_network

        return build_network(arch, num_classes)

    # ---- prompts and truth ------------------------------------------------------------------

    def prompt_facts(self, constraints: Constraints, options: Mapping[str, Any]) -> PromptFacts:
        names = str(options.get("op_names", STANDARD_NAMING))
        naming(names)  # an unknown naming is refused by name
        return facts.prompt_facts(self, constraints, names, options)

    def benchmark(self) -> Nb201Benchmark:
        return Nb201Benchmark(self.dataset)


def _defaults(resolution: int, num_classes: int) -> SpaceDefaults:
    return SpaceDefaults(
        seed_arch=SEED_CELL, resolution=resolution, num_classes=num_classes,
        example_file="fixtures/architectures/nb201-cells.txt", prompt_version=3,
    )


NB201_SPACES = (
    Nb201Space("nb201-cifar10", "cifar10", "CIFAR-10", _defaults(32, 10)),
    Nb201Space("nb201-cifar100", "cifar100", "CIFAR-100", _defaults(32, 100)),
    Nb201Space("nb201-imagenet16", "imagenet16-120", "ImageNet16-120", _defaults(16, 120)),
)
"""The built-in NB201 spaces, in registration order."""
