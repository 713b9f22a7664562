"""The memory cap: no network is built whose estimated memory is over it.

Every path that builds a network (scoring, training, a search's proposals and seed, the
service) asks `memory_refusal` first: the search space estimates, without torch, what scoring
or training the architecture at the batch size needs (`SearchSpace.memory`: parameters with
their gradients, activations kept for backward, allocator slack; see `MemoryEstimate`), and an
estimate over the cap is refused with one located sentence before anything is allocated.

The cap is in MB (2**20 bytes). `max_memory` (config key; `--max-memory` flag) sets it; 0 or
"none" turns it off; "auto", the default, is half of this machine's physical memory (the
smaller of psutil's total and a cgroup limit, so a container's limit counts):

- the total, not what is free now: a cap that moved with other programs' use would make which
  proposals a run refuses depend on the moment it ran;
- half: the estimate is an upper bound, measured 1.3 to 3 times what a scoring or a training
  step really needs (`python -m bench.memory_estimate`), so an accepted network leaves the
  other half and more to the system, torch itself (about 0.3 GB per process) and the search
  around it.

The estimate bounds what one scoring or training allocates; W scoring workers may each use up
to it at once, and `score_memory` (agent.workerpool) watches each worker's real size in case an
estimate is ever low.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nasagent.evaluator.errors import NasAgentError

if TYPE_CHECKING:
    from nasagent.evaluator.spaces.base import MemoryEstimate, SearchSpace
    from nasagent.evaluator.validation import Constraints

MB = 2**20
GB = 2**30
AUTO: Final = "auto"
"""The default cap: `DEFAULT_FRACTION` of this machine's memory."""
DEFAULT_FRACTION = 0.5
FLAG = "--max-memory"
KEY = "max_memory"
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


class MemoryCapError(NasAgentError, ValueError):
    """An architecture whose estimated memory is over the cap; nothing was allocated.

    Attributes:
        estimate: the estimate that was refused.
        cap_mb: the cap it broke, in MB.
    """

    def __init__(self, message: str, estimate: MemoryEstimate, cap_mb: float) -> None:
        super().__init__(message)
        self.estimate = estimate
        self.cap_mb = cap_mb


# ---- the cap ----------------------------------------------------------------------------------


def machine_memory() -> int:
    """Bytes of physical memory this process may use: psutil's total, or a smaller cgroup
    limit (a container's)."""
    import psutil  # only when a cap is resolved: commands that check nothing start faster

    total = int(psutil.virtual_memory().total)
    limits = [limit for path in CGROUP_LIMITS if (limit := _cgroup_limit(path)) is not None]
    return min([total, *limits])


def _cgroup_limit(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None  # "max": no limit


def default_cap_mb(total_bytes: int | None = None) -> float:
    """The cap "auto" means: DEFAULT_FRACTION of `total_bytes` (this machine's), in whole MB."""
    total = _machine_memory_once() if total_bytes is None else total_bytes
    return float(math.floor(total * DEFAULT_FRACTION / MB))


@functools.cache
def _machine_memory_once() -> int:
    return machine_memory()


def read_cap(value: object) -> float | None:
    """A cap in MB from a flag, TOML, JSON or Python: "auto" is this machine's default; 0,
    "none" or None means no cap; otherwise read like every limit (agent.task_defaults).

    Raises:
        ValueError: a negative, NaN, infinite or non-numeric value.
    """
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return default_cap_mb()
    from nasagent.agent.task_defaults import parse_budget  # the one reader of limits

    try:
        return parse_budget(value, off="no memory cap")
    except ValueError as error:
        raise ValueError(f"{error}; or {AUTO!r} for half this machine's memory") from None


def show_cap(cap_mb: float | None) -> str:
    """How a message writes a cap: "11.7 GB (12,000 MB)", "500 MB" or "no cap"."""
    if cap_mb is None:
        return "no cap"
    if cap_mb * MB < GB:
        return f"{cap_mb:,.0f} MB"
    return f"{cap_mb * MB / GB:,.1f} GB ({cap_mb:,.0f} MB)"


# ---- the check --------------------------------------------------------------------------------


def memory_refusal(
    space: SearchSpace, arch: Any, constraints: Constraints, batch_size: int,
    cap_mb: float | None, *, what: str = "the architecture", purpose: str = "score",
) -> str | None:
    """The sentence refusing `arch` when its estimated memory is over `cap_mb`, else None.

    Args:
        space: the architecture's search space (it estimates).
        arch: a decoded architecture of `space` that passed its rules.
        constraints: the task (resolution, classes) the network is built for.
        batch_size: images per batch of the scoring or training.
        cap_mb: the cap in MB; None: no cap, nothing is refused.
        what: names the input in the sentence ("seed_arch", "input 2", "archs.0", ...).
        purpose: "score" or "train".

    Raises:
        ArchitectureError: `arch` cannot be costed (it breaks a rule of the space).
    """
    estimate = _over_cap(space, arch, constraints, batch_size, cap_mb)
    if estimate is None or cap_mb is None:
        return None
    return over_cap_message(estimate, cap_mb, what=what, purpose=purpose)


def check_memory(
    space: SearchSpace, arch: Any, constraints: Constraints, batch_size: int,
    cap_mb: float | None, *, what: str = "the architecture", purpose: str = "score",
) -> None:
    """`memory_refusal` as an exception.

    Raises:
        MemoryCapError: the estimate is over the cap (the message is the sentence).
    """
    estimate = _over_cap(space, arch, constraints, batch_size, cap_mb)
    if estimate is not None and cap_mb is not None:
        message = over_cap_message(estimate, cap_mb, what=what, purpose=purpose)
        raise MemoryCapError(message, estimate, cap_mb)


def _over_cap(
    space: SearchSpace, arch: Any, constraints: Constraints, batch_size: int,
    cap_mb: float | None,
) -> MemoryEstimate | None:
    """The estimate of `arch` when it is over `cap_mb` (estimated once), else None."""
    if cap_mb is None:
        return None
    estimate = space.memory(arch, constraints, batch_size)
    return estimate if estimate.bytes > cap_mb * MB else None


def over_cap_message(
    estimate: MemoryEstimate, cap_mb: float, *, what: str, purpose: str = "score"
) -> str:
    """One line: what, the estimate with its parts, the cap, and how to get under it."""
    return (
        f"{what} needs an estimated {_gb(estimate.bytes)} to {purpose} at batch "
        f"{estimate.batch_size} ({_gb(estimate.param_bytes)} for {estimate.params:,} "
        f"parameters and their gradients, {_gb(estimate.activation_bytes)} for activations, "
        f"{_gb(estimate.WORKSPACE)} workspace), over the memory cap of {show_cap(cap_mb)}; "
        f"use a smaller architecture or batch, or raise the cap with {FLAG} MB "
        f"(config key {KEY}; 0 or none: no cap)"
    )


def _gb(size: int) -> str:
    return f"{size / GB:,.1f} GB" if size >= GB else f"{size / MB:,.0f} MB"
