"""The manual file-queue backend, answered by a responder thread playing the person."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nasagent.agent.llm import LLMError, LLMRequest, ManualBackend, Message, SamplingParams

Answer = Callable[[Path, dict[str, Any]], None]


def request(text: str = "Mutate it.", iteration: int = 1) -> LLMRequest:
    return LLMRequest(purpose="mutation", messages=(Message(role="user", content=text),),
                      params=SamplingParams(model="manual", temperature=0.0), iteration=iteration)


def write_json_by_rename(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def answer_json(path: Path, req: dict[str, Any]) -> None:
    text = f"answer to {req['messages'][-1]['content']}"
    write_json_by_rename(Path(req["respond_json"]), {"text": text, "finish_reason": "stop"})


@contextmanager
def responder(directory: Path, answer: Answer, order: Callable[[list[Path]], list[Path]] = sorted,
              batch: int = 1) -> Iterator[list[dict[str, Any]]]:
    """A thread that answers each request file once `batch` of them are pending."""
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def run() -> None:
        done: set[Path] = set()
        while not stop.is_set():
            pending = [p for p in (directory / "requests").glob("*.json") if p not in done]
            if len(pending) >= batch:
                for path in order(pending):
                    document = json.loads(path.read_text())
                    seen.append(document)
                    answer(path, document)
                    done.add(path)
            stop.wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=5)


def ask(backend: ManualBackend, *requests: LLMRequest) -> list[Any]:
    async def go() -> list[Any]:
        return list(await asyncio.gather(*(backend.complete(r) for r in requests)))
    return asyncio.run(go())


def test_json_answer_and_request_file(tmp_path: Path) -> None:
    backend = ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02)
    with responder(tmp_path, answer_json) as seen:
        [response] = ask(backend, request("Mutate it."))
    assert response.text == "answer to Mutate it."
    assert response.finish_reason == "stop"
    [document] = seen
    req = request("Mutate it.")
    assert document["id"] == f"000001-{req.request_hash()[:12]}"
    assert (document["purpose"], document["iteration"]) == ("mutation", 1)
    assert document["messages"] == [{"role": "user", "content": "Mutate it."}]
    assert document["params"]["temperature"] == 0.0
    assert document["respond_json"] == str(tmp_path / "responses" / f"{document['id']}.json")
    assert "you are the language model" in (tmp_path / "README.txt").read_text()
    assert not list((tmp_path / "requests").glob("*.tmp"))


def test_txt_answer(tmp_path: Path) -> None:
    def answer_txt(path: Path, req: dict[str, Any]) -> None:
        Path(req["respond_txt"]).write_text("```json\n{\"arch\": \"x\"}\n```\n")

    backend = ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02)
    with responder(tmp_path, answer_txt):
        [response] = ask(backend, request())
    assert response.text == "```json\n{\"arch\": \"x\"}\n```\n"


def test_half_written_json_is_waited_for(tmp_path: Path) -> None:
    def slow_writer(path: Path, req: dict[str, Any]) -> None:
        target = Path(req["respond_json"])
        target.write_text('{"text": "comple')  # a writer that did not rename into place
        time.sleep(0.2)
        target.write_text('{"text": "complete", "finish_reason": "length"}')

    backend = ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02)
    with responder(tmp_path, slow_writer):
        [response] = ask(backend, request())
    assert (response.text, response.finish_reason) == ("complete", "length")


def test_concurrent_requests_answered_out_of_order(tmp_path: Path) -> None:
    backend = ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02)
    newest_first = lambda paths: sorted(paths, reverse=True)  # noqa: E731
    with responder(tmp_path, answer_json, order=newest_first, batch=3) as seen:
        responses = ask(backend, request("a"), request("b"), request("c"))
    assert [r.text for r in responses] == ["answer to a", "answer to b", "answer to c"]
    assert [d["id"][:6] for d in seen] == ["000003", "000002", "000001"]


def test_restart_continues_the_sequence(tmp_path: Path) -> None:
    with responder(tmp_path, answer_json):
        ask(ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02), request("one"))
        ask(ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02), request("two"))
    names = sorted(p.name[:6] for p in (tmp_path / "requests").glob("*.json"))
    assert names == ["000001", "000002"]


def test_no_answer_times_out(tmp_path: Path) -> None:
    backend = ManualBackend(tmp_path, timeout_s=0.1, poll_interval_s=0.02)
    with pytest.raises(LLMError) as caught:
        ask(backend, request())
    assert caught.value.kind == "timeout"
    assert "responses" in str(caught.value)


def test_json_answer_without_text_is_malformed(tmp_path: Path) -> None:
    def wrong_shape(path: Path, req: dict[str, Any]) -> None:
        write_json_by_rename(Path(req["respond_json"]), {"answer": "forgot the key"})

    backend = ManualBackend(tmp_path, timeout_s=10, poll_interval_s=0.02)
    with responder(tmp_path, wrong_shape), pytest.raises(LLMError) as caught:
        ask(backend, request())
    assert caught.value.kind == "malformed"
