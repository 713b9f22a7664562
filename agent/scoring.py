"""Scoring off the event loop, with a cache so no architecture is ever scored twice."""

from __future__ import annotations

import asyncio

from nasagent.agent.execution import Scoring
from nasagent.evaluator.proxies import ScoreResult, ScoreSettings


class Scorer:
    """Scores architectures on an executor (agent.execution), caching results by canonical
    string. Concurrent requests for the same architecture share one scoring.

    Args:
        settings: the proxy settings every scoring uses.
        scoring: where scorings run; closed with the Scorer only when `owns` (a compare with
            several runs at once shares one pool between them).
    """

    def __init__(self, settings: ScoreSettings, scoring: Scoring, *, owns: bool = True) -> None:
        self.settings = settings
        self.scoring = scoring
        self._owns = owns
        self._cache: dict[str, asyncio.Future[ScoreResult]] = {}
        self._remembered: set[str] = set()

    def remember(self, canonical: str, result: ScoreResult) -> None:
        """Put a known result in the cache (used when resuming from the event log)."""
        future: asyncio.Future[ScoreResult] = asyncio.get_running_loop().create_future()
        future.set_result(result)
        self._cache[canonical] = future
        self._remembered.add(canonical)

    def remembered(self, canonical: str) -> bool:
        """True when the result came from `remember` (the log), not from scoring here."""
        return canonical in self._remembered

    async def score(self, canonical: str) -> ScoreResult:
        """The result of a canonical architecture string (scored once, then cached)."""
        if canonical not in self._cache:
            self._cache[canonical] = asyncio.wrap_future(
                self.scoring.submit(canonical, self.settings)
            )
        return await asyncio.shield(self._cache[canonical])

    def close(self) -> None:
        if self._owns:
            self.scoring.close()
