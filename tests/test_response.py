"""Reply extraction and judging beyond the corpus: fields, rules, lessons, hostile input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasagent.agent.outcomes import Outcome
from nasagent.agent.response import (
    LESSONS_SCHEMA,
    MAX_REPLY_CHARS,
    MUTATION_SCHEMA,
    ExtractionError,
    extract_answer,
    judge_reply,
    parse_lessons,
)
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.validation import Constraints

CIFAR = Constraints(max_params=1e6, max_layers=18)
CHILD = CIFAR_SEED.replace("SuperResK3K3(8,16,1,8,1)", "SuperResK1K5K1(8,16,1,8,1)")


def fenced(value: object) -> str:
    return f"```json\n{json.dumps(value)}\n```"


def test_answer_fields() -> None:
    answer = extract_answer(
        fenced({"arch": f"  {CHILD} ", "type": "gradnorm", "score": 7}) + "\n  Deeper   block. "
    )
    assert answer.arch_text == CHILD
    assert answer.proxy == "gradnorm"
    assert answer.expected_score == 7.0
    assert answer.rationale == "Deeper block."
    assert answer.notes == ()


def test_rationale_is_clipped() -> None:
    answer = extract_answer(fenced({"arch": CHILD}) + "\n" + "word " * 500)
    assert len(answer.rationale) == 500 and answer.rationale.endswith("...")


@pytest.mark.parametrize("score", ["Infinity", "NaN", "true", '"7.5"', "[7]"])
def test_unusable_scores_are_ignored_with_a_note(score: str) -> None:
    answer = extract_answer(f'{{"arch": "{CHILD}", "score": {score}}}')
    assert answer.expected_score is None
    assert any("score" in note for note in answer.notes)


def test_type_that_is_not_a_string_is_ignored() -> None:
    answer = extract_answer(json.dumps({"arch": CHILD, "type": 3}))
    assert answer.proxy is None and any('"type"' in note for note in answer.notes)


@pytest.mark.parametrize("arch", [None, 3, True, {"a": 1}, ["SuperConvK3BNRELU(3,8,1,1)"]])
def test_arch_that_is_not_a_string_is_refused(arch: object) -> None:
    with pytest.raises(ExtractionError, match="one string of blocks"):
        extract_answer(fenced({"arch": arch}))


@pytest.mark.parametrize("reply", ["[]", fenced([]), fenced({"arch": ""}), fenced({"arch": []}),
                                   fenced({"arch": "  "}), fenced({"arch": "[]"})])
def test_empty_answers_mean_no_change(reply: str) -> None:
    assert extract_answer(reply).arch_text is None
    verdict = judge_reply(reply, "stop", parent=CIFAR_SEED, constraints=CIFAR)
    assert verdict.outcome is Outcome.NO_CHANGE and verdict.architecture is None


@pytest.mark.parametrize("reply", [
    "The parent is already the best I can find under these budgets.\n[]",
    "Every change I tried breaks the layer budget, so I keep it.\n\n`[]`\n",
    'I first thought of {"arch": "' + CHILD + '"} but it scores lower. Keeping the parent:\n[]',
])
def test_a_bare_empty_list_after_prose_means_no_change(reply: str) -> None:
    # the RZ-NAS convention: "return an empty list when the input is already the best"
    verdict = judge_reply(reply, "stop", parent=CIFAR_SEED, constraints=CIFAR)
    assert verdict.outcome is Outcome.NO_CHANGE and verdict.architecture is None


def test_an_empty_list_inside_prose_is_not_an_answer() -> None:
    verdict = judge_reply("I could return [] but here is a change: none.", "stop",
                          parent=CIFAR_SEED, constraints=CIFAR)
    assert verdict.outcome is Outcome.INVALID


def test_the_last_fenced_answer_wins() -> None:
    first, second = CHILD, CHILD.replace("(64,128,1,1)", "(64,256,1,1)")
    reply = f"{fenced({'arch': first})}\nbetter:\n{fenced({'arch': second})}"
    answer = extract_answer(reply)
    assert answer.arch_text == second
    assert "used the last one" in answer.notes[-1]


def test_non_json_fences_are_not_answers() -> None:
    reply = f"```python\n{json.dumps({'arch': 'X(1)'})}\n```\n{json.dumps({'arch': CHILD})}"
    assert extract_answer(reply).arch_text == CHILD


def test_reasoning_is_never_read() -> None:
    decoy = fenced({"arch": "SuperConvK3BNRELU(3,16,1,1)"})
    for reply in (f"<think>{decoy}</think>{fenced({'arch': CHILD})}",
                  f"<reasoning>\n{decoy}\n</REASONING>\n{CHILD}",
                  f"{decoy}\n</think>\n{json.dumps({'arch': CHILD})}"):
        assert extract_answer(reply).arch_text == CHILD


def test_think_inside_a_word_is_not_a_tag() -> None:
    reply = f"<thinker> is not a tag {json.dumps({'arch': CHILD})}"
    answer = extract_answer(reply)
    assert answer.arch_text == CHILD and answer.notes == ()


def test_truncated_reply_is_refused_even_after_a_closed_answer() -> None:
    with pytest.raises(ExtractionError, match="cut off"):
        extract_answer(json.dumps({"arch": CHILD}), finish_reason="length")
    with pytest.raises(ExtractionError, match="cut off"):
        extract_answer(fenced({"arch": CHILD}) + "\nbecause", finish_reason="length")


def test_over_cap_reply_is_refused_with_a_clear_error() -> None:
    reply = fenced({"arch": CHILD}) + " " * MAX_REPLY_CHARS
    with pytest.raises(ExtractionError, match="at most 1,000,000"):
        extract_answer(reply)
    verdict = judge_reply(reply, "stop", parent=CIFAR_SEED, constraints=CIFAR)
    assert verdict.outcome is Outcome.INVALID


PATHOLOGICAL = {
    "nested-objects": '{"a":' * 190_000,
    "nested-arrays": "[" * 990_000,
    "open-braces": "{" * 990_000,
    "half-keys": '{"' * 490_000,
    "half-objects-then-answer": '{"a": 1 ' * 120_000 + json.dumps({"arch": CHILD}),
    "unterminated-string": '{"a": "' + "x" * 990_000,
    "think-tags": "<think>" * 140_000,
    "close-tags": "</thinking>" * 90_000,
    "fences": "```json\n{\n" * 90_000,
    "angle-brackets": "<" * 990_000,
    "long-object": json.dumps({"arch": CHILD, "pad": "y" * 900_000}),
}


@pytest.mark.timeout(120)  # a hang guard for the linear-time claim, not a timing assertion
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_megabyte_pathological_inputs_finish(name: str) -> None:
    text = PATHOLOGICAL[name]
    assert len(text) <= MAX_REPLY_CHARS
    verdict = judge_reply(text, "stop", parent=CIFAR_SEED, constraints=CIFAR)
    answered = name in ("half-objects-then-answer", "long-object")
    assert verdict.outcome is (Outcome.OK if answered else Outcome.INVALID)


def test_identical_to_an_undecodable_parent_compares_raw_text() -> None:
    verdict = judge_reply(fenced({"arch": "Nope(1)"}), "stop", parent="Nope(1)", constraints=CIFAR)
    assert verdict.outcome is Outcome.INVALID


def test_judge_reports_budget_only_failures_as_over_budget() -> None:
    deep = CHILD.replace("SuperResK3K3(32,64,2,32,1)", "SuperResK3K3(32,64,2,32,14)")
    verdict = judge_reply(fenced({"arch": deep, "score": 9}), None, parent=CIFAR_SEED,
                          constraints=CIFAR)
    assert verdict.outcome is Outcome.OVER_BUDGET
    assert verdict.canonical == deep and verdict.expected_score == 9.0
    assert verdict.errors == (
        "layers 19 (the sum of sub_layers) exceed the budget of 18; remove sub-layers or blocks",
    )


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('{}[]"`<>/:, \naSuperConvK3(1)think')), max_size=300))
def test_arbitrary_text_never_raises_unexpectedly(text: str) -> None:
    verdict = judge_reply(text, "stop", parent=CIFAR_SEED, constraints=CIFAR)
    assert verdict.outcome in {Outcome.OK, Outcome.NO_CHANGE, Outcome.INVALID, Outcome.OVER_BUDGET}
    try:
        extract_answer(text)
    except NasAgentError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_arch_string_round_trips_through_the_contract(arch: str) -> None:
    answer = extract_answer(fenced({"arch": arch, "type": "gradnorm", "score": 1.5}))
    assert answer.arch_text == (None if arch.strip() in ("", "[]") else arch.strip())


def test_schemas_are_strict_compatible() -> None:
    for schema in (MUTATION_SCHEMA, LESSONS_SCHEMA):
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) == set(schema["properties"])
    assert MUTATION_SCHEMA["properties"]["score"]["type"] == ["number", "null"]


def test_lessons_from_json() -> None:
    reply = "<think>- not a lesson</think>\n" + fenced(
        {"lessons": ["  Deeper   K1K5K1 helps. ", "", 3, "Deeper K1K5K1 helps.", "z" * 300]}
    )
    lessons = parse_lessons(reply)
    assert lessons[0] == "Deeper K1K5K1 helps."
    assert len(lessons) == 2 and len(lessons[1]) == 200 and lessons[1].endswith("...")


def test_lessons_from_bullets_and_numbers() -> None:
    reply = "Lessons:\n- one\n* two\n3. three\n4) four\n• five\nnot a lesson\n10. ten"
    assert parse_lessons(reply, limit=5) == ["one", "two", "three", "four", "five"]
    assert parse_lessons(reply)[-1] == "ten"


def test_lessons_when_there_are_none() -> None:
    assert parse_lessons("") == []
    assert parse_lessons("[]") == []
    assert parse_lessons(fenced({"lessons": "not a list"})) == []
    assert parse_lessons("x" * (MAX_REPLY_CHARS + 1)) == []
