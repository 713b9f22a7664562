"""The combined proxy: several proxies at once, standardised with a normalisation fixed per run.

A combined score is the mean over its members (default SynFlow, NASWOT and SNIP, the three of
Abdelfattah et al.'s vote) of each member's z-score, signed so that higher is always better:

    combined = mean_m  s_m * (t_m(score_m) - mean_m) / std_m

where `t_m` is the log for a count-like proxy (`ProxySpec.log_scale`: gradient magnitudes,
saliencies, counts span orders of magnitude) and the identity for one already on a log scale
(NASWOT, Zen-score), and `s_m` is the member's direction in the search space.

Why a fixed reference sample: a search compares scores across hundreds of iterations, so a
score must not depend on what else has been scored. Ranking within the population (a Borda
count, which is what a pairwise majority vote amounts to) would change every member's score
whenever a new one arrives, and per-batch statistics would drift. So `mean_m` and `std_m` are
measured once, before the first scoring, on a seeded sample of the space (`reference`
architectures drawn by `SearchSpace.random_arch`, or random initial members of the seed where
a space has no uniform sampler), scored under the run's own settings; the `Normalisation` is
carried by the run's `ScoreSettings` to every worker and written into the run's summary, so
every score of a run is the same affine map of the members' scores. A z-score rather than a
rank keeps scores above the whole reference sample apart (a search's best candidates are).

A member that fails (an error, a non-finite score, a count-like score of 0) makes the combined
score fail with a message naming it: a combination of fewer proxies would be another proxy.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nasagent.evaluator.errors import NasAgentError

if TYPE_CHECKING:
    from nasagent.evaluator.proxies import ProxyRun, ScoreResult, ScoreSettings

logger = logging.getLogger(__name__)

NAME = "combined"
DEFAULT_MEMBERS = ("synflow", "naswot", "snip")
"""Abdelfattah et al.'s vote used SynFlow, jacob_cov and SNIP; NASWOT stands for jacob_cov
(both read the network's response to a batch of images; nasagent has NASWOT)."""
DEFAULT_REFERENCE = 16
"""Reference architectures per run: each member's std is then known to about 18%, which only
weights the members a little unequally, for a minute of scoring on NB201 at one thread."""
MIN_FINITE = 3
REFERENCE_STREAM = "nasagent combined reference, seed {seed}"
"""The string that seeds the reference sample's `random.Random` (string seeds are stable)."""
DRAWS_PER_ARCH = 20
"""Draws tried per reference architecture before a small space gives up on distinct ones."""


class CombinationError(NasAgentError, ValueError):
    """The combined proxy cannot be normalised or computed; the message says why."""


class MemberStatistics(BaseModel):
    """How one member is standardised: its direction, scale and reference statistics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proxy: str
    higher_is_better: bool
    log_scale: bool
    mean: float
    std: float
    finite: int
    """Reference architectures whose score was finite (the others are left out)."""

    def z(self, score: float) -> float:
        """The signed z-score of a raw member score (non-finite for a log of 0 or less)."""
        value = _transform(score, self.log_scale)
        z = (value - self.mean) / self.std
        return z if self.higher_is_better else -z


class Normalisation(BaseModel):
    """The fixed normalisation of one run: the reference sample and each member's statistics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    archs: tuple[str, ...]
    members: tuple[MemberStatistics, ...]


class Combination(BaseModel):
    """The combined proxy's settings: its members, the reference sample's size and, once a
    run has measured it, the normalisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: tuple[str, ...] = DEFAULT_MEMBERS
    reference: int = Field(default=DEFAULT_REFERENCE, ge=MIN_FINITE)
    normalisation: Normalisation | None = None

    @field_validator("members")
    @classmethod
    def _registered_members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        return checked_members(members)


def checked_members(members: tuple[str, ...]) -> tuple[str, ...]:
    """`members` if they are distinct registered proxies that are not combinations.

    Raises:
        ValueError: one sentence naming the problem and the valid names.
    """
    from nasagent.evaluator.proxies import PROXIES

    if not members or len(set(members)) != len(members):
        raise ValueError("combined members must be one or more distinct proxy names")
    for member in members:
        if member not in PROXIES or PROXIES.get(member).inputs == "members":
            valid = [name for name in PROXIES if PROXIES.get(name).inputs != "members"]
            raise ValueError(f"combined member {member!r} is not a single proxy; valid: "
                             f"{', '.join(valid)}")
    return members


def _transform(score: float, log_scale: bool) -> float:
    if not log_scale:
        return score
    return math.log(score) if score > 0 else -math.inf


# ---- the normalisation ---------------------------------------------------------------------


_CACHE: dict[str, Normalisation | CombinationError] = {}
_LOCK = threading.Lock()


def normalised(settings: ScoreSettings) -> ScoreSettings:
    """`settings` carrying the combined proxy's normalisation (measured if it has none).

    Raises:
        CombinationError: a member gave fewer than 3 finite, distinct reference scores.
    """
    combination = settings.combination
    if combination.normalisation is not None:
        return settings
    fixed = combination.model_copy(update={"normalisation": normalisation_of(settings)})
    return settings.model_copy(update={"combination": fixed})


def normalisation_of(settings: ScoreSettings) -> Normalisation:
    """The normalisation of `settings`: the one it carries, or the one measured on its
    reference sample (measured once per process for equal settings)."""
    if settings.combination.normalisation is not None:
        return settings.combination.normalisation
    key = settings.cache_key()
    with _LOCK:
        if key not in _CACHE:  # a failure is kept too: measuring again would fail again
            try:
                _CACHE[key] = _measure(settings)
            except CombinationError as error:
                _CACHE[key] = error
        known = _CACHE[key]
    if isinstance(known, CombinationError):
        raise known
    return known


def reference_sample(settings: ScoreSettings) -> list[str]:
    """`settings.combination.reference` distinct architectures of the space, seeded by
    `settings.seed`: uniform draws where the space has them, else random initial members
    of its default seed architecture. The stream is its own (`REFERENCE_STREAM`), so the
    sample is not the first architectures a study or search with the same seed draws."""
    space = settings.space
    rng = random.Random(REFERENCE_STREAM.format(seed=settings.seed))
    seed_arch = space.decode(space.defaults.seed_arch).architecture
    wanted = settings.combination.reference
    archs: dict[str, None] = {}
    for _ in range(wanted * DRAWS_PER_ARCH):
        arch = space.random_arch(rng)
        if arch is None:
            arch = space.initial_member(seed_arch, rng, {})
        archs.setdefault(space.encode(arch), None)
        if len(archs) == wanted:
            break
    return list(archs)


def _measure(settings: ScoreSettings) -> Normalisation:
    from nasagent.evaluator.proxies import get_proxy, higher_is_better, score

    archs = reference_sample(settings)
    logger.info("combined proxy: scoring %d reference architectures with %s", len(archs),
                ", ".join(settings.combination.members))
    members = []
    for member in settings.combination.members:
        spec = get_proxy(member)
        results = [score(arch, settings.of(member)) for arch in archs]
        values = [_transform(r.score, spec.log_scale) for r in results if r.score is not None]
        finite = [value for value in values if math.isfinite(value)]
        if len(set(finite)) < MIN_FINITE:
            raise CombinationError(
                f"combined member {member} gave {len(finite)} finite scores on the "
                f"{len(archs)} reference architectures; it needs {MIN_FINITE} distinct ones "
                f"(raise combined_reference or choose other members)")
        members.append(MemberStatistics(
            proxy=member, higher_is_better=higher_is_better(member, settings.search_space),
            log_scale=spec.log_scale, mean=statistics.fmean(finite),
            std=statistics.stdev(finite), finite=len(finite),
        ))
    return Normalisation(seed=settings.seed, archs=tuple(archs), members=tuple(members))


# ---- the score -----------------------------------------------------------------------------


def combine(scores: Mapping[str, float], normalisation: Normalisation) -> float:
    """The combined score of raw member scores (non-finite if a member's z-score is)."""
    return statistics.fmean(stat.z(scores[stat.proxy]) for stat in normalisation.members)


def combined(run: ProxyRun) -> float:
    """The combined proxy's compute function: score every member with this run's seed, then
    `combine` under the settings' normalisation.

    Raises:
        CombinationError: a member's scoring did not end `ok` (the message names it).
    """
    from nasagent.evaluator.proxies import ProxyStatus, score

    settings = run.settings.model_copy(update={"seed": run.seed, "repeats": 1})
    normalisation = normalisation_of(run.settings)
    scores = {}
    for member in settings.combination.members:
        result = score(run.arch, settings.of(member))
        if result.status is not ProxyStatus.OK or result.score is None:
            raise CombinationError(f"member {member} {result.status}: {result.message}")
        scores[member] = result.score
    value = combine(scores, normalisation)
    if not math.isfinite(value):
        raise CombinationError(f"a member's score has no finite z-score: {scores}")
    return value


def combined_result(
    known: Mapping[str, ScoreResult], settings: ScoreSettings
) -> ScoreResult | None:
    """The combined proxy's result from its members' results already at hand (scored with
    `settings` for each member), or None when `settings` is not a combination's or a member
    is missing. A member that did not end `ok` makes it an `error` naming that member."""
    from nasagent.evaluator.proxies import ProxyStatus, ScoreResult, get_proxy, higher_is_better

    members = settings.combination.members
    if get_proxy(settings.proxy).inputs != "members" or any(m not in known for m in members):
        return None
    value, status, message = None, ProxyStatus.OK, ""
    failed = [m for m in members if known[m].score is None]
    if failed:
        status = ProxyStatus.ERROR
        message = f"member {failed[0]} {known[failed[0]].status}: {known[failed[0]].message}"
    else:
        value = combine({m: float(known[m].score or 0.0) for m in members},
                        normalisation_of(settings))
        if not math.isfinite(value):
            value, status = None, ProxyStatus.NONFINITE
            scores = {m: known[m].score for m in members}
            message = f"a member's score has no finite z-score: {scores}"
    return ScoreResult(
        proxy=settings.proxy, score=value, status=status, message=message, seed=settings.seed,
        seconds=sum(known[m].seconds for m in members),
        higher_is_better=higher_is_better(settings.proxy, settings.search_space),
    )
