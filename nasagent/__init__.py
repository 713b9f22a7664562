"""nasagent: LLM-guided neural architecture search with zero-cost proxies.

The public API is the names in `__all__`; everything else is private by convention. Names are
loaded on first use, so `import nasagent` stays cheap (torch loads only with `score`, the
search loop or the LLM SDK with the backends).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "parse": "nasagent.evaluator.spaces",
    "encode": "nasagent.evaluator.spaces",
    "Architecture": "nasagent.evaluator.spaces.zennas.architecture",
    "check": "nasagent.evaluator.validation",
    "check_string": "nasagent.evaluator.validation",
    "Constraints": "nasagent.evaluator.validation",
    "Report": "nasagent.evaluator.validation",
    "count_cost": "nasagent.evaluator.spaces",
    "Cost": "nasagent.evaluator.spaces.base",
    "score": "nasagent.evaluator.proxies",
    "ScoreSettings": "nasagent.evaluator.proxies",
    "ScoreResult": "nasagent.evaluator.proxies",
    "ProxyStatus": "nasagent.evaluator.proxies",
    "RunConfig": "nasagent.agent.config",
    "mutate": "nasagent.agent.mutate",
    "amutate": "nasagent.agent.mutate",
    "MutationResult": "nasagent.agent.mutate",
    "InvalidParentError": "nasagent.agent.mutate",
    "HistoryEntry": "nasagent.agent.outcomes",
    "run_search": "nasagent.agent.search",
    "RunResult": "nasagent.agent.search",
    "run_compare": "nasagent.agent.compare",
    "build_report": "nasagent.agent.report",
    "make_backend": "nasagent.agent.llm.factory",
    "Outcome": "nasagent.agent.outcomes",
    "NasAgentError": "nasagent.evaluator.errors",
    "BlockStringError": "nasagent.evaluator.errors",
    "UnknownNameError": "nasagent.evaluator.errors",
    "ConfigError": "nasagent.agent.config",
    "LLMError": "nasagent.agent.llm.base",
    "LLMConfigError": "nasagent.agent.llm.base",
    "LLMBackend": "nasagent.agent.llm.base",
    "PluginError": "nasagent.evaluator.registry",
    "Registry": "nasagent.evaluator.registry",
    "SEARCH_SPACES": "nasagent.evaluator.spaces",
    "SearchSpace": "nasagent.evaluator.spaces.base",
    "PROXIES": "nasagent.evaluator.proxies",
    "ProxySpec": "nasagent.evaluator.proxies",
    "BACKENDS": "nasagent.agent.llm.factory",
    "BackendSpec": "nasagent.agent.llm.factory",
    "MUTATORS": "nasagent.agent.mutators",
    "MutatorSpec": "nasagent.agent.mutators",
}

__all__ = [
    "__version__",
    "parse",
    "encode",
    "Architecture",
    "check",
    "check_string",
    "Constraints",
    "Report",
    "count_cost",
    "Cost",
    "score",
    "ScoreSettings",
    "ScoreResult",
    "ProxyStatus",
    "mutate",
    "amutate",
    "MutationResult",
    "InvalidParentError",
    "HistoryEntry",
    "RunConfig",
    "run_search",
    "RunResult",
    "run_compare",
    "build_report",
    "make_backend",
    "Outcome",
    "NasAgentError",
    "BlockStringError",
    "UnknownNameError",
    "ConfigError",
    "LLMError",
    "LLMConfigError",
    "LLMBackend",
    "PluginError",
    "Registry",
    "SEARCH_SPACES",
    "SearchSpace",
    "PROXIES",
    "ProxySpec",
    "BACKENDS",
    "BackendSpec",
    "MUTATORS",
    "MutatorSpec",
]

if TYPE_CHECKING:
    __version__: str

    from nasagent.agent.compare import run_compare
    from nasagent.agent.config import ConfigError, RunConfig
    from nasagent.agent.llm.base import LLMBackend, LLMConfigError, LLMError
    from nasagent.agent.llm.factory import BACKENDS, BackendSpec, make_backend
    from nasagent.agent.mutate import InvalidParentError, MutationResult, amutate, mutate
    from nasagent.agent.mutators import MUTATORS, MutatorSpec
    from nasagent.agent.outcomes import HistoryEntry, Outcome
    from nasagent.agent.report import build_report
    from nasagent.agent.search import RunResult, run_search
    from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError
    from nasagent.evaluator.proxies import (
        PROXIES,
        ProxySpec,
        ProxyStatus,
        ScoreResult,
        ScoreSettings,
        score,
    )
    from nasagent.evaluator.registry import PluginError, Registry
    from nasagent.evaluator.spaces import SEARCH_SPACES, count_cost, encode, parse
    from nasagent.evaluator.spaces.base import Cost, SearchSpace
    from nasagent.evaluator.spaces.zennas.architecture import Architecture
    from nasagent.evaluator.validation import Constraints, Report, check, check_string


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nasagent' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # costs: only when asked

    try:
        return version("nasagent")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"
