"""Build the chat messages of the LLM mutation loop from the jinja2 templates in `prompts/`.

Everything the model reads about the search space comes from the code that validates its
answer: the op list, signatures and descriptions from `evaluator.search_space`, the rules and
budgets from `evaluator.validation.Constraints`, the proxy from `evaluator.proxies.PROXIES`.

The functions are pure (no I/O besides loading templates) and deterministic: the same inputs
give byte-identical messages, because the replay backend matches requests by a hash of them.
Scores are rounded to `SCORE_DIGITS` significant digits before they are rendered.

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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nasagent.agent.outcomes import HistoryEntry
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED
from nasagent.evaluator.codec import parse
from nasagent.evaluator.cost import RGB_CHANNELS
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.proxies import PROXIES
from nasagent.evaluator.search_space import CONV_FIELDS, RES_FIELDS, SearchSpace, get_search_space
from nasagent.evaluator.validation import (
    CHANNEL_MULTIPLE,
    MAX_CHANNELS,
    Constraints,
    structure_statements,
)
from nasagent.prompts import render

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


class PromptSettings(BaseModel):
    """What the prompts depend on besides the parent, the history and the lessons."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constraints: Constraints
    proxy: str = "gradnorm"
    include_proxy_source: bool = False
    history_size: int = Field(default=8, ge=0)
    max_lessons: int = Field(default=8, ge=1)


def mutation_messages(
    parent: str,
    parent_score: float | None,
    settings: PromptSettings,
    history: Sequence[HistoryEntry] = (),
    lessons: Sequence[str] = (),
) -> Chat:
    """The system prompt and the first user message asking for one mutation of `parent`.

    Raises:
        UnknownNameError: the search space or proxy of `settings` is not registered.
    """
    system = render("mutation_system.j2", **_system_context(settings, lessons))
    user = render(
        "mutation_user.j2",
        parent_json=answer_json(parent, settings.proxy, parent_score),
        history=_history_view(history, settings.history_size),
        proxy_name=settings.proxy,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_message(errors: Sequence[str]) -> dict[str, str]:
    """A user turn listing what was wrong with the previous answer and asking for a fix."""
    clipped = [_one_line(error, MAX_ERROR_CHARS) for error in errors]
    return {"role": "user", "content": render("repair.j2", errors=clipped)}


def reflection_messages(
    history: Sequence[HistoryEntry], lessons: Sequence[str], settings: PromptSettings
) -> Chat:
    """Ask the model to distil the recent outcomes into at most `settings.max_lessons` lessons.

    The newest `MAX_REFLECTION_HISTORY` entries of `history` are shown.
    """
    system = render(
        "reflection_system.j2",
        search_space=settings.constraints.search_space,
        proxy=_proxy_view(settings.proxy, include_source=False),
        max_lessons=settings.max_lessons,
    )
    user = render(
        "reflection_user.j2",
        lessons=_lessons_view(lessons, settings.max_lessons),
        history=_history_view(history, MAX_REFLECTION_HISTORY),
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
    try:
        spec = PROXIES[name]
    except KeyError:
        raise UnknownNameError("proxy", name, PROXIES) from None
    return {
        "name": spec.name,
        "higher_is_better": spec.higher_is_better,
        "description": spec.description.strip(),
        "source": _source_of(spec.compute) if include_source else None,
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


def _history_view(history: Sequence[HistoryEntry], size: int) -> list[dict[str, Any]]:
    if size <= 0:
        return []
    newest = sorted(history, key=lambda entry: entry.iteration)[-size:]
    return [_entry_view(entry) for entry in newest]


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
