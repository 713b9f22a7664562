"""Honest labels: which backend and model produced a run, and whether its token counts are real.

Every table, plot legend, report header and summary names an arm by its name and one
description of who proposes (`describe`): for the LLM mutator the backend and model behind it,
`llm (openai:gpt-4o)`, `llm (scripted stand-in, not a model)`, `llm (manual: Claude, recorded
2026-11-23)` (a replay of a shipped transcript is named after the transcript's header); for the
random mutator the space's own, `random (Zen-NAS random mutation, no LLM)` or `random
(NATS-Bench REA mutation, no LLM)`. A random-mutator run records no LLM.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasagent.agent.config import ConfigError, RunConfig, load_run_config
from nasagent.agent.llm.base import ESTIMATING_BACKENDS
from nasagent.agent.llm.recording import read_transcript_header, resolve_calls_path
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.runlog import CONFIG_FILE
from nasagent.agent.session import llm_spec
from nasagent.evaluator.spaces import get_space

REAL_MODEL_BACKENDS = frozenset({"openai", "azure"})
"""Backend kinds whose `llm_model` is a model a provider serves (the others are stand-ins,
people or recordings, named by their label instead)."""
MAX_REPLAY_DEPTH = 4
"""A replay of a replay of ... is followed this deep to find what was recorded first."""


def _openai_like(kind: str) -> Callable[[RunConfig, str, int], str]:
    return lambda config, _target, _depth: f"{kind}:{config.llm_model}"


def _scripted(_config: RunConfig, _target: str, _depth: int) -> str:
    return "scripted stand-in, not a model"


def _manual(config: RunConfig, _target: str, _depth: int) -> str:
    return f"manual: {config.llm_model}"


def _replay(_config: RunConfig, target: str, depth: int) -> str:
    path = Path(target)
    header = _header(path)
    if header:
        return header_label(header)
    recorded = _recorded_config(path)
    too_deep = depth >= MAX_REPLAY_DEPTH
    if recorded is None or too_deep or not MUTATORS.get(recorded.mutator).needs_llm:
        return f"replay of {target}"
    return f"{_label(recorded, depth + 1)}, replayed"


LABELS: dict[str, Callable[[RunConfig, str, int], str]] = {
    "openai": _openai_like("openai"),
    "azure": _openai_like("azure"),
    "scripted": _scripted,
    "manual": _manual,
    "replay": _replay,
}
"""Backend kind (the spec prefix) -> label builder, like agent.llm.factory.BACKENDS."""


def header_label(header: dict[str, Any]) -> str:
    """`manual: Claude, recorded 2026-11-23` from a transcript header."""
    backend = _first_word(str(header.get("backend", "recorded")))
    model = _first_word(str(header.get("model", "unknown model")))
    date = header.get("date")
    return f"{backend}: {model}" + (f", recorded {date}" if date else "")


def _first_word(text: str) -> str:
    """The name before any explanation: `Claude (Anthropic), acting ...` -> `Claude`."""
    for mark in (" (", ",", ";"):
        text = text.split(mark, 1)[0]
    return text.strip() or "unknown"


def _header(path: Path) -> dict[str, Any] | None:
    try:
        return read_transcript_header(path)
    except (OSError, UnicodeDecodeError):
        return None


def _recorded_config(path: Path) -> RunConfig | None:
    calls = resolve_calls_path(path)
    config_path = calls.parent / CONFIG_FILE
    if not config_path.exists():
        return None
    try:
        return load_run_config(config_path)
    except ConfigError:
        return None


def _label(config: RunConfig, depth: int = 0) -> str:
    kind, _, target = llm_spec(config).partition(":")
    builder = LABELS.get(kind)
    return builder(config, target, depth) if builder else llm_spec(config)


def backend_label(config: RunConfig) -> str | None:
    """The LLM behind a run (None for the random mutator), e.g. `openai:gpt-4o`."""
    return None if not MUTATORS.get(config.mutator).needs_llm else _label(config)


def describe(config: RunConfig) -> str:
    """Who proposes in a run, in one phrase: `openai:gpt-4o`, `scripted stand-in, not a
    model`, `Zen-NAS random mutation, no LLM`; the one text every label is made from."""
    label = backend_label(config)
    if label is not None:
        return label
    if config.mutator == "random":
        return f"{get_space(config.search_space).random_mutation}, no LLM"
    return f"{config.mutator} mutator, no LLM"


def arm_label(arm: str, config: RunConfig) -> str:
    """The arm as tables and legends name it: `llm (openai:gpt-4o)`, `random (...)`."""
    return f"{arm} ({describe(config)})"


def arm_backend(config: RunConfig) -> dict[str, Any]:
    """An arm's `backend` record in a comparison's summary: its mutator, its LLM spec (as
    configured, `{seed}` unfilled), the model (None for a stand-in: it is never called a
    model) and `description`, the same text as in the arm's label."""
    needs_llm = MUTATORS.get(config.mutator).needs_llm
    real = needs_llm and config.llm.partition(":")[0] in REAL_MODEL_BACKENDS
    return {"mutator": str(config.mutator), "llm": config.llm if needs_llm else None,
            "model": config.llm_model if real else None, "description": describe(config)}


def tokens_estimated(config: RunConfig) -> bool:
    """True when the run's token counts are estimates (scripted, manual, or replays of them)."""
    if not MUTATORS.get(config.mutator).needs_llm:
        return False
    return _estimating(llm_spec(config), 0)


def _estimating(spec: str, depth: int) -> bool:
    kind, _, target = spec.partition(":")
    if kind in ESTIMATING_BACKENDS:
        return True
    if kind != "replay" or depth >= MAX_REPLAY_DEPTH:
        return False
    recorded = _recorded_config(Path(target))
    return recorded is not None and _estimating(llm_spec(recorded), depth + 1)


def llm_record(config: RunConfig) -> dict[str, Any] | None:
    """What summary.json says about the LLM: None for a random-mutator run."""
    label = backend_label(config)
    if label is None:
        return None
    return {
        "backend": llm_spec(config), "model": config.llm_model, "label": label,
        "tokens_estimated": tokens_estimated(config),
    }
