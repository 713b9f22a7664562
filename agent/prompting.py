"""Build the chat messages of the LLM mutation loop from the jinja2 templates in `prompts/`.

Everything the model reads about the search space comes from the code that validates its
answer: the op list, signatures and descriptions from `evaluator.search_space`, the rules and
budgets from `evaluator.validation.Constraints`, the proxy from `evaluator.proxies.PROXIES`.

The functions are pure (no I/O besides loading templates) and deterministic: the same inputs
give byte-identical messages, because the replay backend matches requests by a hash of them.
Scores are rounded to `SCORE_DIGITS` significant digits before they are rendered.

Prompts are versioned (`PromptSettings.version`, the run's `prompt_version`): version 1 is the
text the shipped transcripts were recorded with and stays byte-identical; version 2 adds the
cost model generated from `evaluator.cost_facts`, the rules of the search loop (what one
mutation may change, parent choice, the score cache, the proxy's measured noise), the parent's
and every history entry's cost next to the budgets, the model's own expected score, and the
best architecture so far.

Message layout (static text first so that provider-side prompt caching applies):

* system: role, format, blocks, rules, budgets, proxy, answer contract, worked example, and last
  the lessons (the only part that changes during a run);
* user: the parent as ```json {"arch", "type", "score"}``` (the first fence of the first user
  message: the scripted backend reads the parent from there), the recent history, the request.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nasagent.agent.outcomes import HistoryEntry, Outcome, ScoredArch
from nasagent.agent.population import SEED_PARENT_THRESHOLD
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED
from nasagent.evaluator.codec import parse
from nasagent.evaluator.cost import RGB_CHANNELS, Cost
from nasagent.evaluator.cost_facts import cost_facts, max_stride2_blocks, resolution_chain
from nasagent.evaluator.proxies import PROXIES
from nasagent.evaluator.search_space import (
    CONV_FIELDS,
    RES_FIELDS,
    Family,
    SearchSpace,
    get_search_space,
)
from nasagent.evaluator.validation import (
    CHANNEL_MULTIPLE,
    MAX_CHANNELS,
    Constraints,
    check_string,
    structure_statements,
)
from nasagent.prompts import LATEST_PROMPT_VERSION, PROMPT_VERSIONS, render, versioned

logger = logging.getLogger(__name__)

Chat = list[dict[str, str]]
"""Chat messages as the OpenAI API takes them: ``{"role": ..., "content": ...}``."""

SCORE_DIGITS = 5
"""Significant digits of every score shown to the model (keeps rendering stable)."""

MAX_LESSON_CHARS = 200
MAX_ARCH_CHARS = 600
MAX_ERROR_CHARS = 300
MAX_ERRORS_PER_ENTRY = 3
MAX_REFLECTION_HISTORY = 50

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


PROXY_NOISE: dict[str, NoiseFigure] = {
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
"""Measured proxy noise, quoted by version-2 prompts (a proxy absent here is 'not measured')."""


class SearchFacts(BaseModel):
    """What the version-2 prompt says about the search loop (from the run configuration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parent_selection: Literal["uniform", "tournament"] = "uniform"
    tournament_size: int = Field(default=4, ge=1)
    population: int = Field(default=512, ge=1)
    init_population: int = Field(default=0, ge=0)
    residual: bool = False


class PromptSettings(BaseModel):
    """What the prompts depend on besides the parent, the history and the lessons."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constraints: Constraints
    proxy: str = "gradnorm"
    include_proxy_source: bool = False
    history_size: int = Field(default=8, ge=0)
    max_lessons: int = Field(default=8, ge=1)
    version: int = LATEST_PROMPT_VERSION
    search: SearchFacts = SearchFacts()

    @field_validator("version")
    @classmethod
    def _shipped(cls, value: int) -> int:
        if value not in PROMPT_VERSIONS:
            raise ValueError(f"prompt version {value} is not shipped; valid: {PROMPT_VERSIONS}")
        return value


def mutation_messages(
    parent: str,
    parent_score: float | None,
    settings: PromptSettings,
    history: Sequence[HistoryEntry] = (),
    lessons: Sequence[str] = (),
    *,
    best: ScoredArch | None = None,
) -> Chat:
    """The system prompt and the first user message asking for one mutation of `parent`.

    Args:
        parent: the parent block string.
        parent_score: its measured score (None when unscored).
        settings: constraints, proxy, history size, prompt version and search facts.
        history: the recent proposals, shown newest last.
        lessons: the lessons of the last reflection.
        best: the best architecture so far (version 2 shows it).

    Raises:
        UnknownNameError: the search space or proxy of `settings` is not registered.
    """
    version = settings.version
    system_context = _system_context(settings, lessons)
    user_context = {
        "parent_json": answer_json(parent, settings.proxy, parent_score),
        "history": _history_view(history, settings.history_size, settings),
        "proxy_name": settings.proxy,
    }
    if version >= 2:
        system_context.update(_v2_system_context(settings))
        user_context.update(_v2_user_context(parent, parent_score, settings, best))
    system = render(versioned(version, "mutation_system.j2"), **system_context)
    user = render(versioned(version, "mutation_user.j2"), **user_context)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_message(errors: Sequence[str], version: int = LATEST_PROMPT_VERSION) -> dict[str, str]:
    """A user turn listing what was wrong with the previous answer and asking for a fix."""
    clipped = [_one_line(error, MAX_ERROR_CHARS) for error in errors]
    return {"role": "user", "content": render(versioned(version, "repair.j2"), errors=clipped)}


def reflection_messages(
    history: Sequence[HistoryEntry], lessons: Sequence[str], settings: PromptSettings
) -> Chat:
    """Ask the model to distil the recent outcomes into at most `settings.max_lessons` lessons.

    The newest `MAX_REFLECTION_HISTORY` entries of `history` are shown, whatever their outcome:
    rejected proposals (invalid, over_budget, duplicate, no_change, llm_error) with their errors.
    """
    version = settings.version
    extra = {"noise": noise_sentence(settings.proxy)} if version >= 2 else {}
    system = render(
        versioned(version, "reflection_system.j2"),
        search_space=settings.constraints.search_space,
        proxy=_proxy_view(settings.proxy, include_source=False),
        max_lessons=settings.max_lessons,
        **extra,
    )
    user = render(
        versioned(version, "reflection_user.j2"),
        lessons=_lessons_view(lessons, settings.max_lessons),
        history=_history_view(history, MAX_REFLECTION_HISTORY, settings),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def answer_json(arch: str, proxy: str, score: float | None) -> str:
    """`{"arch": ..., "type": ..., "score": ...}` as rendered in prompts (score rounded)."""
    return json.dumps({"arch": arch, "type": proxy, "score": round_score(score)})


def round_score(score: float | None) -> float | None:
    """`score` rounded to `SCORE_DIGITS` significant digits; None when missing or not finite."""
    if score is None or not math.isfinite(score):
        return None
    return float(f"{score:.{SCORE_DIGITS}g}")


def format_number(value: float) -> str:
    """A budget as people read it: `1,000,000` for whole numbers, 4 significant digits else."""
    if float(value).is_integer() and abs(value) < 1e18:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _system_context(settings: PromptSettings, lessons: Sequence[str]) -> dict[str, Any]:
    constraints = settings.constraints
    space = get_search_space(constraints.search_space)
    return {
        "search_space": space,
        "ops": space.specs,
        "field_meanings": [(name, FIELD_MEANINGS[name]) for name in _fields_in_use(space)],
        "limits": _limits_view(constraints),
        "budgets": _budget_lines(constraints),
        "structure": {"name": constraints.structure, "rules": structure_statements(constraints)},
        "counting": f"{constraints.counting} counting: {COUNTING_TEXT[constraints.counting]}",
        "proxy": _proxy_view(settings.proxy, settings.include_proxy_source),
        "example": worked_example(space, settings.proxy),
        "lessons": _lessons_view(lessons, settings.max_lessons),
    }


def _fields_in_use(space: SearchSpace) -> list[str]:
    has_res = any(spec.has_bottleneck for spec in space.specs)
    return list(RES_FIELDS if has_res else CONV_FIELDS)


def _limits_view(constraints: Constraints) -> dict[str, int]:
    return {
        "num_classes": constraints.num_classes,
        "first_in_channels": RGB_CHANNELS,
        "channel_multiple": CHANNEL_MULTIPLE,
        "max_channels": MAX_CHANNELS,
        "resolution": constraints.resolution,
        # R // 2 stays >= 1 for floor(log2 R) halvings
        "max_stride2": max(constraints.resolution, 1).bit_length() - 1,
    }


def _budget_lines(constraints: Constraints) -> list[str]:
    lines = []
    if constraints.max_params is not None:
        lines.append(f"at most {format_number(constraints.max_params)} parameters")
    if constraints.max_flops is not None:
        lines.append(
            f"at most {format_number(constraints.max_flops)} FLOPs per image at "
            f"{constraints.resolution}x{constraints.resolution}"
        )
    if constraints.max_layers is not None:
        lines.append(
            f"at most {constraints.max_layers} layers, where layers = the sum of sub_layers "
            f"over all blocks"
        )
    return lines


def _proxy_view(name: str, include_source: bool) -> dict[str, Any]:
    spec = PROXIES.get(name)
    return {
        "name": spec.name,
        "higher_is_better": spec.higher_is_better,
        "description": spec.description.strip(),
        "source": _source_of(spec.function) if include_source else None,
    }


def _source_of(function: Any) -> str:
    try:
        return inspect.getsource(inspect.unwrap(function)).strip()
    except (OSError, TypeError):
        # a builtin or a callable object: say so rather than fail the whole prompt
        logger.warning("no source available for proxy function %r", function)
        return "# source not available"


def worked_example(space: SearchSpace, proxy: str) -> dict[str, str]:
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
    return {
        "seed_name": seed_name,
        "parent": seed,
        "parent_json": answer_json(seed, proxy, None),
        "change": (
            f"replaces block 1 (blocks are numbered from 0, as in validation errors), {old}, "
            f"by {new}: same channels and stride, a different block type"
        ),
        "answer_json": answer_json(str(child), proxy, None),
        "rationale": "Every other block is copied unchanged, the channels still chain, and the "
                     "score is null because the parent has no score to estimate from.",
    }


def _history_view(
    history: Sequence[HistoryEntry], size: int, settings: PromptSettings
) -> list[dict[str, Any]]:
    if size <= 0:
        return []
    newest = sorted(history, key=lambda entry: entry.iteration)[-size:]
    if settings.version == 1:
        return [_entry_view(entry) for entry in newest]
    return [_v2_entry_view(entry, settings.constraints) for entry in newest]


def _entry_view(entry: HistoryEntry) -> dict[str, Any]:
    errors = [_one_line(error, MAX_ERROR_CHARS) for error in entry.errors[:MAX_ERRORS_PER_ENTRY]]
    if len(entry.errors) > MAX_ERRORS_PER_ENTRY:
        errors.append(f"... and {len(entry.errors) - MAX_ERRORS_PER_ENTRY} more")
    child = "(no change proposed)" if entry.arch is None else _one_line(entry.arch, MAX_ARCH_CHARS)
    return {
        "iteration": entry.iteration,
        "outcome": entry.outcome.value,
        "score_line": _score_line(entry),
        "parent": _one_line(entry.parent, MAX_ARCH_CHARS),
        "child": child,
        "errors": errors,
    }


def _score_line(entry: HistoryEntry) -> str:
    parent, child = round_score(entry.parent_score), round_score(entry.score)
    if child is None:
        return "" if parent is None else f"parent score {_show(parent)}"
    if parent is None:
        return f"score {_show(child)}"
    return f"score {_show(parent)} -> {_show(child)} ({child - parent:+.{SCORE_DIGITS - 1}g})"


def _show(score: float) -> str:
    return f"{score:.{SCORE_DIGITS}g}"


def _lessons_view(lessons: Sequence[str], limit: int) -> list[str]:
    cleaned = [_one_line(lesson, MAX_LESSON_CHARS) for lesson in lessons]
    return [lesson for lesson in cleaned if lesson][:limit]


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace, defuse code fences and clip: model-written text stays inert data."""
    flat = " ".join(text.split()).replace("```", "'''")
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


# ---- version 2: the cost model, the search rules and the costs of every proposal -----------


def noise_sentence(proxy: str) -> str:
    """What the prompt says about the proxy's noise between near-identical networks."""
    figure = PROXY_NOISE.get(proxy)
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


def _v2_system_context(settings: PromptSettings) -> dict[str, Any]:
    constraints = settings.constraints
    space = get_search_space(constraints.search_space)
    counting = str(constraints.counting)
    facts = cost_facts(counting, space.specs)
    chain = resolution_chain(constraints.resolution, counting)
    limits = _limits_view(constraints)
    limits["max_stride2"] = max_stride2_blocks(constraints.resolution, counting)
    search = settings.search
    selection = "drawn uniformly at random" if search.parent_selection == "uniform" else (
        f"the best of {search.tournament_size} members drawn at random (tournament)"
    )
    return {
        "counting_name": counting,
        "limits": limits,
        "resolution": {"rule": facts.resolution_rule, "chain": " -> ".join(map(str, chain))},
        "cost": {
            "primitives": facts.primitives,
            "families": facts.families,
            "has_idw": any(f.family is Family.IDW for f in facts.families),
            "head_params": facts.head_params,
            "head_flops": facts.head_flops,
        },
        "search": {
            "seed_threshold": SEED_PARENT_THRESHOLD, "selection": selection,
            "population": search.population, "init_population": search.init_population,
            "residual": search.residual,
        },
        "noise": noise_sentence(settings.proxy),
    }


def _v2_user_context(
    parent: str, parent_score: float | None, settings: PromptSettings, best: ScoredArch | None
) -> dict[str, Any]:
    report = check_string(parent, settings.constraints)
    cost = f"; cost {_cost_line(report.cost, settings.constraints)}" if report.cost else ""
    score = round_score(parent_score)
    measured = "not scored yet" if score is None else f"measured {_show(score)}"
    return {
        "parent_line": f"Parent: {measured}{cost}.",
        "best_line": _best_line(parent, best),
    }


def _best_line(parent: str, best: ScoredArch | None) -> str:
    if best is None:
        return ""
    score = round_score(best.score)
    shown = "-" if score is None else _show(score)
    where = "the seed" if best.iteration == 0 else f"iteration {best.iteration}"
    if best.arch == parent:
        return f"The parent is the best architecture so far (score {shown}, {where})."
    arch = _one_line(best.arch, MAX_ARCH_CHARS)
    return f"Best architecture so far (score {shown}, {where}): {arch}"


def _cost_line(cost: Cost, constraints: Constraints) -> str:
    return ", ".join([
        _against(f"{format_number(cost.params)} params", constraints.max_params),
        _against(f"{format_number(cost.flops)} FLOPs", constraints.max_flops),
        _against(f"{cost.layers} layers", constraints.max_layers),
    ])


def _against(shown: str, budget: float | None) -> str:
    return shown if budget is None else f"{shown} (budget {format_number(budget)})"


_REASONS: dict[Outcome, str] = {
    Outcome.DUPLICATE: "this architecture had been scored before; re-proposing it spent the "
                       "iteration (the cached score is shown)",
    Outcome.NO_CHANGE: "the answer kept the parent unchanged (or was empty)",
}


def _v2_entry_view(entry: HistoryEntry, constraints: Constraints) -> dict[str, Any]:
    view = _entry_view(entry)
    expected = round_score(entry.expected_score)
    has_cost = None not in (entry.params, entry.flops, entry.layers)
    view.update(
        expected="" if expected is None else _show(expected),
        cost_line=_cost_line(
            Cost(entry.params or 0, entry.flops or 0, entry.layers or 0), constraints
        ) if has_cost else "",
        reason=_REASONS.get(entry.outcome, ""),
    )
    return view
