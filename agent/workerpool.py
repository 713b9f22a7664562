"""Scoring in worker processes: one candidate per worker at a time, a dead or stuck worker replaced.

`concurrent.futures.ProcessPoolExecutor` fails every pending future when one worker dies, so
one segfault would cost every candidate in flight (and which ones depended on timing). Here
each worker has its own pipe: a worker that dies (OOM kill, segfault, `os._exit`), runs past
the timeout or past the memory cap fails only the candidate it held, as a `crashed`, `timeout`
or `memory` ScoreResult, and a fresh process takes its slot. Workers import torch once, set
their intra-op threads and, for CUDA, their own GPU, then score until told to stop.

The memory cap (`score_memory`, MB): while a worker scores, the driver polls the worker's
resident set size (RSS, through psutil) every MEMORY_POLL_S and kills the worker once it is
past the cap; the candidate becomes `score_failed` with status `memory` and a message naming
the cap and the size reached. Why this and not a limit inside the worker:
- `RLIMIT_AS` caps virtual address space, and torch maps far more than it touches (thread
  arenas, CUDA and MKL reservations), so a cap near the real need refuses healthy scorings
  while a cap that never does so stops nothing. `RLIMIT_RSS` is ignored by Linux.
- An allocation refused inside the worker surfaces as a `RuntimeError` deep in a kernel
  that the proxy reports as an ordinary error (or, for some allocators, a segfault): the
  candidate would not say that memory was the reason.
- The driver already waits on each busy worker, so polling adds no process or thread, and a
  worker stuck in native code cannot delay its own kill.
RSS counts what the worker holds, torch itself included (an idle CPU worker holds about
300 MB); a cap below an idle worker's size stops the run before the first scoring with a
message saying so. Polling means a scoring that allocates very fast can pass the cap by
what it allocates in one interval before it is killed: the cap turns a runaway scoring into a
result before the machine runs short; it is not a hard limit (a cgroup is, for that).
psutil rather than /proc: the same code on Linux, macOS and Windows. With CUDA workers the
cap is on host memory; GPU memory is the CUDA allocator's (its out-of-memory error is the
scoring's ordinary `error` result).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

import psutil

from nasagent.evaluator import cpu_kernels
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)

ScoringTask = Callable[[str, ScoreSettings], ScoreResult]
"""What a worker runs per candidate: a module-level function (it travels by reference)."""

STARTUP_TIMEOUT_S = 300.0
"""How long a new worker may take to import torch and set itself up."""

MEMORY_POLL_S = 0.02
"""How often the driver reads a busy worker's resident memory when a memory cap is set."""

MB = 2**20

PRELOAD = ["nasagent.agent.workerpool", "nasagent.evaluator.proxies"]
"""Imported once by the fork server, so each worker forks with torch already loaded."""


class ScoringSetupError(NasAgentError):
    """A worker could not start, or the settings cannot score anything (e.g. no CUDA)."""


def score_arch_string(arch: str, settings: ScoreSettings) -> ScoreResult:
    """The default task: decode the canonical architecture string in the settings' search
    space and run the seeded proxy protocol."""
    from nasagent.evaluator.proxies import score

    return score(arch, settings)


def set_torch_threads(threads: int | None, gpu: int | None = None) -> None:
    """Set this thread's torch intra-op threads and, when given, its current CUDA device."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if gpu is not None:
        torch.cuda.set_device(gpu)


# ---- the worker process ----------------------------------------------------------------------


def _worker_main(conn: Connection, threads: int, gpu: int | None, task: ScoringTask) -> None:
    """A worker's whole life: set up, say ready, then answer one candidate per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    try:
        cpu_kernels.pin()  # before the worker's first torch operation
        set_torch_threads(threads, gpu)
    except Exception as exc:  # reported to the driver, which stops the run with it
        conn.send(("setup_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        conn.send(run_task(task, *message))


def run_task(task: ScoringTask, arch: str, settings: ScoreSettings) -> tuple[str, Any]:
    """Run `task`, as ("ok", result) or ("setup_error", text): candidate failures are results
    already, so an exception here means no candidate can be scored."""
    try:
        return "ok", task(arch, settings)
    except NasAgentError as exc:  # settings no candidate can be scored with (e.g. no CUDA)
        return "setup_error", str(exc)
    except Exception as exc:  # the proxy catches candidate failures; this is a bug, say so
        return "setup_error", f"{type(exc).__name__}: {exc}"


# ---- one slot of the pool, seen from the driver ----------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What one scoring may take before its worker is killed (None: no limit)."""

    timeout: float | None = None
    """Seconds (`score_timeout`)."""
    memory_mb: float | None = None
    """Resident megabytes of the worker process (`score_memory`)."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to start the worker of one slot."""

    threads: int
    gpu: int | None
    task: ScoringTask


class _Worker:
    """One worker process and the driver's end of its pipe."""

    def __init__(self, context: BaseContext, spec: WorkerSpec, slot: int) -> None:
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_worker_main, args=(child, spec.threads, spec.gpu, spec.task),
            name=f"nasagent-score-{slot}", daemon=True,
        )
        self.process.start()
        child.close()
        self.ready = False
        self._stats: psutil.Process | None = None

    def wait_ready(self, memory_mb: float | None = None) -> None:
        """Wait for the worker's `ready`; refuse a memory cap it is already past when idle."""
        if self.ready:
            return
        kind, detail = self._receive(STARTUP_TIMEOUT_S, "starting")
        if kind != "ready":
            raise ScoringSetupError(f"a scoring worker could not start: {detail}")
        self.ready = True
        idle = self.resident_mb()
        if memory_mb is not None and idle is not None and idle > memory_mb:
            raise ScoringSetupError(
                f"score_memory={memory_mb:g} MB is below what an idle scoring worker already "
                f"holds ({idle:.0f} MB, torch included); raise it"
            )

    def call(self, arch: str, settings: ScoreSettings, limits: Limits) -> tuple[str, Any]:
        """Score one candidate: ("ok", result), ("setup_error", text), or a failure kind."""
        try:
            self.conn.send((arch, settings))
        except OSError:  # it died while idle, just now
            self.process.join(5)
            return "crashed", _death(self.process.exitcode)
        return self._receive(limits.timeout, "scoring", limits.memory_mb)

    def resident_mb(self) -> float | None:
        """The worker's resident memory in MB, or None once it is gone."""
        try:
            if self._stats is None:
                self._stats = psutil.Process(self.process.pid)
            return float(self._stats.memory_info().rss) / MB
        except (psutil.Error, ValueError):  # gone (the next wait sees its sentinel)
            return None

    def _receive(
        self, timeout: float | None, doing: str, memory_mb: float | None = None
    ) -> tuple[str, Any]:
        ready, resident = self._watch(timeout, memory_mb)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass  # the pipe closed: the process died, described below
        if resident is not None:
            self.stop(kill=True)
            return "memory", resident
        if not ready:
            self.stop(kill=True)
            return "timeout", f"{doing} took longer than {timeout:g} s"
        self.process.join(5)
        return "crashed", _death(self.process.exitcode)

    def _watch(
        self, timeout: float | None, memory_mb: float | None
    ) -> tuple[list[Any], float | None]:
        """Wait for an answer or the worker's end, up to `timeout`; with a memory cap, read the
        worker's memory meanwhile. Returns what is ready and, past the cap, the size reached."""
        waited: list[Connection | int] = [self.conn, self.process.sentinel]
        if memory_mb is None:
            return wait(waited, timeout), None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait(waited, MEMORY_POLL_S if left is None else min(MEMORY_POLL_S, left))
            if ready:
                return ready, None
            resident = self.resident_mb()
            if resident is not None and resident > memory_mb:
                return [], resident
            if left is not None and left <= MEMORY_POLL_S:
                return [], None

    def stop(self, *, kill: bool = False) -> None:
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker stopped answering"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (killed; often the out-of-memory killer)" if name == "SIGKILL" else ""
        return f"the worker died of {name}{hint}"
    return f"the worker exited with code {exitcode}"


# ---- the pool ----------------------------------------------------------------------------------


class WorkerPool:
    """W worker processes behind a thread-safe `submit`, usable from any event loop or thread.

    Args:
        workers: the number of worker processes (slots).
        threads: torch intra-op threads in each worker.
        start_method: `forkserver` (workers fork from a server that has torch loaded) or
            `spawn` (required with CUDA: no process ever forks after CUDA is initialised).
        gpus: the CUDA device of each slot (None for CPU); its length must be `workers`.
        timeout: seconds one scoring may take before its worker is killed (None: no limit).
        memory_mb: resident MB a worker may reach while scoring before it is killed (None: no
            limit; see the module docstring for how it is watched).
        task: what a worker runs per candidate (tests inject faults here).
    """

    def __init__(
        self, workers: int, threads: int, *, start_method: str = "forkserver",
        gpus: tuple[int | None, ...] | None = None, timeout: float | None = None,
        memory_mb: float | None = None, task: ScoringTask = score_arch_string,
    ) -> None:
        self.workers, self.threads = workers, threads
        self.limits = Limits(timeout, memory_mb)
        self.start_method = start_method
        self._context = _context(start_method)
        self._specs = [WorkerSpec(threads, gpu, task) for gpu in (gpus or (None,) * workers)]
        self._slots: list[_Worker | None] = [self._start(slot) for slot in range(workers)]
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(workers):
            self._idle.put(slot)
        self._waiters = ThreadPoolExecutor(workers, thread_name_prefix="nasagent-pool")
        self._lock = threading.Lock()  # guards _slots and _closed: no worker starts after close
        self._closed = False
        self.replaced = 0

    def submit(self, arch: str, settings: ScoreSettings) -> Future[ScoreResult]:
        """Queue one candidate; the future holds its ScoreResult (failures included)."""
        return self._waiters.submit(self._score, arch, settings)

    def pids(self) -> list[int | None]:
        """The process ids of the live workers (tests kill one)."""
        return [w.process.pid if w is not None else None for w in self._slots]

    def close(self) -> None:
        """Stop every worker (a busy one is killed) and the threads waiting on them."""
        with self._lock:
            self._closed = True
            workers = list(self._slots)
        for worker in workers:
            if worker is not None:
                worker.stop(kill=True)
        self._waiters.shutdown(wait=True, cancel_futures=True)

    def _start(self, slot: int) -> _Worker:
        return _Worker(self._context, self._specs[slot], slot)

    def _score(self, arch: str, settings: ScoreSettings) -> ScoreResult:
        slot = self._idle.get()
        try:
            return self._score_on(slot, arch, settings)
        finally:
            self._idle.put(slot)

    def _score_on(self, slot: int, arch: str, settings: ScoreSettings) -> ScoreResult:
        worker = self._live_worker(slot)
        started = time.perf_counter()
        kind, detail = worker.call(arch, settings, self.limits)
        if kind == "ok":
            return detail
        if kind == "setup_error":
            raise ScoringSetupError(f"scoring cannot run with these settings: {detail}")
        seconds = time.perf_counter() - started
        if self._replace(slot) is None:  # closed under it: nobody reads this result
            return failed_result(settings, ProxyStatus.CRASHED, seconds, "the pool was closed")
        status, message = _FAILURES[kind](detail, self.limits)
        logger.warning("scoring worker %d: %s", slot, message)
        return failed_result(settings, status, seconds, message)

    def _live_worker(self, slot: int) -> _Worker:
        worker = self._slots[slot]
        if worker is None or not worker.process.is_alive():  # died while idle: costs nothing
            worker = self._replace(slot)
        if worker is None:
            raise ScoringSetupError("the scoring pool is closed")
        worker.wait_ready(self.limits.memory_mb)
        return worker

    def _replace(self, slot: int) -> _Worker | None:
        """Start a fresh worker in `slot` (None once the pool is closed: nothing starts)."""
        with self._lock:
            if self._closed:
                return None
            old = self._slots[slot]
            if old is not None:
                old.stop(kill=True)
            self.replaced += 1
            worker = self._slots[slot] = self._start(slot)
        return worker


def _timed_out(_detail: Any, limits: Limits) -> tuple[ProxyStatus, str]:
    return ProxyStatus.TIMEOUT, (f"scoring ran past score_timeout={limits.timeout:g} s; its "
                                 f"worker was killed and replaced")


def _past_memory(resident: Any, limits: Limits) -> tuple[ProxyStatus, str]:
    # rounded up: a worker killed at 900.4 MB under a 900 MB cap must not read "reached 900"
    return ProxyStatus.MEMORY, (f"scoring went past score_memory={limits.memory_mb:g} MB (its "
                                f"worker reached {math.ceil(resident)} MB resident); the "
                                f"worker was killed and replaced")


def _crashed(detail: Any, _limits: Limits) -> tuple[ProxyStatus, str]:
    return ProxyStatus.CRASHED, (f"{detail} while scoring this candidate; a new worker took "
                                 f"its place")


_FAILURES: dict[str, Callable[[Any, Limits], tuple[ProxyStatus, str]]] = {
    "timeout": _timed_out, "memory": _past_memory, "crashed": _crashed,
}
"""The status and message of a candidate whose worker was lost, by how it was lost."""


def failed_result(
    settings: ScoreSettings, status: ProxyStatus, seconds: float, message: str
) -> ScoreResult:
    """A ScoreResult for a candidate whose scoring never returned (crash, timeout, memory)."""
    from nasagent.evaluator.proxies import higher_is_better

    return ScoreResult(
        proxy=settings.proxy, score=None, status=status, seconds=seconds, message=message,
        seed=settings.seed,
        higher_is_better=higher_is_better(settings.proxy, settings.search_space),
    )


def _context(start_method: str) -> BaseContext:
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(PRELOAD)
    return context
