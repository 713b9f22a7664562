"""The spend guard: `--max-cost USD` and `--max-total-tokens N` on the committed spend.

Committed spend is what the applied iterations spent (their events say so) plus an estimate
for each proposal in flight: the mean spend of the applied iterations, or, before the first
one, a reply of `max_tokens` completion tokens. The guard is asked before each dispatch and
refuses when one more proposal would pass a budget. Because it reads only the applied events
and the dispatch position, the same log gives the same decisions on every machine and on
resume, so a run stopped here and resumed with a higher budget writes exactly the events of a
run that had the higher budget from the start.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasagent.agent.config import ConfigError, RunConfig
from nasagent.agent.llm.base import TokenUsage
from nasagent.agent.mutators import MUTATORS
from nasagent.agent.pricing import Spend


@dataclass(frozen=True)
class BudgetGuard:
    """The run's budgets and its estimate of a proposal before any was applied."""

    max_cost: float | None
    max_total_tokens: int | None
    prior: Spend

    @classmethod
    def of(cls, config: RunConfig) -> BudgetGuard | None:
        """The guard of a run, or None when it has no budget or makes no LLM call.

        Raises:
            ConfigError: `max_cost` is set but the run's model has no price.
        """
        if not MUTATORS.get(config.mutator).needs_llm or (
            config.max_cost is None and config.max_total_tokens is None
        ):
            return None
        usage = TokenUsage(completion_tokens=config.max_tokens)
        cost = config.price_table().cost(config.llm_model, usage)
        if config.max_cost is not None and cost is None:
            raise ConfigError(
                f"max_cost needs the price of model {config.llm_model!r}: add "
                f'[prices."{config.llm_model}"] input = ... output = ... (USD per million '
                "tokens) to the config, or give --price-in and --price-out"
            )
        return cls(config.max_cost, config.max_total_tokens, Spend(0, usage.completion_tokens,
                                                                   0, cost))

    def estimate(self, spent: Spend, applied: int) -> Spend:
        """The expected spend of one proposal: the mean so far, or the prior."""
        if applied <= 0:
            return self.prior
        cost = None if spent.cost_usd is None else spent.cost_usd / applied
        return Spend(spent.tokens_in // applied, spent.tokens_out // applied,
                     spent.tokens_cached // applied, cost)

    def refusal(self, spent: Spend, applied: int, in_flight: int) -> str | None:
        """Why one more proposal must not be dispatched now, or None when it may be.

        Args:
            spent: the spend of the applied iterations.
            applied: how many search iterations were applied.
            in_flight: proposals dispatched and not applied yet.
        """
        each = self.estimate(spent, applied)
        ahead = in_flight + 1
        if self.max_total_tokens is not None:
            tokens = spent.tokens + ahead * each.tokens
            if tokens > self.max_total_tokens:
                return (f"token budget reached: {spent.tokens} tokens spent over {applied} "
                        f"iterations + ~{each.tokens} per proposal for {ahead} more would pass "
                        f"max_total_tokens = {self.max_total_tokens}")
        if self.max_cost is not None:
            return _cost_refusal(self.max_cost, spent, applied, each, ahead)
        return None



def _cost_refusal(
    max_cost: float, spent: Spend, applied: int, each: Spend, ahead: int
) -> str | None:
    if spent.cost_usd is None or each.cost_usd is None:
        return "cost budget cannot be checked: a call in the log has no price"
    cost = spent.cost_usd + ahead * each.cost_usd
    if cost <= max_cost:
        return None
    return (f"cost budget reached: ${spent.cost_usd:.4f} spent over {applied} iterations + "
            f"~${each.cost_usd:.4f} per proposal for {ahead} more would pass max_cost = "
            f"${max_cost:g}")
