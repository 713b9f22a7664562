"""Search spaces, one package each, behind one interface (`base.SearchSpace`).

`SEARCH_SPACES` maps names to spaces: the built-in Zen-NAS spaces (`zennas-cifar`,
`zennas-imagenet`, `all`) and NAS-Bench-201 spaces (`nb201-cifar10`, `nb201-cifar100`,
`nb201-imagenet16`), and those of plugins, which register a `SearchSpace` object through the
`nasagent.search_spaces` entry-point group. Everything else asks `get_space(name)`.
"""

from __future__ import annotations

from typing import Any

from nasagent.evaluator.registry import Registry
from nasagent.evaluator.spaces.base import Cost, SearchSpace


def _register_built_ins(registry: Registry[SearchSpace]) -> None:
    # On the first lookup: the spaces' modules import the validator, which imports this one.
    from nasagent.evaluator.spaces.nb201.space import NB201_SPACES
    from nasagent.evaluator.spaces.zennas.space import ZENNAS_SPACES

    for space in (*ZENNAS_SPACES, *NB201_SPACES):
        registry.register(space.name, space)


SEARCH_SPACES: Registry[SearchSpace] = Registry(
    "search space", SearchSpace,  # type: ignore[type-abstract]  # entries are subclasses
    group="nasagent.search_spaces", built_ins=_register_built_ins,
)
"""The named search spaces; plugins add theirs through the `nasagent.search_spaces` group."""

DEFAULT_SEARCH_SPACE = "zennas-cifar"


def get_space(name: str) -> SearchSpace:
    """The search space called `name`.

    Raises:
        UnknownNameError: no such space (the message lists the valid names).
    """
    return SEARCH_SPACES.get(name)



def parse(text: str, search_space: str = DEFAULT_SEARCH_SPACE) -> Any:
    """Decode an architecture string of `search_space` (default: zennas-cifar's block string).

    Raises:
        BlockStringError: the text does not decode (the message says what and where).
        UnknownNameError: no such search space.
    """
    return get_space(search_space).decode(text).architecture


def encode(arch: Any, search_space: str = DEFAULT_SEARCH_SPACE) -> str:
    """The canonical string of an architecture of `search_space`."""
    return get_space(search_space).encode(arch)


def count_cost(arch: Any, search_space: str = DEFAULT_SEARCH_SPACE, **task: Any) -> Cost:
    """The analytic cost (params, FLOPs, layers where the space has them) of `arch`, under
    the task given as Constraints fields (`num_classes`, `resolution`, `counting`, ...; the
    space's defaults otherwise).

    Raises:
        ArchitectureError: `arch` has no cost (e.g. a Zen-NAS block with stride 0).
    """
    from nasagent.evaluator.errors import ArchitectureError
    from nasagent.evaluator.validation import Constraints

    constraints = Constraints(search_space=search_space, **task)
    cost = constraints.space.cost(arch, constraints)
    if cost is None:
        raise ArchitectureError(f"{encode(arch, search_space)} has no cost in {search_space}")
    return cost
