"""The evaluator: Zen-NAS search space, block-string codec, validation, cost model, torch
builder, zero-cost proxies and random mutation."""

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

__all__ = [
    "CIFAR_SEED", "IMAGENET_SEED", "OPS", "SEARCH_SPACES", "Architecture", "Block",
    "BlockStringError", "Decoded", "Family", "NasAgentError", "OpSpec", "SearchSpace",
    "UnknownNameError", "canonicalize", "decode", "encode", "parse",
]
