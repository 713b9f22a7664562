"""The call record (llm_calls.jsonl), exact replay, and resume through FallbackBackend."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import pytest
from loopback_openai import LoopbackOpenAI, Reply, ServerError

from nasagent.agent.llm import (
    NO_RETRY,
    BackendOptions,
    CallRecord,
    CallRecorder,
    FallbackBackend,
    LLMBackend,
    LLMError,
    LLMRequest,
    LLMResponse,
    Message,
    OpenAIBackend,
    RecordedReplies,
    RecordingBackend,
    ReplayBackend,
    SamplingParams,
    ScriptedBackend,
    TokenUsage,
    load_calls,
    make_backend,
)
from nasagent.agent.llm.recording import CallRecordError
from nasagent.agent.runlog import LLM_CALLS_FILE
from nasagent.evaluator import CIFAR_SEED

KEY = "sk-test-SECRET"


def mutation_request(seed: int = 0, iteration: int = 1, purpose: str = "mutation",
                     parent: str = CIFAR_SEED) -> LLMRequest:
    parent_json = json.dumps({"arch": parent, "type": "gradnorm", "score": None})
    user = f"Mutate the architecture below.\n```json\n{parent_json}\n```\nThen explain."
    return LLMRequest(
        purpose=purpose,
        messages=(Message(role="system", content="You are an expert."),
                  Message(role="user", content=user)),
        params=SamplingParams(model="scripted", temperature=0.5, seed=seed), iteration=iteration,
    )


def run(backend: LLMBackend, *requests: LLMRequest) -> list[LLMResponse]:
    async def go() -> list[LLMResponse]:
        return [await backend.complete(r) for r in requests]
    return asyncio.run(go())


def record_scripted(path: Path, *requests: LLMRequest) -> list[LLMResponse]:
    with CallRecorder(path) as recorder:
        return run(RecordingBackend(ScriptedBackend(), recorder), *requests)


def fake_record(request: LLMRequest, text: str, latency_s: float = 1.5) -> CallRecord:
    response = LLMResponse(text=text, finish_reason="stop", usage=TokenUsage(prompt_tokens=3),
                           latency_s=latency_s, model="m")
    return CallRecord.of(request, "fake", response, None)


class CountingBackend:
    """A live backend stand-in that counts what it is asked."""

    name = "counting"

    def __init__(self) -> None:
        self.asked: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.asked.append(request)
        return LLMResponse(text=f"live {len(self.asked)}", finish_reason="stop",
                           usage=TokenUsage(), latency_s=0.0)

    async def aclose(self) -> None:
        return None


# --- request hash -----------------------------------------------------------------------------

def test_request_hash_is_canonical_json_of_what_the_model_sees() -> None:
    request = mutation_request(seed=7)
    payload = {"messages": [m.model_dump(mode="json") for m in request.messages],
               "params": request.params.model_dump(mode="json"), "response_schema": None}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert request.request_hash() == hashlib.sha256(canonical.encode()).hexdigest()


def test_request_hash_ignores_metadata_only() -> None:
    base = mutation_request()
    assert base.request_hash() == mutation_request(iteration=9, purpose="repair").request_hash()
    assert base.request_hash() != mutation_request(seed=1).request_hash()
    with_schema = base.model_copy(update={"response_schema": {"type": "object"}})
    assert base.request_hash() != with_schema.request_hash()


# --- recording ----------------------------------------------------------------------------------

def test_recording_contents_and_no_credentials(tmp_path: Path) -> None:
    path = tmp_path / LLM_CALLS_FILE
    with LoopbackOpenAI() as server, CallRecorder(path) as recorder:
        server.enqueue(Reply("fine", finish_reason="length"), ServerError(401, "bad key"))
        live = OpenAIBackend.from_env("scripted", base_url=server.base_url, retry=NO_RETRY,
                                      env={"OPENAI_API_KEY": KEY})
        backend = RecordingBackend(live, recorder)

        async def one_ok_one_failed() -> None:
            await backend.complete(mutation_request(iteration=4))
            with pytest.raises(LLMError):
                await backend.complete(mutation_request(seed=2, iteration=5))
            await backend.aclose()

        asyncio.run(one_ok_one_failed())
        assert server.received[0].headers["authorization"] == f"Bearer {KEY}"
    text = path.read_text()
    assert KEY not in text and "authorization" not in text.lower()
    ok, failed = (json.loads(line) for line in text.splitlines())
    assert set(ok) >= {"request_hash", "purpose", "iteration", "backend", "messages", "params",
                       "response_schema", "response", "error", "timestamp"}
    assert ok["request_hash"] == mutation_request(iteration=4).request_hash()
    assert (ok["purpose"], ok["iteration"], ok["backend"]) == ("mutation", 4, "openai:scripted")
    assert ok["response"]["text"] == "fine" and ok["response"]["finish_reason"] == "length"
    assert ok["response"]["attempts"] == 1 and ok["error"] is None
    assert failed["response"] is None
    assert (failed["error"]["kind"], failed["error"]["attempts"]) == ("auth", 1)


def test_load_calls_round_trip(tmp_path: Path) -> None:
    responses = record_scripted(tmp_path / LLM_CALLS_FILE, mutation_request(0), mutation_request(1))
    records = load_calls(tmp_path)  # a run directory works too
    assert [r.response.text for r in records if r.response] == [r.text for r in responses]
    assert records[0].to_request().request_hash() == records[0].request_hash


def test_torn_last_line_is_skipped_then_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / LLM_CALLS_FILE
    record_scripted(path, mutation_request(0), mutation_request(1))
    with path.open("a") as file:
        file.write('{"request_hash": "abc", "purpose": "mutat')  # killed mid-write
    with caplog.at_level(logging.WARNING, logger="nasagent.agent.llm.recording"):
        assert len(load_calls(path)) == 2
    assert "torn" in caplog.text
    record_scripted(path, mutation_request(2))  # reopening cuts the fragment before appending
    assert len(load_calls(path)) == 3
    assert path.read_text().endswith("\n")


def test_a_new_recorder_creates_an_empty_valid_record(tmp_path: Path) -> None:
    with CallRecorder(tmp_path / "run" / LLM_CALLS_FILE):
        pass
    assert load_calls(tmp_path / "run") == []


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / LLM_CALLS_FILE
    record_scripted(path, mutation_request(0))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["{not json", *lines]) + "\n")
    with pytest.raises(CallRecordError, match="line 1"):
        load_calls(path)


# --- replay -------------------------------------------------------------------------------------

def test_strict_replay_serves_recorded_replies(tmp_path: Path) -> None:
    requests = [mutation_request(seed) for seed in range(3)]
    original = record_scripted(tmp_path / LLM_CALLS_FILE, *requests)
    backend = make_backend(f"replay:{tmp_path}", BackendOptions())
    replayed = run(backend, *reversed(requests))
    assert [r.text for r in reversed(replayed)] == [r.text for r in original]
    assert [r.latency_s for r in reversed(replayed)] == [r.latency_s for r in original]


def test_same_hash_is_first_in_first_out() -> None:
    request = mutation_request()
    replies = RecordedReplies([fake_record(request, "first"), fake_record(request, "second")])
    assert [r.text for r in run(ReplayBackend(replies), request, request)] == ["first", "second"]


def test_strict_miss_names_the_closest_request_with_a_diff() -> None:
    recorded = [fake_record(mutation_request(seed=1), "a"),
                fake_record(mutation_request(parent="SuperConvK3BNRELU(3,8,1,1)"), "b"),
                fake_record(mutation_request(purpose="reflection"), "c")]
    backend = ReplayBackend(RecordedReplies(recorded, source="calls.jsonl"))
    wanted = mutation_request(seed=2, iteration=7)
    with pytest.raises(LLMError) as caught:
        run(backend, wanted)
    message = str(caught.value)
    assert caught.value.kind == "replay_miss"
    assert f"request {wanted.request_hash()[:12]} (mutation, iteration 7)" in message
    assert f"closest recorded request is request {recorded[0].request_hash[:12]}" in message
    assert '-params: {"max_tokens": null, "model": "scripted", "response_format": "none", ' \
           '"seed": 1' in message
    assert '+params: {"max_tokens": null' in message


def test_strict_miss_after_replies_are_used_up() -> None:
    request = mutation_request()
    backend = ReplayBackend(RecordedReplies([fake_record(request, "only once")]))
    run(backend, request)
    with pytest.raises(LLMError, match="recorded 1 time"):
        run(backend, request)


def test_recorded_error_is_replayed_as_the_same_error() -> None:
    request = mutation_request()
    error = LLMError("gave up after 5 attempts; last error: HTTP 429", kind="rate_limit",
                     attempts=5)
    replies = RecordedReplies([CallRecord.of(request, "openai:m", None, error)])
    with pytest.raises(LLMError) as caught:
        run(ReplayBackend(replies), request)
    assert (caught.value.kind, caught.value.attempts) == ("rate_limit", 5)
    assert caught.value.message == error.message


def test_sequential_replay_warns_on_mismatch(caplog: pytest.LogCaptureFixture) -> None:
    replies = RecordedReplies([fake_record(mutation_request(0), "r0"),
                               fake_record(mutation_request(1), "r1")])
    backend = ReplayBackend(replies, mode="sequential")
    with caplog.at_level(logging.WARNING, logger="nasagent.agent.llm.replay"):
        texts = [r.text for r in run(backend, mutation_request(0), mutation_request(5))]
    assert texts == ["r0", "r1"]
    warnings = [r for r in caplog.records if r.name == "nasagent.agent.llm.replay"]
    assert len(warnings) == 1 and "differs from the recorded" in warnings[0].getMessage()
    with pytest.raises(LLMError, match="all 2 recorded replies"):
        run(backend, mutation_request(0))


def test_replay_of_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="no call record"):
        make_backend(f"replay:{tmp_path / 'nowhere.jsonl'}", BackendOptions())


# --- resume -------------------------------------------------------------------------------------

def test_fallback_serves_recorded_first_and_asks_live_on_a_miss() -> None:
    request = mutation_request()
    live = CountingBackend()
    backend = FallbackBackend(RecordedReplies([fake_record(request, "recorded")]), live)
    texts = [r.text for r in run(backend, request, request, mutation_request(1))]
    assert texts == ["recorded", "live 1", "live 2"]
    assert (backend.replayed, backend.asked, backend.name) == (1, 2, "replay+counting")


def test_fallback_can_re_ask_recorded_failures() -> None:
    request = mutation_request()
    failed = CallRecord.of(request, "x", None, LLMError("down", kind="server", attempts=5))
    live = CountingBackend()
    with pytest.raises(LLMError):
        run(FallbackBackend(RecordedReplies([failed]), live), request)
    backend = FallbackBackend(RecordedReplies([failed]), live, replay_errors=False)
    assert run(backend, request)[0].text == "live 1"


def test_resume_after_kill_asks_only_what_was_not_answered(tmp_path: Path) -> None:
    path = tmp_path / LLM_CALLS_FILE
    requests = [mutation_request(seed) for seed in range(4)]
    first_run = record_scripted(path, *requests[:3])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:40])  # kill -9 while writing the third
    live = CountingBackend()
    with CallRecorder(path) as recorder:
        backend = FallbackBackend(RecordedReplies.load(tmp_path), RecordingBackend(live, recorder))
        resumed = run(backend, *requests)
    assert [r.text for r in resumed[:2]] == [r.text for r in first_run[:2]]
    assert live.asked == requests[2:]
    assert [r.backend for r in load_calls(path)] == ["scripted", "scripted", "counting", "counting"]
