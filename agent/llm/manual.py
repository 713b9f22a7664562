"""The manual backend: a file queue where a person (or another program) plays the LLM.

Each request becomes DIR/requests/<seq:06d>-<hash12>.json (written to a temporary name and
renamed into place, so it is never seen half-written). The backend then polls for the answer,
DIR/responses/<same stem>.json or .txt, as DIR/README.txt explains.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasagent.agent.llm.base import (
    ErrorKind,
    LLMError,
    LLMRequest,
    LLMResponse,
    TokenUsage,
    approximate_tokens,
)
from nasagent.agent.runlog import write_json

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 0.15

README = """\
nasagent manual LLM backend: you are the language model.

1. Each question appears as requests/<seq>-<hash>.json. Read "messages" (system, then user)
   and answer the last user message exactly as it asks (for example a ```json fence).
2. Write your answer to the path in the request's "respond_json" or "respond_txt" field:
   - responses/<same name>.json : {"text": "<your whole answer>", "finish_reason": "stop"}
   - responses/<same name>.txt  : your whole answer as plain text.
3. Write the file under another name first (e.g. <name>.json.tmp) and rename it into place
   (mv), so the search never reads half an answer. A .json answer is read only once it parses;
   a .txt answer is read once its size and time stamp stop changing between two polls.
4. A request is pending while no response file with its name exists. Several may be pending
   at once; answer them in any order.
"""

_SEQUENCE = re.compile(r"^(\d{6,})-")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ManualBackend:
    """Writes each request to a folder and waits for a person to write the answer.

    Token usage is approximate: len(text) // 4. Each posted request is announced (by default
    one line on stderr) with the file to read and the file to write, since nothing else
    tells the person at the terminal that the search is waiting for them.

    Args:
        directory: the queue folder (created, with requests/, responses/ and README.txt).
        timeout_s: how long to wait for an answer; None waits forever.
        poll_interval_s: how often to look for the answer.
        notify: where the announcement of each waiting request goes.
    """

    def __init__(
        self, directory: str | Path, *, timeout_s: float | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        notify: Callable[[str], None] = _to_stderr,
    ) -> None:
        self.notify = notify
        self.directory = Path(directory)
        self.requests_dir = self.directory / "requests"
        self.responses_dir = self.directory / "responses"
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.name = f"manual:{self.directory}"
        self.requests_dir.mkdir(parents=True, exist_ok=True)
        self.responses_dir.mkdir(parents=True, exist_ok=True)
        (self.directory / "README.txt").write_text(README, encoding="utf-8")
        self._next_sequence = _first_free_sequence(self.requests_dir)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Post the request and wait for its answer.

        Raises:
            LLMError: kind "timeout" when no answer came within `timeout_s`; kind "malformed"
                for a .json answer without a string "text".
        """
        started = time.perf_counter()
        stem = f"{self._next_sequence:06d}-{request.request_hash()[:12]}"
        self._next_sequence += 1  # no await since reading it, so concurrent calls never clash
        write_json(self.requests_dir / f"{stem}.json", self._request_document(stem, request))
        self.notify(
            f"manual: waiting for an answer to {self.requests_dir / stem}.json; write it to "
            f"{self.responses_dir / stem}.json or .txt (see {self.directory / 'README.txt'})"
        )
        text, finish_reason = await self._wait_for_answer(stem)
        prompt = "".join(message.content for message in request.messages)
        usage = TokenUsage(prompt_tokens=approximate_tokens(prompt),
                           estimated=True, completion_tokens=approximate_tokens(text))
        return LLMResponse(text=text, finish_reason=finish_reason, usage=usage,
                           latency_s=time.perf_counter() - started, model="manual")

    async def aclose(self) -> None:
        return None

    def _request_document(self, stem: str, request: LLMRequest) -> dict[str, Any]:
        return {
            "id": stem,
            "purpose": request.purpose,
            "iteration": request.iteration,
            "request_hash": request.request_hash(),
            "respond_json": str(self.responses_dir / f"{stem}.json"),
            "respond_txt": str(self.responses_dir / f"{stem}.txt"),
            "params": request.params.model_dump(mode="json"),
            "response_schema": request.response_schema,
            "schema_name": request.schema_name,
            "messages": [message.model_dump(mode="json") for message in request.messages],
        }

    async def _wait_for_answer(self, stem: str) -> tuple[str, str | None]:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        json_path = self.responses_dir / f"{stem}.json"
        txt_path = self.responses_dir / f"{stem}.txt"
        last_txt_stat: tuple[int, int] | None = None
        while True:
            answer = _read_json_answer(json_path)
            if answer is not None:
                return answer
            txt_stat = _stat(txt_path)
            if txt_stat is not None and txt_stat == last_txt_stat:
                return txt_path.read_text(encoding="utf-8"), "stop"
            last_txt_stat = txt_stat
            if deadline is not None and time.monotonic() >= deadline:
                raise LLMError(
                    f"no answer in {json_path} or {txt_path} within {self.timeout_s} s",
                    kind=ErrorKind.TIMEOUT,
                )
            await asyncio.sleep(self.poll_interval_s)


def _read_json_answer(path: Path) -> tuple[str, str | None] | None:
    """The answer in a .json response, or None while it is missing or does not parse yet."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # probably half-written; it is read again at the next poll
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        raise LLMError(f'{path} must hold {{"text": "...", "finish_reason": "stop"}}',
                       kind=ErrorKind.MALFORMED)
    finish_reason = document.get("finish_reason", "stop")
    return document["text"], finish_reason if isinstance(finish_reason, str) else None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_size, status.st_mtime_ns


def _first_free_sequence(requests_dir: Path) -> int:
    """One past the highest sequence number already used (so a restarted run never clashes)."""
    numbers = [int(m.group(1)) for p in requests_dir.iterdir() if (m := _SEQUENCE.match(p.name))]
    return max(numbers, default=0) + 1
