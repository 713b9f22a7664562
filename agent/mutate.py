"""One mutation as a library call: nasagent's validated LLM (or random) mutation for any loop.

`mutate` runs the same proposer the search loop runs, for one parent: the LLM sees the same
prompt (budgets, ops, proxy, the caller's history and lessons), its reply is parsed as data,
validated and repaired with the errors, and what comes back is one `MutationResult`. Nothing is
scored; the caller scores (`nasagent.score`) or uses its own evaluation.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from nasagent.agent.config import ConfigError, RunConfig, config_from_dict, score_settings_for
from nasagent.agent.llm.base import LLMBackend
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.outcomes import Count, HistoryEntry, Outcome
from nasagent.agent.proposers import Proposal, ProposalContext, constraints_for
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.validation import Report, check

HistoryLike = HistoryEntry | Mapping[str, Any]


class InvalidParentError(NasAgentError, ValueError):
    """A parent that breaks the search space's rules; `report` holds the located errors."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__("invalid parent: " + "; ".join(report.error_lines()))


class MutationResult(BaseModel):
    """One validated proposal.

    Attributes:
        outcome: `ok` (a valid child in `arch`), `no_change`, `invalid`, `over_budget` (a
            budget, or the memory cap of scoring it: `max_memory`) or `llm_error`; never
            `duplicate` or `score_failed` (nothing is scored here).
        arch: the canonical child block string, when one could be read (also when invalid).
        errors: the validation or LLM errors, one sentence each.
        tokens: tokens of every LLM call made (repairs included).
        llm_calls: how many LLM calls were made.
        repairs: how many times the LLM was re-asked with the errors.
        notes: notes of the reply reader (for example a whitespace fix in the block string).
        expected_score: the score the LLM predicted, if it gave one.
        llm_seconds: wall seconds spent waiting for the LLM (repairs included).
        params: the child's parameter count under the configuration's counting, if costable.
        flops: the child's FLOPs at the configured resolution, if costable.
        layers: the child's layer count (sum of sub_layers), if costable.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    arch: str | None
    errors: tuple[str, ...] = ()
    tokens: int = 0
    llm_calls: int = 0
    repairs: int = 0
    notes: tuple[str, ...] = ()
    expected_score: float | None = None
    llm_seconds: float = 0.0
    params: Count | None = None
    flops: Count | None = None
    layers: int | None = None


async def amutate(
    parent: Any,
    *,
    mutator: str = "random",
    llm: str | LLMBackend | None = None,
    score: float | None = None,
    history: Sequence[HistoryLike] = (),
    lessons: Sequence[str] = (),
    seed: int = 0,
    num_replaces: int = 1,
    config: RunConfig | Mapping[str, Any] | None = None,
    record: str | Path | None = None,
) -> MutationResult:
    """The coroutine behind `mutate`, for callers that already run an event loop."""
    settings = _settings(config, mutator, llm)
    parent_text = _parent_string(parent, settings)
    spec = MUTATORS.get(settings.mutator)
    context = ProposalContext(
        iteration=0, parent=parent_text, parent_score=score, num_replaces=num_replaces,
        rng=random.Random(seed), history=tuple(_history(history)), lessons=tuple(lessons),
    )
    async with _backend(settings, llm, record, needed=spec.needs_llm) as backend:
        proposal = await spec.build(settings, backend).propose(context)
    return _result(proposal, settings)


def mutate(
    parent: Any,
    *,
    mutator: str = "random",
    llm: str | LLMBackend | None = None,
    score: float | None = None,
    history: Sequence[HistoryLike] = (),
    lessons: Sequence[str] = (),
    seed: int = 0,
    num_replaces: int = 1,
    config: RunConfig | Mapping[str, Any] | None = None,
    record: str | Path | None = None,
) -> MutationResult:
    """Propose one validated mutation of `parent` with nasagent's LLM or random mutator.

    Args:
        parent: the parent architecture: its string, or an architecture object of the search
            space (a Zen-NAS `Architecture`, an NB201 `Cell`).
        mutator: a registered mutator: "random" (the space's own) or "llm" (or a plugin's).
        llm: the LLM backend, a spec such as "openai:gpt-4o" or "scripted", or an
            `LLMBackend` object; None takes `llm` of `config` (default "openai:gpt-4o").
            Only read when the mutator needs an LLM.
        score: the parent's score, shown to the LLM.
        history: recent proposals shown to the LLM (short-term reflection), as `HistoryEntry`
            objects or dicts with their fields.
        lessons: long-term reflection lessons shown to the LLM.
        seed: seeds the random mutation and the temperature draw.
        num_replaces: blocks the random mutator replaces (Zen-NAS: 1 or 2).
        config: search space, budgets, proxy and LLM settings, as a `RunConfig` or a dict of
            its keys (the config-file keys); defaults: the Zen-NAS CIFAR GradNorm setting.
        record: a file to append every LLM call to (the `llm_calls.jsonl` format, which
            `replay:PATH` serves again).

    Returns:
        The proposal; a rejected or failed one is a result (`outcome`, `errors`), not an error.

    Raises:
        ConfigError: a bad configuration key or value, or an unknown mutator or backend.
        BlockStringError: `parent` is not an architecture string of the search space.
        InvalidParentError: `parent` breaks the rules of the search space (budgets aside).
        MemoryCapError: scoring `parent` would pass the memory cap (`max_memory` of `config`).
        LLMConfigError: the backend cannot be built (for example a missing API key).
    """
    return asyncio.run(amutate(
        parent, mutator=mutator, llm=llm, score=score, history=history, lessons=lessons,
        seed=seed, num_replaces=num_replaces, config=config, record=record,
    ))


def _settings(
    config: RunConfig | Mapping[str, Any] | None, mutator: str, llm: str | LLMBackend | None
) -> RunConfig:
    values = dict(config.model_dump() if isinstance(config, RunConfig) else (config or {}))
    values["mutator"] = mutator
    if isinstance(llm, str):
        values["llm"] = llm
    return config_from_dict(values, source="mutate settings")


def _parent_string(parent: Any, settings: RunConfig) -> str:
    """The canonical parent, checked like a search's seed (structure and space; no budgets;
    the memory cap)."""
    rules = constraints_for(settings).unbudgeted()
    space = rules.space
    arch = space.decode(parent).architecture if isinstance(parent, str) else parent
    report = check(arch, rules)
    if not report.valid:
        raise InvalidParentError(report)
    score_settings_for(settings).check_memory(arch, what="parent")
    return space.encode(arch)


def _history(entries: Sequence[HistoryLike]) -> list[HistoryEntry]:
    return [_history_entry(number, entry) for number, entry in enumerate(entries)]


def _history_entry(number: int, entry: HistoryLike) -> HistoryEntry:
    if isinstance(entry, HistoryEntry):
        return entry
    try:
        return HistoryEntry.model_validate(entry)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'entry'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid history entry {number}: {problems}") from None


@asynccontextmanager
async def _backend(
    settings: RunConfig, llm: str | LLMBackend | None, record: str | Path | None, *, needed: bool
) -> AsyncIterator[LLMBackend | None]:
    """The LLM backend (recorded to `record` if given), closed afterwards; None if unneeded."""
    if not needed:
        yield None
        return
    from nasagent.agent.llm.factory import make_backend
    from nasagent.agent.llm.recording import CallRecorder, RecordingBackend
    from nasagent.agent.session import backend_options, llm_spec

    given = llm if llm is not None and not isinstance(llm, str) else None
    backend = given or make_backend(llm_spec(settings), backend_options(settings))
    recorder = CallRecorder(record) if record is not None else None
    try:
        yield backend if recorder is None else RecordingBackend(backend, recorder)
    finally:
        if recorder is not None:
            recorder.close()
        if given is None:  # a caller's own backend stays open for its next call
            await backend.aclose()


def _result(proposal: Proposal, settings: RunConfig) -> MutationResult:
    arch, constraints = proposal.architecture, constraints_for(settings)
    report = check(arch, constraints) if arch is not None else None
    cost = report.cost if report is not None else None
    outcome, errors = proposal.outcome, proposal.errors
    if outcome is Outcome.OK:  # as in a search: a child over the memory cap is never scored
        refusal = score_settings_for(settings).memory_refusal(arch, what="the child")
        if refusal is not None:
            outcome, errors = Outcome.OVER_BUDGET, (*errors, refusal)
    return MutationResult(
        outcome=outcome,
        arch=None if arch is None else constraints.space.encode(arch),
        errors=errors, tokens=proposal.tokens, llm_calls=proposal.llm_calls,
        repairs=proposal.repairs, notes=proposal.notes, expected_score=proposal.expected_score,
        llm_seconds=proposal.llm_seconds, params=None if cost is None else cost.params,
        flops=None if cost is None else cost.flops, layers=None if cost is None else cost.layers,
    )
