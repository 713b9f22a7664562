"""The mutator registry: where a proposal comes from, and what each kind of proposer needs.

A mutator declares whether it needs an LLM backend (the run opens and records one) and
whether it reflects (the loop asks the LLM for lessons every `reflect_every` iterations), so
the loop asks the registry instead of comparing names. Plugins add mutators through the
`nasagent.mutators` entry-point group; their builder gets the run configuration and the
run's recorded backend (None unless `needs_llm`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasagent.evaluator.registry import Registry

if TYPE_CHECKING:
    from nasagent.agent.config import RunConfig
    from nasagent.agent.llm.base import LLMBackend
    from nasagent.agent.proposers import Proposer

ProposerBuilder = Callable[["RunConfig", "LLMBackend | None"], "Proposer"]


@dataclass(frozen=True)
class MutatorSpec:
    """One registered mutator.

    Attributes:
        name: the registry key (`--mutator NAME`, the `mutator` of every event).
        build: makes the proposer of a run from its configuration and LLM backend.
        needs_llm: the run opens (and records) the LLM backend named by `llm`.
        reflects: the loop runs short- and long-term reflection with that backend.
        description: one line for help texts.
    """

    name: str
    build: ProposerBuilder
    needs_llm: bool
    reflects: bool
    description: str


def _random(config: RunConfig, _backend: LLMBackend | None) -> Proposer:
    from nasagent.agent.proposers import RandomProposer

    return RandomProposer(config)


def _llm(config: RunConfig, backend: LLMBackend | None) -> Proposer:
    from nasagent.agent.proposers import LLMProposer

    if backend is None:
        raise ValueError("the llm mutator needs an LLM backend")
    return LLMProposer(config, backend)


MUTATORS: Registry[MutatorSpec] = Registry("mutator", MutatorSpec, group="nasagent.mutators")
"""The mutators by name; plugins add theirs through `nasagent.mutators`."""

MUTATORS.register("llm", MutatorSpec(
    "llm", _llm, needs_llm=True, reflects=True,
    description="the LLM proposes one mutated block string, re-asked with validation errors",
))
MUTATORS.register("random", MutatorSpec(
    "random", _random, needs_llm=False, reflects=False,
    description="the Zen-NAS random mutation operator (the baseline)",
))
