"""A loopback OpenAI-compatible server for tests and benchmarks (standard library only).

It serves `POST /v1/chat/completions` on 127.0.0.1 from a background thread, one thread per
connection, so concurrent clients are served concurrently. Each request takes the next
behaviour from a scriptable queue (a reply, a 429 with Retry-After, a 5xx, a hang, a malformed
body); when the queue is empty it answers with `default` (an echo of the last user message
unless told otherwise). Every request is recorded (headers and JSON body) for assertions.

    with LoopbackOpenAI(latency_s=0.05) as server:
        server.enqueue(RateLimited(retry_after_s=0.2), Reply("hello"))
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A normal chat completion."""

    text: str = "ok"
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    model: str = "loopback-model"
    cached_tokens: int = 0
    """Part of prompt_tokens reported as served from the prompt cache (0: not reported)."""


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429 with a Retry-After header (seconds; None sends no header)."""

    retry_after_s: float | None = 0.2


@dataclass(frozen=True)
class ServerError:
    """An HTTP 5xx (or any status) with a JSON error body."""

    status: int = 500
    message: str = "loopback server error"


@dataclass(frozen=True)
class Hang:
    """Accept the request and answer nothing for `seconds` (or until the server closes)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Malformed:
    """HTTP 200 with a body that is not a chat completion (invalid JSON by default)."""

    body: bytes = b'{"id": "broken", "choices": [ {"mess'


MISSING_CHOICES = Malformed(
    body=json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m"}).encode()
)
"""Valid JSON without a `choices` field."""

Behaviour = Reply | RateLimited | ServerError | Hang | Malformed


@dataclass(frozen=True)
class ReceivedRequest:
    """What the server saw: the path, the headers (lower-cased names) and the JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


def echo_last_user_message(body: Any) -> Behaviour:
    """Default behaviour: reply with the last user message, prefixed with "echo: "."""
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return Reply(text=f"echo: {users[-1] if users else ''}")


def scripted_reply(body: Any) -> Behaviour:
    """Answer a chat-completions body as the scripted stand-in would (a random mutation of the
    parent shown, or scripted lessons for a reflection prompt)."""
    import asyncio

    from nasagent.agent.llm.base import LLMRequest, Message, SamplingParams
    from nasagent.agent.llm.scripted import ScriptedBackend

    messages = tuple(Message.model_validate(m) for m in body["messages"])
    purpose = "reflection" if "distil" in messages[0].content else "mutation"
    request = LLMRequest(
        purpose=purpose, messages=messages, params=SamplingParams(model=body["model"])
    )
    response = asyncio.run(ScriptedBackend().complete(request))
    return Reply(text=response.text, prompt_tokens=response.usage.prompt_tokens,
                 completion_tokens=response.usage.completion_tokens)


@dataclass
class LoopbackOpenAI:
    """The server. Use as a context manager; `base_url` ends in /v1 as the SDK expects.

    Attributes:
        latency_s: a fixed delay added before every answer (to simulate a slow model).
        default: builds the behaviour for a request when the queue is empty.
    """

    latency_s: float = 0.0
    default: Callable[[Any], Behaviour] = echo_last_user_message
    received: list[ReceivedRequest] = field(default_factory=list)
    _queue: deque[Behaviour] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _in_flight: int = 0
    max_in_flight: int = 0

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the loopback server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Script the next answers, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def start(self) -> LoopbackOpenAI:
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes hanging handlers so no thread outlives the test
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _next_behaviour(self, body: Any) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default(body)

    def _enter(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.received.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, closed loops) are expected; do not print them."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(server: LoopbackOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # keep test output clean

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            body = _json_or_text(raw)
            headers = {name.lower(): value for name, value in self.headers.items()}
            server._enter(ReceivedRequest(self.path, headers, body))
            try:
                if not self.path.split("?")[0].endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if server.latency_s:
                    server._closing.wait(server.latency_s)
                self._perform(server._next_behaviour(body), body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to answer
            finally:
                server._leave()

        def _perform(self, behaviour: Behaviour, body: Any) -> None:
            if isinstance(behaviour, Reply):
                self._send(200, _completion(behaviour, body))
            elif isinstance(behaviour, RateLimited):
                headers = {} if behaviour.retry_after_s is None else {
                    "retry-after": f"{behaviour.retry_after_s:g}"}
                self._send(429, _error("rate limited", "rate_limit_exceeded"), headers)
            elif isinstance(behaviour, ServerError):
                self._send(behaviour.status, _error(behaviour.message, "server_error"))
            elif isinstance(behaviour, Hang):
                server._closing.wait(behaviour.seconds)
                self.close_connection = True
            else:
                self._send_raw(200, behaviour.body)

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), headers)

        def _send_raw(
            self, status: int, data: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}}


def _completion(reply: Reply, body: Any) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model if reply.model else body.get("model", "loopback-model"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
        }],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            **({"prompt_tokens_details": {"cached_tokens": reply.cached_tokens}}
               if reply.cached_tokens else {}),
        },
    }


def serve_scripted(latency_s: float) -> None:
    """Run a scripted loopback endpoint until stdin closes; print its base URL first.

    Used by the benchmarks, so that the endpoint's own work does not share a process (and its
    interpreter lock) with the search being measured, as a real remote endpoint would not.
    """
    with LoopbackOpenAI(latency_s=latency_s, default=scripted_reply) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()
        print(json.dumps({"max_in_flight": server.max_in_flight}), flush=True)


if __name__ == "__main__":
    serve_scripted(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
