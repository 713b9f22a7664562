"""The evaluator: search spaces (codec, validation, cost model, torch builder and random
mutation of each), zero-cost proxies and training. `parse`, `encode`, `canonicalize` and the
seeds here are the Zen-NAS space's (the default); `get_space(name)` gives any space.

Names load on first use, so importing a light module of the package (`cpu_kernels`,
`errors`, `registry`) does not load pydantic or the search spaces.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Architecture": "nasagent.evaluator.spaces.zennas.architecture",
    "Block": "nasagent.evaluator.spaces.zennas.architecture",
    "Decoded": "nasagent.evaluator.spaces.base",
    "canonicalize": "nasagent.evaluator.spaces.zennas.codec",
    "decode": "nasagent.evaluator.spaces.zennas.codec",
    "encode": "nasagent.evaluator.spaces.zennas.codec",
    "parse": "nasagent.evaluator.spaces.zennas.codec",
    "BlockStringError": "nasagent.evaluator.errors",
    "NasAgentError": "nasagent.evaluator.errors",
    "UnknownNameError": "nasagent.evaluator.errors",
    "CIFAR_SEED": "nasagent.evaluator.spaces.zennas.ops",
    "IMAGENET_SEED": "nasagent.evaluator.spaces.zennas.ops",
    "OPS": "nasagent.evaluator.spaces.zennas.ops",
    "SEARCH_SPACES": "nasagent.evaluator.spaces",
    "get_space": "nasagent.evaluator.spaces",
    "Family": "nasagent.evaluator.spaces.zennas.ops",
    "OpSpec": "nasagent.evaluator.spaces.zennas.ops",
    "SearchSpace": "nasagent.evaluator.spaces.base",
}

__all__ = [
    "CIFAR_SEED", "IMAGENET_SEED", "OPS", "SEARCH_SPACES", "Architecture", "Block",
    "BlockStringError", "Decoded", "Family", "NasAgentError", "OpSpec", "SearchSpace",
    "UnknownNameError", "canonicalize", "decode", "encode", "get_space", "parse",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError
    from nasagent.evaluator.spaces import SEARCH_SPACES, get_space
    from nasagent.evaluator.spaces.base import Decoded, SearchSpace
    from nasagent.evaluator.spaces.zennas.architecture import Architecture, Block
    from nasagent.evaluator.spaces.zennas.codec import canonicalize, decode, encode, parse
    from nasagent.evaluator.spaces.zennas.ops import (
        CIFAR_SEED,
        IMAGENET_SEED,
        OPS,
        Family,
        OpSpec,
    )
