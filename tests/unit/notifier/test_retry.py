"""Retry policy: exponential with bounded jitter, retry_after as a floor, permanent answers not retried."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.errors import InvalidArgument
from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from notifier.domain.retry import RetryAction, RetryPolicy, decide_retry
from tests.unit.notifier.conftest import T0

POLICY = RetryPolicy()
SERVER_ERROR = DeliveryResult(Outcome.RETRYABLE, Reason.SERVER_ERROR, 502)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def test_nominal_schedule_doubles_up_to_the_cap() -> None:
    assert [seconds(POLICY.nominal_delay(n)) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert seconds(POLICY.nominal_delay(10_000)) == 60


@pytest.mark.parametrize("attempt", [1, 3, 7, 50])
def test_jitter_stays_within_bounds(attempt: int) -> None:
    low, high = POLICY.delay_bounds(attempt)
    nominal = POLICY.nominal_delay(attempt)
    assert low == nominal * 0.8 and high == nominal * 1.2
    assert POLICY.delay(attempt, 0.0) == low
    assert POLICY.delay(attempt, 1.0) == high
    assert low <= POLICY.delay(attempt, 0.37) <= high


def test_retry_after_is_a_floor_with_a_small_jittered_margin() -> None:
    assert POLICY.delay(1, 0.0, retry_after=2) == timedelta(seconds=2)
    assert POLICY.delay(1, 1.0, retry_after=2) == timedelta(seconds=2.5)
    assert POLICY.delay(9, 1.0, retry_after=2) == timedelta(seconds=72)  # never sooner than the backoff


@pytest.mark.parametrize("asked", [float("inf"), 1e12, 1e308])
def test_a_retry_after_beyond_the_give_up_time_waits_that_long_and_gives_up_saying_why(asked: float) -> None:
    assert POLICY.delay(1, 0.0, retry_after=asked) == timedelta(hours=24)
    limited = DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429, retry_after=asked)
    decision = decide_retry(limited, attempt=1, first_attempt_at=T0, now=T0, random_unit=0.5)
    assert decision.action is RetryAction.GIVE_UP and "longer than the give-up time" in decision.why


@pytest.mark.parametrize("asked", [0.0, -5.0, float("nan")])
def test_a_retry_after_of_nothing_never_makes_a_retry_sooner_than_the_backoff(asked: float) -> None:
    assert POLICY.delay(6, 0.5, retry_after=asked) >= POLICY.delay_bounds(6)[0]


def test_attempts_start_at_one_and_random_unit_is_checked() -> None:
    with pytest.raises(ValueError):
        POLICY.nominal_delay(0)
    with pytest.raises(ValueError):
        POLICY.delay(1, 1.5)


def test_policy_validation() -> None:
    with pytest.raises(InvalidArgument):
        RetryPolicy(initial_delay=timedelta(0))
    with pytest.raises(InvalidArgument):
        RetryPolicy(multiplier=0.5)
    with pytest.raises(InvalidArgument):
        RetryPolicy(jitter=1.0)


def test_decisions() -> None:
    delivered = DeliveryResult(Outcome.DELIVERED, Reason.OK, 200, message_id=1)
    assert decide_retry(delivered, attempt=1, first_attempt_at=T0, now=T0, random_unit=0.5).action is RetryAction.DONE

    bad_html = DeliveryResult(Outcome.PERMANENT, Reason.BAD_FORMATTING, 400, "Bad Request: can't parse entities")
    give_up = decide_retry(bad_html, attempt=1, first_attempt_at=T0, now=T0, random_unit=0.5)
    assert give_up.action is RetryAction.GIVE_UP and "bad_formatting" in give_up.why

    limited = DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429, retry_after=2)
    retry = decide_retry(limited, attempt=1, first_attempt_at=T0, now=T0, random_unit=0.0)
    assert retry.action is RetryAction.RETRY and retry.retry_at == T0 + timedelta(seconds=2)

    retry = decide_retry(SERVER_ERROR, attempt=3, first_attempt_at=T0, now=T0, random_unit=0.5)
    assert retry.retry_at == T0 + timedelta(seconds=4)


def test_a_rate_limit_without_retry_after_uses_the_backoff() -> None:
    limited = DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429)
    retry = decide_retry(limited, attempt=2, first_attempt_at=T0, now=T0, random_unit=0.5)
    assert retry.retry_at == T0 + timedelta(seconds=2)


def test_gives_up_after_the_horizon_not_before() -> None:
    policy = RetryPolicy(give_up_after=timedelta(minutes=10))
    near = T0 + timedelta(minutes=8)
    assert (
        decide_retry(SERVER_ERROR, attempt=9, first_attempt_at=T0, now=near, random_unit=0.5, policy=policy).action
        is RetryAction.RETRY
    )
    late = T0 + timedelta(minutes=9, seconds=30)
    decision = decide_retry(SERVER_ERROR, attempt=20, first_attempt_at=T0, now=late, random_unit=0.5, policy=policy)
    assert decision.action is RetryAction.GIVE_UP and "server_error" in decision.why
    forever = RetryPolicy(give_up_after=None)
    far = T0 + timedelta(days=30)
    assert (
        decide_retry(SERVER_ERROR, attempt=99, first_attempt_at=T0, now=far, random_unit=0.5, policy=forever).action
        is RetryAction.RETRY
    )


def test_a_502_for_a_minute_is_retried_often_enough() -> None:
    """Acceptance 2: with the default policy a minute-long outage is noticed within the cap (60 s)."""
    elapsed = timedelta(0)
    attempt = 1
    while elapsed < timedelta(seconds=60):
        elapsed += POLICY.delay(attempt, 1.0)  # worst case jitter
        attempt += 1
    assert elapsed - timedelta(seconds=60) <= POLICY.max_delay * (1 + POLICY.jitter)
