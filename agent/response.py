"""Read the model's reply: find the answer, then validate the architecture it proposes.

LLM text is data: it is scanned with `str.find` and `json.JSONDecoder.raw_decode` and the block
string goes through the one decoder; nothing in a reply is ever executed. Every step is linear
in the reply's length, and replies longer than `MAX_REPLY_CHARS` are refused outright.

How an answer is found (`extract_answer`), in this order:

1. Reasoning sections are dropped first: `<think>`, `<thinking>`, `<thought>`, `<reasoning>`
   in any letter case, closed by any of those closing tags (so `<Thinking>...</thinking>`
   works). A closing tag with no opening tag (the opening one was in the prompt) drops
   everything before it; an unterminated opening tag drops everything after it. Block strings
   and JSON inside reasoning are never read.
2. Fenced answers: every ```` ``` ```` fence tagged `json` (or untagged) whose body is a JSON
   object with an "arch" key, or an empty list. A reply that starts with `{` and whose first
   fence closes it continues the ```json fence the prompt opened and counts as a fenced answer.
   **When there are several, the last one is used** (models revise their answer).
3. Otherwise bare JSON objects with an "arch" key anywhere in the visible text, and a last
   line that is exactly `[]` (alone or after prose); the last of these is used.
4. Otherwise, leniently, the last line that is a bare block string (`SuperConvK3BNRELU(...)...`),
   with a note saying so.

An empty "arch" ("" or `[]`, or a bare `[]`) means "the parent is already the best": no change.
A reply cut off at the token limit (finish_reason "length") is refused: what looks like a
complete answer may itself have been cut short, and a repair round costs less than a wrong
architecture.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from nasagent.agent.outcomes import Outcome
from nasagent.evaluator.errors import BlockStringError, NasAgentError
from nasagent.evaluator.spaces import DEFAULT_SEARCH_SPACE, get_space
from nasagent.evaluator.spaces.base import STANDARD_NAMING, ReplyFormat, SearchSpace
from nasagent.evaluator.validation import Constraints, check_string

logger = logging.getLogger(__name__)

MAX_REPLY_CHARS = 1_000_000
"""Longest reply read; far beyond any answer (a ZenNet string is ~400 characters)."""

MAX_RATIONALE_CHARS = 500
MAX_LESSON_CHARS = 200
DECODE_BUDGET_FACTOR = 4
"""Bare-JSON scanning stops after reading this many times the reply's length (keeps it linear)."""
DECODE_WINDOW = 1024
"""Characters decoded at once when looking for a bare object; longer ones get a second try."""
DECODE_OVERHEAD = 16
"""What one failed decode attempt costs in the budget beyond the characters it read."""
_OBJECT_START = re.compile(r'\{\s*"')  # linear: one literal after a whitespace run

REASONING_TAGS = ("thinking", "think", "thought", "reasoning")
JSON_FENCE_TAGS = ("", "json", "jsonc", "json5")
BULLETS = ("- ", "* ", "• ")

def contract(form: ReplyFormat) -> str:
    """The answer contract, as every "answer with ..." message states it."""
    return (f'one JSON object {{"arch": "<{form.answer_noun}>", "type": "<proxy>", '
            f'"score": <number or null>}}')


CONTRACT = contract(ReplyFormat())
"""The Zen-NAS contract (the default space's)."""

MUTATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "arch": {
            "type": "string",
            "description": "The complete mutated block string, or \"\" to keep the parent.",
        },
        "type": {"type": "string", "description": "The zero-cost proxy name."},
        "score": {
            "type": ["number", "null"],
            "description": "The expected proxy score of the answer, or null.",
        },
    },
    "required": ["arch", "type", "score"],
    "additionalProperties": False,
}
"""JSON schema of a mutation answer (compatible with OpenAI strict structured outputs)."""

LESSONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"lessons": {"type": "array", "items": {"type": "string"}}},
    "required": ["lessons"],
    "additionalProperties": False,
}
"""JSON schema of a reflection answer."""


class ExtractionError(NasAgentError):
    """No usable answer in a reply; the message says what to do instead (it is sent back)."""


@dataclass(frozen=True)
class Answer:
    """What a reply proposes. `arch_text` None means "keep the parent" (no change)."""

    arch_text: str | None
    proxy: str | None
    expected_score: float | None
    rationale: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """A reply judged: outcome OK, NO_CHANGE, INVALID or OVER_BUDGET (the loop finds duplicates)."""

    outcome: Outcome
    architecture: Any
    canonical: str | None
    errors: tuple[str, ...]
    notes: tuple[str, ...]
    expected_score: float | None


@dataclass(frozen=True)
class _Visible:
    """A reply with its reasoning sections removed."""

    text: str
    sections: int
    unterminated: bool


@dataclass(frozen=True)
class _Fence:
    tag: str
    body: str
    start: int
    end: int
    closed: bool


@dataclass(frozen=True)
class _Found:
    """One JSON value found in the visible text, with where it was."""

    value: Any
    start: int
    end: int
    fenced: bool
    closed: bool


# ----------------------------------------------------------------------------- public API


def extract_answer(
    text: str, finish_reason: str | None = None, *, space: SearchSpace | None = None,
    naming: str = STANDARD_NAMING,
) -> Answer:
    """Find the answer in a raw reply (rules in the module docstring); `space` says what an
    architecture looks like (default: the default search space's), in `naming`.

    Raises:
        ExtractionError: no usable answer; the message is written for the model.
    """
    space = space or get_space(DEFAULT_SEARCH_SPACE)
    form = space.reply_format(naming)
    _check_reply(text, finish_reason, form)
    visible = _strip_reasoning(text)
    notes = _reasoning_notes(visible)
    found, json_errors = _find_answers(visible.text, "arch")
    if not found:
        return _arch_line_answer(visible, notes, json_errors, space, form)
    chosen = found[-1]
    if len(found) > 1:
        notes.append(f"the reply holds {len(found)} answers; used the last one")
    return _answer_from_value(chosen.value, _rationale(visible.text, chosen), notes, form)


def judge_reply(
    text: str, finish_reason: str | None, *, parent: str, constraints: Constraints,
    naming: str = STANDARD_NAMING,
) -> Verdict:
    """Extract and validate one reply (no repair): the outcome of this proposal.

    The reply writes architectures in `naming` (the prompt's notation); the verdict holds
    the canonical standard form. Never raises on bad text: extraction and validation
    failures are INVALID verdicts whose errors are sentences the repair prompt can show.
    """
    space = constraints.space
    try:
        answer = extract_answer(text, finish_reason, space=space, naming=naming)
    except ExtractionError as error:
        return Verdict(Outcome.INVALID, None, None, (str(error),), (), None)
    if answer.arch_text is None:
        return Verdict(Outcome.NO_CHANGE, None, None, (), answer.notes, answer.expected_score)
    report = check_string(answer.arch_text, constraints, naming)
    notes = (*answer.notes, *report.notes)
    if report.canonical is not None and report.canonical == _canonical_or_raw(parent, space):
        notes = (*notes, "the answer is identical to the parent (after canonicalisation)")
        return Verdict(
            Outcome.NO_CHANGE, report.architecture, report.canonical, (), notes,
            answer.expected_score,
        )
    if report.valid:
        return Verdict(
            Outcome.OK, report.architecture, report.canonical, (), notes, answer.expected_score
        )
    outcome = Outcome.OVER_BUDGET if report.over_budget else Outcome.INVALID
    return Verdict(
        outcome, report.architecture, report.canonical, tuple(report.error_lines()), notes,
        answer.expected_score,
    )


def parse_lessons(text: str, limit: int = 8) -> list[str]:
    """Lessons from a reflection reply: ``{"lessons": [...]}`` (last one wins) or bullet lines.

    Each lesson is put on one line and clipped to `MAX_LESSON_CHARS`; duplicates and empty
    lessons are dropped; at most `limit` are returned (possibly none).
    """
    if len(text) > MAX_REPLY_CHARS:
        return []
    visible = _strip_reasoning(text).text
    found = [item.value for item in _find_answers(visible, "lessons")[0] if item.value != []]
    if found and isinstance(found[-1]["lessons"], list):
        raw = [item for item in found[-1]["lessons"] if isinstance(item, str)]
    else:
        raw = _bullet_lines(visible)
    return _clean_lessons(raw, limit)


# ----------------------------------------------------------------------------- reply checks


def _check_reply(text: str, finish_reason: str | None, form: ReplyFormat) -> None:
    terms = contract(form)
    if len(text) > MAX_REPLY_CHARS:
        raise ExtractionError(
            f"the reply has {len(text):,} characters; at most {MAX_REPLY_CHARS:,} are read. "
            f"Answer with {terms} in a ```json fence and a short rationale"
        )
    if finish_reason == "length":
        raise _truncated_error(terms)
    if finish_reason == "content_filter":
        raise ExtractionError("the reply was blocked by the provider's content filter")
    if not text.strip():
        raise ExtractionError(f"the reply is empty; answer with {terms} in a ```json fence")


def _truncated_error(terms: str) -> ExtractionError:
    return ExtractionError(
        "the reply was cut off at the token limit (finish_reason 'length'), so no part of it "
        f"is trusted; answer first with {terms} in a ```json fence and keep any rationale short"
    )


def _reasoning_notes(visible: _Visible) -> list[str]:
    notes = []
    if visible.sections:
        notes.append(f"ignored {visible.sections} reasoning section(s) of the reply")
    if visible.unterminated:
        notes.append("the reply ends inside an unterminated reasoning section")
    return notes


# ----------------------------------------------------------------------------- reasoning


def _strip_reasoning(text: str) -> _Visible:
    """Remove reasoning sections in one left-to-right pass over the tags."""
    lower = text.lower()
    kept: list[str] = []
    position, sections, inside = 0, 0, False
    for start, end, closing in _reasoning_tags(lower):
        if inside and closing:
            inside, position = False, end
        elif not inside and not closing:
            kept.append(text[position:start])
            inside, position, sections = True, end, sections + 1
        elif not inside and closing and sections == 0:
            # the opening tag was in the prompt (chat templates of reasoning models)
            kept, position, sections = [], end, 1
    if not inside:
        kept.append(text[position:])
    return _Visible("\n".join(kept), sections, inside)


def _reasoning_tags(lower: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_closing) of every reasoning tag, in order (one `str.find` pass per tag)."""
    tags = []
    for name in REASONING_TAGS:
        for prefix in ("<", "</"):
            marker = prefix + name
            position = lower.find(marker)
            while position != -1:
                end = _tag_end(lower, position + len(marker))
                if end is not None:
                    tags.append((position, end, prefix == "</"))
                position = lower.find(marker, position + len(marker))
    return sorted(tags)


def _tag_end(lower: str, after: int) -> int | None:
    """End of a tag whose name ends at `after`: `>` or attributes then `>`; else None."""
    if after >= len(lower) or not (lower[after] == ">" or lower[after].isspace()):
        return None  # e.g. `<think` inside `<thinking>`
    close = lower.find(">", after, after + 200)
    return None if close == -1 else close + 1


# ----------------------------------------------------------------------------- JSON answers


def _find_answers(text: str, key: str) -> tuple[list[_Found], list[str]]:
    """JSON answers carrying `key` (or empty lists): fenced ones if any, else bare ones.

    Also returns why json-tagged fences failed to decode, for the error message.
    """
    values, errors = _fenced_values(text)
    fenced = [found for found in values if _is_answer(found.value, key)]
    if fenced:
        return fenced, errors
    bare = [found for found in _bare_objects(text) if _is_answer(found.value, key)]
    trailing = _trailing_empty_list(text)
    return (bare if trailing is None else [*bare, trailing]), errors


def _trailing_empty_list(text: str) -> _Found | None:
    """A last line that is only `[]` (or `` `[]` ``): the RZ-NAS "already the best" answer,
    also when prose comes before it."""
    end = len(text.rstrip())
    start = text.rfind("\n", 0, end) + 1
    if text[start:end].strip().strip("`").strip() != "[]":
        return None
    return _Found([], start, end, fenced=False, closed=True)


def _is_answer(value: Any, key: str) -> bool:
    return (isinstance(value, dict) and key in value) or value == []


def _fenced_values(text: str) -> tuple[list[_Found], list[str]]:
    continued = text.lstrip().startswith(("{", "["))
    values, errors = [], []
    for fence in _fences(text, continued):
        if fence.tag not in JSON_FENCE_TAGS:
            continue
        try:
            value = json.loads(fence.body)
        except ValueError as error:  # JSONDecodeError is a ValueError
            if fence.tag:
                errors.append(f"the ```{fence.tag} fence does not hold valid JSON ({error})")
            continue
        except RecursionError:
            errors.append(f"the ```{fence.tag} fence holds JSON nested too deeply")
            continue
        values.append(_Found(value, fence.start, fence.end, fenced=True, closed=fence.closed))
    return values, errors


def _fences(text: str, continued: bool) -> list[_Fence]:
    """Code fences in order; with `continued`, text before a bare first ``` is a json fence."""
    fences: list[_Fence] = []
    position = text.find("```")
    if continued and position != -1 and _is_closing_marker(text, position):
        fences.append(_Fence("json", text[:position], 0, position + 3, closed=True))
        position = text.find("```", position + 3)
    while position != -1:
        line_end = text.find("\n", position)
        line_end = len(text) if line_end == -1 else line_end
        tag = text[position + 3:line_end].strip().lower()
        close = text.find("```", line_end)
        if close == -1:
            fences.append(_Fence(tag, text[line_end:], position, len(text), closed=False))
            break
        fences.append(_Fence(tag, text[line_end:close], position, close + 3, closed=True))
        position = text.find("```", close + 3)
    return fences


def _is_closing_marker(text: str, position: int) -> bool:
    """A ``` followed by nothing but whitespace up to the end of its line."""
    line_end = text.find("\n", position)
    rest = text[position + 3:] if line_end == -1 else text[position + 3:line_end]
    return not rest.strip()


def _bare_objects(text: str) -> list[_Found]:
    """Objects decodable at a `{"` start, left to right, skipping what a found object covers.

    Each attempt decodes a window of `DECODE_WINDOW` characters first (a failure's cost is
    bounded by the window, since `JSONDecodeError` counts lines up to the failure); only an
    object that runs past the window is retried on the whole rest. A budget of decoded
    characters keeps pathological inputs (thousands of half objects) linear.
    """
    decoder = json.JSONDecoder()
    found: list[_Found] = []
    budget = DECODE_BUDGET_FACTOR * len(text) + DECODE_WINDOW
    resume = 0
    for match in _OBJECT_START.finditer(text):
        start = match.start()
        if start < resume:
            continue
        if budget <= 0:
            logger.info("bare-JSON scan stopped early on a %d-character reply", len(text))
            break
        value, end, cost = _decode_at(decoder, text, start)
        budget -= cost
        if value is not None:
            found.append(_Found(value, start, end, fenced=False, closed=True))
            resume = end
    return found


def _decode_at(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int, int]:
    """(decoded value or None, end in `text`, characters read) for an object at `start`."""
    window = text[start:start + DECODE_WINDOW]
    value, end, failed_at, cut = _try_decode(decoder, window)
    if value is not None:
        return value, start + end, end
    if len(window) < DECODE_WINDOW or not cut:
        return None, start, failed_at + DECODE_OVERHEAD
    rest = text[start:]
    value, end, _, _ = _try_decode(decoder, rest)
    return value, start + end, len(rest)


def _try_decode(decoder: json.JSONDecoder, text: str) -> tuple[Any, int, int, bool]:
    """(value or None, end, failure position, whether the failure may be the end of `text`)."""
    try:
        value, end = decoder.raw_decode(text)
    except json.JSONDecodeError as error:
        # an unterminated string is reported where it starts, not where the text ran out
        cut = error.pos >= len(text) - 1 or error.msg.startswith("Unterminated string")
        return None, 0, error.pos, cut
    except RecursionError:  # nesting deeper than the interpreter's recursion limit
        return None, 0, 0, False
    return value, end, -1, False


# ----------------------------------------------------------------------------- answer fields


def _answer_from_value(
    value: Any, rationale: str, notes: list[str], form: ReplyFormat
) -> Answer:
    if value == []:
        return Answer(None, None, None, rationale, (*notes, "the answer is an empty list"))
    arch = value["arch"]
    if arch == [] or (isinstance(arch, str) and arch.strip() in ("", "[]")):
        notes.append("the answer's arch is empty: keep the parent")
        return Answer(None, _proxy(value, notes), _score(value, notes), rationale, tuple(notes))
    if not isinstance(arch, str):
        raise ExtractionError(
            f'"arch" must be {form.shape}, such as "{form.example}", not a JSON '
            f"{_json_type(arch)}"
        )
    extra = sorted(set(value) - {"arch", "type", "score"})
    if extra:
        notes.append(f"ignored extra keys: {', '.join(extra)}")
    return Answer(arch.strip(), _proxy(value, notes), _score(value, notes), rationale, tuple(notes))


def _proxy(value: dict[str, Any], notes: list[str]) -> str | None:
    proxy = value.get("type")
    if proxy is None or isinstance(proxy, str):
        return proxy
    notes.append(f'ignored "type" {_json_type(proxy)}: it should be the proxy name')
    return None


def _score(value: dict[str, Any], notes: list[str]) -> float | None:
    score = value.get("score")
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float):
        notes.append(f'ignored "score" {_json_type(score)}: it should be a number or null')
        return None
    if not math.isfinite(score):
        notes.append('ignored a non-finite "score"')
        return None
    return float(score)


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _rationale(text: str, chosen: _Found) -> str:
    after = " ".join(text[chosen.end:].split())
    before = " ".join(text[:chosen.start].split())
    rationale = after or before
    if len(rationale) > MAX_RATIONALE_CHARS:
        return rationale[:MAX_RATIONALE_CHARS - 3] + "..."
    return rationale


# ----------------------------------------------------------------------------- lenient forms


def _arch_line_answer(
    visible: _Visible, notes: list[str], json_errors: list[str], space: SearchSpace,
    form: ReplyFormat,
) -> Answer:
    """Leniently accept a reply whose answer is a bare architecture string on its own line."""
    line = _last_arch_line(visible.text, space)
    if line is None:
        where = " outside the reasoning section" if visible.sections else ""
        problem = json_errors[-1] if json_errors else f"no answer found{where}"
        raise ExtractionError(f"{problem}; answer with {contract(form)} in a ```json fence")
    notes.append(f"the reply has no JSON answer; read the {form.answer_noun} on its own line")
    return Answer(line, None, None, "", tuple(notes))


def _last_arch_line(text: str, space: SearchSpace) -> str | None:
    for raw in reversed(text.splitlines()):
        line = raw.strip().strip("`'\"").strip()
        if space.looks_like(line):
            return line
    return None


def _canonical_or_raw(parent: str, space: SearchSpace) -> str:
    try:
        return space.canonical(parent)
    except (BlockStringError, ValueError):
        return parent.strip()


def _bullet_lines(text: str) -> list[str]:
    lessons = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(BULLETS):
            lessons.append(line[2:])
        elif line[:1].isdigit() and line.lstrip("0123456789")[:2] in (". ", ") "):
            lessons.append(line.lstrip("0123456789")[2:])
    return lessons


def _clean_lessons(raw: list[str], limit: int) -> list[str]:
    lessons: list[str] = []
    for item in raw:
        lesson = " ".join(item.split())
        if len(lesson) > MAX_LESSON_CHARS:
            lesson = lesson[:MAX_LESSON_CHARS - 3].rstrip() + "..."
        if lesson and lesson not in lessons:
            lessons.append(lesson)
    return lessons[:limit]
