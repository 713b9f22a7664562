"""Build the chat messages of the LLM mutation loop from the jinja2 templates in `prompts/`.

Everything the model reads about the search space comes from the code that validates its
answer: the search space's prompt facts (its elements, rules, cost model and worked example,
`SearchSpace.prompt_facts`), the budgets from `evaluator.validation.Constraints` and the
space's metrics, the proxy from `evaluator.proxies.PROXIES`. Nothing here knows a space by
name. Ground truth (a benchmark's accuracies) never reaches this module: it only sees
`HistoryEntry` and `ScoredArch` values, which carry proxy scores and costs.

The functions are pure (no I/O besides loading templates) and deterministic: the same inputs
give byte-identical messages, because the replay backend matches requests by a hash of them.
Scores are rounded to `SCORE_DIGITS` significant digits before they are rendered.

Prompts are versioned (`PromptSettings.version`, the run's `prompt_version`). Versions 1 and 2
are the Zen-NAS-only texts runs were recorded with and stay byte-identical (their
space-specific variables come from `SearchSpace.legacy_prompt_context`); version 3 is the
generic prompt every space renders from its facts: the rules of the search loop (what one
answer may change, parent choice, the score cache, the proxy's measured noise), the parent's
and every history entry's cost next to the budgets, the model's own expected score, and the
best architecture so far, with every architecture written in the run's naming (`op_names`).

Message layout (static text first so that provider-side prompt caching applies):

* system: role, format, elements, rules, budgets, proxy, answer contract, worked example, and
  last the lessons (the only part that changes during a run);
* user: the parent as ```json {"arch", "type", "score"}``` (the first fence of the first user
  message: the scripted backend reads the parent from there), the recent history, the request.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nasagent.agent.outcomes import HistoryEntry, Outcome, ScoredArch
from nasagent.agent.population import SEED_PARENT_THRESHOLD
from nasagent.evaluator.proxies import PROXIES, higher_is_better
from nasagent.evaluator.spaces.base import (
    STANDARD_NAMING,
    Cost,
    Metric,
    PromptFacts,
    SearchSpace,
)
from nasagent.evaluator.validation import Constraints, check_string
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
LEGACY_VERSIONS = (1, 2)
"""The frozen Zen-NAS-only prompt versions (their variables come from the space)."""


class SearchFacts(BaseModel):
    """What the prompt says about the search loop (from the run configuration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parent_selection: Literal["uniform", "tournament"] = "uniform"
    tournament_size: int = Field(default=4, ge=1)
    population: int = Field(default=512, ge=1)
    init_population: int = Field(default=0, ge=0)
    residual: bool = False
    proxy_data: str | None = None
    """The run's proxy data spec (None: Gaussian inputs), for the space's scoring note."""


class PromptSettings(BaseModel):
    """What the prompts depend on besides the parent, the history and the lessons."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constraints: Constraints
    proxy: str = "gradnorm"
    include_proxy_source: bool = False
    history_size: int = Field(default=8, ge=0)
    max_lessons: int = Field(default=8, ge=1)
    version: int = LATEST_PROMPT_VERSION
    op_names: str = STANDARD_NAMING
    search: SearchFacts = SearchFacts()

    @field_validator("version")
    @classmethod
    def _shipped(cls, value: int) -> int:
        if value not in PROMPT_VERSIONS:
            raise ValueError(f"prompt version {value} is not shipped; valid: {PROMPT_VERSIONS}")
        return value

    @property
    def space(self) -> SearchSpace:
        return self.constraints.space

    def shown(self, arch: str) -> str:
        """A canonical architecture string as the prompt writes it (the run's naming)."""
        if self.op_names == STANDARD_NAMING:
            return arch
        try:
            return self.space.rename(arch, self.op_names)
        except ValueError:  # not an architecture of the space (a broken answer): as written
            return arch


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
        parent: the parent's canonical architecture string.
        parent_score: its measured score (None when unscored).
        settings: constraints, proxy, history size, prompt version, naming and search facts.
        history: the recent proposals, shown newest last.
        lessons: the lessons of the last reflection.
        best: the best architecture so far (versions 2 and later show it).

    Raises:
        UnknownNameError: the search space or proxy of `settings` is not registered.
    """
    version = settings.version
    system_context = {
        **_space_context(settings),
        "budgets": _budget_lines(settings.constraints),
        "proxy": _proxy_view(settings),
        "lessons": _lessons_view(lessons, settings.max_lessons),
        "search": _search_view(settings),
    }
    user_context = {
        "parent_json": answer_json(settings.shown(parent), settings.proxy, parent_score),
        "history": _history_view(history, settings.history_size, settings),
        "proxy_name": settings.proxy,
    }
    if version >= 2:
        user_context.update(_user_lines(parent, parent_score, settings, best))
    system = render(versioned(version, "mutation_system.j2"), **system_context)
    user = render(versioned(version, "mutation_user.j2"), **user_context)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_message(
    errors: Sequence[str], version: int = LATEST_PROMPT_VERSION, answer_noun: str = "block string"
) -> dict[str, str]:
    """A user turn listing what was wrong with the previous answer and asking for a fix."""
    clipped = [_one_line(error, MAX_ERROR_CHARS) for error in errors]
    content = render(versioned(version, "repair.j2"), errors=clipped, answer_noun=answer_noun)
    return {"role": "user", "content": content}


def reflection_messages(
    history: Sequence[HistoryEntry], lessons: Sequence[str], settings: PromptSettings
) -> Chat:
    """Ask the model to distil the recent outcomes into at most `settings.max_lessons` lessons.

    The newest `MAX_REFLECTION_HISTORY` entries of `history` are shown, whatever their outcome:
    rejected proposals (invalid, over_budget, duplicate, no_change, llm_error) with their errors.
    """
    version = settings.version
    extra = {"noise": _noise(settings)} if version >= 2 else {}
    system = render(
        versioned(version, "reflection_system.j2"),
        search_space=settings.constraints.search_space,
        proxy=_proxy_view(settings, include_source=False),
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


def answer_noun(settings: PromptSettings) -> str:
    """What the prompt calls an answer's architecture ("block string", "cell string")."""
    return settings.space.reply_format(settings.op_names).answer_noun


# ---- the space's part ----------------------------------------------------------------------


def _space_context(settings: PromptSettings) -> dict[str, Any]:
    """The variables the space contributes: a frozen version's own, or the generic facts."""
    space, constraints = settings.space, settings.constraints
    if settings.version in LEGACY_VERSIONS:
        return space.legacy_prompt_context(settings.version, constraints, settings.proxy)
    facts = space.prompt_facts(constraints, _options(settings))
    example = facts.example
    return {
        "facts": facts,
        "space_name": constraints.search_space,
        "example": {
            "name": example.parent_name, "parent": settings.shown(example.parent),
            "parent_json": answer_json(settings.shown(example.parent), settings.proxy, None),
            "change": example.change, "rationale": example.rationale,
            "answer_json": answer_json(settings.shown(example.answer), settings.proxy, None),
        },
        "no_budget": _no_budget_line(space),
        "noise": _noise(settings, facts),
    }


def _options(settings: PromptSettings) -> dict[str, Any]:
    return {"op_names": settings.op_names, "residual": settings.search.residual,
            "proxy": settings.proxy, "proxy_data": settings.search.proxy_data}


def _noise(settings: PromptSettings, facts: PromptFacts | None = None) -> str:
    """What the prompt says about the proxy's noise between near-identical networks (from the
    space's facts, computed here unless given)."""
    space, proxy = settings.space, settings.proxy
    if settings.version in LEGACY_VERSIONS:
        context = space.legacy_prompt_context(settings.version, settings.constraints, proxy)
        return str(context["noise"])
    facts = facts or space.prompt_facts(settings.constraints, _options(settings))
    stated = facts.noise.get(proxy)
    return stated or (
        f"The noise of {proxy} between near-identical networks of this search space has not "
        f"been measured; do not read much into small score differences."
    )


def _search_view(settings: PromptSettings) -> dict[str, Any]:
    search = settings.search
    selection = "drawn uniformly at random" if search.parent_selection == "uniform" else (
        f"the best of {search.tournament_size} members drawn at random (tournament)"
    )
    return {
        "seed_threshold": SEED_PARENT_THRESHOLD, "selection": selection,
        "population": search.population, "init_population": search.init_population,
        "residual": search.residual,
    }


def _budget_lines(constraints: Constraints) -> list[str]:
    lines = []
    for metric in constraints.space.metrics:
        limit = getattr(constraints, f"max_{metric.key}", None)
        if limit is not None:
            lines.append(metric.budget.format(limit=_shown(metric, limit),
                                              resolution=constraints.resolution))
    return lines


def _no_budget_line(space: SearchSpace) -> str:
    nouns = [metric.noun for metric in space.metrics]
    listed = ", ".join(nouns[:-1]) + f" or {nouns[-1]}" if len(nouns) > 1 else "".join(nouns)
    return f"No {listed} budget is in force."


def _shown(metric: Metric, value: float) -> str:
    return str(int(value)) if metric.integer else format_number(value)


def _proxy_view(settings: PromptSettings, include_source: bool | None = None) -> dict[str, Any]:
    spec = PROXIES.get(settings.proxy)
    source = settings.include_proxy_source if include_source is None else include_source
    legacy = settings.version in LEGACY_VERSIONS
    return {
        "name": spec.name,
        "higher_is_better": higher_is_better(spec.name, settings.constraints.search_space),
        "description": spec.description.strip() if legacy else spec.summary,
        "source": _source_of(spec.function) if source else None,
    }


def _source_of(function: Any) -> str:
    try:
        return inspect.getsource(inspect.unwrap(function)).strip()
    except (OSError, TypeError):
        # a builtin or a callable object: say so rather than fail the whole prompt
        logger.warning("no source available for proxy function %r", function)
        return "# source not available"


# ---- history, lessons and the user message -------------------------------------------------


def _history_view(
    history: Sequence[HistoryEntry], size: int, settings: PromptSettings
) -> list[dict[str, Any]]:
    if size <= 0:
        return []
    newest = sorted(history, key=lambda entry: entry.iteration)[-size:]
    if settings.version == 1:
        return [_entry_view(entry, settings) for entry in newest]
    return [_costed_entry_view(entry, settings) for entry in newest]


def _entry_view(entry: HistoryEntry, settings: PromptSettings) -> dict[str, Any]:
    errors = [_one_line(error, MAX_ERROR_CHARS) for error in entry.errors[:MAX_ERRORS_PER_ENTRY]]
    if len(entry.errors) > MAX_ERRORS_PER_ENTRY:
        errors.append(f"... and {len(entry.errors) - MAX_ERRORS_PER_ENTRY} more")
    child = "(no change proposed)" if entry.arch is None else _one_line(
        settings.shown(entry.arch), MAX_ARCH_CHARS)
    return {
        "iteration": entry.iteration,
        "outcome": entry.outcome.value,
        "score_line": _score_line(entry),
        "parent": _one_line(settings.shown(entry.parent), MAX_ARCH_CHARS),
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


def _user_lines(
    parent: str, parent_score: float | None, settings: PromptSettings, best: ScoredArch | None
) -> dict[str, Any]:
    report = check_string(parent, settings.constraints)
    cost = f"; cost {_cost_line(report.cost, settings.constraints)}" if report.cost else ""
    score = round_score(parent_score)
    measured = "not scored yet" if score is None else f"measured {_show(score)}"
    return {
        "parent_line": f"Parent: {measured}{cost}.",
        "best_line": _best_line(parent, best, settings),
    }


def _best_line(parent: str, best: ScoredArch | None, settings: PromptSettings) -> str:
    if best is None:
        return ""
    score = round_score(best.score)
    shown = "-" if score is None else _show(score)
    where = "the seed" if best.iteration == 0 else f"iteration {best.iteration}"
    if best.arch == parent:
        return f"The parent is the best architecture so far (score {shown}, {where})."
    arch = _one_line(settings.shown(best.arch), MAX_ARCH_CHARS)
    return f"Best architecture so far (score {shown}, {where}): {arch}"


def _cost_line(cost: Cost, constraints: Constraints) -> str:
    parts = []
    for metric in constraints.space.metrics:
        value = cost.value(metric.key)
        if value is None:
            continue
        shown = str(value) if metric.integer else format_number(value)
        parts.append(_against(f"{shown} {metric.label}",
                              getattr(constraints, f"max_{metric.key}", None)))
    return ", ".join(parts)


def _against(shown: str, budget: float | None) -> str:
    return shown if budget is None else f"{shown} (budget {format_number(budget)})"


_REASONS: dict[Outcome, str] = {
    Outcome.DUPLICATE: "this architecture had been scored before; re-proposing it spent the "
                       "iteration (the cached score is shown)",
    Outcome.NO_CHANGE: "the answer kept the parent unchanged (or was empty)",
}


def _costed_entry_view(entry: HistoryEntry, settings: PromptSettings) -> dict[str, Any]:
    view = _entry_view(entry, settings)
    expected = round_score(entry.expected_score)
    constraints = settings.constraints
    cost = Cost(entry.params or 0, entry.flops or 0, entry.layers)
    has_cost = all(getattr(entry, metric.key) is not None for metric in constraints.space.metrics)
    view.update(
        expected="" if expected is None else _show(expected),
        cost_line=_cost_line(cost, constraints) if has_cost else "",
        reason=_REASONS.get(entry.outcome, ""),
    )
    return view
