"""The retry policy: a tenacity `AsyncRetrying` the caller can replace.

Transient failures (429, 5xx, timeouts, connection errors, malformed bodies) are retried with
exponential backoff and full jitter; a server's Retry-After wins over the backoff but is capped,
so a hostile or confused server cannot stall the search. Everything else fails at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from nasagent.agent.llm.base import LLMError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After, bounded by attempts and wait.

    Attributes:
        max_attempts: total attempts, the first included.
        initial_wait_s: scale of the exponential backoff (the first wait is at most this).
        max_wait_s: the longest single wait between attempts.
        max_retry_after_s: cap on a server's Retry-After (defaults to max_wait_s).
    """

    max_attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
    max_retry_after_s: float | None = None

    def retrying(self) -> AsyncRetrying:
        """A fresh tenacity controller for one call."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after_s if isinstance(error, LLMError) else None
        if hint is not None:
            cap = self.max_wait_s if self.max_retry_after_s is None else self.max_retry_after_s
            return max(0.0, min(hint, cap))
        backoff = wait_random_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s)
        return float(backoff(state))


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that tries once (for tests and for backends where retrying makes no sense)."""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, LLMError) and error.retryable


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "LLM attempt %d failed (%s); retrying in %.2f s", state.attempt_number, error, wait
    )


async def call_with_retries(
    policy: RetryPolicy, attempt: Callable[[], Awaitable[T]]
) -> tuple[T, int]:
    """Run `attempt` under `policy`; return its result and the number of attempts made.

    Raises:
        LLMError: the last failure, with `attempts` set to the number of attempts made and,
            when retries were exhausted, a message that says so.
    """
    attempts = 0
    try:
        async for controller in policy.retrying():
            with controller:
                attempts = controller.retry_state.attempt_number
                return await attempt(), attempts
    except LLMError as error:
        raise _final_error(error, attempts) from error
    raise RuntimeError("tenacity stopped without a result or an error")  # unreachable


def _final_error(error: LLMError, attempts: int) -> LLMError:
    if error.retryable and attempts > 1:
        message = f"gave up after {attempts} attempts; last error: {error.message}"
    else:
        message = error.message
    return LLMError(message, kind=error.kind, attempts=attempts, retry_after_s=error.retry_after_s)
