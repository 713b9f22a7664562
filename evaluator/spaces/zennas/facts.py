"""What the prompts say about a Zen-NAS space, generated from the code that checks answers.

Two forms: `prompt_facts` feeds the generic prompt (version 3 and later), and
`legacy_context` the frozen Zen-NAS-only templates of versions 1 and 2, which must render
byte for byte as when runs were recorded with them (the replay backend matches requests by
a hash of the messages). Strings and lists only: no torch, no agent imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasagent.evaluator.spaces.base import PromptFacts, WorkedExample
from nasagent.evaluator.spaces.zennas.codec import parse
from nasagent.evaluator.spaces.zennas.cost import RGB_CHANNELS
from nasagent.evaluator.spaces.zennas.cost_facts import (
    CostFacts,
    cost_facts,
    max_stride2_blocks,
    resolution_chain,
)
from nasagent.evaluator.spaces.zennas.ops import (
    CIFAR_SEED,
    CONV_FIELDS,
    IMAGENET_SEED,
    RES_FIELDS,
    Family,
    OpSpec,
)
from nasagent.evaluator.spaces.zennas.rules import (
    CHANNEL_MULTIPLE,
    MAX_CHANNELS,
    structure_statements,
)

if TYPE_CHECKING:
    from nasagent.evaluator.spaces.zennas.space import ZenNasSpace
    from nasagent.evaluator.validation import Constraints

FIELD_MEANINGS: dict[str, str] = {
    "in_channels": "channels entering the block: 3 for the first block, otherwise the previous "
                   "block's out_channels",
    "out_channels": "channels the block outputs",
    "stride": "1 keeps the resolution, 2 halves it (applied once, in the first sub-layer)",
    "bottleneck_channels": "SuperRes blocks only: the inner width of each residual unit (see the "
                           "block descriptions)",
    "sub_layers": "how many times the block's layer pattern is repeated; each repetition counts "
                  "as one layer of the layer budget",
}
"""The meaning of each signature field, in the order blocks write them."""

COUNTING_TEXT: dict[str, str] = {
    "exact": "parameters are counted as PyTorch counts the trainable parameters of the network "
             "with its residual shortcuts and classifier; FLOPs are, per image, the "
             "multiply-accumulates of every convolution and of the classifier plus one per "
             "BatchNorm output element",
    "zennas": "parameters and FLOPs are counted as Zen-NAS's get_model_size and get_FLOPs "
              "count them",
}


@dataclass(frozen=True)
class NoiseFigure:
    """How much a proxy's score moves when only its random draws change (measured).

    Attributes:
        median: the median, over near-identical networks, of the score's spread over score
            seeds: its standard deviation divided by its mean (`relative`, 0.05 is 5%), or the
            plain standard deviation in score units (for log-scale proxies such as Zen).
        maximum: the largest such spread seen.
        relative: which of the two the figures are.
        command: how the figure was measured.
    """

    median: float
    maximum: float
    relative: bool
    command: str

    def describe(self) -> str:
        if self.relative:
            return f"a median of {self.median:.1%} (up to {self.maximum:.1%}) of its value"
        return f"a median of {self.median:.2g} (up to {self.maximum:.2g}) in score units"


LEGACY_NOISE: dict[str, NoiseFigure] = {
    # Measured 2026-12-01 on the 2-core development machine (x86_64, torch 2.13 CPU): 8
    # networks (the seed and 7 one-block mutations) x 4 score seeds, batch 64, 32x32, 100
    # classes. The median relative change between a mutant and the seed was 15.9%.
    "gradnorm": NoiseFigure(
        median=0.096, maximum=0.25, relative=True,
        command="OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_noise.py --proxy gradnorm "
                "--mutants 8 --score-seeds 4",
    ),
    # Same machine and setting; Zen is a log-scale score, so the spread is in score units.
    # The median relative change between a mutant and the seed was 25%.
    "zen": NoiseFigure(
        median=0.042, maximum=0.14, relative=False,
        command="OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_noise.py --proxy zen "
                "--mutants 8 --score-seeds 4",
    ),
}
"""The noise figures prompt version 2 quotes (one-block mutations of the CIFAR seed only):
frozen with that version; version 3 states `NOISE` (prompt_facts)."""


def legacy_noise_sentence(proxy: str) -> str:
    """What prompt version 2 says about the proxy's noise between near-identical networks."""
    figure = LEGACY_NOISE.get(proxy)
    if figure is None:
        return (
            f"The noise of {proxy} between near-identical networks has not been measured; do "
            f"not read much into small score differences."
        )
    return (
        f"Noise: re-drawing only the random weights and input batch (the score seed) moves the "
        f"{proxy} score of one network by {figure.describe()} (standard deviation over score "
        f"seeds), measured on one-block mutations of the CIFAR seed. In a run "
        f"the score seed is fixed, so a network always gets the same score, but two similar "
        f"networks differing by about that much may owe it to the draw, not to the change."
    )


@dataclass(frozen=True)
class NoiseBand:
    """A proxy's measured noise for Zen-NAS networks of `low`..`high` layers (sum of
    sub_layers): over the networks of that depth, the median and 90th percentile of one
    network's standard deviation over score seeds (relative to the score, or in score units)."""

    low: int
    high: int
    median: float
    p90: float


@dataclass(frozen=True)
class DepthNoise:
    """How a proxy's noise grows with depth, and how often the draw alone reverses which of two
    near-identical networks (one width +-8 channels or one sub_layers +-1) scores higher."""

    relative: bool
    bands: tuple[NoiseBand, ...]
    flip_rate: float

    def amount(self, value: float) -> str:
        return f"{value:.0%}" if self.relative else f"{value:.2g}"

    def sentence(self, proxy: str) -> str:
        unit = "of its value" if self.relative else "in score units"
        rows = "; ".join(f"{b.low}-{b.high} layers {self.amount(b.median)} (90% of networks "
                         f"below {self.amount(b.p90)})" for b in self.bands)
        return (
            f"Noise: re-drawing only the random weights and input batch (the score seed) moves "
            f"the {proxy} score of one network by a standard deviation {unit} that grows with "
            f"depth (deep stacks of bottleneck blocks at the top of each range): {rows}; "
            f"measured on 96 networks across the zennas-cifar budgets (1e6 parameters, 18 "
            f"layers, 32x32 inputs). In a run the score seed is "
            f"fixed, so a network always gets the same score, but the draw reverses which of two "
            f"near-identical networks scores higher in {self.flip_rate:.0%} of draws: a "
            f"difference smaller than about twice the figure for the parent's depth may owe it "
            f"to the draw, not to the change."
        )


NOISE: dict[str, DepthNoise] = {
    # bench/results/proxy_noise.json: OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_noise.py
    # --per-bucket 24 --score-seeds 5 --threads 1 (2026-12-06, the 2-core AMD EPYC machine,
    # torch 2.13 CPU): 96 zennas-cifar networks stratified by depth and size, 5 score seeds,
    # batch 64; the pair flips are against a one-step "nudge" twin.
    "gradnorm": DepthNoise(True, (NoiseBand(1, 8, 0.095, 0.165), NoiseBand(9, 12, 0.119, 0.363),
                                  NoiseBand(13, 15, 0.124, 0.274), NoiseBand(16, 18, 0.237, 0.439)),
                           0.27),
    "zen": DepthNoise(False, (NoiseBand(1, 8, 0.063, 0.13), NoiseBand(9, 12, 0.14, 0.54),
                              NoiseBand(13, 15, 0.16, 0.37), NoiseBand(16, 18, 0.36, 0.51)), 0.13),
    "naswot": DepthNoise(False, (NoiseBand(1, 8, 0.17, 0.29), NoiseBand(9, 12, 0.22, 0.48),
                                 NoiseBand(13, 15, 0.21, 0.31), NoiseBand(16, 18, 0.22, 0.40)),
                         0.12),
    "synflow": DepthNoise(True, (NoiseBand(1, 8, 0.20, 0.43), NoiseBand(9, 12, 0.29, 0.55),
                                 NoiseBand(13, 15, 0.32, 1.39), NoiseBand(16, 18, 0.37, 1.33)),
                          0.34),
}
"""The noise prompt version 3 states for the Zen-NAS CIFAR budgets (measured across the depths
and widths the search reaches; version 2 froze the one-block figure of `LEGACY_NOISE`)."""


# ---- pieces shared by every prompt version -------------------------------------------------


def fields_in_use(specs: list[OpSpec]) -> list[str]:
    has_res = any(spec.has_bottleneck for spec in specs)
    return list(RES_FIELDS if has_res else CONV_FIELDS)


def limits_view(constraints: Constraints) -> dict[str, int]:
    return {
        "num_classes": constraints.num_classes,
        "first_in_channels": RGB_CHANNELS,
        "channel_multiple": CHANNEL_MULTIPLE,
        "max_channels": MAX_CHANNELS,
        "resolution": constraints.resolution,
        # R // 2 stays >= 1 for floor(log2 R) halvings
        "max_stride2": max(constraints.resolution, 1).bit_length() - 1,
    }


def counting_text(constraints: Constraints) -> str:
    return f"{constraints.counting} counting: {COUNTING_TEXT[constraints.counting]}"


def worked_example(space: ZenNasSpace) -> WorkedExample:
    """A mutation of the space's seed: block 1 (0-based) becomes another registered Res block.

    The CIFAR seed's `SuperResK3K3(8,16,1,8,1)` becomes `SuperResK1K5K1(8,16,1,8,1)`; in a
    space without that block the ImageNet seed's block 1 moves to `SuperResIDWE6K5`.
    """
    if "SuperResK1K5K1" in space:
        seed, seed_name, new_op = CIFAR_SEED, "Zen-NAS CIFAR seed", "SuperResK1K5K1"
    else:
        seed, seed_name, new_op = IMAGENET_SEED, "Zen-NAS ImageNet seed", "SuperResIDWE6K5"
    parent = parse(seed)
    old = parent.blocks[1]
    new = old.replace(op=new_op)
    child = parent.model_copy(update={"blocks": (parent.blocks[0], new, *parent.blocks[2:])})
    return WorkedExample(
        parent=seed, answer=str(child), parent_name=seed_name,
        change=(f"replaces block 1 (blocks are numbered from 0, as in validation errors), {old}, "
                f"by {new}: same channels and stride, a different block type"),
        rationale="Every other block is copied unchanged, the channels still chain, and the "
                  "score is null because the parent has no score to estimate from.",
    )


# ---- versions 1 and 2 (frozen) -------------------------------------------------------------


def legacy_context(
    space: ZenNasSpace, version: int, constraints: Constraints, proxy: str
) -> dict[str, Any]:
    """The Zen-NAS-specific variables of the version-1/2 mutation templates."""
    example = worked_example(space)
    context: dict[str, Any] = {
        "search_space": space,
        "ops": space.specs,
        "field_meanings": [(name, FIELD_MEANINGS[name]) for name in fields_in_use(space.specs)],
        "limits": limits_view(constraints),
        "structure": {"name": constraints.structure, "rules": structure_statements(constraints)},
        "counting": counting_text(constraints),
        "example": {
            "seed_name": example.parent_name, "parent": example.parent,
            "parent_json": _answer_json(example.parent, proxy), "change": example.change,
            "answer_json": _answer_json(example.answer, proxy), "rationale": example.rationale,
        },
    }
    if version >= 2:
        context.update(_v2_context(space, constraints), noise=legacy_noise_sentence(proxy))
    return context


def _answer_json(arch: str, proxy: str) -> str:
    return json.dumps({"arch": arch, "type": proxy, "score": None})


def _v2_context(space: ZenNasSpace, constraints: Constraints) -> dict[str, Any]:
    counting = str(constraints.counting)
    facts = cost_facts(counting, space.specs)
    limits = limits_view(constraints)
    limits["max_stride2"] = max_stride2_blocks(constraints.resolution, counting)
    chain = resolution_chain(constraints.resolution, counting)
    return {
        "counting_name": counting,
        "limits": limits,
        "resolution": {"rule": facts.resolution_rule, "chain": " -> ".join(map(str, chain))},
        "cost": _cost_view(facts),
    }


def _cost_view(facts: CostFacts) -> dict[str, Any]:
    return {
        "primitives": facts.primitives,
        "families": facts.families,
        "has_idw": any(f.family is Family.IDW for f in facts.families),
        "head_params": facts.head_params,
        "head_flops": facts.head_flops,
    }


# ---- version 3: the generic prompt ---------------------------------------------------------


def prompt_facts(space: ZenNasSpace, constraints: Constraints, residual: bool) -> PromptFacts:
    """Everything the generic prompt states about a Zen-NAS space."""
    limits = limits_view(constraints)
    return PromptFacts(
        title=space.name,
        description=space.description,
        answer_noun="block string",
        answer_scope="all blocks, not only the one you changed",
        format=(
            "An architecture is a block string: super blocks written back to back, with nothing "
            "between them: `Name(arg1,arg2,...)Name(arg1,arg2,...)...`. Arguments are plain "
            "non-negative integers in the order of the block's signature. The network is the "
            f"blocks in order, then global average pooling and a linear classifier with "
            f"{limits['num_classes']} outputs.",
        ),
        elements_title="Blocks",
        elements_intro="Use only these block names, spelled exactly as written here:",
        elements=tuple((spec.signature, spec.description) for spec in space.specs),
        arguments=tuple((name, FIELD_MEANINGS[name]) for name in fields_in_use(space.specs)),
        rules=_rules(space, constraints),
        structure=_structure(constraints),
        budget_basis=counting_text(constraints),
        cost_model=_cost_model(space, constraints),
        iteration_rule=(
            "Your answer may change any number of blocks: the validator checks only the rules "
            "and budgets above, not how far your answer is from the parent, so rebuilding the "
            "whole network is allowed. The Zen-NAS random mutation it competes with replaces 1 "
            "block while the seed is the parent and 2 blocks afterwards; small changes tell you "
            "what caused a score change."
        ),
        search_notes=() if residual else (
            "The proxy scores the network built without residual links (Zen-NAS's no_reslink "
            "model: no additions and no projections); shortcuts count in the budgets but not "
            "in the score.",
        ),
        noise={proxy: figure.sentence(proxy) for proxy, figure in space.noise.items()},
        example=worked_example(space),
    )


def _rules(space: ZenNasSpace, constraints: Constraints) -> tuple[str, ...]:
    counting = str(constraints.counting)
    limits = limits_view(constraints)
    resolution = limits["resolution"]
    stride2 = max_stride2_blocks(resolution, counting)
    chain = " -> ".join(map(str, resolution_chain(resolution, counting)))
    rule = cost_facts(counting, space.specs).resolution_rule
    return (
        f"Only the {len(space.ops)} blocks listed above; SuperConv blocks take 4 arguments, "
        f"SuperRes blocks 5.",
        f"The first block has in_channels = {RGB_CHANNELS} (the RGB input).",
        "Channel chaining: each block's in_channels equals the previous block's out_channels.",
        f"out_channels and bottleneck_channels are positive multiples of {CHANNEL_MULTIPLE}, at "
        f"most {MAX_CHANNELS}.",
        "stride is 1 or 2.",
        "sub_layers is at least 1.",
        f"The input is {resolution}x{resolution} pixels. Under {counting} counting {rule}. From "
        f"{resolution}x{resolution} the stride-2 blocks give {chain}, so at most {stride2} "
        f"blocks may have stride 2 (a stride-2 block on a 1x1 map is refused).",
    )


def _structure(constraints: Constraints) -> tuple[str, tuple[str, ...]] | None:
    statements = structure_statements(constraints)
    if not statements:
        return None
    return f"Structure `{constraints.structure}` (the Zen-NAS skeleton)", tuple(statements)


def _cost_model(space: ZenNasSpace, constraints: Constraints) -> tuple[str, ...]:
    counting = str(constraints.counting)
    facts = cost_facts(counting, space.specs)
    idw = any(f.family is Family.IDW for f in facts.families)
    names = (
        "Names in the formulas: C_in, C_out, B = bottleneck_channels, n = sub_layers, k = the "
        "kernel in the block name, "
        + ("E = the expansion in the block name, D1 = E*B and D2 = E*C_out (the expanded "
           "widths), " if idw else "")
        + "s = stride, R = the block's input resolution, r = its output resolution (r = R for "
        "stride 1); `^` is a power" + (", `//` integer division" if counting == "zennas" else "")
        + ", and (x != y) counts 1 when x differs from y, else 0."
    )
    lines = [
        "Budgets count the network with its residual shortcuts and classifier. Per primitive: "
        f"{facts.primitives}.",
        names,
    ]
    for family in facts.families:
        lines += [f"## {', '.join(family.ops)}", f"Layout: {family.layout}",
                  f"- params = {family.params}", f"- FLOPs = {family.flops}"]
    lines += [
        "## Classifier (after global average pooling; C = the last block's out_channels)",
        f"- params = {facts.head_params}; FLOPs = {facts.head_flops}",
        "The network's params and FLOPs are the sums over its blocks plus the classifier; its "
        "layers are the sum of sub_layers.",
    ]
    return tuple(lines)
