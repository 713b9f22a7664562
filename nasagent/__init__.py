"""nasagent: LLM-guided neural architecture search with zero-cost proxies.

The public API is the names in `__all__`; everything else is private by convention. Names are
loaded on first use, so `import nasagent` stays cheap (torch loads only with `score`, the
search loop or the LLM SDK with the backends).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("nasagent")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

_EXPORTS: dict[str, str] = {
    "parse": "nasagent.evaluator.codec",
    "encode": "nasagent.evaluator.codec",
    "Architecture": "nasagent.evaluator.architecture",
    "check": "nasagent.evaluator.validation",
    "check_string": "nasagent.evaluator.validation",
    "Constraints": "nasagent.evaluator.validation",
    "Report": "nasagent.evaluator.validation",
    "count_cost": "nasagent.evaluator.cost",
    "Cost": "nasagent.evaluator.cost",
    "score": "nasagent.evaluator.proxies",
    "ScoreSettings": "nasagent.evaluator.proxies",
    "ScoreResult": "nasagent.evaluator.proxies",
    "ProxyStatus": "nasagent.evaluator.proxies",
    "RunConfig": "nasagent.agent.config",
    "run_search": "nasagent.agent.search",
    "run_compare": "nasagent.agent.compare",
    "build_report": "nasagent.agent.report",
    "make_backend": "nasagent.agent.llm.factory",
    "Outcome": "nasagent.agent.outcomes",
    "NasAgentError": "nasagent.evaluator.errors",
    "BlockStringError": "nasagent.evaluator.errors",
    "UnknownNameError": "nasagent.evaluator.errors",
    "ConfigError": "nasagent.agent.config",
    "LLMError": "nasagent.agent.llm.base",
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
    "RunConfig",
    "run_search",
    "run_compare",
    "build_report",
    "make_backend",
    "Outcome",
    "NasAgentError",
    "BlockStringError",
    "UnknownNameError",
    "ConfigError",
    "LLMError",
]

if TYPE_CHECKING:
    from nasagent.agent.compare import run_compare
    from nasagent.agent.config import ConfigError, RunConfig
    from nasagent.agent.llm.base import LLMError
    from nasagent.agent.llm.factory import make_backend
    from nasagent.agent.outcomes import Outcome
    from nasagent.agent.report import build_report
    from nasagent.agent.search import run_search
    from nasagent.evaluator.architecture import Architecture
    from nasagent.evaluator.codec import encode, parse
    from nasagent.evaluator.cost import Cost, count_cost
    from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError
    from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, ScoreSettings, score
    from nasagent.evaluator.validation import Constraints, Report, check, check_string


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nasagent' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
