"""The OpenAI and Azure OpenAI chat-completions backends (the real `openai` SDK).

The SDK's own retries are switched off (`max_retries=0`) so that one policy, `RetryPolicy`,
decides what is retried and the number of attempts is known and recorded. Credentials come
only from the environment and are never logged, stored or recorded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI

from nasagent.agent.llm.base import (
    ErrorKind,
    LLMConfigError,
    LLMError,
    LLMRequest,
    LLMResponse,
    ResponseFormat,
    TokenUsage,
)
from nasagent.agent.llm.retry import RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

MAX_ERROR_BODY_CHARS = 300


class OpenAIBackend:
    """Chat completions through an `AsyncOpenAI` (or `AsyncAzureOpenAI`) client.

    The backend's model (or Azure deployment) is what is sent; `request.params.model` should
    name the same model, and a mismatch is logged once, because recordings key on it.
    """

    def __init__(
        self, model: str, client: AsyncOpenAI, *, name: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model = model
        self.name = name or f"openai:{model}"
        self.retry = retry or RetryPolicy()
        self._client = client
        self._warned_models: set[str] = set()

    @classmethod
    def from_env(
        cls, model: str, *, base_url: str | None = None, timeout_s: float = 60.0,
        retry: RetryPolicy | None = None, env: Mapping[str, str] | None = None,
    ) -> OpenAIBackend:
        """Build an OpenAI backend; the key comes from OPENAI_API_KEY.

        Raises:
            LLMConfigError: OPENAI_API_KEY is not set.
        """
        env = os.environ if env is None else env
        api_key = env.get("OPENAI_API_KEY")
        if not api_key:
            raise LLMConfigError(
                f"backend openai:{model} needs an API key: set the OPENAI_API_KEY environment "
                f"variable (and OPENAI_BASE_URL or --base-url for a compatible server)"
            )
        client = AsyncOpenAI(
            api_key=api_key, base_url=base_url or env.get("OPENAI_BASE_URL") or None,
            timeout=timeout_s, max_retries=0,
        )
        return cls(model, client, retry=retry)

    @classmethod
    def azure_from_env(
        cls, deployment: str, *, timeout_s: float = 60.0, retry: RetryPolicy | None = None,
        env: Mapping[str, str] | None = None,
    ) -> OpenAIBackend:
        """Build an Azure OpenAI backend from AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and
        OPENAI_API_VERSION.

        Raises:
            LLMConfigError: naming every variable that is missing.
        """
        env = os.environ if env is None else env
        required = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION")
        missing = [var for var in required if not env.get(var)]
        if missing:
            raise LLMConfigError(
                f"backend azure:{deployment} needs the environment variable(s) "
                f"{', '.join(missing)}"
            )
        client = AsyncAzureOpenAI(
            api_key=env["AZURE_OPENAI_API_KEY"], azure_endpoint=env["AZURE_OPENAI_ENDPOINT"],
            api_version=env["OPENAI_API_VERSION"], azure_deployment=deployment,
            timeout=timeout_s, max_retries=0,
        )
        return cls(deployment, client, name=f"azure:{deployment}", retry=retry)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Ask the model, retrying transient failures under `self.retry`.

        Raises:
            LLMError: after the last attempt, or at once for errors that are not transient.
        """
        arguments = self._arguments(request)
        started = time.perf_counter()
        response, attempts = await call_with_retries(self.retry, lambda: self._attempt(arguments))
        latency = time.perf_counter() - started
        return response.model_copy(update={"latency_s": latency, "attempts": attempts})

    async def aclose(self) -> None:
        await self._client.close()

    def _arguments(self, request: LLMRequest) -> dict[str, Any]:
        params = request.params
        if params.model != self.model and params.model not in self._warned_models:
            self._warned_models.add(params.model)
            logger.warning(
                "request names model %r; %s sends %r", params.model, self.name, self.model
            )
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": [message.model_dump() for message in request.messages],
        }
        optional = {"temperature": params.temperature, "max_tokens": params.max_tokens,
                    "seed": params.seed}
        arguments.update({key: value for key, value in optional.items() if value is not None})
        response_format = _response_format(request)
        if response_format is not None:
            arguments["response_format"] = response_format
        return arguments

    async def _attempt(self, arguments: dict[str, Any]) -> LLMResponse:
        try:
            completion = await self._client.chat.completions.create(**arguments)
        except openai.OpenAIError as error:
            raise classify_error(error) from error
        except json.JSONDecodeError as error:  # the SDK lets an invalid JSON body through as-is
            raise LLMError(f"malformed reply: body is not JSON ({error})",
                           kind=ErrorKind.MALFORMED) from error
        return _to_response(completion)


def _response_format(request: LLMRequest) -> dict[str, Any] | None:
    kind = request.params.response_format
    if kind is ResponseFormat.NONE:
        return None
    if kind is ResponseFormat.JSON_OBJECT:
        return {"type": "json_object"}
    if request.response_schema is None:
        raise LLMError(
            "response_format json_schema needs a response_schema", kind=ErrorKind.BAD_REQUEST
        )
    schema = {"name": request.schema_name, "schema": request.response_schema, "strict": True}
    return {"type": "json_schema", "json_schema": schema}


def _to_response(completion: Any) -> LLMResponse:
    """Turn an SDK ChatCompletion into our response; a reply without text is malformed."""
    choices = getattr(completion, "choices", None)
    if not choices:
        raise LLMError("the reply has no choices", kind=ErrorKind.MALFORMED)
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str):
        refusal = getattr(message, "refusal", None)
        detail = f" (refusal: {refusal})" if refusal else ""
        raise LLMError(f"the reply has no message content{detail}", kind=ErrorKind.MALFORMED)
    return LLMResponse(
        text=text, finish_reason=getattr(choice, "finish_reason", None),
        usage=_usage(getattr(completion, "usage", None)), latency_s=0.0,
        model=getattr(completion, "model", None),
    )


def _usage(usage: Any) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cached_tokens=getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0)
        or 0,
    )


def classify_error(error: openai.OpenAIError) -> LLMError:
    """Map an SDK exception to an `LLMError` with a kind the retry policy understands."""
    if isinstance(error, openai.APITimeoutError):
        return LLMError(f"request timed out: {error}", kind=ErrorKind.TIMEOUT)
    if isinstance(error, openai.APIConnectionError):
        return LLMError(f"connection failed: {error}", kind=ErrorKind.CONNECTION)
    if isinstance(error, openai.APIResponseValidationError):
        return LLMError(f"malformed reply: {error.message}", kind=ErrorKind.MALFORMED)
    if isinstance(error, openai.APIStatusError):
        return _status_error(error)
    return LLMError(f"malformed reply: {type(error).__name__}: {error}", kind=ErrorKind.MALFORMED)


def _status_error(error: openai.APIStatusError) -> LLMError:
    status = error.status_code
    kind = _status_kind(status)
    body = str(error.body if error.body is not None else error.message)[:MAX_ERROR_BODY_CHARS]
    retry_after = retry_after_seconds(error.response.headers)
    return LLMError(f"HTTP {status}: {body}", kind=kind, retry_after_s=retry_after)


def _status_kind(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 408:
        return ErrorKind.TIMEOUT
    if status >= 500:
        return ErrorKind.SERVER
    return ErrorKind.BAD_REQUEST


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's Retry-After hint in seconds (`retry-after-ms` or numeric `retry-after`).

    An HTTP-date Retry-After is ignored (the backoff applies instead); it is rare for LLM APIs.
    """
    for header, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None
