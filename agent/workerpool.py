"""Scoring in worker processes: one candidate per worker at a time, a dead or stuck worker replaced.

`concurrent.futures.ProcessPoolExecutor` fails every pending future when one worker dies, so
one segfault would cost every candidate in flight (and which ones depended on timing). Here
each worker has its own pipe: a worker that dies (OOM kill, segfault, `os._exit`) or runs past
the timeout fails only the candidate it held, as a `crashed` or `timeout` ScoreResult, and a
fresh process takes its slot. Workers import torch once, set their intra-op threads and, for
CUDA, their own GPU, then score until told to stop.
"""

from __future__ import annotations

import logging
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

from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)

ScoringTask = Callable[[str, ScoreSettings], ScoreResult]
"""What a worker runs per candidate: a module-level function (it travels by reference)."""

STARTUP_TIMEOUT_S = 300.0
"""How long a new worker may take to import torch and set itself up."""

PRELOAD = ["nasagent.agent.workerpool", "nasagent.evaluator.proxies"]
"""Imported once by the fork server, so each worker forks with torch already loaded."""


class ScoringSetupError(NasAgentError):
    """A worker could not start, or the settings cannot score anything (e.g. no CUDA)."""


def score_block_string(arch: str, settings: ScoreSettings) -> ScoreResult:
    """The default task: parse the canonical block string and run the seeded proxy protocol."""
    from nasagent.evaluator import parse
    from nasagent.evaluator.proxies import score

    return score(parse(arch), settings)


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

    def wait_ready(self) -> None:
        if self.ready:
            return
        kind, detail = self._receive(STARTUP_TIMEOUT_S, "starting")
        if kind != "ready":
            raise ScoringSetupError(f"a scoring worker could not start: {detail}")
        self.ready = True

    def call(self, arch: str, settings: ScoreSettings, timeout: float | None) -> tuple[str, Any]:
        """Score one candidate: ("ok", result), ("setup_error", text), or a failure kind."""
        try:
            self.conn.send((arch, settings))
        except OSError:  # it died while idle, just now
            self.process.join(5)
            return "crashed", _death(self.process.exitcode)
        return self._receive(timeout, "scoring")

    def _receive(self, timeout: float | None, doing: str) -> tuple[str, Any]:
        ready = wait([self.conn, self.process.sentinel], timeout)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass  # the pipe closed: the process died, described below
        if not ready:
            self.stop(kill=True)
            return "timeout", f"{doing} took longer than {timeout:g} s"
        self.process.join(5)
        return "crashed", _death(self.process.exitcode)

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
        task: what a worker runs per candidate (tests inject faults here).
    """

    def __init__(
        self, workers: int, threads: int, *, start_method: str = "forkserver",
        gpus: tuple[int | None, ...] | None = None, timeout: float | None = None,
        task: ScoringTask = score_block_string,
    ) -> None:
        self.workers, self.threads, self.timeout = workers, threads, timeout
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
        kind, detail = worker.call(arch, settings, self.timeout)
        if kind == "ok":
            return detail
        if kind == "setup_error":
            raise ScoringSetupError(f"scoring cannot run with these settings: {detail}")
        seconds = time.perf_counter() - started
        if self._replace(slot) is None:  # closed under it: nobody reads this result
            return failed_result(settings, ProxyStatus.CRASHED, seconds, "the pool was closed")
        status = ProxyStatus.TIMEOUT if kind == "timeout" else ProxyStatus.CRASHED
        logger.warning("scoring worker %d: %s; replaced", slot, detail)
        return failed_result(settings, status, seconds, _message(kind, detail, self.timeout))

    def _live_worker(self, slot: int) -> _Worker:
        worker = self._slots[slot]
        if worker is None or not worker.process.is_alive():  # died while idle: costs nothing
            worker = self._replace(slot)
        if worker is None:
            raise ScoringSetupError("the scoring pool is closed")
        worker.wait_ready()
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


def _message(kind: str, detail: str, timeout: float | None) -> str:
    if kind == "timeout":
        return (f"scoring ran past score_timeout={timeout:g} s; its worker was killed and "
                f"replaced")
    return f"{detail} while scoring this candidate; a new worker took its place"


def failed_result(
    settings: ScoreSettings, status: ProxyStatus, seconds: float, message: str
) -> ScoreResult:
    """A ScoreResult for a candidate whose scoring never returned (crash or timeout)."""
    from nasagent.evaluator.proxies import get_proxy

    return ScoreResult(
        proxy=settings.proxy, score=None, status=status, seconds=seconds, message=message,
        seed=settings.seed, higher_is_better=get_proxy(settings.proxy).higher_is_better,
    )


def _context(start_method: str) -> BaseContext:
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(PRELOAD)
    return context
