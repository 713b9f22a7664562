"""The public Python API: `import nasagent` exposes a small typed surface, and `mutate` gives one
validated proposal (random or LLM), recorded like any other call."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nasagent
from nasagent.agent.llm.recording import load_calls
from nasagent.agent.llm.scripted import ScriptedBackend
from nasagent.evaluator import CIFAR_SEED

README = Path(__file__).resolve().parents[1] / "README.md"
OVER = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)"


def test_every_exported_name_resolves_and_the_surface_is_small() -> None:
    for name in nasagent.__all__:
        assert getattr(nasagent, name) is not None, name
    assert len(nasagent.__all__) <= 60
    assert {"parse", "check", "count_cost", "score", "mutate", "RunConfig", "run_search",
            "run_compare", "build_report", "make_backend", "Outcome", "NasAgentError",
            "PROXIES", "SEARCH_SPACES", "BACKENDS", "MUTATORS", "Registry"} <= set(dir(nasagent))
    with pytest.raises(AttributeError):
        nasagent.no_such_name  # noqa: B018


def test_random_mutation_is_seeded_and_costed() -> None:
    first = nasagent.mutate(CIFAR_SEED, seed=3)
    again = nasagent.mutate(nasagent.parse(CIFAR_SEED), seed=3)

    assert first == again and first.outcome is nasagent.Outcome.OK
    assert first.arch is not None and first.arch != CIFAR_SEED
    assert first.llm_calls == 0 and first.tokens == 0 and first.params is not None
    assert nasagent.check(nasagent.parse(first.arch), nasagent.Constraints()).valid


def test_llm_mutation_is_validated_and_recorded(tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    history = [{"iteration": 1, "parent": CIFAR_SEED, "parent_score": 6.4, "arch": None,
                "outcome": "invalid", "score": None, "errors": ["block 2: bad"]}]
    result = nasagent.mutate(
        CIFAR_SEED, mutator="llm", llm="scripted", score=6.41, history=history,
        lessons=["deeper stages help"], seed=0, record=record,
    )

    assert result.outcome is nasagent.Outcome.OK and result.llm_calls == 1
    assert result.tokens > 0 and result.arch is not None
    (call,) = load_calls(record)
    prompt = "\n".join(message.content for message in call.messages)
    assert "deeper stages help" in prompt and "6.41" in prompt
    assert call.response is not None and call.backend == "scripted"


def test_an_over_budget_child_is_a_result_not_an_error() -> None:
    tiny = {"max_params": 100, "max_layers": None}
    result = nasagent.mutate(CIFAR_SEED, seed=1, config=tiny)

    assert result.outcome is nasagent.Outcome.OVER_BUDGET
    assert any("budget" in error for error in result.errors)


def test_a_backend_object_is_used_and_left_open(tmp_path: Path) -> None:
    backend = ScriptedBackend("zennas-cifar")
    for seed in (0, 1):
        result = nasagent.mutate(CIFAR_SEED, mutator="llm", llm=backend, seed=seed)
        assert result.outcome is nasagent.Outcome.OK


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mutator": "bogus"}, nasagent.ConfigError),
        ({"mutator": "llm", "llm": "bogus:x"}, nasagent.ConfigError),
        ({"config": {"max_parms": 1}}, nasagent.ConfigError),
        ({"history": [{"iteration": "x"}]}, nasagent.ConfigError),
    ],
)
def test_bad_arguments_are_typed_one_line_errors(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error) as caught:
        nasagent.mutate(CIFAR_SEED, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_a_bad_parent_raises_with_the_located_errors() -> None:
    with pytest.raises(nasagent.InvalidParentError, match="block 1") as caught:
        nasagent.mutate(OVER.replace("(8,16,1,8,1)", "(16,16,1,8,1)"))
    assert not caught.value.report.valid
    with pytest.raises(nasagent.BlockStringError):
        nasagent.mutate("SuperConvK3BNRELU(3,8")


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- test: readme-api-example -->\n```python\n(.*?)```", text, re.S)
    assert found, "README lost its API example"
    return found.group(1)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 12
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )

    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"[2-4] architectures; \d+ tokens in the last call\n", done.stdout)
    assert len(load_calls(tmp_path / "llm_calls.jsonl")) == 3
