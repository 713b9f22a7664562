"""The OpenAI backend, driven through the real `openai` SDK against a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from loopback_openai import (
    MISSING_CHOICES,
    Hang,
    LoopbackOpenAI,
    Malformed,
    RateLimited,
    Reply,
    ServerError,
)
from tenacity import RetryCallState

from nasagent.agent.llm import (
    BackendOptions,
    LLMBackend,
    LLMConfigError,
    LLMError,
    LLMRequest,
    Message,
    OpenAIBackend,
    ResponseFormat,
    RetryPolicy,
    SamplingParams,
    make_backend,
)
from nasagent.agent.llm.retry import call_with_retries

KEY = "sk-test-SECRET"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_wait_s=0.01, max_wait_s=1.0)


@pytest.fixture
def server() -> Iterator[LoopbackOpenAI]:
    with LoopbackOpenAI() as running:
        yield running


def make_openai(server: LoopbackOpenAI, timeout_s: float = 5.0,
                retry: RetryPolicy = FAST_RETRY) -> OpenAIBackend:
    return OpenAIBackend.from_env("loopback-model", base_url=server.base_url, timeout_s=timeout_s,
                                  retry=retry, env={"OPENAI_API_KEY": KEY})


def make_request(response_format: ResponseFormat = ResponseFormat.NONE,
                 schema: dict[str, Any] | None = None, **params: Any) -> LLMRequest:
    return LLMRequest(
        purpose="mutation",
        messages=(Message(role="system", content="You design networks."),
                  Message(role="user", content="Mutate SuperConvK3BNRELU(3,8,1,1).")),
        params=SamplingParams(model="loopback-model", response_format=response_format, **params),
        response_schema=schema,
        iteration=3,
    )


def ask(backend: LLMBackend, request: LLMRequest | None = None) -> Any:
    async def go() -> Any:
        try:
            return await backend.complete(request or make_request())
        finally:
            await backend.aclose()
    return asyncio.run(go())


def test_normal_reply_and_request_body(server: LoopbackOpenAI) -> None:
    server.enqueue(Reply("hello", prompt_tokens=12, completion_tokens=5))
    response = ask(make_openai(server), make_request(temperature=0.7, max_tokens=50, seed=4))
    assert (response.text, response.finish_reason, response.attempts) == ("hello", "stop", 1)
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 5)
    assert response.usage.total_tokens == 17
    assert response.model == "loopback-model"
    [received] = server.received
    assert received.headers["authorization"] == f"Bearer {KEY}"
    body = received.body
    assert body["model"] == "loopback-model"
    assert body["messages"][1] == {"role": "user", "content": "Mutate SuperConvK3BNRELU(3,8,1,1)."}
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.7, 50, 4)
    assert "response_format" not in body


def test_unset_params_are_omitted(server: LoopbackOpenAI) -> None:
    ask(make_openai(server))
    body = server.received[0].body
    assert not {"temperature", "max_tokens", "seed", "response_format"} & set(body)


def test_rate_limit_honours_retry_after(server: LoopbackOpenAI) -> None:
    server.enqueue(RateLimited(retry_after_s=0.2), Reply("after the wait"))
    response = ask(make_openai(server))
    assert response.text == "after the wait"
    assert response.attempts == 2
    assert response.latency_s >= 0.2
    assert len(server.received) == 2


def test_server_error_then_success(server: LoopbackOpenAI) -> None:
    server.enqueue(ServerError(500), Reply("recovered"))
    response = ask(make_openai(server))
    assert (response.text, response.attempts) == ("recovered", 2)


def test_hang_past_timeout_then_success(server: LoopbackOpenAI) -> None:
    server.enqueue(Hang(seconds=10), Reply("fast this time"))
    response = ask(make_openai(server, timeout_s=0.3))
    assert (response.text, response.attempts) == ("fast this time", 2)


@pytest.mark.parametrize("broken", [Malformed(), MISSING_CHOICES], ids=["not-json", "no-choices"])
def test_malformed_then_success(server: LoopbackOpenAI, broken: Malformed) -> None:
    server.enqueue(broken, Reply("well-formed"))
    response = ask(make_openai(server))
    assert (response.text, response.attempts) == ("well-formed", 2)


def test_exhausted_retries_raise_llm_error(server: LoopbackOpenAI) -> None:
    server.enqueue(ServerError(503), ServerError(500), ServerError(502))
    with pytest.raises(LLMError) as caught:
        ask(make_openai(server))
    assert caught.value.kind == "server"
    assert caught.value.attempts == 3
    assert "gave up after 3 attempts" in str(caught.value)
    assert len(server.received) == 3


def test_exhausted_malformed_is_malformed(server: LoopbackOpenAI) -> None:
    server.enqueue(MISSING_CHOICES, MISSING_CHOICES, MISSING_CHOICES)
    with pytest.raises(LLMError) as caught:
        ask(make_openai(server))
    assert (caught.value.kind, caught.value.attempts) == ("malformed", 3)


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (400, "bad_request")])
def test_client_errors_are_not_retried(server: LoopbackOpenAI, status: int, kind: str) -> None:
    server.enqueue(ServerError(status, "nope"), Reply("never asked"))
    with pytest.raises(LLMError) as caught:
        ask(make_openai(server))
    assert (caught.value.kind, caught.value.attempts) == (kind, 1)
    assert len(server.received) == 1


def test_finish_reason_length_passes_through(server: LoopbackOpenAI) -> None:
    server.enqueue(Reply("truncat", finish_reason="length"))
    assert ask(make_openai(server)).finish_reason == "length"


def test_json_schema_request_body(server: LoopbackOpenAI) -> None:
    schema = {"type": "object", "properties": {"arch": {"type": "string"}},
              "required": ["arch"], "additionalProperties": False}
    ask(make_openai(server), make_request(ResponseFormat.JSON_SCHEMA, schema))
    assert server.received[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


def test_json_object_request_body(server: LoopbackOpenAI) -> None:
    ask(make_openai(server), make_request(ResponseFormat.JSON_OBJECT))
    assert server.received[0].body["response_format"] == {"type": "json_object"}


def test_json_schema_without_schema_is_a_bad_request(server: LoopbackOpenAI) -> None:
    with pytest.raises(LLMError) as caught:
        ask(make_openai(server), make_request(ResponseFormat.JSON_SCHEMA))
    assert caught.value.kind == "bad_request"
    assert not server.received


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        make_backend("openai:gpt-4o", BackendOptions())


def test_missing_azure_settings_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(LLMConfigError) as caught:
        make_backend("azure:gpt-4o", BackendOptions())
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"):
        assert var in str(caught.value)


def test_azure_deployment_through_the_sdk(server: LoopbackOpenAI) -> None:
    env = {"AZURE_OPENAI_API_KEY": KEY, "OPENAI_API_VERSION": "2024-06-01",
           "AZURE_OPENAI_ENDPOINT": server.base_url.removesuffix("/v1")}
    backend = OpenAIBackend.azure_from_env("my-deployment", retry=FAST_RETRY, env=env)
    assert backend.name == "azure:my-deployment"
    server.enqueue(Reply("from azure"))
    assert ask(backend).text == "from azure"
    [received] = server.received
    assert "/openai/deployments/my-deployment/chat/completions" in received.path
    assert received.headers["api-key"] == KEY


def test_factory_builds_openai_backend_from_env(
    server: LoopbackOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    backend = make_backend("openai:loopback-model", BackendOptions(max_attempts=2))
    assert backend.name == "openai:loopback-model"
    server.enqueue(Reply("via env"))
    assert ask(backend).text == "via env"


def test_concurrent_calls_are_in_flight_together() -> None:
    with LoopbackOpenAI(latency_s=0.2) as server:
        backend = make_openai(server)

        async def many() -> list[str]:
            try:
                replies = await asyncio.gather(*(backend.complete(make_request(seed=i))
                                                 for i in range(4)))
                return [reply.text for reply in replies]
            finally:
                await backend.aclose()

        texts = asyncio.run(many())
    assert len(texts) == 4
    assert server.max_in_flight >= 2


def _state_after(error: LLMError, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_wait_s=60, max_retry_after_s=2.0)
    hinted = LLMError("slow down", kind="rate_limit", retry_after_s=3600)
    assert policy._wait(_state_after(hinted)) == 2.0


def test_backoff_is_bounded_by_max_wait() -> None:
    policy = RetryPolicy(initial_wait_s=10, max_wait_s=0.5)
    waits = [policy._wait(_state_after(LLMError("x", kind="server"), n)) for n in range(1, 6)]
    assert all(0 <= wait <= 0.5 for wait in waits)


def test_replaceable_policy_controls_attempts() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise LLMError("down", kind="connection")

    with pytest.raises(LLMError) as caught:
        asyncio.run(call_with_retries(RetryPolicy(max_attempts=2, initial_wait_s=0), flaky))
    assert (calls, caught.value.attempts, caught.value.kind) == (2, 2, "connection")
