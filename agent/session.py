"""The LLM backend of a run: built from the configuration, recorded, and resumable.

Every call goes to the run's `llm_calls.jsonl`. When a run is resumed, the replies recorded
for iterations that were not yet applied are served again instead of asking the model twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from nasagent.agent.config import RunConfig
from nasagent.agent.llm.base import LLMBackend
from nasagent.agent.llm.factory import BackendOptions, make_backend
from nasagent.agent.llm.recording import CallRecord, CallRecorder, RecordingBackend, load_calls
from nasagent.agent.llm.replay import FallbackBackend, RecordedReplies
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.runlog import LLM_CALLS_FILE, read_events


def backend_options(config: RunConfig) -> BackendOptions:
    return BackendOptions(
        base_url=config.base_url, timeout_s=config.llm_timeout,
        max_attempts=config.max_attempts, replay_mode=config.replay_mode,
        search_space=config.search_space, op_names=config.op_names,
        type_weights=config.type_weights,
    )


@asynccontextmanager
async def open_backend(
    config: RunConfig, run_dir: Path, *, backend: LLMBackend | None = None
) -> AsyncIterator[LLMBackend | None]:
    """Yield the run's recorded LLM backend (None unless the mutator needs one); close it after."""
    if not MUTATORS.get(config.mutator).needs_llm:
        yield None
        return
    live = backend or make_backend(llm_spec(config), backend_options(config))
    recorder = CallRecorder(run_dir / LLM_CALLS_FILE)
    recorded = RecordingBackend(live, recorder, owns_recorder=True, prices=config.price_table())
    pending = _unapplied_calls(run_dir)
    try:
        yield FallbackBackend(RecordedReplies(pending), recorded) if pending else recorded
    finally:
        await recorded.aclose()


def llm_spec(config: RunConfig) -> str:
    """The backend spec with `{seed}` filled in, so one compare config can replay one
    recorded transcript per seed (`replay:transcripts/demo/seed-{seed}.jsonl`)."""
    return config.llm.replace("{seed}", str(config.seed))


def _unapplied_calls(run_dir: Path) -> list[CallRecord]:
    """Recorded calls whose iteration has no event yet: they were in flight at the kill."""
    applied = {e.iteration for e in read_events(run_dir) if e.phase == "search"}
    return [c for c in load_calls(run_dir / LLM_CALLS_FILE) if c.iteration not in applied]
