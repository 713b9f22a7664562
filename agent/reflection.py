"""Long-term reflection: every R iterations the model distils the recent outcomes into lessons.

Short-term reflection is simply the recent history shown in each mutation prompt; it lives in
the search state. This module makes the periodic distillation call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nasagent.agent.config import RunConfig
from nasagent.agent.llm.base import LLMBackend, LLMError, LLMRequest, Message
from nasagent.agent.outcomes import HistoryEntry
from nasagent.agent.pricing import Spend
from nasagent.agent.prompting import PromptSettings, reflection_messages
from nasagent.agent.proposers import sampling_params
from nasagent.agent.response import LESSONS_SCHEMA, parse_lessons

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reflection:
    """The lessons after one reflection call, and what the call cost."""

    lessons: tuple[str, ...]
    llm_calls: int
    tokens: int
    error: str | None = None
    spend: Spend = Spend()


class Reflector:
    """Makes the periodic reflection call; a failed call keeps the previous lessons."""

    def __init__(self, config: RunConfig, backend: LLMBackend, settings: PromptSettings) -> None:
        self.config = config
        self.backend = backend
        self.settings = settings

    def due(self, iteration: int) -> bool:
        return self.config.reflection and iteration % self.config.reflect_every == 0

    async def reflect(
        self, iteration: int, history: Sequence[HistoryEntry], lessons: tuple[str, ...]
    ) -> Reflection:
        request = self._request(iteration, history, lessons)
        try:
            response = await self.backend.complete(request)
        except LLMError as exc:
            logger.warning("reflection at iteration %d failed: %s", iteration, exc)
            return Reflection(lessons, 1, 0, error=f"reflection failed: {exc}")
        tokens = response.usage.total_tokens
        spend = Spend().add(response.usage, response.cost_usd)
        new_lessons = tuple(parse_lessons(response.text, limit=self.config.max_lessons))
        if not new_lessons:
            return Reflection(lessons, 1, tokens, "reflection reply held no lessons", spend)
        return Reflection(new_lessons, 1, tokens, spend=spend)

    def _request(
        self, iteration: int, history: Sequence[HistoryEntry], lessons: tuple[str, ...]
    ) -> LLMRequest:
        messages = reflection_messages(history, lessons, self.settings)
        json_schema = self.config.response_format == "json_schema"
        params = sampling_params(self.config, min(self.config.temperature))
        return LLMRequest(
            purpose="reflection", messages=tuple(Message.model_validate(m) for m in messages),
            params=params, response_schema=LESSONS_SCHEMA if json_schema else None,
            schema_name="lessons", iteration=iteration,
        )
