"""The FastAPI application of the mutation service (`create_app`); `nasagent serve` runs it.

Endpoints (OpenAPI at /openapi.json, browsable at /docs):
    GET    /v1/health                 liveness, version and run counts (no token needed)
    POST   /v1/check                  block strings -> `inspect --json` objects
    POST   /v1/score                  block strings and proxy settings -> `score --json` rows
    POST   /v1/mutate                 a parent -> one validated proposal
    POST   /v1/runs                   start a search or a compare -> {"id"}
    GET    /v1/runs                   every run of this server
    GET    /v1/runs/{id}              state, progress and best
    GET    /v1/runs/{id}/events       server-sent events of the run's events.jsonl
    DELETE /v1/runs/{id}              stop cleanly (resumable)
    POST   /v1/runs/{id}/resume       continue a stopped or failed run
    GET    /v1/runs/{id}/report       the report (HTML, or ?format=json for its summary)

Scoring runs in a worker process (one thread feeds it, behind a bounded queue), runs on the
run manager's threads with their own scoring workers, and checks on the threadpool: the event
loop only parses, routes and streams. Every network is checked against the server's memory
cap before it is built, and the workers' resident memory is watched (agent.service.limits),
so that no request can take the server's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nasagent import __version__
from nasagent.agent.execution import available_cores, default_threads
from nasagent.agent.service import api
from nasagent.agent.service.errors import Busy, Conflict, ServiceError
from nasagent.agent.service.events import start_offset, stream
from nasagent.agent.service.guard import Guard, check_llm_spec, remote_config
from nasagent.agent.service.limits import (
    MAX_ARMS,
    MAX_SEEDS,
    ServerLimits,
    check_count,
    check_sizes,
    refuse,
    with_server_caps,
)
from nasagent.agent.service.models import (
    CheckRequest,
    CheckResponse,
    ErrorBody,
    Health,
    MutateRequest,
    MutateResponse,
    RunCreated,
    RunKind,
    RunList,
    RunRequest,
    RunStatus,
    ScoreRequest,
    ScoreResponse,
)
from nasagent.agent.service.runs import TERMINAL, ManagerSettings, RunManager, status
from nasagent.agent.workerpool import WorkerPool
from nasagent.evaluator.errors import NasAgentError
from nasagent.evaluator.memory import AUTO, default_cap_mb, read_cap
from nasagent.evaluator.proxies import ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
MUTATE_CALLS_DIR = "mutate"
"""Where /v1/mutate records its LLM calls: RUNS_DIR/mutate/llm_calls.jsonl."""
DEFAULT_COMPARE_SEEDS = (0, 1, 2, 3, 4)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 413, 422, 429)
}


INLINE_CHECK_ARCHS = 32
"""A check of up to this many block strings is answered on the event loop (at most about 16 ms
of work), not queued for a worker thread behind runs and scorings: under load
(`python -m bench.service_load`) check p50 3.9 s -> 0.9 s. Larger ones go to a thread, so
they cannot hold up other requests or event streams."""


class ServiceSettings(BaseModel):
    """Everything `create_app` needs; `nasagent serve` fills it from its flags and env."""

    model_config = ConfigDict(extra="forbid")

    runs_dir: Path
    token: str | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_running: int = Field(default=4, ge=1)
    max_queued: int = Field(default=16, ge=0)
    max_pending_scores: int = Field(default=32, ge=1)
    retry_after_s: int = Field(default=5, ge=1)
    max_memory: float | None = Field(default_factory=default_cap_mb)
    """The memory cap in MB of every network the server builds (None: none)."""
    score_memory: float | Literal["auto"] | None = AUTO
    """Resident MB a scoring worker may reach ("auto": `max_memory` + WORKER_BASE_MB; None:
    no limit)."""

    @field_validator("max_memory", "score_memory", mode="before")
    @classmethod
    def _cap(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "score_memory" and value == AUTO:
            return AUTO
        return read_cap(value)

    @property
    def limits(self) -> ServerLimits:
        return ServerLimits.of(self.max_memory, self.score_memory)


class ScoreQueue:
    """One scoring worker process, fed by one thread (the proxies serialise on torch's RNG
    anyway), behind a bounded number of waiting requests; past it, 429 with Retry-After.

    The worker starts with the first score request; one that passes `memory_mb` resident is
    killed (its input's row says so) and a fresh one takes its place.
    """

    def __init__(self, limit: int, retry_after_s: int, memory_mb: float | None = None) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.memory_mb = memory_mb
        self.pending = 0  # only touched on the event loop
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasagent-score")
        self._pool: WorkerPool | None = None

    def score(self, arch: Any, settings: ScoreSettings) -> ScoreResult:
        """Score one valid architecture in the worker process (call it on the queue's thread)."""
        if self._pool is None:
            self._pool = WorkerPool(1, default_threads(1, available_cores()),
                                    memory_mb=self.memory_mb)
        return self._pool.submit(settings.space.encode(arch), settings).result()

    async def run(self, work: Callable[[], T]) -> T:
        if self.pending >= self.limit:
            raise Busy(f"{self.pending} score requests are waiting; retry later",
                       self.retry_after_s)
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.close()


class LLMPool:
    """The LLM backends /v1/mutate has opened, one per spec, all recorded to one calls file."""

    def __init__(self, calls_path: Path) -> None:
        self.calls_path = calls_path
        self._backends: dict[str, api.LLMBackend] = {}
        self._recorder: api.CallRecorder | None = None

    def get(self, config: api.RunConfig) -> api.LLMBackend:
        key = json.dumps([config.llm, config.llm_timeout, config.max_attempts,
                          config.search_space])
        if key not in self._backends:
            if self._recorder is None:
                self._recorder = api.CallRecorder(self.calls_path)
            live = api.make_llm(config.llm, config)
            self._backends[key] = api.RecordingBackend(live, self._recorder)
        return self._backends[key]

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        if self._recorder is not None:
            self._recorder.close()


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service application; its runs live under `settings.runs_dir`.

    Args:
        settings: runs directory, bearer token (None: none asked) and the queue limits.
    """
    manager = RunManager(ManagerSettings(
        runs_dir=settings.runs_dir, max_running=settings.max_running,
        max_queued=settings.max_queued, retry_after_s=settings.retry_after_s,
    ))
    limits = settings.limits
    scores = ScoreQueue(settings.max_pending_scores, settings.retry_after_s, limits.score_memory)
    llms = LLMPool(settings.runs_dir / MUTATE_CALLS_DIR / api.LLM_CALLS_FILE)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(manager.start)
        try:
            yield
        finally:
            await asyncio.to_thread(manager.close)
            await llms.close()
            scores.close()

    app = FastAPI(title="nasagent mutation service", version=__version__, lifespan=lifespan,
                  responses=ERRORS)
    _add_error_handlers(app)
    _add_stateless_routes(app, manager, scores, llms, limits)
    _add_run_routes(app, manager, limits)
    app.add_middleware(Guard, token=settings.token or None,
                       max_body_bytes=settings.max_body_bytes)
    return app


# ---- errors ---------------------------------------------------------------------------------


def _error(status: int, message: str, errors: list[Any] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=message, errors=errors or []).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status, error.message, error.errors, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid request", _validation_errors(error.errors()))

    @app.exception_handler(NasAgentError)
    async def nasagent_error(_request: Request, error: NasAgentError) -> JSONResponse:
        return _error(400, str(error))

    @app.exception_handler(Exception)
    async def internal(_request: Request, error: Exception) -> JSONResponse:
        logger.error("internal error: %s", type(error).__name__, exc_info=error)
        return _error(500, "internal error; the server log has the details")


def _validation_errors(items: Any) -> list[dict[str, str]]:
    """FastAPI's errors as {"field", "message"}, never with the input (it may be a secret)."""
    return [
        {"field": ".".join(str(p) for p in item.get("loc", ())) or "body",
         "message": str(item.get("msg", "")).removeprefix("Value error, ")}
        for item in items
    ]


# ---- check, score, mutate -------------------------------------------------------------------


def _add_stateless_routes(
    app: FastAPI, manager: RunManager, scores: ScoreQueue, llms: LLMPool, limits: ServerLimits
) -> None:
    @app.get("/v1/health", response_model=Health)
    def health() -> Health:
        """Liveness, version and run counts; the one request that needs no token."""
        return Health(version=__version__, runs=manager.counts())

    @app.post("/v1/check", response_model=CheckResponse)
    async def check(body: CheckRequest) -> dict[str, Any]:
        """Validate and cost block strings: the `nasagent inspect --json` object of each."""
        limits = api.constraints(body.options())
        if len(body.archs) <= INLINE_CHECK_ARCHS:
            return {"results": api.inspect_results(body.archs, limits)}
        return {"results": await asyncio.to_thread(api.inspect_results, body.archs, limits)}

    @app.post("/v1/score", response_model=ScoreResponse)
    async def score(body: ScoreRequest) -> dict[str, Any]:
        """Score block strings with a zero-cost proxy: the `nasagent score --json` rows.

        An input whose estimated memory is over the server's cap is a 422 (`archs.N`), and
        nothing is scored."""
        cap = "none" if limits.max_memory is None else limits.max_memory
        settings = api.score_settings(body.search_space, {**body.settings(), "max_memory": cap})
        api.refuse_over_cap(body.archs, settings)
        api.check_device(settings)
        rows = await scores.run(lambda: api.score_rows(body.archs, settings, scores.score))
        return {"results": rows}

    @app.post("/v1/mutate", response_model=MutateResponse)
    async def mutate(body: MutateRequest) -> MutateResponse:
        """One proposal from `parent` by the random operator or an LLM (validated, repaired)."""
        config = _mutate_config(body, limits)
        parent = api.check_parent(body.parent, config)
        result = await api.amutate(
            parent, mutator=body.mutator, llm=llms.get(config) if body.mutator == "llm" else None,
            score=body.score, history=body.history, lessons=body.lessons, seed=body.seed,
            num_replaces=body.replaces, config=config,
        )
        return MutateResponse.model_validate(result.model_dump())



def _mutate_config(body: MutateRequest, limits: ServerLimits) -> api.RunConfig:
    check_llm_spec(body.llm, "llm")
    config, errors = with_server_caps(remote_config(dict(body.config)), limits, scoring=False)
    refuse(check_sizes(config) + errors)
    values = {**config, "mutator": body.mutator, "seed": body.seed}
    if body.llm is not None:
        values["llm"] = body.llm
    return api.run_config(values, source="the mutate request")


# ---- runs -----------------------------------------------------------------------------------


def _add_run_routes(app: FastAPI, manager: RunManager, limits: ServerLimits) -> None:
    report_lock = threading.Lock()  # two builds of one directory write the same files

    @app.post("/v1/runs", response_model=RunCreated, status_code=201)
    def create_run(body: RunRequest) -> RunCreated:
        """Start a search or a comparison from config-file keys; it is queued at once.

        A comparison's config may define named arms (`"arms": {"NAME": {...}}`, the
        `[arms.NAME]` tables of a compare config file) and `baseline`; `arms` picks which run.
        """
        job = (manager.submit_search(_search_config(body, limits))
               if body.kind is RunKind.SEARCH else manager.submit_compare(_plan(body, limits)))
        return RunCreated(id=job.record.id, state=job.record.state)

    @app.get("/v1/runs", response_model=RunList)
    def list_runs() -> RunList:
        return RunList(runs=[status(job) for job in manager.jobs()])

    @app.get("/v1/runs/{run_id}", response_model=RunStatus)
    def get_run(run_id: str) -> RunStatus:
        return status(manager.get(run_id))

    @app.delete("/v1/runs/{run_id}", response_model=RunStatus, status_code=202)
    def stop_run(run_id: str) -> RunStatus:
        """Stop a run cleanly; it ends `stopped` (resumable) once in-flight work is cancelled."""
        return status(manager.stop(run_id))

    @app.post("/v1/runs/{run_id}/resume", response_model=RunStatus, status_code=202)
    def resume_run(run_id: str) -> RunStatus:
        return status(manager.resume(run_id))

    @app.get("/v1/runs/{run_id}/events")
    async def run_events(
        run_id: str, offset: Annotated[int, Query(ge=0)] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-sent events: one per events.jsonl line from `offset` (or Last-Event-ID)."""
        job = manager.get(run_id)
        logs = await asyncio.to_thread(job.sources)
        messages = stream(lambda: logs, lambda: _ended(job.record),
                          start_offset(offset, last_event_id))
        return StreamingResponse(messages, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/runs/{run_id}/report", response_model=None)
    def run_report(
        run_id: str, format: Literal["html", "json"] = "html"  # noqa: A002
    ) -> HTMLResponse | JSONResponse:
        """The run's report, rebuilt from its logs (HTML, or the summary as JSON)."""
        job = manager.get(run_id)
        try:
            with report_lock:
                result = api.build_report(job.directory)
        except NasAgentError as error:
            raise Conflict(f"no report for run {run_id} yet: {error}") from None
        if format == "json":
            return JSONResponse(result.summary)
        return HTMLResponse((job.directory / api.REPORT_FILE).read_text(encoding="utf-8"))


def _ended(record: Any) -> str | None:
    if record.state not in TERMINAL:
        return None
    return json.dumps({"state": str(record.state), "stopped_reason": record.stopped_reason,
                       "error": record.error})


def _search_config(body: RunRequest, limits: ServerLimits) -> api.RunConfig:
    given = [name for name, value in (("arms", body.arms), ("seeds", body.seeds),
                                      ("config.arms", body.config.get("arms")),
                                      ("config.baseline", body.config.get("baseline")))
             if value is not None]
    if given:
        raise ServiceError(f"{', '.join(given)}: for kind 'compare' only", status=422,
                           errors=[{"field": name, "message": "for kind 'compare' only"}
                                   for name in given])
    values, errors = with_server_caps(remote_config(dict(body.config)), limits)
    refuse(check_sizes(values) + errors)
    config = api.run_config(values)
    api.check_run_start(config)
    return config


def _plan(body: RunRequest, limits: ServerLimits) -> api.ComparePlan:
    """The comparison of a request, every size and cap checked before anything else."""
    seeds = list(DEFAULT_COMPARE_SEEDS if body.seeds is None else body.seeds)
    values, errors = with_server_caps(dict(body.config), limits)
    errors = check_sizes(values) + errors
    arms = values.get("arms")
    if isinstance(arms, dict):
        errors += check_count("config.arms", list(arms), MAX_ARMS)
        for name, arm in arms.items():
            if isinstance(arm, dict):
                where = f"config.arms.{name}"
                errors += check_sizes(arm, where)
                errors += with_server_caps(arm, limits, where, fill=False)[1]
    errors += check_count("arms", body.arms, MAX_ARMS) + check_count("seeds", seeds, MAX_SEEDS)
    refuse(errors)
    return api.compare_plan(values, body.arms, seeds)
