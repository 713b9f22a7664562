"""Mutators: where a proposal comes from. The LLM and the Zen-NAS random operator share one
interface, so both run inside the same loop with the same budgets and scoring."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from nasagent.agent.config import SPACE_OPTION_KEYS, ConfigError, RunConfig
from nasagent.agent.llm.base import (
    LLMBackend,
    LLMError,
    LLMRequest,
    LLMResponse,
    Message,
    SamplingParams,
)
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.outcomes import HistoryEntry, Outcome, ScoredArch
from nasagent.agent.pricing import Spend
from nasagent.agent.prompting import (
    PromptSettings,
    SearchFacts,
    answer_noun,
    mutation_messages,
    repair_message,
)
from nasagent.agent.response import MUTATION_SCHEMA, Verdict, judge_reply
from nasagent.evaluator.errors import BlockStringError
from nasagent.evaluator.validation import Constraints, check


@dataclass(frozen=True)
class ProposalContext:
    """What a mutator is shown for one iteration; its RNG is derived from (run seed, iteration)."""

    iteration: int
    parent: str
    parent_score: float | None
    num_replaces: int
    rng: random.Random
    history: tuple[HistoryEntry, ...] = ()
    lessons: tuple[str, ...] = ()
    best: ScoredArch | None = None


@dataclass
class Proposal:
    """A mutator's answer before scoring: a valid candidate (outcome OK) or why there is none."""

    outcome: Outcome
    architecture: Any = None
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    expected_score: float | None = None
    llm_calls: int = 0
    tokens: int = 0
    repairs: int = 0
    llm_seconds: float = 0.0
    spend: Spend = Spend()

    def count_call(self, response: LLMResponse) -> None:
        self.llm_calls += 1
        self.tokens += response.usage.total_tokens
        self.llm_seconds += response.latency_s
        self.spend = self.spend.add(response.usage, response.cost_usd)


class Proposer(Protocol):
    async def propose(self, context: ProposalContext) -> Proposal: ...


def constraints_for(config: RunConfig) -> Constraints:
    """The validator's constraints implied by a run configuration (with what its seed fixes:
    a Zen-NAS structure keeps the seed's resolution schedule).

    Raises:
        ConfigError: the seed architecture does not decode.
    """
    constraints = Constraints(
        search_space=config.search_space, num_classes=config.num_classes,
        resolution=config.resolution, counting=config.counting, max_params=config.max_params,
        max_flops=config.max_flops, max_layers=config.max_layers, structure=config.structure,
    )
    try:
        return constraints.space.constrained_by_seed(constraints, config.seed_arch)
    except BlockStringError as error:
        raise ConfigError(f"seed_arch cannot be decoded: {error}") from None


def space_options(config: RunConfig) -> dict[str, Any]:
    """The run's shared options a search space reads (mutation weights, naming, scoring)."""
    return {key: getattr(config, key) for key in SPACE_OPTION_KEYS}


def prompt_settings_for(config: RunConfig) -> PromptSettings:
    """The prompt settings implied by a run configuration."""
    return PromptSettings(
        constraints=constraints_for(config), proxy=config.proxy,
        include_proxy_source=config.include_proxy_source, history_size=config.history_size,
        max_lessons=config.max_lessons, version=config.prompt_version,
        op_names=config.op_names,
        search=SearchFacts(
            parent_selection=str(config.parent_selection), tournament_size=config.tournament_size,
            population=config.population, init_population=config.init_population,
            residual=config.residual, proxy_data=config.proxy_data,
        ),
    )


class RandomProposer:
    """The search space's random mutation operator, checked against the same budgets."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.constraints = constraints_for(config)
        self.space = self.constraints.space
        self.options = space_options(config)

    async def propose(self, context: ProposalContext) -> Proposal:
        mutator = self.space.drawn_mutator(context.rng, self.options)
        parent = self.space.decode(context.parent).architecture
        child = mutator.mutate(parent, num_replaces=context.num_replaces)
        if self.space.encode(child) == self.space.encode(parent):  # as for an LLM's no change
            return Proposal(Outcome.NO_CHANGE, child, notes=("the mutation gave the parent back",))
        report = check(child, self.constraints)
        outcome = Outcome.OK if report.valid else (
            Outcome.OVER_BUDGET if report.over_budget else Outcome.INVALID
        )
        return Proposal(outcome, child, errors=tuple(report.error_lines()))


class LLMProposer:
    """Asks an LLM for a mutated block string and re-asks with the errors when it is invalid."""

    def __init__(self, config: RunConfig, backend: LLMBackend) -> None:
        self.config = config
        self.backend = backend
        self.constraints = constraints_for(config)
        self.prompt_settings = prompt_settings_for(config)

    async def propose(self, context: ProposalContext) -> Proposal:
        messages = mutation_messages(
            context.parent, context.parent_score, self.prompt_settings,
            context.history, context.lessons, best=context.best,
        )
        proposal = Proposal(Outcome.LLM_ERROR)
        for attempt in range(self.config.max_repairs + 1):
            purpose = "mutation" if attempt == 0 else "repair"
            try:
                response = await self.backend.complete(self._request(messages, context, purpose))
            except LLMError as exc:
                proposal.outcome = Outcome.LLM_ERROR
                proposal.errors = (*proposal.errors, f"LLM call failed: {exc}")
                return proposal
            proposal.count_call(response)
            proposal.repairs = attempt
            verdict = judge_reply(
                response.text, response.finish_reason,
                parent=context.parent, constraints=self.constraints, naming=self.config.op_names,
            )
            proposal = _from_verdict(proposal, verdict)
            if verdict.outcome in (Outcome.OK, Outcome.NO_CHANGE):
                return proposal
            messages = [
                *messages, {"role": "assistant", "content": response.text},
                repair_message(verdict.errors, self.prompt_settings.version,
                               answer_noun(self.prompt_settings)),
            ]
        return proposal

    def _request(
        self, messages: list[dict[str, str]], context: ProposalContext, purpose: str
    ) -> LLMRequest:
        schema = MUTATION_SCHEMA if self.config.response_format == "json_schema" else None
        return LLMRequest(
            purpose=purpose,
            messages=tuple(Message.model_validate(m) for m in messages),
            params=sampling_params(self.config, context.rng.choice(self.config.temperature)),
            response_schema=schema, schema_name="mutation", iteration=context.iteration,
        )


def sampling_params(config: RunConfig, temperature: float) -> SamplingParams:
    """Sampling parameters of one call (mutation calls draw `temperature` from the list)."""
    return SamplingParams.model_validate({
        "model": config.llm_model,
        "temperature": temperature,
        "max_tokens": config.max_tokens,
        "seed": config.llm_seed,
        "response_format": config.response_format,
    })


def _from_verdict(proposal: Proposal, verdict: Verdict) -> Proposal:
    proposal.outcome = verdict.outcome
    proposal.architecture = verdict.architecture
    proposal.errors = tuple(verdict.errors)
    proposal.notes = tuple(verdict.notes)
    proposal.expected_score = verdict.expected_score
    return proposal


def make_proposer(config: RunConfig, backend: LLMBackend | None) -> Proposer:
    """The proposer of the mutator named by `config.mutator` (see `agent.mutators.MUTATORS`).

    Raises:
        UnknownNameError: the mutator is not registered.
    """
    return MUTATORS.get(config.mutator).build(config, backend)
