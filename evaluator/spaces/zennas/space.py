"""The Zen-NAS search spaces behind the `SearchSpace` interface: `zennas-cifar`,
`zennas-imagenet` and `all`.

A Zen-NAS space is a set of super blocks (`ops`) plus the block-type families its random
mutation switches between; everything else (codec, rules, cost, mutation, builder, prompt
facts) is shared by the three and lives in this package's modules.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nasagent.evaluator.spaces.base import (
    STANDARD_NAMING,
    Cost,
    Decoded,
    MemoryEstimate,
    Metric,
    PromptFacts,
    SearchSpace,
    SpaceDefaults,
)
from nasagent.evaluator.spaces.zennas import facts, rules
from nasagent.evaluator.spaces.zennas.codec import decode
from nasagent.evaluator.spaces.zennas.cost import (
    Counting,
    activation_elements,
    count_cost,
)
from nasagent.evaluator.spaces.zennas.ops import (
    CIFAR_SEED,
    CONV_OPS,
    IDW_OPS,
    IMAGENET_SEED,
    K1KXK1_OPS,
    KXKX_OPS,
    OPS,
    OpSpec,
)

if TYPE_CHECKING:
    from torch import nn

    from nasagent.evaluator.proxies import ScoreSettings
    from nasagent.evaluator.validation import Constraints, Violation

UNKNOWN_OP = "SuperResK4K4"
"""A plausible-looking block name that is not registered (for deliberately broken answers)."""

ZENNAS_METRICS = (
    Metric("params", "params", "parameter", "at most {limit} parameters",
           "params {value} exceed the budget of {limit}; shrink channels or sub-layers"),
    Metric("flops", "FLOPs", "FLOP",
           "at most {limit} FLOPs per image at {resolution}x{resolution}",
           "FLOPs {value} at resolution {resolution} exceed the budget of {limit}; shrink "
           "channels or sub-layers, or downsample earlier"),
    Metric("layers", "layers", "layer",
           "at most {limit} layers, where layers = the sum of sub_layers over all blocks",
           "layers {value} (the sum of sub_layers) exceed the budget of {limit}; remove "
           "sub-layers or blocks", integer=True),
)
"""The costs a Zen-NAS budget limits, with the sentences the prompt and validator use."""

STRUCTURE_NAMES = tuple(rules.STRUCTURES)


@dataclass(frozen=True, eq=False)
class ZenNasSpace(SearchSpace):
    """A named set of Zen-NAS super blocks plus the block-type families the random mutation
    switches between.

    `mutation_families` lists, per family, the Res types in Zen-NAS order; the order matters
    because the reference's list-aliasing bug weights types by their position (section 5.4).
    `defaults` is the task every command assumes for this space unless told otherwise.
    """

    name: str
    ops: tuple[str, ...]
    mutation_families: tuple[tuple[str, ...], ...]
    description: str
    defaults: SpaceDefaults
    freeze_head_conv: bool = False
    noise: Mapping[str, facts.DepthNoise] = field(default_factory=dict)
    """The proxies' measured noise the prompt states (measured for the CIFAR task)."""

    metrics = ZENNAS_METRICS
    prompt_versions = (1, 2, 3)
    random_mutation = "Zen-NAS random mutation"

    def __contains__(self, op_name: object) -> bool:
        return op_name in self.ops

    @property
    def specs(self) -> list[OpSpec]:
        return [OPS[name] for name in self.ops]

    # ---- codec ------------------------------------------------------------------------------

    def decode(self, text: str, naming: str = STANDARD_NAMING) -> Decoded:  # noqa: ARG002
        return decode(text)

    def encode(self, arch: Any, naming: str = STANDARD_NAMING) -> str:  # noqa: ARG002
        return str(arch)

    def looks_like(self, line: str) -> bool:
        """`Name(...)...` starting with a capital letter: the shape of registered block names."""
        name, paren, _ = line.partition("(")
        return bool(
            paren and name[:1].isupper() and name.isascii() and name.replace("_", "").isalnum()
            and line.endswith(")")
        )

    # ---- rules and cost ---------------------------------------------------------------------

    def option_problems(self, options: Mapping[str, Any]) -> list[str]:
        problems = super().option_problems(options)
        structure = options.get("structure", "none")
        if structure not in rules.STRUCTURES:
            problems.append(f"unknown structure {structure!r}; valid: "
                            f"{', '.join(STRUCTURE_NAMES)}")
        return problems

    def violations(self, arch: Any, constraints: Constraints) -> list[Violation]:
        return rules.structural_violations(arch, constraints, self.ops, self.name)

    def cost(self, arch: Any, constraints: Constraints) -> Cost | None:
        return rules.cost_if_defined(arch, constraints)

    def constrained_by_seed(self, constraints: Constraints, seed_arch: str) -> Constraints:
        """Under a structure, the seed's number of stride-2 blocks is the schedule to keep."""
        if constraints.structure == "none":
            return constraints
        count = rules.stride2_count(decode(seed_arch).architecture)
        return constraints.model_copy(update={"stride2_blocks": count})

    def memory(self, arch: Any, constraints: Constraints, batch_size: int) -> MemoryEstimate:
        cost = count_cost(arch, num_classes=constraints.num_classes,
                          resolution=constraints.resolution, counting=Counting.EXACT)
        elements = activation_elements(arch, resolution=constraints.resolution,
                                       num_classes=constraints.num_classes)
        return MemoryEstimate(int(cost.params), elements, batch_size)

    def structure_statements(self, constraints: Constraints) -> list[str]:
        return rules.structure_statements(constraints)

    # ---- search -----------------------------------------------------------------------------

    def mutator(self, seed: int, options: Mapping[str, Any]) -> Any:
        from nasagent.evaluator.spaces.zennas.mutation import RandomMutator

        weights = options.get("type_weights", "zennas")
        return RandomMutator(self, seed=seed, type_weights=weights)

    def broken(self, arch: Any, rng: random.Random) -> tuple[str, str]:
        """Unchained channels or an unknown op (a seeded choice)."""
        blocks = [str(block) for block in arch.blocks]
        index = rng.randrange(1, len(blocks)) if len(blocks) > 1 else 0
        if rng.random() < 0.5:
            block = arch.blocks[index]
            blocks[index] = str(block.replace(in_channels=block.in_channels + 8))
            return "".join(blocks), ("(scripted stand-in: a deliberately broken answer, "
                                     "wrong channels)")
        blocks[index] = UNKNOWN_OP + blocks[index][blocks[index].index("("):]
        return "".join(blocks), "(scripted stand-in: a deliberately broken answer, unknown op)"

    # ---- torch ------------------------------------------------------------------------------

    def scoring_model(self, arch: Any, settings: ScoreSettings) -> nn.Module:
        """Zen-NAS's protocol: the `no_reslink` model unless `residual`, N(0, 1) weights."""
        from nasagent.evaluator.spaces.zennas.builder import build_model
        from nasagent.evaluator.torch_proxies import gaussian_init

        model = build_model(arch, num_classes=settings.num_classes, residual=settings.residual)
        gaussian_init(model)
        return model

    def train_model(self, arch: Any, num_classes: int) -> nn.Module:
        from nasagent.evaluator.spaces.zennas.builder import build_model

        return build_model(arch, num_classes=num_classes, residual=True)

    def scoring_cost(self, arch: Any, settings: ScoreSettings) -> Cost:
        """Zen-NAS `get_model_size()` / `get_FLOPs(resolution)` of the scoring model."""
        return count_cost(arch, num_classes=settings.num_classes,
                          resolution=settings.resolution, counting=Counting.ZENNAS,
                          residual=settings.residual)

    # ---- prompts ----------------------------------------------------------------------------

    def prompt_facts(self, constraints: Constraints, options: Mapping[str, Any]) -> PromptFacts:
        return facts.prompt_facts(self, constraints, bool(options.get("residual", False)))

    def legacy_prompt_context(self, version: int, constraints: Constraints, proxy: str
                              ) -> dict[str, Any]:
        return facts.legacy_context(self, version, constraints, proxy)


CIFAR_DEFAULTS = SpaceDefaults(
    seed_arch=CIFAR_SEED, resolution=32, num_classes=100, max_params=1e6, max_flops=None,
    max_layers=18, example_file="fixtures/architectures/zennas-reference.txt",
)
"""Zen_NAS_cifar_params1M.sh: the CIFAR-100 seed at 32x32 under 1M parameters, 18 layers."""

IMAGENET_DEFAULTS = SpaceDefaults(
    seed_arch=IMAGENET_SEED, resolution=224, num_classes=1000, max_params=None,
    max_flops=400e6, max_layers=14, example_file="fixtures/architectures/zennas-imagenet.txt",
)
"""Zen_NAS_ImageNet_flops400M.sh: the IDW seed at 224x224, 1000 classes, 400M FLOPs, 14 layers."""

ZENNAS_SPACES = (
    ZenNasSpace(
        "zennas-cifar",
        CONV_OPS + KXKX_OPS + K1KXK1_OPS,
        (K1KXK1_OPS, KXKX_OPS),
        "Zen-NAS XXBL space (CIFAR scripts): SuperConv, ResNet basic (KXKX) and bottleneck "
        "(K1KXK1) blocks.",
        CIFAR_DEFAULTS,
        noise=facts.NOISE,
    ),
    ZenNasSpace(
        "zennas-imagenet",
        CONV_OPS + IDW_OPS,
        (IDW_OPS,),
        "Zen-NAS IDW_fixfc space (ImageNet FLOPs scripts): SuperConv and inverted-residual "
        "depthwise (IDW) blocks; the 1x1 head conv keeps its width during random mutation.",
        IMAGENET_DEFAULTS,
        freeze_head_conv=True,
    ),
    ZenNasSpace(
        "all",
        tuple(OPS),
        (K1KXK1_OPS, KXKX_OPS, IDW_OPS),
        "Every registered super block (with the CIFAR task's defaults).",
        CIFAR_DEFAULTS,
        noise=facts.NOISE,
    ),
)
"""The built-in Zen-NAS spaces, in registration order."""
