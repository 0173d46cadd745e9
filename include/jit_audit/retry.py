"""Trying again what may work a moment later, the same way everywhere: tenacity with one backoff policy.

Capped exponential backoff with jitter (:class:`Backoff`): before retry *n* the wait is drawn from
the upper half of ``min(cap, base * 2**(n - 1))`` seconds, so callers that failed together do not
retry in lockstep, yet none retries sooner than half its ceiling. A server's ``Retry-After``
lengthens a wait (never beyond the cap). Every wait is logged first: what failed, why, how long,
and which attempt (of how many) it was. After the last attempt the last error is raised unchanged, for the
caller to turn into its own message. ``sleep`` is swappable, so tests count and bound the waits
without waiting.

Used by ``exports`` (DynamoDB refusing to start an export for now), ``jit_api`` (429, 5xx and
dropped connections) and ``ledger`` (another publisher took the sequence number).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a retry is built, not when a DAG file imports a sensor
    import tenacity


@dataclass(frozen=True)
class Backoff:
    """How often to try, and how long to wait in between.

    ``attempts`` tries in all; the ceilings of the waits double from ``base_seconds`` up to
    ``cap_seconds``, and each wait is drawn from the upper half of its ceiling.
    """

    attempts: int
    base_seconds: float
    cap_seconds: float

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1 for the first retry)."""
        return min(self.cap_seconds, self.base_seconds * 2 ** (retry - 1))

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """A jittered wait before retry ``retry``; at least ``retry_after`` (the server's), at most the cap."""
        ceiling = self.ceiling(retry)
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.cap_seconds)
        return delay


def retrying(
    backoff: Backoff,
    *,
    retry_if: Callable[[BaseException], bool],
    action: str,
    log: logging.Logger,
    reason: Callable[[BaseException], str] = lambda error: type(error).__name__,
    retry_after: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` that calls ``fn`` again while it raises what ``retry_if`` accepts.

    Use it as ``retrying(...)(fn, *args)``. ``action`` and ``reason(error)`` make the log line
    (``<action>: <reason>; retrying in 1.4 s (attempt 1 of 6)``); ``retry_after(error)`` gives the
    seconds a server asked to wait, if it did. Any other error, and the last one, propagate as raised.
    """
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after(error) if retry_after is not None and error is not None else None
        return backoff.delay(state.attempt_number, asked)

    def log_before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", action,
                    reason(error) if error is not None else "no error", state.upcoming_sleep,
                    state.attempt_number, backoff.attempts)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(retry_if),
        stop=tenacity.stop_after_attempt(backoff.attempts),
        wait=wait,
        before_sleep=log_before_sleep,
        sleep=sleep,
        reraise=True,
    )
