"""When to try a failed delivery again, as a pure function of the attempt number and the answer.

Exponential backoff with bounded jitter (the random draw is passed in, so schedules are testable),
a cap so a recovering Telegram is noticed within a minute, `retry_after` honoured as a floor, and a
give-up horizon after which the alert is marked failed (kept and listed, never silently dropped).

A peer's `retry_after` is never trusted further than that horizon: `inf`, 1e12 or a date in the year 9999
wait as long as the horizon (and so give up, saying why), never overflow; zero, a date in the past or a
negative value never make a retry come sooner than the backoff would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from libs.errors import InvalidArgument
from notifier.domain.alert import require_aware
from notifier.domain.delivery import DeliveryResult, Outcome


@dataclass(frozen=True)
class RetryPolicy:
    """Default schedule (before jitter): 1, 2, 4, 8, 16, 32, 60, 60, … seconds, for up to 24 h."""

    initial_delay: timedelta = timedelta(seconds=1)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(seconds=60)
    jitter: float = 0.2  # ± fraction of the nominal delay
    retry_after_margin: timedelta = timedelta(seconds=0.5)  # added on top of retry_after, spread by jitter
    give_up_after: timedelta | None = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.initial_delay <= timedelta(0) or self.max_delay < self.initial_delay:
            raise InvalidArgument("retry.initial_delay", "must be positive and not above max_delay")
        if self.multiplier < 1.0:
            raise InvalidArgument("retry.multiplier", "must be >= 1")
        if not 0.0 <= self.jitter < 1.0:
            raise InvalidArgument("retry.jitter", "must be in [0, 1)")

    def nominal_delay(self, attempt: int) -> timedelta:
        """Delay after failed attempt `attempt` (1 = the first send), before jitter."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        seconds = self.initial_delay.total_seconds() * self.multiplier ** min(attempt - 1, 64)
        return timedelta(seconds=min(seconds, self.max_delay.total_seconds()))

    def delay_bounds(self, attempt: int) -> tuple[timedelta, timedelta]:
        nominal = self.nominal_delay(attempt)
        return nominal * (1 - self.jitter), nominal * (1 + self.jitter)

    @property
    def longest_wait(self) -> timedelta:
        """The most a peer's `retry_after` is honoured: the give-up horizon (a day without one)."""
        return self.give_up_after if self.give_up_after is not None else timedelta(days=1)

    def delay(self, attempt: int, random_unit: float, retry_after: float | None = None) -> timedelta:
        """`random_unit` in [0, 1) picks a point within the jitter bounds.

        With `retry_after` the delay is never shorter than it (Telegram would answer 429 again) nor than the
        backoff; the margin on top is jittered so that many waiting deliveries do not all return in the same
        instant. A `retry_after` beyond `longest_wait` (infinity included) counts as `longest_wait`.
        """
        if not 0.0 <= random_unit <= 1.0:
            raise ValueError("random_unit must be in [0, 1]")
        low, high = self.delay_bounds(attempt)
        backoff = low + (high - low) * random_unit
        if retry_after is None or retry_after != retry_after:  # NaN says nothing
            return backoff
        asked = min(max(0.0, retry_after), self.longest_wait.total_seconds())
        return max(timedelta(seconds=asked) + self.retry_after_margin * random_unit, backoff)


class RetryAction(StrEnum):
    DONE = "done"
    RETRY = "retry"
    GIVE_UP = "give_up"  # permanent answer, or retried past the give-up horizon


@dataclass(frozen=True)
class RetryDecision:
    action: RetryAction
    retry_at: datetime | None = None
    why: str = ""


def decide_retry(
    result: DeliveryResult,
    *,
    attempt: int,
    first_attempt_at: datetime,
    now: datetime,
    random_unit: float,
    policy: RetryPolicy | None = None,
) -> RetryDecision:
    """What the outbox does after attempt `attempt` got `result`."""
    policy = policy or RetryPolicy()
    require_aware(now, "now")
    if result.outcome is Outcome.DELIVERED:
        return RetryDecision(RetryAction.DONE)
    if result.outcome is Outcome.PERMANENT:
        return RetryDecision(RetryAction.GIVE_UP, why=f"{result.reason.value}: {result.description}".strip(": "))
    retry_after = result.retry_after if result.outcome is Outcome.RATE_LIMITED else None
    retry_at = now + policy.delay(attempt, random_unit, retry_after)
    if policy.give_up_after is not None and retry_at > first_attempt_at + policy.give_up_after:
        why = f"still failing after {policy.give_up_after}: {result.reason.value}"
        if retry_after is not None and now + timedelta(seconds=min(retry_after, 1e9)) > retry_at:
            why += f" (asked to wait {retry_after:g} s, longer than the give-up time)"
        return RetryDecision(RetryAction.GIVE_UP, why=why)
    return RetryDecision(RetryAction.RETRY, retry_at=retry_at, why=result.reason.value)
