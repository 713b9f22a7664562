"""The LLM layer: one narrow protocol (`LLMBackend`) and interchangeable backends.

Backends: `openai:MODEL` / `azure:DEPLOYMENT` (the real SDK, with a replaceable retry policy),
`scripted` (a deterministic stand-in, not a model), `manual:DIR` (a person answers through
files) and `replay:PATH` (recorded replies). `RecordingBackend` writes every call to
`llm_calls.jsonl`; `FallbackBackend` serves recorded replies before asking a live backend.

Names are imported on first use, so importing one module of the layer (say `llm.base`) never
loads the OpenAI SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "BACKENDS": "nasagent.agent.llm.factory",
    "BackendOptions": "nasagent.agent.llm.factory",
    "BackendSpec": "nasagent.agent.llm.factory",
    "CallRecord": "nasagent.agent.llm.recording",
    "CallRecorder": "nasagent.agent.llm.recording",
    "ErrorKind": "nasagent.agent.llm.base",
    "FallbackBackend": "nasagent.agent.llm.replay",
    "LLMBackend": "nasagent.agent.llm.base",
    "LLMConfigError": "nasagent.agent.llm.base",
    "LLMError": "nasagent.agent.llm.base",
    "LLMRequest": "nasagent.agent.llm.base",
    "LLMResponse": "nasagent.agent.llm.base",
    "ManualBackend": "nasagent.agent.llm.manual",
    "Message": "nasagent.agent.llm.base",
    "NO_RETRY": "nasagent.agent.llm.retry",
    "OpenAIBackend": "nasagent.agent.llm.openai_backend",
    "RecordedReplies": "nasagent.agent.llm.replay",
    "RecordingBackend": "nasagent.agent.llm.recording",
    "ReplayBackend": "nasagent.agent.llm.replay",
    "ResponseFormat": "nasagent.agent.llm.base",
    "RetryPolicy": "nasagent.agent.llm.retry",
    "SamplingParams": "nasagent.agent.llm.base",
    "ScriptedBackend": "nasagent.agent.llm.scripted",
    "TokenUsage": "nasagent.agent.llm.base",
    "load_calls": "nasagent.agent.llm.recording",
    "make_backend": "nasagent.agent.llm.factory",
}

__all__ = [
    "BACKENDS", "NO_RETRY", "BackendOptions", "BackendSpec", "CallRecord", "CallRecorder",
    "ErrorKind", "FallbackBackend", "LLMBackend", "LLMConfigError", "LLMError", "LLMRequest",
    "LLMResponse", "ManualBackend", "Message", "OpenAIBackend", "RecordedReplies",
    "RecordingBackend", "ReplayBackend", "ResponseFormat", "RetryPolicy", "SamplingParams",
    "ScriptedBackend", "TokenUsage", "load_calls", "make_backend",
]


if TYPE_CHECKING:
    from nasagent.agent.llm.base import (
        ErrorKind,
        LLMBackend,
        LLMConfigError,
        LLMError,
        LLMRequest,
        LLMResponse,
        Message,
        ResponseFormat,
        SamplingParams,
        TokenUsage,
    )
    from nasagent.agent.llm.factory import BACKENDS, BackendOptions, BackendSpec, make_backend
    from nasagent.agent.llm.manual import ManualBackend
    from nasagent.agent.llm.openai_backend import OpenAIBackend
    from nasagent.agent.llm.recording import CallRecord, CallRecorder, RecordingBackend, load_calls
    from nasagent.agent.llm.replay import FallbackBackend, RecordedReplies, ReplayBackend
    from nasagent.agent.llm.retry import NO_RETRY, RetryPolicy
    from nasagent.agent.llm.scripted import ScriptedBackend


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
