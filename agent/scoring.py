"""Scoring off the event loop, with a cache so no architecture is ever scored twice."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from nasagent.evaluator import Architecture, parse
from nasagent.evaluator.proxies import ScoreResult, ScoreSettings, score


class Scorer:
    """Scores architectures in one worker thread, caching results by canonical string.

    One worker, because the seeded proxy protocol uses torch's global RNG: two scorings at
    once would interleave their draws and neither score would be reproducible. Concurrent
    requests for the same architecture share one scoring.
    """

    def __init__(self, settings: ScoreSettings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasagent-score")
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

    async def score(self, architecture: Architecture) -> ScoreResult:
        canonical = str(architecture)
        if canonical not in self._cache:
            loop = asyncio.get_running_loop()
            self._cache[canonical] = asyncio.ensure_future(
                loop.run_in_executor(self._executor, score, parse(canonical), self.settings)
            )
        return await asyncio.shield(self._cache[canonical])

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
