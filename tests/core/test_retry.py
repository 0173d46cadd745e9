"""The one retry policy: capped exponential backoff with jitter, on tenacity, with a swappable sleep."""

from __future__ import annotations

import logging

import pytest

from jit_audit.retry import Backoff, retrying

BACKOFF = Backoff(attempts=5, base_seconds=1.0, cap_seconds=5.0)


class Refused(Exception):
    pass


class Broken(Exception):
    pass


def flaky(failures: list[BaseException], result: str = "done"):
    """A function that raises each of ``failures`` in turn, then returns ``result``; it counts its calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return call, calls


def policy(delays: list[float], **options) -> object:
    options.setdefault("retry_if", lambda error: isinstance(error, Refused))
    return retrying(BACKOFF, action="the test call", log=logging.getLogger("test_retry"), sleep=delays.append,
                    **options)


def test_ceilings_double_up_to_the_cap_and_waits_lie_in_their_upper_half():
    assert [BACKOFF.ceiling(retry) for retry in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    for retry in range(1, 6):
        ceiling = BACKOFF.ceiling(retry)
        waits = [BACKOFF.delay(retry) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 1, "jittered: concurrent callers do not retry in lockstep"


def test_retry_after_lengthens_a_wait_but_never_beyond_the_cap():
    assert BACKOFF.delay(1, retry_after=3.0) == 3.0
    assert BACKOFF.delay(1, retry_after=60.0) == 5.0
    assert 0.5 <= BACKOFF.delay(1, retry_after=0.0) <= 1.0, "Retry-After never shortens a wait"
    assert 0.5 <= BACKOFF.delay(1, retry_after=-10.0) <= 1.0, "a date in the past changes nothing"


def test_retries_what_the_predicate_accepts_and_returns_the_result():
    call, calls = flaky([Refused(), Refused()])
    delays: list[float] = []
    assert policy(delays)(call) == "done"
    assert len(calls) == 3
    assert len(delays) == 2 and 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0


def test_after_the_last_attempt_the_last_error_is_raised_unchanged():
    last = Refused("fifth")
    call, calls = flaky([Refused(), Refused(), Refused(), Refused(), last, Refused()])
    delays: list[float] = []
    with pytest.raises(Refused) as caught:
        policy(delays)(call)
    assert caught.value is last
    assert len(calls) == BACKOFF.attempts and len(delays) == BACKOFF.attempts - 1


def test_anything_else_is_raised_at_once():
    call, calls = flaky([Broken()])
    delays: list[float] = []
    with pytest.raises(Broken):
        policy(delays)(call)
    assert len(calls) == 1 and delays == []


def test_each_wait_is_logged_before_it_starts(caplog):
    caplog.set_level(logging.WARNING, logger="test_retry")
    call, _ = flaky([Refused("x")])
    delays: list[float] = []
    policy(delays, reason=lambda error: f"refused ({error})")(call)
    (record,) = caplog.records
    assert record.getMessage() == f"the test call: refused (x); retrying in {delays[0]:.1f} s (attempt 1 of 5)"


def test_a_servers_retry_after_comes_from_the_error():
    call, _ = flaky([Refused(), Refused()])
    delays: list[float] = []
    policy(delays, retry_after=lambda error: 4.5)(call)
    assert delays == [4.5, 4.5]
