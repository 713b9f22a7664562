"""`nasagent serve`: the mutation service over HTTP (FastAPI + uvicorn, the `serve` extra)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from nasagent.agent.cli.app import app

EXIT_USAGE = 2
SERVE_MODULES = ("fastapi", "uvicorn")
LOG_LEVELS = ("debug", "info", "warning", "error")
GRACEFUL_SHUTDOWN_S = 5

Opt = typer.Option


@app.command("serve")
def serve(
    host: Annotated[str, Opt(help="Address to bind; anything but loopback needs "
                             "NASAGENT_TOKEN.")] = "127.0.0.1",
    port: Annotated[int, Opt(min=0, max=65535, help="TCP port.")] = 8000,
    runs_dir: Annotated[Path, Opt("--runs-dir", help="Where runs live (one folder each).")] = (
        Path("runs/service")
    ),
    max_runs: Annotated[int, Opt(min=1, help="Runs executing at once.")] = 4,
    max_queued: Annotated[int, Opt(min=0, help="Runs waiting; past it: 429.")] = 16,
    max_pending_scores: Annotated[int, Opt(min=1, help="Score requests waiting; past it: "
                                           "429.")] = 32,
    max_body_bytes: Annotated[int, Opt(min=1024, help="Largest request body; past it: "
                                       "413.")] = 1 << 20,
    max_memory: Annotated[str | None, Opt(
        help="Memory cap in MB of every network the server builds: an input whose estimated "
        "memory is over it is a 422 (auto: half this machine's memory; 0 or none: no cap).",
        metavar="<MB|auto|none>", show_default="auto")] = None,
    score_memory: Annotated[str | None, Opt(
        help="Resident MB a scoring worker may reach before it is killed and replaced (0 or "
        "none: no limit).", metavar="<MB|none>", show_default="--max-memory + 1024")] = None,
    log_level: Annotated[str, Opt(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve check, score, mutate and runs over HTTP (OpenAPI schema at /openapi.json).

    With NASAGENT_TOKEN set in the environment every request but GET /v1/health must carry
    `Authorization: Bearer $NASAGENT_TOKEN`; binding an address other than loopback refuses
    to start without it. LLM keys come from this environment, never from a request.
    """
    _need_extra()
    from nasagent.agent.service.guard import TOKEN_ENV, is_loopback

    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        _fail(f"binding {host} (not loopback) needs a bearer token: set {TOKEN_ENV} in the "
              "environment, or bind 127.0.0.1")
    if log_level not in LOG_LEVELS:
        _fail(f"unknown --log-level {log_level!r}; valid: {', '.join(LOG_LEVELS)}")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _fail(f"cannot create --runs-dir {runs_dir}: {error}")
    _run(host, port, token, runs_dir, log_level, {
        "max_running": max_runs, "max_queued": max_queued,
        "max_pending_scores": max_pending_scores, "max_body_bytes": max_body_bytes,
        **_caps(max_memory, score_memory),
    })


def _caps(max_memory: str | None, score_memory: str | None) -> dict[str, float | None]:
    """The memory flags in MB (agent.service.limits); a bad value exits with its flag."""
    from nasagent.evaluator.memory import AUTO, read_cap

    caps: dict[str, float | None] = {}
    for flag, value, key in (("--max-memory", max_memory or AUTO, "max_memory"),
                             ("--score-memory", score_memory, "score_memory")):
        if value is None:
            continue
        try:
            caps[key] = read_cap(value)
        except ValueError as error:
            _fail(f"{flag}: {error}")
    return caps


def _need_extra() -> None:
    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        _fail(f"nasagent serve needs {' and '.join(missing)}: pip install 'nasagent[serve]'")


def _run(
    host: str, port: int, token: str | None, runs_dir: Path, log_level: str,
    limits: dict[str, Any],
) -> None:
    import uvicorn

    from nasagent.agent.service.app import ServiceSettings, create_app

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = ServiceSettings(runs_dir=runs_dir, token=token, **limits)
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    except OSError as error:  # e.g. the port is taken
        _fail(f"cannot serve on {host}:{port}: {error}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
