"""The offline demo: a replayed LLM arm against the random arm, at a small budget.

A transcript in `fixtures/transcripts/NAME/` is one recorded run directory per seed
(`seed-S/`: config.toml, events.jsonl, llm_calls.jsonl, summary.json). Each llm_calls.jsonl
starts with a header that says how it was produced. The demo's LLM arm replays those calls,
so it needs no network and no API key and reproduces the recorded LLM runs exactly; each
`seed-S/` is also an ordinary run directory for `nasagent replay`.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from nasagent.agent.compare import COMPARE_FILE, ComparePlan, make_plan, resolve_plan
from nasagent.agent.config import ConfigError, config_from_dict, load_run_config
from nasagent.agent.llm.recording import read_transcript_header
from nasagent.agent.runlog import CONFIG_FILE, LLM_CALLS_FILE

DEFAULT_TRANSCRIPT = "claude-manual-cifar"


def fixtures_dir() -> Path:
    """The shipped fixtures (`nasagent.fixtures`: the checkout's fixtures/ or the wheel's copy)."""
    path = Path(str(files("nasagent.fixtures")))
    if not (path / "transcripts").is_dir():
        raise ConfigError(f"the demo needs the shipped transcripts, not found under {path}")
    return path


def transcript_dir(name: str) -> Path:
    path = fixtures_dir() / "transcripts" / name
    if not path.is_dir():
        available = sorted(p.name for p in (fixtures_dir() / "transcripts").iterdir() if p.is_dir())
        raise ConfigError(f"no transcript {name!r}; available: {', '.join(available)}")
    return path


def transcript_seeds(directory: Path) -> list[int]:
    """The seeds a transcript holds a recorded run for (folders seed-S)."""
    return sorted(int(p.name.removeprefix("seed-")) for p in directory.glob("seed-*") if p.is_dir())


def transcript_header(directory: Path) -> dict[str, Any]:
    """The header of the transcript's first seed (all seeds share it)."""
    first = directory / f"seed-{transcript_seeds(directory)[0]}" / LLM_CALLS_FILE
    return read_transcript_header(first) or {}


def demo_plan(out: Path, name: str = DEFAULT_TRANSCRIPT) -> ComparePlan:
    """The compare plan of the demo: the recorded runs' own config, the LLM arm replayed.

    The recorded configuration is used as it is (same budgets, proxy, concurrency and
    reflection schedule), with `llm` pointing at the recording of each seed; `model` stays
    the recorded one, so every request hashes as it did when it was recorded.
    """
    if (out / COMPARE_FILE).exists():
        return resolve_plan(out)
    directory = transcript_dir(name)
    seeds = transcript_seeds(directory)
    recorded = load_run_config(directory / f"seed-{seeds[0]}" / CONFIG_FILE)
    values = recorded.model_dump(exclude={"seed", "mutator"})
    replay = f"replay:{directory}/seed-{{seed}}/{LLM_CALLS_FILE}"
    values.update(llm=replay, model=recorded.llm_model)
    return make_plan(config_from_dict(values, source=str(directory)), ["llm", "random"], seeds)


def describe(name: str = DEFAULT_TRANSCRIPT) -> str:
    """Where the replayed replies came from, from the transcript header."""
    header = transcript_header(transcript_dir(name))
    return json.dumps(header, indent=2) if header else "(the transcript has no header)"
