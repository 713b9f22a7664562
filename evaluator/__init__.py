"""The evaluator: Zen-NAS search space, block-string codec, validation, cost model, torch
builder, zero-cost proxies and random mutation."""

from nasagent.evaluator.architecture import Architecture, Block
from nasagent.evaluator.codec import Decoded, canonicalize, decode, encode, parse
from nasagent.evaluator.errors import BlockStringError, NasAgentError, UnknownNameError
from nasagent.evaluator.search_space import OPS, SEARCH_SPACES, Family, OpSpec, SearchSpace

CIFAR_SEED = (
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
    "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)"
)
"""The search seed of every Zen-NAS CIFAR script (zennas-semantics section 11)."""

IMAGENET_SEED = (
    "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
    "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)"
)
"""The seed of the Zen-NAS ImageNet FLOPs-budget scripts (IDW space)."""

__all__ = [
    "CIFAR_SEED", "IMAGENET_SEED", "OPS", "SEARCH_SPACES", "Architecture", "Block",
    "BlockStringError", "Decoded", "Family", "NasAgentError", "OpSpec", "SearchSpace",
    "UnknownNameError", "canonicalize", "decode", "encode", "parse",
]
