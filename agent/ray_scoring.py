"""Scoring as Ray tasks, on a local Ray instance or an existing cluster (the `ray` extra).

The search loop stays on the driver: it makes the LLM calls, so API keys never leave the
driver's environment (a Ray runtime environment is readable through Ray's dashboard and job
API), and it writes every run directory itself, so `--resume` works exactly as for a local
run. Only the compute goes to the cluster: one task per candidate, holding `threads` CPUs
(and one GPU with `device = "cuda"`), running the same seeded protocol as a local worker.
At most `slots` tasks are out at once, so a task never waits in Ray's queue while its
`score_timeout` runs.

`score_memory` maps onto Ray's own memory handling rather than the local pool's RSS watch:
it becomes each task's `memory` reservation (in MB), so Ray places no more scorings on a node
than its memory holds, and `slots` is bounded by the cluster's memory as by its CPUs. Ray
does not hold a task to its reservation; what kills a runaway task is Ray's memory monitor,
which kills a task when its node's memory use passes RAY_memory_usage_threshold (0.95 by
default; which task, its worker-killing policy decides). Such a kill
(`ray.exceptions.OutOfMemoryError`) becomes `score_failed` with status `memory`, like a local
worker past its cap; any other death of a task is `crashed`. A reservation larger than every
node's memory could never be scheduled, so it is refused before the run starts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any

from nasagent.agent.config import RunConfig
from nasagent.agent.execution import ExecutionPlan, Scoring
from nasagent.agent.workerpool import (
    MB,
    ScoringSetupError,
    failed_result,
    run_task,
    score_arch_string,
    set_torch_threads,
)
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)


class MissingExtraError(NasAgentError):
    """An optional feature whose extra is not installed; the message names the extra."""


def import_ray() -> ModuleType:
    """The `ray` module, or an error that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(
            "--executor ray needs Ray, which is not installed: pip install 'nasagent[ray]'"
        ) from None
    return ray


def score_task(arch: str, settings: ScoreSettings, threads: int) -> tuple[str, Any]:
    """What one Ray task runs: the local worker's task, with the same thread setting."""
    set_torch_threads(threads)
    return run_task(score_arch_string, arch, settings)


class RayScoring:
    """Submits each candidate as a Ray task and waits for it in one of `slots` threads."""

    def __init__(
        self, ray: ModuleType, *, slots: int, threads: int, gpus: float,
        timeout: float | None, owns_ray: bool, memory_mb: float | None = None,
    ) -> None:
        self._ray, self._threads, self._timeout, self._owns_ray = ray, threads, timeout, owns_ray
        self._memory_mb = memory_mb
        reserve = {} if memory_mb is None else {"memory": int(memory_mb * MB)}
        self._remote = ray.remote(score_task).options(
            num_cpus=threads, num_gpus=gpus, max_retries=0, **reserve
        )
        self._waiters = ThreadPoolExecutor(slots, thread_name_prefix="nasagent-ray")
        self._pending: set[Any] = set()
        self._lock = threading.Lock()

    def submit(self, arch: str, settings: ScoreSettings) -> Future[ScoreResult]:
        return self._waiters.submit(self._score, arch, settings)

    def close(self) -> None:
        """Cancel tasks still out, wait for their threads, and stop Ray if we started it."""
        with self._lock:
            for ref in self._pending:
                self._ray.cancel(ref, force=True)
        self._waiters.shutdown(wait=True, cancel_futures=True)
        if self._owns_ray:
            self._ray.shutdown()

    def _score(self, arch: str, settings: ScoreSettings) -> ScoreResult:
        started = time.perf_counter()
        ref = self._remote.remote(arch, settings, self._threads)
        with self._lock:
            self._pending.add(ref)
        try:
            kind, detail = self._ray.get(ref, timeout=self._timeout)
        except self._ray.exceptions.GetTimeoutError:
            self._ray.cancel(ref, force=True)
            return failed_result(settings, ProxyStatus.TIMEOUT, time.perf_counter() - started,
                                 f"scoring ran past score_timeout={self._timeout:g} s; its Ray "
                                 f"task was cancelled")
        except self._ray.exceptions.OutOfMemoryError as exc:
            return failed_result(settings, ProxyStatus.MEMORY, time.perf_counter() - started,
                                 f"Ray's memory monitor killed the task scoring this candidate "
                                 f"(its node ran short of memory; {self._reservation()}): "
                                 f"{_first_line(exc)}")
        except self._ray.exceptions.RayError as exc:
            return failed_result(settings, ProxyStatus.CRASHED, time.perf_counter() - started,
                                 f"the Ray task died while scoring this candidate "
                                 f"({type(exc).__name__}: {_first_line(exc)})")
        finally:
            with self._lock:
                self._pending.discard(ref)
        if kind != "ok":
            raise ScoringSetupError(f"scoring cannot run with these settings: {detail}")
        return detail

    def _reservation(self) -> str:
        if self._memory_mb is None:
            return "no score_memory reservation"
        return f"score_memory={self._memory_mb:g} MB reserved per task"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def largest_node_mb(ray: ModuleType) -> float:
    """The `memory` resource of the cluster's largest live node, in MB."""
    sizes = [node.get("Resources", {}).get("memory", 0.0) for node in ray.nodes()
             if node.get("Alive")]
    return max(sizes, default=0.0) / MB


def memory_slots(ray: ModuleType, memory_mb: float | None) -> int | None:
    """How many `memory_mb` reservations the cluster holds at once (None: no reservation).

    Raises:
        ScoringSetupError: no node could ever hold one reservation.
    """
    if memory_mb is None:
        return None
    largest = largest_node_mb(ray)
    if memory_mb > largest:
        raise ScoringSetupError(
            f"score_memory={memory_mb:g} MB is more memory than any Ray node offers (the "
            f"largest: {largest:.0f} MB); a task reserving it could never be scheduled"
        )
    return max(1, int(ray.cluster_resources().get("memory", 0.0) / MB // memory_mb))


def connect(ray: ModuleType, address: str | None, cores: int) -> bool:
    """Connect to `address` (or RAY_ADDRESS), or start a loopback-only local instance.

    Returns whether this call started Ray (and so must stop it).
    """
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **quiet)
    else:
        ray.init(address="local", num_cpus=cores, _node_ip_address="127.0.0.1", **quiet)
    return True


def start_ray_scoring(config: RunConfig, *, cores: int) -> Scoring:
    """Start scoring on Ray for `config` (see agent.execution.EXECUTORS).

    Raises:
        MissingExtraError: Ray is not installed.
    """
    ray = import_ray()
    owns = connect(ray, config.ray_address, cores)
    threads = config.threads or 1
    cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
    try:
        by_memory = memory_slots(ray, config.score_memory)
    except ScoringSetupError:
        if owns:
            ray.shutdown()
        raise
    slots = config.workers or max(1, min(cluster_cpus // threads, by_memory or cluster_cpus))
    plan = ExecutionPlan(
        executor="ray", workers=slots, threads=threads, cores=cluster_cpus,
        score_timeout=config.score_timeout, score_memory=config.score_memory,
        ray_address=config.ray_address,
    )
    backend = RayScoring(
        ray, slots=slots, threads=threads, gpus=1.0 if config.device == "cuda" else 0.0,
        timeout=config.score_timeout, owns_ray=owns, memory_mb=config.score_memory,
    )
    return Scoring(plan, backend)
