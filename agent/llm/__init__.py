"""The LLM layer: one narrow protocol (`LLMBackend`) and interchangeable backends.

Backends: `openai:MODEL` / `azure:DEPLOYMENT` (the real SDK, with a replaceable retry policy),
`scripted` (a deterministic stand-in, not a model), `manual:DIR` (a person answers through
files) and `replay:PATH` (recorded replies). `RecordingBackend` writes every call to
`llm_calls.jsonl`; `FallbackBackend` serves recorded replies before asking a live backend.
"""

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
from nasagent.agent.llm.factory import BACKENDS, BackendOptions, make_backend
from nasagent.agent.llm.manual import ManualBackend
from nasagent.agent.llm.openai_backend import OpenAIBackend
from nasagent.agent.llm.recording import (
    CallRecord,
    CallRecorder,
    RecordingBackend,
    load_calls,
)
from nasagent.agent.llm.replay import FallbackBackend, RecordedReplies, ReplayBackend
from nasagent.agent.llm.retry import NO_RETRY, RetryPolicy
from nasagent.agent.llm.scripted import ScriptedBackend

__all__ = [
    "BACKENDS", "NO_RETRY", "BackendOptions", "CallRecord", "CallRecorder",
    "ErrorKind", "FallbackBackend", "LLMBackend", "LLMConfigError", "LLMError", "LLMRequest",
    "LLMResponse", "ManualBackend", "Message", "OpenAIBackend", "RecordedReplies",
    "RecordingBackend", "ReplayBackend", "ResponseFormat", "RetryPolicy", "SamplingParams",
    "ScriptedBackend", "TokenUsage", "load_calls", "make_backend",
]
