"""The scripted stand-in backend: deterministic answers for tests and demos. It is NOT a model.

For a mutation or repair request it reads the parent from the first user message (the first
```json fence holding an "arch" key, in the run's naming), applies one random mutation of the
search space's own operator and answers in the format the prompt asks for. For a reflection
request it answers a couple of lessons computed from the request text. Every answer is
labelled as scripted.

All randomness comes from a `random.Random` seeded with the request hash, so the same request
gets the same answer in any order and under any concurrency.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from typing import Any

from nasagent.agent.llm.base import (
    ErrorKind,
    LLMConfigError,
    LLMError,
    LLMRequest,
    LLMResponse,
    TokenUsage,
    approximate_tokens,
)
from nasagent.agent.outcomes import Outcome
from nasagent.evaluator.errors import BlockStringError
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.base import STANDARD_NAMING

MUTATION_NOTE = "(scripted stand-in: one random mutation of the parent)"
REFLECTION_NOTE = "(scripted stand-in: lessons counted from the prompt)"

_JSON_FENCE = re.compile(r"```json[ \t]*\r?\n(.*?)```", re.DOTALL)
_FAILURES = (Outcome.INVALID, Outcome.OVER_BUDGET, Outcome.SCORE_FAILED, Outcome.LLM_ERROR)


class ScriptedBackend:
    """A deterministic stand-in for an LLM (see the module docstring).

    Token usage is approximate: len(text) // 4 for the prompt and for the answer.

    Args:
        search_space: the search space whose random mutation answers.
        bad_fraction: the fraction of mutation answers deliberately broken (the space's
            `broken`: e.g. channels that do not chain, or an unknown op), to exercise
            validation and repair.
        naming: the notation the prompt writes architectures in (and the answer uses).
        type_weights: the space's mutation option of that name.
    """

    def __init__(
        self, search_space: str = "zennas-cifar", *, bad_fraction: float = 0.0,
        naming: str = STANDARD_NAMING, type_weights: str = "zennas",
    ) -> None:
        if not 0.0 <= bad_fraction <= 1.0:
            raise LLMConfigError(f"bad_fraction must be in [0, 1], got {bad_fraction}")
        self.search_space = search_space
        self.space = get_space(search_space)
        self.bad_fraction = bad_fraction
        self.naming = naming
        self.options = {"type_weights": type_weights, "op_names": naming}
        self.name = "scripted"
        self._handlers: dict[str, Callable[[LLMRequest, random.Random], str]] = {
            "mutation": self._mutation_answer,
            "repair": self._mutation_answer,
            "reflection": _reflection_answer,
        }

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer deterministically from the request.

        Raises:
            LLMError: kind "bad_request" for an unknown purpose or a prompt without a parent.
        """
        started = time.perf_counter()
        handler = self._handlers.get(request.purpose)
        if handler is None:
            raise LLMError(
                f"the scripted stand-in answers purposes {', '.join(sorted(self._handlers))}, "
                f"not {request.purpose!r}", kind=ErrorKind.BAD_REQUEST,
            )
        text = handler(request, request_rng(request))
        prompt = "".join(message.content for message in request.messages)
        usage = TokenUsage(prompt_tokens=approximate_tokens(prompt),
                           estimated=True, completion_tokens=approximate_tokens(text))
        return LLMResponse(text=text, finish_reason="stop", usage=usage,
                           latency_s=time.perf_counter() - started, model="scripted")

    async def aclose(self) -> None:
        return None

    def _parse_parent(self, arch: str) -> Any:
        try:
            return self.space.decode(arch, self.naming).architecture
        except BlockStringError as error:
            raise LLMError(f"the scripted stand-in cannot read the parent: {error}",
                           kind=ErrorKind.BAD_REQUEST) from error

    def _mutation_answer(self, request: LLMRequest, rng: random.Random) -> str:
        parent = find_parent(request)
        architecture = self._parse_parent(parent["arch"])
        child = self.space.mutator(rng.getrandbits(64), self.options).mutate(architecture)
        arch, note = self.space.encode(child, self.naming), MUTATION_NOTE
        if rng.random() < self.bad_fraction:
            arch, note = self.space.broken(child, rng)
        answer = {"arch": arch, "type": parent.get("type"), "score": None}
        return f"```json\n{json.dumps(answer)}\n```\n{note}"


def request_rng(request: LLMRequest) -> random.Random:
    """A `random.Random` seeded from the request hash (deterministic, order-independent)."""
    return random.Random(int(request.request_hash()[:16], 16))


def find_parent(request: LLMRequest) -> dict[str, Any]:
    """The first ```json fenced object with an "arch" key in the first user message.

    Raises:
        LLMError: kind "bad_request" when there is none.
    """
    text = request.first_user_message() or ""
    for match in _JSON_FENCE.finditer(text):
        try:
            candidate = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(candidate, dict) and isinstance(candidate.get("arch"), str):
            return candidate
    raise LLMError(
        'the scripted stand-in found no ```json {"arch": ...}``` parent in the first user message',
        kind=ErrorKind.BAD_REQUEST,
    )




def _reflection_answer(request: LLMRequest, _rng: random.Random) -> str:
    text = "\n".join(m.content for m in request.messages if m.role == "user")
    counts = count_outcomes(text)
    answer = {"lessons": _lessons(counts)}
    return f"```json\n{json.dumps(answer)}\n```\n{REFLECTION_NOTE}"


def count_outcomes(text: str) -> dict[Outcome, int]:
    """How often each outcome name appears as a word in `text` (underscores or spaces)."""
    counts: dict[Outcome, int] = {}
    for outcome in Outcome:
        words = outcome.value.replace("_", "[ _]")
        found = len(re.findall(rf"\b{words}\b", text, flags=re.IGNORECASE))
        if found:
            counts[outcome] = found
    return counts


def _lessons(counts: dict[Outcome, int]) -> list[str]:
    if not counts:
        return ["(scripted stand-in, not a model) The prompt mentions no outcomes yet."]
    listed = ", ".join(f"{outcome.value} x{count}" for outcome, count in counts.items())
    failures = sum(counts.get(outcome, 0) for outcome in _FAILURES)
    successes = counts.get(Outcome.OK, 0)
    if failures > successes:
        advice = (f"Failures ({failures}) outnumber successful proposals ({successes}): change "
                  f"one block at a time and keep channels chained.")
    else:
        advice = (f"Successful proposals ({successes}) are at least as many as failures "
                  f"({failures}): keep making small single-block changes.")
    return [f"(scripted stand-in, not a model) The prompt mentions outcomes: {listed}.",
            f"(scripted stand-in) {advice}"]
