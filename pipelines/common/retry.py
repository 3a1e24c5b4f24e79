"""Retries with exponential backoff and jitter, honouring the server's ``Retry-After``.

Each source says which of its errors are transient and how long the server asked it to wait; the policy
is the same everywhere: up to ``attempts`` tries, never waiting longer than ``max_wait_seconds`` at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_random_exponential,
)

from revloop.stopping import process_stopping

logger = logging.getLogger(__name__)

# When the process is shutting down (``revloop sync`` on SIGTERM), retries end at once with the error they
# were waiting out instead of holding the stop up for the rest of their backoff.
__all__ = ["call", "process_stopping", "retrying"]


def retrying(
    is_transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda exc: None,
    *,
    attempts: int = 8,
    base_seconds: float = 0.5,
    max_wait_seconds: float = 60.0,
    what: str = "request",
) -> Retrying:
    """A tenacity ``Retrying`` for one kind of call; use as ``for attempt in retrying(...): with attempt: ...``."""
    backoff = wait_random_exponential(multiplier=base_seconds, max=max_wait_seconds)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc) if exc is not None else None
        return min(max_wait_seconds, asked) if asked is not None else backoff(state)

    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s failed (attempt %d/%d): %s; retrying in %.1fs",
            what, state.attempt_number, attempts, type(exc).__name__ if exc else "?",
            state.next_action.sleep if state.next_action else 0.0,
        )

    return Retrying(
        stop=stop_after_attempt(attempts) | stop_when_event_set(process_stopping),
        sleep=process_stopping.wait,
        wait=wait,
        retry=retry_if_exception(is_transient),
        before_sleep=log,
        reraise=True,
    )


def call(fn: Callable[[], Any], policy: Retrying) -> Any:
    """Run ``fn`` under ``policy``."""
    return policy(fn)
