"""Where scorings run (the EXECUTORS registry) and with how many torch threads.

- `local`, workers = 0: one scoring thread in this process (the default; nothing to start).
- `local`, workers = W >= 1: W worker processes (agent.workerpool), each scoring one
  candidate at a time with `threads` intra-op threads (default: the cores divided by W, so
  W workers never oversubscribe the machine). A worker that dies, runs past `score_timeout`
  or past `score_memory` (its resident MB, polled by the driver) fails only its candidate
  and is replaced.
- `ray`: Ray tasks on a local or existing cluster (agent.ray_scoring; the `ray` extra).
  `score_memory` is each task's memory reservation there; Ray's own memory monitor kills.

In-process scoring (workers = 0) refuses `score_timeout` and `score_memory` at configuration
time (RunConfig): a thread can be neither stopped nor measured apart from the search process.

Every executor runs the same seeded protocol on the same settings, so a score depends only on
the architecture and the proxy settings. Float reductions split over a different number of
threads may differ in the last digits, so fix `threads` when runs must match bit for bit; the
plan actually used is written into summary.json.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from nasagent.agent.config import RunConfig
from nasagent.agent.workerpool import ScoringTask, WorkerPool, score_arch_string, set_torch_threads
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.proxies import DeviceUnavailableError, ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)


class ExecutionPlan(BaseModel):
    """The resolved execution of one run (or one shared pool), as summary.json records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executor: str
    workers: int
    threads: int
    """Torch intra-op threads per scoring (in-process without `threads` set: torch's own)."""
    cores: int
    score_timeout: float | None = None
    score_memory: float | None = None
    """MB (see agent.workerpool for local workers, agent.ray_scoring for Ray)."""
    start_method: str | None = None
    gpus: tuple[int | None, ...] = ()
    ray_address: str | None = None


class ScoringBackend(Protocol):
    """Anything that scores canonical block strings; `submit` is thread-safe."""

    def submit(self, arch: str, settings: ScoreSettings) -> Future[ScoreResult]: ...

    def close(self) -> None: ...


@dataclass
class Scoring:
    """A started executor and the plan it was started with."""

    plan: ExecutionPlan
    backend: ScoringBackend

    def submit(self, arch: str, settings: ScoreSettings) -> Future[ScoreResult]:
        return self.backend.submit(arch, settings)

    def close(self) -> None:
        self.backend.close()


# ---- resolving threads, workers and devices -----------------------------------------------


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, not the machine's total)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads(workers: int, cores: int) -> int:
    """Cores divided by workers, at least 1: W workers x threads never exceed the cores."""
    return max(1, cores // max(workers, 1))


def worker_gpus(device: str, workers: int, cuda_devices: int) -> tuple[int | None, ...]:
    """The CUDA device of each worker (round robin over the GPUs), or None for CPU workers.

    Raises:
        DeviceUnavailableError: `cuda` was asked for and there is no GPU.
    """
    if device == "cuda" and cuda_devices == 0:
        raise DeviceUnavailableError("device 'cuda' was requested but CUDA is not available")
    if device == "cpu" or cuda_devices == 0:
        return (None,) * workers
    return tuple(slot % cuda_devices for slot in range(workers))


def start_method_for(gpus: tuple[int | None, ...]) -> str:
    """`spawn` when workers use CUDA (never fork after CUDA init), else `forkserver`."""
    if any(gpu is not None for gpu in gpus):
        return "spawn"
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_local(
    config: RunConfig, *, cores: int | None = None, cuda_devices: int | None = None
) -> ExecutionPlan:
    """The plan of the local executor for `config` on this machine."""
    cores = available_cores() if cores is None else cores
    if config.workers == 0:
        return ExecutionPlan(
            executor="local", workers=0, threads=config.threads or _torch_threads(), cores=cores
        )
    count = _cuda_devices() if cuda_devices is None and config.device != "cpu" else cuda_devices
    gpus = worker_gpus(config.device, config.workers, count or 0)
    return ExecutionPlan(
        executor="local", workers=config.workers, cores=cores,
        threads=config.threads or default_threads(config.workers, cores),
        score_timeout=config.score_timeout, score_memory=config.score_memory,
        start_method=start_method_for(gpus), gpus=gpus,
    )


# ---- the executors ------------------------------------------------------------------------


class InProcessScoring:
    """One scoring thread in this process: the seeded protocol uses torch's global RNG, so
    two scorings in one process at once would interleave their draws."""

    def __init__(self, threads: int | None, task: ScoringTask = score_arch_string) -> None:
        self._task = task
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix="nasagent-score", initializer=set_torch_threads,
            initargs=(threads,),
        )

    def submit(self, arch: str, settings: ScoreSettings) -> Future[ScoreResult]:
        return self._thread.submit(self._task, arch, settings)

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)


def _local(config: RunConfig) -> Scoring:
    plan = plan_local(config)
    if plan.workers == 0:  # torch's threads are left alone unless asked: it is our caller's
        return Scoring(plan, InProcessScoring(config.threads))
    pool = WorkerPool(  # plan_local sets the start method whenever workers >= 1
        plan.workers, plan.threads, start_method=plan.start_method or "spawn", gpus=plan.gpus,
        timeout=plan.score_timeout, memory_mb=plan.score_memory,
    )
    return Scoring(plan, pool)


def _ray(config: RunConfig) -> Scoring:
    from nasagent.agent.ray_scoring import start_ray_scoring

    return start_ray_scoring(config, cores=available_cores())


EXECUTORS: dict[str, Callable[[RunConfig], Scoring]] = {"local": _local, "ray": _ray}
"""Executors by name (`--executor NAME`): each starts a Scoring for a run configuration."""


def start_scoring(config: RunConfig) -> Scoring:
    """Start the executor `config.executor` names, sized by `config`'s execution settings.

    Raises:
        UnknownNameError: an executor that is not registered.
        MissingExtraError: `ray` without the `ray` extra installed.
        DeviceUnavailableError: workers on `cuda` without a GPU.
    """
    try:
        factory = EXECUTORS[config.executor]
    except KeyError:
        raise UnknownNameError("executor", config.executor, EXECUTORS) from None
    scoring = factory(config)
    logger.info("scoring: %s", scoring.plan.model_dump(exclude_none=True))
    return scoring
