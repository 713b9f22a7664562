"""The evolving population and the parent-selection rules."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class ParentSelection(StrEnum):
    """How a parent is drawn once the population is past the seed rule (`parent_selection`)."""

    UNIFORM = "uniform"
    TOURNAMENT = "tournament"


SEED_PARENT_THRESHOLD = 10
"""Zen-NAS/RZ-NAS rule: while the population holds this many members or fewer, mutate the seed."""


@dataclass(frozen=True)
class Member:
    arch: str
    score: float


@dataclass
class Population:
    """Scored architectures, trimmed to `capacity` by dropping the worst (first one on ties)."""

    capacity: int
    higher_is_better: bool = True
    members: list[Member] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: Member) -> None:
        self.members.append(member)
        while len(self.members) > self.capacity:
            self.members.remove(self._worst())

    def better(self, a: float, b: float) -> bool:
        """True when score `a` is strictly better than `b` in the proxy's direction."""
        return a > b if self.higher_is_better else a < b

    def _worst(self) -> Member:
        worst = self.members[0]
        for member in self.members[1:]:
            if self.better(worst.score, member.score):
                worst = member
        return worst

    def select_parent(
        self, rng: random.Random, selection: ParentSelection, tournament_size: int
    ) -> Member | None:
        """Pick a parent, or None while the seed rule applies (population of 10 or fewer)."""
        if len(self.members) <= SEED_PARENT_THRESHOLD:
            return None
        if selection is ParentSelection.UNIFORM:
            return rng.choice(self.members)
        entrants = rng.sample(self.members, min(tournament_size, len(self.members)))
        best = entrants[0]
        for member in entrants[1:]:
            if self.better(member.score, best.score):
                best = member
        return best

    def snapshot(self) -> list[dict[str, float | str]]:
        return [{"arch": m.arch, "score": m.score} for m in self.members]
