"""Scoring tasks with faults, for worker-pool tests: they run inside the worker processes.

A task is called with (canonical block string, ScoreSettings) like the real one. These read
an instruction from the string itself, so a test can aim a fault at one candidate.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

from nasagent.agent.workerpool import score_arch_string
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import ScoreResult, ScoreSettings

GROW_STEP_MB = 16
GROW_LIMIT_MB = 2048
GROW_HOLD_S = 10.0
"""How far `grow` goes, and how long it holds that, before it gives up and scores: a cap that
never fires shows as `ok` (a cap that works kills it long before)."""


def faulty(arch: str, settings: ScoreSettings) -> ScoreResult:
    """`exit:N` exits with code N; `sleep:PATH` writes PATH then sleeps; `raise:TEXT` raises
    a NasAgentError (settings nothing can be scored with); `grow:MB` holds MB more memory,
    in steps, then scores the seed; otherwise scores."""
    kind, _, detail = arch.partition(":")
    if kind == "grow":
        held = grow(int(detail))
        from nasagent.agent.config import RunConfig

        result = score_arch_string(RunConfig().seed_arch, settings)
        held.clear()
        return result
    if kind == "raise":
        raise NasAgentError(detail)
    if kind == "exit":
        os._exit(int(detail))
    if kind == "sleep":
        Path(detail).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(120)
    return score_arch_string(arch, settings)


def grow(megabytes: int) -> list[bytes]:
    """Hold `megabytes` of written (so resident) memory, a step at a time like a real
    allocation pattern, so that a cap watched by polling sees it grow."""
    held = []
    for _ in range(0, megabytes, GROW_STEP_MB):
        held.append(b"\x01" * (GROW_STEP_MB << 20))
        time.sleep(0.002)
    time.sleep(GROW_HOLD_S)  # a busy machine may poll late; the kill still finds it here
    return held


def grow_on_some(arch: str, settings: ScoreSettings) -> ScoreResult:
    """Runs away with memory (up to GROW_LIMIT_MB) on the architectures `crash_on_some`
    dies on; scores the others."""
    if crashes(arch):
        grow(GROW_LIMIT_MB)
    return score_arch_string(arch, settings)


def crash_on_some(arch: str, settings: ScoreSettings) -> ScoreResult:
    """Dies on about a third of the architectures (by a hash of the string), never the seed."""
    if crashes(arch):
        os._exit(7)
    return score_arch_string(arch, settings)


def crashes(arch: str) -> bool:
    """Whether `crash_on_some` dies on `arch`."""
    from nasagent.agent.config import RunConfig

    return arch != RunConfig().seed_arch and zlib.crc32(arch.encode()) % 3 == 0
