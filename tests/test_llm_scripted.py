"""The scripted stand-in backend (deterministic, not a model) and the backend factory."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

import pytest

from nasagent.agent.llm import (
    BackendOptions,
    LLMConfigError,
    LLMError,
    LLMRequest,
    LLMResponse,
    Message,
    SamplingParams,
    ScriptedBackend,
    make_backend,
)
from nasagent.agent.llm.scripted import MUTATION_NOTE, count_outcomes
from nasagent.agent.outcomes import Outcome
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.errors import BlockStringError, UnknownNameError
from nasagent.evaluator.spaces.zennas.codec import parse

FENCE = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def mutation_request(parent: str = CIFAR_SEED, seed: int = 0, iteration: int | None = 1,
                     purpose: str = "mutation") -> LLMRequest:
    parent_json = json.dumps({"arch": parent, "type": "gradnorm", "score": 6.41})
    user = f"Mutate the architecture below.\n```json\n{parent_json}\n```\nAnswer in a fence."
    return LLMRequest(
        purpose=purpose,
        messages=(Message(role="system", content="rules"), Message(role="user", content=user)),
        params=SamplingParams(model="scripted", seed=seed), iteration=iteration,
    )


def chained(blocks: Any) -> bool:
    return all(a.out_channels == b.in_channels for a, b in itertools.pairwise(blocks))


def answer(backend: ScriptedBackend, request: LLMRequest) -> LLMResponse:
    return asyncio.run(backend.complete(request))


def fenced(text: str) -> Any:
    match = FENCE.search(text)
    assert match, text
    return json.loads(match.group(1))


def test_answer_is_one_labelled_mutation_of_the_parent() -> None:
    response = answer(ScriptedBackend(), mutation_request())
    document = fenced(response.text)
    assert set(document) == {"arch", "type", "score"}
    assert (document["type"], document["score"]) == ("gradnorm", None)
    child = parse(document["arch"])
    assert len(child.blocks) >= 1
    assert response.text.rstrip().endswith(MUTATION_NOTE)
    assert response.model == "scripted"
    assert response.finish_reason == "stop"


def test_usage_is_the_approximate_four_characters_per_token() -> None:
    request = mutation_request()
    response = answer(ScriptedBackend(), request)
    prompt = "".join(message.content for message in request.messages)
    assert response.usage.prompt_tokens == len(prompt) // 4
    assert response.usage.completion_tokens == len(response.text) // 4


def test_same_request_same_answer_in_any_order() -> None:
    backend = ScriptedBackend()
    requests = [mutation_request(seed=seed) for seed in range(6)]

    async def forwards_and_backwards() -> tuple[list[str], list[str]]:
        first = await asyncio.gather(*(backend.complete(r) for r in requests))
        second = await asyncio.gather(*(backend.complete(r) for r in reversed(requests)))
        return [r.text for r in first], [r.text for r in reversed(second)]

    first, second = asyncio.run(forwards_and_backwards())
    assert first == second
    assert len(set(first)) > 1  # different requests, different draws


def test_iteration_metadata_does_not_change_the_answer() -> None:
    backend = ScriptedBackend()
    assert answer(backend, mutation_request(iteration=1)).text == \
        answer(backend, mutation_request(iteration=99)).text


def test_children_are_valid_chained_mutations() -> None:
    backend = ScriptedBackend()
    changed = 0
    for seed in range(20):
        child = parse(fenced(answer(backend, mutation_request(seed=seed)).text)["arch"])
        assert chained(child.blocks)
        changed += str(child) != str(parse(CIFAR_SEED))
    assert changed > 0


def test_bad_fraction_one_breaks_every_answer() -> None:
    backend = ScriptedBackend(bad_fraction=1.0)
    kinds = set()
    for seed in range(12):
        response = answer(backend, mutation_request(seed=seed))
        assert "deliberately broken" in response.text
        arch = fenced(response.text)["arch"]
        try:
            blocks = parse(arch).blocks
        except BlockStringError:
            kinds.add("unknown op")
            continue
        assert not chained(blocks)
        kinds.add("wrong channels")
    assert kinds == {"unknown op", "wrong channels"}


def test_bad_fraction_must_be_a_fraction() -> None:
    with pytest.raises(LLMConfigError):
        ScriptedBackend(bad_fraction=1.5)


def test_repair_reads_the_parent_from_the_first_user_message() -> None:
    request = mutation_request(purpose="repair")
    followup = (Message(role="assistant", content='```json\n{"arch": "Nope(1)"}\n```'),
                Message(role="user", content="That failed validation; fix it."))
    request = request.model_copy(update={"messages": request.messages + followup})
    document = fenced(answer(ScriptedBackend(), request).text)
    parse(document["arch"])


def test_request_without_parent_is_a_bad_request() -> None:
    request = LLMRequest(purpose="mutation", messages=(Message(role="user", content="hi"),),
                         params=SamplingParams(model="scripted"))
    with pytest.raises(LLMError) as caught:
        answer(ScriptedBackend(), request)
    assert caught.value.kind == "bad_request"


def test_unknown_purpose_is_a_bad_request() -> None:
    with pytest.raises(LLMError, match="reflection"):
        answer(ScriptedBackend(), mutation_request(purpose="poetry"))


def test_reflection_lessons_count_outcomes() -> None:
    user = ("Recent proposals:\n- Iteration 1: ok; score 6.1\n- Iteration 2: invalid\n"
            "- Iteration 3: invalid\n- Iteration 4: over_budget\n"
            'Answer with {"lessons": [...]} in a ```json fence.')
    request = LLMRequest(purpose="reflection", messages=(Message(role="user", content=user),),
                         params=SamplingParams(model="scripted"))
    lessons = fenced(answer(ScriptedBackend(), request).text)["lessons"]
    assert len(lessons) == 2
    assert all("scripted" in lesson for lesson in lessons)
    assert "ok x1" in lessons[0] and "invalid x2" in lessons[0] and "over_budget x1" in lessons[0]
    assert "Failures (3)" in lessons[1]


def test_count_outcomes_accepts_spaces_for_underscores() -> None:
    assert count_outcomes("over budget, OVER_BUDGET, no change") == {
        Outcome.OVER_BUDGET: 2, Outcome.NO_CHANGE: 1}


def test_factory_builds_scripted_with_options() -> None:
    backend = make_backend("scripted", BackendOptions(scripted_bad_fraction=0.5))
    assert isinstance(backend, ScriptedBackend)
    assert (backend.name, backend.bad_fraction) == ("scripted", 0.5)


def test_factory_rejects_unknown_prefix_listing_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as caught:
        make_backend("gemini:pro", BackendOptions())
    for prefix in ("azure", "manual", "openai", "replay", "scripted"):
        assert prefix in str(caught.value)


@pytest.mark.parametrize("spec", ["openai", "openai:", "manual", "replay:  ", "scripted:extra"])
def test_factory_rejects_malformed_specs(spec: str) -> None:
    with pytest.raises(LLMConfigError):
        make_backend(spec, BackendOptions())


def test_backend_options_forbid_unknown_fields() -> None:
    with pytest.raises(ValueError):
        BackendOptions(temperature=0.5)  # type: ignore[call-arg]
