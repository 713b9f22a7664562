"""What guards the service: the bearer token, the body size cap, and what HTTP may not set.

`Guard` is a plain ASGI middleware in front of the whole application: with a token set, every
request but the health check must carry `Authorization: Bearer <token>` (compared in constant
time); a body over the cap is answered 413 before the application reads it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from nasagent.agent.service.errors import ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/v1/health"})
TOKEN_ENV = "NASAGENT_TOKEN"
SERVER_FILE_BACKENDS = ("manual", "replay")
"""LLM backends whose argument is a path on the server: not for HTTP clients to name."""


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SERVER_ONLY_KEYS = {
    "base_url": "the server's API key would be sent there; set OPENAI_BASE_URL in the "
                "server's environment",
    "ray_address": "the server would connect to a cluster the client names; start the server "
                   "with RAY_ADDRESS in its environment",
}
"""Config keys only the server's own environment may set, and why."""


def remote_config(values: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Config keys from an HTTP client, refused where they would reach the server's secrets,
    files or network: SERVER_ONLY_KEYS (`base_url`, `ray_address`) and path-based LLM backends.

    `where` locates the keys in the request (`config`, or `config.arms.NAME` for an arm).
    """
    for key, why in SERVER_ONLY_KEYS.items():
        if values.get(key) is not None:
            field = f"{where}.{key}"
            raise ServiceError(
                f"{field} is not accepted over HTTP ({why})", status=422,
                errors=[{"field": field, "message": "not accepted over HTTP"}],
            )
    check_llm_spec(values.get("llm"), f"{where}.llm")
    return values


def check_llm_spec(spec: Any, where: str) -> None:
    prefix = str(spec).partition(":")[0].strip() if spec is not None else ""
    if prefix in SERVER_FILE_BACKENDS:
        message = (f"the {prefix!r} backend reads files on the server and is not accepted "
                   "over HTTP; use scripted, openai:MODEL or azure:DEPLOYMENT")
        raise ServiceError(f"{where}: {message}", status=422,
                           errors=[{"field": where, "message": message}])


class Guard:
    """ASGI middleware: bearer token (when one is set) and body size cap.

    Args:
        app: the application behind the guard.
        token: the bearer token every request but the health check must carry; None: none.
        max_body_bytes: the largest request body accepted.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token and scope["path"] not in OPEN_PATHS and not _authorized(scope, self.token):
            await _answer(send, 401, "a bearer token is required: Authorization: Bearer "
                          f"<${TOKEN_ENV}>", {"www-authenticate": "Bearer"})
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await _answer(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the cap (Content-Length or counted)."""
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _authorized(scope: Scope, token: bytes) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, given = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the buffered body once, then waits on the real one (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": message, "errors": []}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
