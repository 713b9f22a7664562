"""Several runs of a comparison at once (`compare --jobs J`), sharing one scoring executor.

Each run is still an ordinary run directory driven by its own event loop (here: its own
thread), so it resumes exactly as a run made on its own. What the runs share is where their
candidates are scored: one pool of worker processes (or Ray), sized so that all runs together
use the machine's cores and no more: `workers` defaults to the cores and each worker's
threads to cores / workers. A run's scores do not depend on which runs it shared with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from nasagent.agent.config import RunConfig

if TYPE_CHECKING:  # the executors load torch; compare imports this module before it needs it
    from nasagent.agent.execution import Scoring

logger = logging.getLogger(__name__)

T = TypeVar("T")


def shared_config(config: RunConfig, *, cores: int | None = None) -> RunConfig:
    """The execution of a pool shared by parallel runs: all cores unless `workers` is set."""
    from nasagent.agent.execution import available_cores

    if config.executor != "local" or config.workers:
        return config
    return config.model_copy(update={"workers": available_cores() if cores is None else cores})


@contextmanager
def shared_scoring(config: RunConfig, jobs: int) -> Iterator[Scoring | None]:
    """One executor for `jobs` > 1 runs at once, or for every run on Ray (one connection for
    the whole compare); None otherwise (each run starts its own, as a lone search does)."""
    from nasagent.agent.execution import start_scoring

    if jobs <= 1 and config.executor == "local":
        yield None
        return
    scoring = start_scoring(shared_config(config))
    try:
        yield scoring
    finally:
        scoring.close()


def run_at_once(tasks: Sequence[Callable[[], T]], jobs: int) -> list[T]:
    """Call every task, up to `jobs` at a time, and return their results in task order."""
    if jobs <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(jobs, thread_name_prefix="nasagent-run") as pool:
        return list(pool.map(lambda task: task(), tasks))
