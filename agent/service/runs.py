"""Runs of the service: ordinary run directories under --runs-dir, a bounded queue, recovery.

Each run is `RUNS_DIR/<id>/`: a search's run directory, or a comparison's directory
(`<arm>/seed-<s>/` runs and compare.toml), plus `service.json`, the service's record of it
(kind, state, why it stopped). The record is written before the run is queued and at every
change of state, so a server killed with SIGKILL finds on restart every run it had accepted:
those that were queued or running are queued again and resume from their event logs.

Worker threads run the jobs (each search has its own event loop; scoring is serialised by
the proxies' RNG lock), so nothing CPU-heavy runs on the server's event loop.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasagent.agent.runlog import BEST_FILE, EVENTS_FILE, iter_jsonl, read_json, write_json
from nasagent.agent.service import api
from nasagent.agent.service.errors import Busy, Conflict, NotFound
from nasagent.agent.service.models import ArmStatus, Progress, RunKind, RunState, RunStatus
from nasagent.evaluator.errors import NasAgentError

logger = logging.getLogger(__name__)

SERVICE_FILE = "service.json"
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ACTIVE = (RunState.QUEUED, RunState.RUNNING)
TERMINAL = (RunState.FINISHED, RunState.STOPPED, RunState.FAILED)


class RunRecord(BaseModel):
    """service.json: what the service knows about a run beyond its run directory."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: RunKind
    state: RunState
    created: float
    stopped_reason: str | None = None
    error: str | None = None


class ManagerSettings(BaseModel):
    """Limits of the run manager (the `nasagent serve` flags)."""

    model_config = ConfigDict(extra="forbid")

    runs_dir: Path
    max_running: int = Field(default=4, ge=1)
    max_queued: int = Field(default=16, ge=0)
    retry_after_s: int = Field(default=5, ge=1)
    join_timeout_s: float = Field(default=60.0, gt=0)


@dataclass
class Job:
    """One run: its record, its directory, its plan and the signal that stops it."""

    record: RunRecord
    directory: Path
    stop: api.StopSignal = field(default_factory=api.StopSignal)
    shutdown: bool = False

    def save(self) -> None:
        write_json(self.directory / SERVICE_FILE, self.record.model_dump(mode="json"))

    def sources(self) -> list[tuple[str | None, Path]]:
        """The event logs of the run, in the order they are written (see events.py)."""
        if self.record.kind is RunKind.SEARCH:
            return [(None, self.directory / EVENTS_FILE)]
        plan = api.read_plan(self.directory)
        return [
            (f"{arm}/seed-{seed}", plan.run_dir(self.directory, arm, seed) / EVENTS_FILE)
            for seed in plan.seeds for arm in plan.arms
        ]


class CompareHalted(Exception):
    """Ends a comparison at its first run that does not finish, so that its runs (and their
    events) always come in plan order; resuming the comparison continues from that run."""


# ---- running one job ------------------------------------------------------------------------


def _run_search_job(job: Job) -> tuple[bool, str | None]:
    result = api.run_search(api.read_config(job.directory), job.directory, resume=True,
                            stop=job.stop)
    return result.finished, result.stopped_reason


def _run_compare_job(job: Job) -> tuple[bool, str | None]:
    def run_one(  # the RunFunction compare calls; the service shows no progress bars
        config: api.RunConfig, run_dir: Path, *, resume: bool, progress: bool,  # noqa: ARG001
        label: str = "search",  # noqa: ARG001
    ) -> api.RunResult:
        if job.stop.requested:
            raise CompareHalted(job.stop.reason)
        result = api.run_search(config, run_dir, resume=resume, stop=job.stop)
        if not result.finished:
            raise CompareHalted(f"{run_dir.relative_to(job.directory)}: {result.stopped_reason}")
        return result

    try:
        api.run_compare(api.read_plan(job.directory), job.directory, run_one)
    except CompareHalted as halted:
        return False, str(halted)
    return True, None


RUNNERS: dict[RunKind, Callable[[Job], tuple[bool, str | None]]] = {
    RunKind.SEARCH: _run_search_job,
    RunKind.COMPARE: _run_compare_job,
}


# ---- the manager ----------------------------------------------------------------------------


class RunManager:
    """Accepts, queues, runs, stops and recovers the service's runs."""

    def __init__(self, settings: ManagerSettings) -> None:
        self.settings = settings
        self.runs_dir = settings.runs_dir
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._closing = False

    # ---- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Load the runs under runs_dir, queue the unfinished ones again, start the workers."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for job in sorted(self._load_all(), key=lambda j: j.record.created):
            self._jobs[job.record.id] = job
            if job.record.state in ACTIVE:
                logger.info("run %s was %s: queued to resume", job.record.id, job.record.state)
                self._set_state(job, RunState.QUEUED)
                self._queue.append(job.record.id)
        for number in range(self.settings.max_running):
            worker = threading.Thread(target=self._work, name=f"nasagent-run-{number}",
                                      daemon=True)
            worker.start()
            self._workers.append(worker)

    def close(self) -> None:
        """Stop the running runs (they are queued again on restart) and wait for the workers."""
        with self._lock:
            self._closing = True
            for job in self._jobs.values():
                if job.record.state is RunState.RUNNING:
                    job.shutdown = True
                    job.stop.request("the server shut down")
            self._lock.notify_all()
        deadline = time.monotonic() + self.settings.join_timeout_s
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _load_all(self) -> list[Job]:
        jobs = []
        for path in sorted(self.runs_dir.glob(f"*/{SERVICE_FILE}")):
            try:
                record = RunRecord.model_validate(read_json(path))
            except (OSError, ValueError, ValidationError) as error:
                logger.warning("%s: not a service record, skipped (%s)", path, error)
                continue
            jobs.append(Job(record, path.parent))
        return jobs

    # ---- requests ------------------------------------------------------------------------

    def submit_search(self, config: api.RunConfig) -> Job:
        return self._submit(RunKind.SEARCH, lambda d: api.start_search_dir(config, d))

    def submit_compare(self, plan: api.ComparePlan) -> Job:
        return self._submit(RunKind.COMPARE, lambda d: api.start_compare_dir(plan, d))

    def _submit(self, kind: RunKind, create: Callable[[Path], None]) -> Job:
        with self._lock:
            self._check_room()
            run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
            job = Job(RunRecord(id=run_id, kind=kind, state=RunState.QUEUED,
                                created=time.time()), self.runs_dir / run_id)
            create(job.directory)
            self._enqueue(job)
        return job

    def get(self, run_id: str) -> Job:
        job = self._jobs.get(run_id) if RUN_ID.match(run_id) else None
        if job is None:
            raise NotFound(f"no run {run_id!r} on this server (GET /v1/runs lists them)")
        return job

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.record.created)

    def stop(self, run_id: str) -> Job:
        """Stop a run cleanly: a queued one at once, a running one at its next check."""
        with self._lock:
            job = self.get(run_id)
            if job.record.state is RunState.QUEUED:
                self._queue.remove(run_id)
                self._set_state(job, RunState.STOPPED, reason="stopped on request while queued")
            elif job.record.state is RunState.RUNNING:
                job.stop.request(f"stopped on request (DELETE /v1/runs/{run_id})")
        return job

    def resume(self, run_id: str) -> Job:
        """Queue a stopped or failed run again; it continues from its event log."""
        with self._lock:
            job = self.get(run_id)
            if job.record.state not in (RunState.STOPPED, RunState.FAILED):
                raise Conflict(f"run {run_id} is {job.record.state}; only a stopped or failed "
                               "run can be resumed")
            self._check_room()
            job.stop = api.StopSignal()
            self._enqueue(job)
        return job

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [job.record.state for job in self._jobs.values()]
        return {str(state): states.count(state) for state in RunState}

    def _check_room(self) -> None:
        if self._closing:
            raise Busy("the server is shutting down", self.settings.retry_after_s)
        if len(self._queue) >= self.settings.max_queued:
            raise Busy(f"the run queue is full ({self.settings.max_queued} queued); retry later",
                       self.settings.retry_after_s)

    def _enqueue(self, job: Job) -> None:
        self._jobs[job.record.id] = job
        self._set_state(job, RunState.QUEUED)
        self._queue.append(job.record.id)
        self._lock.notify()

    def _set_state(
        self, job: Job, state: RunState, *, reason: str | None = None, error: str | None = None
    ) -> None:
        job.record = job.record.model_copy(
            update={"state": state, "stopped_reason": reason, "error": error}
        )
        job.save()

    # ---- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._next()) is not None:
            self._execute(job)

    def _next(self) -> Job | None:
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if self._closing:
                return None
            job = self._jobs[self._queue.popleft()]
            self._set_state(job, RunState.RUNNING)
            return job

    def _execute(self, job: Job) -> None:
        logger.info("run %s (%s) started", job.record.id, job.record.kind)
        try:
            finished, reason = RUNNERS[job.record.kind](job)
        except (NasAgentError, OSError) as error:
            self._end(job, RunState.FAILED, error=str(error))
        except Exception as error:  # a bug must fail this run, not the worker or the server
            logger.exception("run %s failed", job.record.id)
            self._end(job, RunState.FAILED, error=f"internal error: {type(error).__name__}")
        else:
            if finished:
                self._end(job, RunState.FINISHED)
            elif job.shutdown:
                self._end(job, RunState.QUEUED, reason="the server shut down; resumes on restart")
            else:
                self._end(job, RunState.STOPPED, reason=reason)

    def _end(self, job: Job, state: RunState, **details: str | None) -> None:
        with self._lock:
            self._set_state(job, state, **details)
        logger.info("run %s ended: %s", job.record.id, state)


# ---- status ---------------------------------------------------------------------------------


def status(job: Job) -> RunStatus:
    """A run's state, progress and best event, read from its directory."""
    record = job.record
    arms = None
    if record.kind is RunKind.SEARCH:
        progress, best = _search_progress(job.directory)
    else:
        plan = api.read_plan(job.directory)
        higher = api.higher_is_better(plan.config.proxy, plan.config.search_space)
        arms = [_arm_status(plan, job.directory, arm, higher) for arm in plan.arms]
        progress, best = _compare_progress(arms, higher)
    return RunStatus(
        id=record.id, kind=record.kind, state=record.state, best=best, progress=progress,
        stopped_reason=record.stopped_reason, error=record.error, created=record.created,
        arms=arms,
    )


def _applied(run_dir: Path) -> int:
    return sum(1 for e in iter_jsonl(run_dir / EVENTS_FILE) if e.get("phase") == "search")


def _best(run_dir: Path) -> dict[str, object] | None:
    path = run_dir / BEST_FILE
    try:
        return dict(read_json(path)) if path.exists() else None
    except (OSError, ValueError):  # being replaced right now: report none rather than fail
        return None


def _search_progress(run_dir: Path) -> tuple[Progress, dict[str, object] | None]:
    try:
        total = api.read_config(run_dir).iterations
    except NasAgentError:
        total = 0
    done = _applied(run_dir)
    progress = Progress(iterations=done, total=total, runs_finished=int(done >= total > 0),
                        runs_total=1)
    return progress, _best(run_dir)


def _arm_status(plan: api.ComparePlan, out: Path, arm: str, higher: bool) -> ArmStatus:
    """One arm's progress and best over its seeds, named as the report names it."""
    done, finished, best = 0, 0, None
    for seed in plan.seeds:
        run_dir = plan.run_dir(out, arm, seed)
        applied = _applied(run_dir)
        done += applied
        finished += applied >= plan.config.iterations
        best = _better(best, _best(run_dir), f"{arm}/seed-{seed}", higher)
    config = plan.run_config(arm, plan.seeds[0])
    progress = Progress(iterations=done, total=len(plan.seeds) * plan.config.iterations,
                        runs_finished=finished, runs_total=len(plan.seeds))
    return ArmStatus(name=arm, label=api.arm_label(arm, config),
                     description=api.describe(config),
                     baseline=arm == plan.baseline, settings=dict(plan.settings_of(arm)),
                     progress=progress, best=best)


def _compare_progress(
    arms: list[ArmStatus], higher: bool
) -> tuple[Progress, dict[str, object] | None]:
    """The whole comparison's progress, and its best over every arm."""
    progress = Progress(
        iterations=sum(a.progress.iterations for a in arms),
        total=sum(a.progress.total for a in arms),
        runs_finished=sum(a.progress.runs_finished for a in arms),
        runs_total=sum(a.progress.runs_total for a in arms),
    )
    best: dict[str, object] | None = None
    for arm in arms:
        if arm.best is not None:
            best = _better(best, arm.best, str(arm.best["run"]), higher)
    return progress, best


def _better(
    best: dict[str, object] | None, other: dict[str, object] | None, run: str, higher: bool
) -> dict[str, object] | None:
    score = other.get("score") if other else None
    if other is None or not isinstance(score, int | float):
        return best
    current = best.get("score") if best else None
    if not isinstance(current, int | float) or (score > current if higher else score < current):
        return {**other, "run": run}
    return best
