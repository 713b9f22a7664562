"""The prompts: rendered from the registries, deterministic, and readable by our own extractor."""

from __future__ import annotations

import json
import math

import jinja2
import pytest

from nasagent.agent.outcomes import HistoryEntry, Outcome
from nasagent.agent.prompting import (
    PromptSettings,
    answer_json,
    format_number,
    mutation_messages,
    reflection_messages,
    repair_message,
    round_score,
)
from nasagent.agent.response import extract_answer, parse_lessons
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.proxies import PROXIES
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.zennas.facts import worked_example
from nasagent.evaluator.spaces.zennas.ops import OPS
from nasagent.evaluator.spaces.zennas.space import ZENNAS_SPACES
from nasagent.evaluator.validation import Constraints, ViolationKind, check_string
from nasagent.prompts import render

CIFAR = Constraints(max_params=1e6, max_layers=18)
SETTINGS = PromptSettings(constraints=CIFAR)
CHILD = CIFAR_SEED.replace("SuperResK3K3(8,16,1,8,1)", "SuperResK5K5(8,16,1,8,2)")


def entry(iteration: int, outcome: Outcome = Outcome.OK, **changes: object) -> HistoryEntry:
    values: dict[str, object] = {
        "iteration": iteration, "parent": CIFAR_SEED, "parent_score": 6.411, "arch": CHILD,
        "outcome": outcome, "score": 7.25,
    }
    return HistoryEntry.model_validate({**values, **changes})


def system_and_user(**kwargs: object) -> tuple[str, str]:
    messages = mutation_messages(CIFAR_SEED, 6.41101, SETTINGS, **kwargs)  # type: ignore[arg-type]
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[0]["content"], messages[1]["content"]


def first_json_fence(text: str) -> dict[str, object]:
    """The scripted backend's rule: the first ```json fence of the first user message."""
    start = text.index("```json") + len("```json")
    return json.loads(text[start:text.index("```", start)])


def test_rendering_is_deterministic() -> None:
    history = [entry(1), entry(2, Outcome.INVALID, score=None, errors=("bad",))]
    first = mutation_messages(CIFAR_SEED, 6.41101, SETTINGS, history, ["a lesson"])
    second = mutation_messages(CIFAR_SEED, 6.41101, SETTINGS, list(history), ("a lesson",))
    assert json.dumps(first) == json.dumps(second)


@pytest.mark.parametrize("space_name", sorted(space.name for space in ZENNAS_SPACES))
def test_system_prompt_lists_exactly_the_ops_of_the_space(space_name: str) -> None:
    settings = PromptSettings(constraints=Constraints(search_space=space_name))
    system = mutation_messages(CIFAR_SEED, None, settings)[0]["content"]
    space = get_space(space_name)
    for op in OPS.values():
        assert (f"## {op.signature}" in system) == (op.name in space)
        if op.name in space:
            assert op.description in system


def test_system_prompt_states_the_rules_and_budgets() -> None:
    system, _ = system_and_user()
    for fact in ("in_channels = 3", "multiples of 8", "at most 2048", "stride is 1 or 2",
                 "sub_layers is at least 1", "at most 5 blocks may have stride 2",
                 "at most 1,000,000 parameters", "at most 18 layers", "sum of sub_layers",
                 "exact counting", "100 outputs"):
        assert fact in system
    assert "FLOPs per image" not in system


def test_budgets_follow_the_constraints() -> None:
    flops = PromptSettings(constraints=Constraints(
        search_space="zennas-imagenet", resolution=224, num_classes=1000, max_flops=4e8,
        counting="zennas",
    ))
    system = mutation_messages(IMAGENET_SEED, None, flops)[0]["content"]
    assert "at most 400,000,000 FLOPs per image at 224x224" in system
    assert "at most 7 blocks may have stride 2" in system
    assert "zennas counting" in system
    free = mutation_messages(CIFAR_SEED, None,
                             PromptSettings(constraints=Constraints().unbudgeted()))
    assert "No parameter, FLOP or layer budget is in force." in free[0]["content"]


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_proxy_section_comes_from_the_registry(proxy: str) -> None:
    spec = PROXIES[proxy]
    system = mutation_messages(
        CIFAR_SEED, None, PromptSettings(constraints=CIFAR, proxy=proxy)
    )[0]["content"]
    assert spec.summary in system  # version 3 states `about` (v1 and v2: `description`)
    direction = "Higher" if spec.higher_is_better else "Lower"
    assert f"{direction} {proxy} scores are better" in system
    assert "```python" not in system


def test_proxy_source_is_optional() -> None:
    settings = PromptSettings(constraints=CIFAR, include_proxy_source=True)
    system = mutation_messages(CIFAR_SEED, None, settings)[0]["content"]
    assert "```python\ndef " in system


def test_unknown_proxy_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="gradnorm"):
        mutation_messages(CIFAR_SEED, None, PromptSettings(constraints=CIFAR, proxy="nope"))


@pytest.mark.parametrize("space_name", sorted(space.name for space in ZENNAS_SPACES))
def test_worked_example_is_a_valid_mutation(space_name: str) -> None:
    example = worked_example(get_space(space_name))  # type: ignore[arg-type]
    answer = extract_answer(f"```json\n{answer_json(example.answer, 'gradnorm', None)}\n```")
    assert answer.arch_text is not None and answer.arch_text != example.parent
    report = check_string(answer.arch_text, Constraints(search_space=space_name))
    assert report.valid, report.error_lines()


def test_worked_example_for_cifar_validates_under_the_default_budgets() -> None:
    example = worked_example(get_space("zennas-cifar"))  # type: ignore[arg-type]
    arch = example.answer
    assert "SuperResK1K5K1(8,16,1,8,1)" in arch
    report = check_string(arch, CIFAR)
    assert report.valid
    assert all(error.kind is ViolationKind.BUDGET for error in report.errors)


def test_user_message_carries_the_parent_in_the_first_json_fence() -> None:
    _, user = system_and_user(history=[entry(1)])
    assert first_json_fence(user) == {"arch": CIFAR_SEED, "type": "gradnorm", "score": 6.411}
    assert extract_answer(user.split("Recent proposals")[0]).arch_text == CIFAR_SEED


def test_history_shows_the_newest_entries_last() -> None:
    history = [entry(i, score=6.0 + i) for i in range(12, 0, -1)]
    history.append(entry(13, Outcome.INVALID, arch="Bad```x\nstuff", score=None,
                         errors=("e1", "e2", "e3", "e4")))
    settings = PromptSettings(constraints=CIFAR, history_size=3)
    user = mutation_messages(CIFAR_SEED, 6.4, settings, history)[1]["content"]
    assert "Iteration 10" not in user
    assert user.index("Iteration 11") < user.index("Iteration 12") < user.index("Iteration 13")
    assert "score 6.411 -> 18 (+11.59)" in user
    assert "child:  Bad'''x stuff" in user
    assert "error: e3" in user and "e4" not in user and "and 1 more" in user


def test_history_can_be_switched_off() -> None:
    settings = PromptSettings(constraints=CIFAR, history_size=0)
    user = mutation_messages(CIFAR_SEED, 6.4, settings, [entry(1)])[1]["content"]
    assert "Recent proposals" not in user


def test_no_change_and_unscored_entries_render() -> None:
    history = [entry(1, Outcome.NO_CHANGE, arch=None, score=None),
               entry(2, Outcome.OK, parent_score=None, score=float("nan"))]
    user = mutation_messages(CIFAR_SEED, None, SETTINGS, history)[1]["content"]
    assert "(no change proposed)" in user
    assert "Iteration 2: ok\n" in user


def test_lessons_come_last_so_the_static_prefix_is_shared() -> None:
    without, _ = system_and_user()
    with_lessons, _ = system_and_user(lessons=["Use K1K5K1 early.", "  ", "x" * 500])
    assert without.endswith("# Lessons learned so far\nNone yet.")
    prefix = without.removesuffix("None yet.")
    assert with_lessons.startswith(prefix)
    assert with_lessons[len(prefix):].splitlines()[0] == "- Use K1K5K1 early."
    assert len(with_lessons[len(prefix):].splitlines()) == 2
    assert with_lessons.rstrip().endswith("...")


def test_scores_are_rounded_and_non_finite_ones_are_null() -> None:
    assert round_score(6.411012345) == 6.411
    assert round_score(123456789.0) == 123460000.0
    assert round_score(float("inf")) is None and round_score(None) is None
    assert json.loads(answer_json("A(1)", "zen", math.nan))["score"] is None
    assert format_number(1e6) == "1,000,000" and format_number(2.5e-3) == "0.0025"


def test_repair_message_lists_the_errors() -> None:
    message = repair_message(["block 1: out_channels 20 is not a multiple of 8", "two\nlines"])
    assert message["role"] == "user"
    assert "- block 1: out_channels 20 is not a multiple of 8\n- two lines" in message["content"]
    assert '{"arch": "<block string>"' in message["content"]
    assert "(no details were reported)" in repair_message([])["content"]


def test_reflection_messages() -> None:
    history = [entry(i) for i in range(1, 4)]
    settings = PromptSettings(constraints=CIFAR, max_lessons=5)
    system, user = (m["content"] for m in reflection_messages(history, ["old lesson"], settings))
    assert "at most 5 lessons" in system and '{"lessons": [' in system
    assert "- old lesson" in user and "Iteration 3" in user
    example = system[system.index("```json"):]
    assert parse_lessons(example) == ["<lesson>", "..."]
    empty_user = reflection_messages([], [], SETTINGS)[1]["content"]
    assert empty_user.count("None yet.") == 2


def test_templates_use_strict_undefined() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("v2/repair.j2")
