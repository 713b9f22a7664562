"""Build a backend from a spec string such as "openai:gpt-4o", "scripted" or "replay:runs/x".

The registry `BACKENDS` maps the prefix before the first ':' to a `BackendSpec`; the rest of
the spec is the builder's argument (a model, a deployment, a folder or a file). Plugins add
backends through the `nasagent.backends` entry-point group. Each builder imports its backend
module itself, so naming or validating a backend never loads the OpenAI SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from nasagent.agent.llm.base import LLMBackend, LLMConfigError
from nasagent.evaluator.registry import Registry

if TYPE_CHECKING:
    from nasagent.agent.llm.retry import RetryPolicy


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
    op_names: str = "standard"
    type_weights: str = "zennas"
    scripted_bad_fraction: float = Field(default=0.0, ge=0, le=1)

    def retry_policy(self) -> RetryPolicy:
        from nasagent.agent.llm.retry import RetryPolicy

        return RetryPolicy(max_attempts=self.max_attempts, initial_wait_s=self.initial_wait_s,
                           max_wait_s=self.max_wait_s)


Builder = Callable[[str, BackendOptions], LLMBackend]


@dataclass(frozen=True)
class BackendSpec:
    """One registered LLM backend.

    Attributes:
        name: the prefix of the spec string (`--llm NAME` or `--llm NAME:ARGUMENT`).
        build: makes the backend from the argument and the shared options.
        argument: what goes after the ':' (for messages), or None when the backend takes none.
        description: one line for help texts.
    """

    name: str
    build: Builder
    argument: str | None
    description: str


def _openai(model: str, options: BackendOptions) -> LLMBackend:
    from nasagent.agent.llm.openai_backend import OpenAIBackend

    return OpenAIBackend.from_env(model, base_url=options.base_url, timeout_s=options.timeout_s,
                                  retry=options.retry_policy())


def _azure(deployment: str, options: BackendOptions) -> LLMBackend:
    from nasagent.agent.llm.openai_backend import OpenAIBackend

    return OpenAIBackend.azure_from_env(deployment, timeout_s=options.timeout_s,
                                        retry=options.retry_policy())


def _scripted(_argument: str, options: BackendOptions) -> LLMBackend:
    from nasagent.agent.llm.scripted import ScriptedBackend

    return ScriptedBackend(options.search_space, bad_fraction=options.scripted_bad_fraction,
                           naming=options.op_names, type_weights=options.type_weights)


def _manual(directory: str, options: BackendOptions) -> LLMBackend:
    from nasagent.agent.llm.manual import ManualBackend

    return ManualBackend(directory, timeout_s=options.manual_timeout_s)


def _replay(path: str, options: BackendOptions) -> LLMBackend:
    from nasagent.agent.llm.replay import ReplayBackend

    try:
        return ReplayBackend.load(path, options.replay_mode)
    except FileNotFoundError as error:
        raise LLMConfigError(f"replay:{path}: no call record at {error.filename}") from error


BACKENDS: Registry[BackendSpec] = Registry("LLM backend", BackendSpec, group="nasagent.backends")
"""The LLM backends by spec prefix; plugins add theirs through `nasagent.backends`."""

for _spec in (
    BackendSpec("openai", _openai, "a model, e.g. openai:gpt-4o",
                "an OpenAI-compatible endpoint through the openai SDK (OPENAI_API_KEY)"),
    BackendSpec("azure", _azure, "a deployment, e.g. azure:gpt-4o",
                "Azure OpenAI through the SDK's Azure client and its environment variables"),
    BackendSpec("scripted", _scripted, None,
                "a deterministic stand-in applying one random mutation (tests, demos)"),
    BackendSpec("manual", _manual, "a folder, e.g. manual:runs/queue",
                "a file queue answered by a person or another program"),
    BackendSpec("replay", _replay, "an llm_calls.jsonl or a run folder, e.g. replay:runs/demo",
                "recorded replies, matched by request hash"),
):
    BACKENDS.register(_spec.name, _spec)


def backend_prefix(spec: str) -> str:
    """The registry name in a spec string: "openai:gpt-4o" -> "openai"."""
    return spec.strip().partition(":")[0]


def check_backend_spec(spec: str) -> BackendSpec:
    """The registered backend a spec names, with its argument checked; builds nothing.

    Raises:
        UnknownNameError: an unknown prefix (the message lists the valid ones).
        LLMConfigError: an argument missing or given where none is taken.
    """
    prefix, _, argument = spec.strip().partition(":")
    backend = BACKENDS.get(prefix)
    if backend.argument is not None and not argument.strip():
        raise LLMConfigError(f"LLM backend spec {spec!r} needs {backend.argument}")
    if backend.argument is None and argument:
        raise LLMConfigError(f"LLM backend {prefix!r} takes no argument; got {spec!r}")
    return backend


def make_backend(spec: str, options: BackendOptions | None = None) -> LLMBackend:
    """Build the backend named by `spec` ("PREFIX" or "PREFIX:ARGUMENT").

    Raises:
        UnknownNameError: an unknown prefix (the message lists the valid ones).
        LLMConfigError: a malformed spec or a backend that cannot be configured (for example a
            missing API key).
    """
    backend = check_backend_spec(spec)
    return backend.build(spec.strip().partition(":")[2].strip(), options or BackendOptions())
