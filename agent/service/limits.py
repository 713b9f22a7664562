"""What one HTTP request may ask of the server: bounded sizes and the server's memory caps.

A request's configuration (`POST /v1/runs`, its arms, `POST /v1/mutate`) is checked here
before anything is validated further or written, every problem at once, each a 422 error
located at its field (`config.iterations`, `config.arms.NAME.workers`, `seeds`):

- sizes (REQUEST_MAXIMA, MAX_SEEDS, MAX_ARMS): what a client may make the server spend in
  time, processes and LLM calls;
- the memory cap (`max_memory`, MB) and the scoring workers' resident cap (`score_memory`,
  MB) are the server's (`nasagent serve --max-memory`, `--score-memory`): a request may lower
  them, never raise or lift them, and gets them when it names none;
- runs score in worker processes (`workers` 1 to REQUEST_MAXIMA["workers"], default 1), so a
  scoring that outgrows its estimate is killed with its worker, never the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasagent.agent.service.errors import ServiceError
from nasagent.evaluator.memory import AUTO, read_cap

REQUEST_MAXIMA: dict[str, int] = {
    "iterations": 10_000,
    "population": 10_000,
    "init_population": 1_000,
    "concurrency": 16,
    "workers": 4,
    "threads": 64,
    "repeats": 10,
    "batch_size": 1_024,
    "resolution": 1_024,
    "history_size": 64,
    "max_lessons": 64,
    "max_tokens": 32_768,
    "max_attempts": 10,
    "max_repairs": 10,
}
"""The largest value a request's configuration may give each key (a run, an arm, a mutate
configuration). The defaults of `nasagent search` are far below each."""
MAX_SEEDS = 10
"""Seeds of one comparison."""
MAX_ARMS = 8
"""Arms of one comparison (chosen or defined)."""
WORKER_BASE_MB = 1_024.0
"""What a scoring worker holds besides its scoring (torch and its libraries: about 0.3 GB
idle), added to the memory cap to give the workers' default resident cap."""


@dataclass(frozen=True)
class ServerLimits:
    """The server's caps, in MB (None: none)."""

    max_memory: float | None
    score_memory: float | None

    @classmethod
    def of(cls, max_memory: float | None, score_memory: float | str | None = AUTO
           ) -> ServerLimits:
        """The caps; `score_memory` "auto" is the memory cap plus WORKER_BASE_MB."""
        if score_memory == AUTO:
            return cls(max_memory, None if max_memory is None else max_memory + WORKER_BASE_MB)
        return cls(max_memory, float(score_memory) if score_memory is not None else None)


def check_sizes(values: Mapping[str, Any], where: str = "config") -> list[dict[str, str]]:
    """The located errors of every key of `values` above its REQUEST_MAXIMA."""
    errors = []
    for key, limit in REQUEST_MAXIMA.items():
        value = values.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > limit:
            errors.append({"field": f"{where}.{key}",
                           "message": f"at most {limit:,} on this server (got {value:,})"})
    return errors


def check_count(name: str, values: list[Any] | None, limit: int) -> list[dict[str, str]]:
    """The located error of a list longer than `limit` (seeds, arms), if any."""
    if values is None or len(values) <= limit:
        return []
    return [{"field": name, "message": f"at most {limit} on this server (got {len(values)})"}]


def with_server_caps(
    values: Mapping[str, Any], limits: ServerLimits, where: str = "config", *,
    scoring: bool = True, fill: bool = True,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """`values` with the server's caps where none is given (unless not `fill`: an arm, which
    takes the shared configuration's), and the errors of caps that ask for more; with
    `scoring` (a run) also at least one scoring worker.
    """
    filled, errors = dict(values), []
    keys = ("max_memory", "score_memory") if scoring else ("max_memory",)
    for key in (k for k in keys if fill or values.get(k) is not None):
        filled[key], error = _capped(values.get(key), getattr(limits, key), f"{where}.{key}")
        errors += error
    if scoring and (fill or values.get("workers") is not None):
        filled["workers"], error = _workers(values.get("workers"), f"{where}.workers")
        errors += error
    return filled, errors


def _capped(
    given: Any, server: float | None, field: str
) -> tuple[Any, list[dict[str, str]]]:
    if given is None:
        return ("none" if server is None else server), []
    try:
        asked = read_cap(given)
    except ValueError:
        return given, []  # the configuration's own validation names the problem
    if server is not None and (asked is None or asked > server):
        return given, [{"field": field, "message": f"at most {server:,.0f} MB on this server "
                        f"(got {'no cap' if asked is None else f'{asked:,.0f} MB'})"}]
    return asked, []


def _workers(given: Any, field: str) -> tuple[Any, list[dict[str, str]]]:
    if given is None:
        return 1, []
    if isinstance(given, int) and not isinstance(given, bool) and given < 1:
        limit = REQUEST_MAXIMA["workers"]
        return given, [{"field": field, "message": f"the service scores in worker processes, "
                        f"so that a runaway scoring is killed with its worker: 1 to {limit}"}]
    return given, []


def refuse(errors: list[dict[str, str]], what: str = "the request") -> None:
    """Raise one 422 for every error found, or nothing.

    Raises:
        ServiceError: 422, the fields in the one-line message and each error located.
    """
    if errors:
        fields = ", ".join(error["field"] for error in errors)
        first = errors[0]["message"]
        raise ServiceError(f"{what} asks for more than this server allows ({fields}): {first}",
                           status=422, errors=errors)
