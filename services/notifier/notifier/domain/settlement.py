"""Where a delivery attempt is settled: what one attempt of a dispatch comes to (sent, retried at a time, given
up, or not sendable here), decided once so that the outbox records it in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from notifier.domain.outbox import Dispatch
from notifier.domain.retry import RetryAction, RetryPolicy, decide_retry
from notifier.domain.routing import Channel

TELEGRAM_DISABLED = "telegram is not configured (EE_TELEGRAM_BOT_TOKEN is unset): stored, not sent"
_MAX_ERROR = 1000


class Settled(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # still pending, tried again at `retry_at`
    FAILED = "failed"  # given up for good; `error` says why
    DISABLED = "disabled"  # the channel is not configured in this deployment


@dataclass(frozen=True)
class Settlement:
    """What to record for one attempt of a dispatch (the dispatch, its pending deliveries, its route)."""

    state: Settled
    error: str  # shown on the deliveries: why it failed or waits, or a note on a delivery ("" when clean)
    parts_sent: int
    retry_at: datetime | None = None
    # A 429: the route waits until then; on Telegram every route does (the limit is the bot's).
    pause_until: datetime | None = None
    pause_every_telegram_route: bool = False
    # Something reached the destination in this attempt: per-route spacing counts from now.
    reached_destination: bool = False
    reason: Reason | None = None


def describe(result: DeliveryResult) -> str:
    """What a delivery shows of an answer: status, kind and the peer's reason, never an address or a secret."""
    status = f"HTTP {result.status_code} " if result.status_code else ""
    text = f"{status}{result.reason.value}"
    if result.description:
        text += f": {result.description}"
    if result.retry_after is not None:
        text += f" (retry_after {result.retry_after:g} s)"
    return text[:_MAX_ERROR]


def settle_attempt(
    *,
    dispatch: Dispatch,
    channel: Channel,
    result: DeliveryResult,
    parts_sent: int,
    note: str = "",
    channel_disabled: bool = False,
    now: datetime,
    random_unit: float,
    policy: RetryPolicy,
) -> Settlement:
    """Settle `dispatch`'s attempt (already counted in `dispatch.attempts`) that got `result`.

    `parts_sent`: how many parts of the message are in the chat now; `note`: what to say on a delivery that
    went through differently than asked (plain text after a formatting error, a migrated chat).
    """
    reached = parts_sent > dispatch.parts_sent
    if result.delivered:
        return Settlement(Settled.DELIVERED, note, parts_sent, reached_destination=True)
    if channel_disabled:
        return Settlement(Settled.DISABLED, TELEGRAM_DISABLED, parts_sent)
    decision = decide_retry(
        result,
        attempt=max(1, dispatch.attempts),
        first_attempt_at=dispatch.first_attempt_at or now,
        now=now,
        random_unit=random_unit,
        policy=policy,
    )
    error = describe(result)
    if decision.action is RetryAction.RETRY:
        limited = result.outcome is Outcome.RATE_LIMITED
        return Settlement(
            Settled.RETRY,
            error,
            parts_sent,
            retry_at=decision.retry_at,
            pause_until=decision.retry_at if limited else None,
            pause_every_telegram_route=limited and channel is Channel.TELEGRAM,
            reached_destination=reached,
            reason=result.reason,
        )
    why = error if decision.why.startswith(result.reason.value) else f"{decision.why} ({error})"
    return Settlement(Settled.FAILED, why[:_MAX_ERROR], parts_sent, reached_destination=reached, reason=result.reason)


def settle_abandoned(*, dispatch: Dispatch, now: datetime, policy: RetryPolicy) -> Settlement | None:
    """A dispatch due again past the give-up time (its attempts never came back: a sender died mid-send) is
    given up instead of being sent once more; None while there is time left."""
    if policy.give_up_after is None or dispatch.first_attempt_at is None:
        return None
    if now < dispatch.first_attempt_at + policy.give_up_after:
        return None
    last = dispatch.last_error or "the last attempt never finished (its sender stopped mid-send)"
    return Settlement(
        Settled.FAILED, f"still failing after {policy.give_up_after}: {last}"[:_MAX_ERROR], dispatch.parts_sent
    )


def nothing_left(dispatch: Dispatch) -> Settlement:
    """An open dispatch whose deliveries were all closed elsewhere (its route was deleted)."""
    return Settlement(Settled.FAILED, "nothing left to send", dispatch.parts_sent)
