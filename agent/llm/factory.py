"""Build a backend from a spec string such as "openai:gpt-4o", "scripted" or "replay:runs/x".

The registry maps the prefix before the first ':' to a builder; the rest of the spec is the
builder's argument (a model, a deployment, a folder or a file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nasagent.agent.llm.base import LLMBackend, LLMConfigError
from nasagent.agent.llm.manual import ManualBackend
from nasagent.agent.llm.openai_backend import OpenAIBackend
from nasagent.agent.llm.replay import ReplayBackend
from nasagent.agent.llm.retry import RetryPolicy
from nasagent.agent.llm.scripted import ScriptedBackend
from nasagent.evaluator.errors import UnknownNameError


class BackendOptions(BaseModel):
    """Options shared by the backends; each builder reads the ones it needs."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    timeout_s: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    max_wait_s: float = Field(default=60, ge=0)
    initial_wait_s: float = Field(default=1.0, ge=0)
    replay_mode: Literal["strict", "sequential"] = "strict"
    manual_timeout_s: float | None = None
    search_space: str = "zennas-cifar"
    scripted_bad_fraction: float = Field(default=0.0, ge=0, le=1)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, initial_wait_s=self.initial_wait_s,
                           max_wait_s=self.max_wait_s)


Builder = Callable[[str, BackendOptions], LLMBackend]


def _openai(model: str, options: BackendOptions) -> LLMBackend:
    return OpenAIBackend.from_env(model, base_url=options.base_url, timeout_s=options.timeout_s,
                                  retry=options.retry_policy())


def _azure(deployment: str, options: BackendOptions) -> LLMBackend:
    return OpenAIBackend.azure_from_env(deployment, timeout_s=options.timeout_s,
                                        retry=options.retry_policy())


def _scripted(_argument: str, options: BackendOptions) -> LLMBackend:
    return ScriptedBackend(options.search_space, bad_fraction=options.scripted_bad_fraction)


def _manual(directory: str, options: BackendOptions) -> LLMBackend:
    return ManualBackend(directory, timeout_s=options.manual_timeout_s)


def _replay(path: str, options: BackendOptions) -> LLMBackend:
    try:
        return ReplayBackend.load(path, options.replay_mode)
    except FileNotFoundError as error:
        raise LLMConfigError(f"replay:{path}: no call record at {error.filename}") from error


BACKENDS: dict[str, tuple[Builder, str | None]] = {
    "openai": (_openai, "a model, e.g. openai:gpt-4o"),
    "azure": (_azure, "a deployment, e.g. azure:gpt-4o"),
    "scripted": (_scripted, None),
    "manual": (_manual, "a folder, e.g. manual:runs/queue"),
    "replay": (_replay, "an llm_calls.jsonl or a run folder, e.g. replay:runs/demo"),
}
"""Backend prefix -> (builder, what goes after the ':' or None when nothing does)."""


def make_backend(spec: str, options: BackendOptions | None = None) -> LLMBackend:
    """Build the backend named by `spec` ("PREFIX" or "PREFIX:ARGUMENT").

    Raises:
        UnknownNameError: an unknown prefix (the message lists the valid ones).
        LLMConfigError: a malformed spec or a backend that cannot be configured (for example a
            missing API key).
    """
    builder, argument = check_backend_spec(spec)
    return builder(argument, options or BackendOptions())


def check_backend_spec(spec: str) -> tuple[Builder, str]:
    """The builder and argument of `spec`, checked without building anything.

    Raises:
        UnknownNameError: an unknown prefix (the message lists the valid ones).
        LLMConfigError: an argument missing where one is needed, or given where none is.
    """
    prefix, _, argument = spec.strip().partition(":")
    if prefix not in BACKENDS:
        raise UnknownNameError("LLM backend", prefix, BACKENDS)
    builder, wants = BACKENDS[prefix]
    if wants is not None and not argument.strip():
        raise LLMConfigError(f"LLM backend spec {spec!r} needs {wants}")
    if wants is None and argument:
        raise LLMConfigError(f"LLM backend {prefix!r} takes no argument; got {spec!r}")
    return builder, argument.strip()
