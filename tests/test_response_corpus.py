"""Every raw reply of the corpus (fixtures/responses/corpus.jsonl) through `judge_reply`.

A record: id, description, text (or text_file next to the corpus), expected_outcome and, when
ok, expected_arch (canonical). Optional: parent (default: the CIFAR seed), finish_reason
(default "stop"), constraints (merged over DEFAULT_CONSTRAINTS), expected_error and
expected_note (substrings of one of the verdict's errors / notes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nasagent.agent.outcomes import Outcome
from nasagent.agent.response import judge_reply
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.validation import Constraints

CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "responses"

DEFAULT_CONSTRAINTS: dict[str, Any] = {
    "search_space": "zennas-cifar", "num_classes": 100, "resolution": 32, "counting": "exact",
    "max_params": 1e6, "max_flops": None, "max_layers": 18,
}
"""The Zen-NAS CIFAR GradNorm setting (the CLI defaults); a record's "constraints" override it."""

JUDGED_OUTCOMES = {Outcome.OK, Outcome.NO_CHANGE, Outcome.INVALID, Outcome.OVER_BUDGET}


def load_corpus() -> list[dict[str, Any]]:
    lines = (CORPUS_DIR / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


RECORDS = load_corpus()


def reply_text(record: dict[str, Any]) -> str:
    if "text_file" in record:
        return (CORPUS_DIR / record["text_file"]).read_text(encoding="utf-8")
    return str(record["text"])


def test_corpus_is_large_and_varied() -> None:
    assert len(RECORDS) >= 40
    assert len({r["id"] for r in RECORDS}) == len(RECORDS)
    assert {r["expected_outcome"] for r in RECORDS} == {o.value for o in JUDGED_OUTCOMES}
    fixture_bytes = sum(p.stat().st_size for p in CORPUS_DIR.iterdir())
    assert fixture_bytes < 3_000_000


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_corpus_record(record: dict[str, Any]) -> None:
    constraints = Constraints(**{**DEFAULT_CONSTRAINTS, **record.get("constraints", {})})
    verdict = judge_reply(
        reply_text(record), record.get("finish_reason", "stop"),
        parent=record.get("parent", CIFAR_SEED), constraints=constraints,
    )
    context = f"errors={verdict.errors} notes={verdict.notes}"
    assert verdict.outcome == record["expected_outcome"], context
    if record["expected_outcome"] == "ok":
        assert verdict.canonical == record["expected_arch"]
        assert verdict.architecture is not None and not verdict.errors
    if record["expected_outcome"] in ("invalid", "over_budget"):
        assert verdict.errors, "a refused reply must say why"
    if "expected_error" in record:
        assert any(record["expected_error"] in error for error in verdict.errors), context
    if "expected_note" in record:
        assert any(record["expected_note"] in note for note in verdict.notes), context
