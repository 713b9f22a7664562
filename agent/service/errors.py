"""The service's typed errors, each carrying the HTTP status it is answered with."""

from __future__ import annotations

from typing import Any

from nasagent.evaluator.errors import NasAgentError


class ServiceError(NasAgentError):
    """A request the service cannot carry out; answered as {"error", "errors"} with `status`.

    Args:
        message: one line saying what was wrong and what to change.
        status: the HTTP status code.
        errors: located details (for block strings: {"block", "field", "message"}).
        headers: extra response headers (Retry-After for 429).
    """

    def __init__(
        self, message: str, *, status: int = 400, errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or []
        self.headers = headers or {}


class NotFound(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class Busy(ServiceError):
    """The bounded queue is full: the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, status=429, headers={"Retry-After": str(retry_after)})


class Conflict(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=409)
