"""The evaluator: search spaces (codec, validation, cost model, torch builder and random
mutation of each), zero-cost proxies and training.

Names load on first use, so importing a light module of the package (`cpu_kernels`,
`errors`, `registry`) does not load pydantic or the search spaces.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Architecture": "nasagent.evaluator.architecture",
    "Block": "nasagent.evaluator.architecture",
    "Decoded": "nasagent.evaluator.codec",
    "canonicalize": "nasagent.evaluator.codec",
    "decode": "nasagent.evaluator.codec",
    "encode": "nasagent.evaluator.codec",
    "parse": "nasagent.evaluator.codec",
    "BlockStringError": "nasagent.evaluator.errors",
    "NasAgentError": "nasagent.evaluator.errors",
    "UnknownNameError": "nasagent.evaluator.errors",
    "CIFAR_SEED": "nasagent.evaluator.search_space",
    "IMAGENET_SEED": "nasagent.evaluator.search_space",
    "OPS": "nasagent.evaluator.search_space",
    "SEARCH_SPACES": "nasagent.evaluator.search_space",
    "Family": "nasagent.evaluator.search_space",
    "OpSpec": "nasagent.evaluator.search_space",
    "SearchSpace": "nasagent.evaluator.search_space",
}

__all__ = [
    "CIFAR_SEED", "IMAGENET_SEED", "OPS", "SEARCH_SPACES", "Architecture", "Block",
    "BlockStringError", "Decoded", "Family", "NasAgentError", "OpSpec", "SearchSpace",
    "UnknownNameError", "canonicalize", "decode", "encode", "parse",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from nasagent.evaluator.architecture import Architecture, Block
    from nasagent.evaluator.codec import Decoded, canonicalize, decode, encode, parse
    from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError
    from nasagent.evaluator.search_space import (
        CIFAR_SEED,
        IMAGENET_SEED,
        OPS,
        SEARCH_SPACES,
        Family,
        OpSpec,
        SearchSpace,
    )
