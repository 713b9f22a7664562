"""Counts are integers in every JSON output: a whole parameter, FLOP or layer count is written
as 3884, never 3884.0, whichever counting convention produced it; only a fractional count
(Zen-NAS FLOPs at odd resolutions, such as 12.25 positions) stays a float."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import nasagent
import nasagent.agent.cli  # noqa: F401  (registers every command)
from nasagent.agent.cli.app import app
from nasagent.agent.config import RunConfig
from nasagent.agent.correlate import ArchRecord
from nasagent.agent.outcomes import HistoryEntry, Outcome, whole
from nasagent.agent.runlog import BEST_FILE, EVENTS_FILE, SUMMARY_FILE, Event
from nasagent.agent.search import run_search
from nasagent.evaluator import CIFAR_SEED

COUNTS = ("params", "flops", "layers")
SMALL = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
ODD = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,9,2,8,1)SuperConvK1BNRELU(9,16,1,1)"
"""At resolution 14 under Zen-NAS counting its FLOPs are 115145.25 (a 7/2 projection)."""


def float_counts(value: Any, where: str = "") -> list[str]:
    """Every count key in a JSON value that holds a whole float, with its path."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in COUNTS and isinstance(item, float) and item.is_integer():
                found.append(f"{where}.{key} = {item!r}")
            found += float_counts(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += float_counts(item, f"{where}[{index}]")
    return found


def test_whole_counts_become_ints_and_fractional_ones_stay() -> None:
    assert whole(3884.0) == 3884 and type(whole(3884.0)) is int
    assert whole(12.25) == 12.25 and whole(7) == 7
    event = Event(iteration=1, mutator="random", parent="p", parent_score=None,
                  outcome=Outcome.OK, arch="a", score=1.0, params=3884.0, flops=12.25, layers=3)
    dumped = json.loads(event.model_dump_json())
    assert type(dumped["params"]) is int and dumped["flops"] == 12.25
    assert type(dumped["score"]) is float  # a score is no count
    entry = HistoryEntry(iteration=1, parent="p", parent_score=None, arch="a",
                         outcome=Outcome.OK, score=None, params=11298304.0)
    assert type(entry.params) is int and entry.params == 11298304
    record = ArchRecord(index=0, arch="a", params=5865.0, flops=829568.0, layers=3)
    assert float_counts(json.loads(record.model_dump_json())) == []


def test_inspect_json_counts_under_both_conventions() -> None:
    for counting in ("exact", "zennas"):
        result = CliRunner().invoke(app, ["inspect", "--json", "--counting", counting, SMALL])
        row = json.loads(result.stdout)
        assert all(type(row[key]) is int for key in COUNTS), (counting, row)
    odd = CliRunner().invoke(app, ["inspect", "--json", "--counting", "zennas",
                                   "--resolution", "14", ODD])
    row = json.loads(odd.stdout)
    assert row["flops"] == 115145.25 and type(row["params"]) is int


def test_search_logs_and_summaries_write_integer_counts(tmp_path: Path) -> None:
    for counting in ("exact", "zennas"):
        config = RunConfig(llm="scripted", iterations=3, proxy="params", batch_size=8,
                           counting=counting)
        run_dir = tmp_path / counting
        run_search(config, run_dir, progress=False)
        lines = (run_dir / EVENTS_FILE).read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert float_counts(events) == [] and type(events[0]["params"]) is int
        for name in (BEST_FILE, SUMMARY_FILE):
            assert float_counts(json.loads((run_dir / name).read_text())) == [], name


def test_mutate_results_write_integer_counts() -> None:
    result = nasagent.mutate(CIFAR_SEED, seed=3, config={"counting": "zennas"})
    assert type(result.params) is int and type(result.flops) is int
    cli = CliRunner().invoke(app, ["mutate", CIFAR_SEED, "--mutator", "llm", "--llm",
                                   "scripted", "--json"])
    rows = [json.loads(line) for line in cli.stdout.splitlines()]
    assert rows and float_counts(rows) == [] and type(rows[0]["params"]) is int


def test_a_comparison_writes_integer_call_and_token_sums(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, [
        "compare", "--llm", "scripted", "--seeds", "2", "--iterations", "2", "--proxy", "params",
        "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    arms = json.loads((out / SUMMARY_FILE).read_text())["arms"]
    for arm in arms.values():
        for key in ("llm_calls", "tokens", "tokens_in", "tokens_out"):
            assert isinstance(arm[key]["sum"], int), (key, arm[key])
    assert arms["llm"]["llm_calls"]["sum"] > 0
