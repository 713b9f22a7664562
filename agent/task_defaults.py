"""Budgets and the task defaults a search space fills in, as every command reads them.

A budget of 0 or "none" means no budget, in TOML, in flags and in every command. A key that
is not given takes its search space's value (`SpaceDefaults` in evaluator.spaces.base).
Kept apart from agent.config, which holds the pydantic run configuration, so that commands
that only check architectures (`inspect`, `prompt`, ...) start without building it.
"""

from __future__ import annotations

import math
from typing import Any

from nasagent.evaluator.spaces import DEFAULT_SEARCH_SPACE, SEARCH_SPACES, get_space
from nasagent.evaluator.spaces.base import SpaceDefaults

ARCH_BUDGET_KEYS = ("max_params", "max_flops", "max_layers")
SPACE_DEFAULT_KEYS = (
    "seed_arch", "resolution", "num_classes", *ARCH_BUDGET_KEYS, "prompt_version",
    "init_population",
)
"""The keys a search space fills in when they are not given (SpaceDefaults' fields)."""
NO_BUDGET = "none"
"""How config.toml writes a budget that is off (TOML has no null); 0 means the same."""


def parse_budget(
    value: object, *, integer: bool = False, off: str = "no budget"
) -> float | int | None:
    """A budget (or limit) from TOML, a flag or Python: 0, "none" or None is `off`.

    Raises:
        ValueError: a negative, NaN, infinite, non-numeric (or, for `integer`, fractional) value.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == NO_BUDGET):
        return None
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(
            f"must be a positive number, or 0 or {NO_BUDGET!r} for {off} (got {value!r})"
        )
    if integer and not number.is_integer():
        raise ValueError(f"must be a whole number (got {value!r})")
    if number == 0:
        return None
    return int(number) if integer else number


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def space_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with every key of SPACE_DEFAULT_KEYS it lacks taken from its search space.

    An unknown search space is left for the caller's validation to report.
    """
    name = values.get("search_space", DEFAULT_SEARCH_SPACE)
    if not isinstance(name, str) or name not in SEARCH_SPACES:
        return values
    defaults: SpaceDefaults = get_space(name).defaults
    return {**{key: getattr(defaults, key) for key in SPACE_DEFAULT_KEYS}, **values}
