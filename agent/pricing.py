"""What LLM calls cost: a price table in USD per million tokens, and the spend of calls.

Prices are per model name, as sent in the request (`SamplingParams.model`). A user's entry
(`[prices."MODEL"]` in the config, or `--price-in/--price-out` for the run's own model) wins
over the small default table below. A model with no price has an unknown cost (None), never 0:
a sum over calls is unknown as soon as one of its calls is.

Cached input tokens (prompt caching) are priced at `cached_input` when the table has it, else
at the full input price, so an unknown discount never makes a run look cheaper than it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from nasagent.agent.llm.base import TokenUsage

PER_TOKEN = 1e-6
"""Prices are quoted per million tokens."""


class Price(BaseModel):
    """The price of one model in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)

    def cost(self, usage: TokenUsage) -> float:
        """The USD cost of one call's token usage."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return PER_TOKEN * (
            (usage.prompt_tokens - cached) * self.input + cached * cached_price
            + usage.completion_tokens * self.output
        )


DEFAULT_PRICES_SOURCE = "https://openai.com/api/pricing (standard tier), as listed in June 2025"
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4.1": Price(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, cached_input=0.025, output=0.40),
    "o3": Price(input=2.00, cached_input=0.50, output=8.00),
    "o4-mini": Price(input=1.10, cached_input=0.275, output=4.40),
}
"""Well-known models only (source: DEFAULT_PRICES_SOURCE). Prices change: check them, and set
your own with `[prices."MODEL"]`; any other model (local, vLLM, Ollama) has no default price."""


class PriceTable:
    """Model name -> Price: the defaults, overridden by the user's entries."""

    def __init__(self, entries: Mapping[str, Price] | None = None) -> None:
        self.entries = {**DEFAULT_PRICES, **(entries or {})}

    def get(self, model: str | None) -> Price | None:
        return self.entries.get(model) if model else None

    def cost(self, model: str | None, usage: TokenUsage) -> float | None:
        """The cost of one call, or None when the model has no price."""
        price = self.get(model)
        return None if price is None else price.cost(usage)


@dataclass(frozen=True)
class Spend:
    """What some LLM calls used: tokens in (of which cached) and out, and the cost in USD.

    `cost_usd` is None when any of the calls had no price. No calls cost exactly 0.
    """

    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float | None = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def add(self, usage: TokenUsage, cost_usd: float | None) -> Spend:
        """This spend plus one call."""
        return self + Spend(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                            cost_usd)

    def __add__(self, other: Spend) -> Spend:
        cost = None if self.cost_usd is None or other.cost_usd is None else (
            self.cost_usd + other.cost_usd
        )
        return Spend(self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out,
                     self.tokens_cached + other.tokens_cached, cost)

    def fields(self) -> dict[str, int | float | None]:
        """The event / summary fields of this spend."""
        return {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "tokens_cached": self.tokens_cached, "cost_usd": self.cost_usd}
