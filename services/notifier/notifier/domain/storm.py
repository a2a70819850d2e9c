"""Storm grouping: when one route gets many alerts at once, send one message listing them.

Normal traffic goes out at once, one message per alert. When a route has received `threshold`
alerts within `window`, it is in a storm: pending alerts are held for `group_wait` (counted from
the oldest one waiting) and then leave together as one digest. Consecutive sends to one chat are
also spaced by `min_spacing`, Telegram's ~1 message/second per chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from libs.errors import InvalidArgument
from notifier.domain.alert import require_aware


class Pending(Protocol):
    """What the grouping needs to know about one undelivered alert for a route."""

    @property
    def accepted_at(self) -> datetime: ...


@dataclass(frozen=True)
class StormPolicy:
    window: timedelta = timedelta(seconds=60)
    threshold: int = 4
    group_wait: timedelta = timedelta(seconds=20)
    max_alerts_per_digest: int = 50
    min_spacing: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise InvalidArgument("storm.threshold", "must be at least 1")
        if self.max_alerts_per_digest < 2:
            raise InvalidArgument("storm.max_alerts_per_digest", "must be at least 2")
        if min(self.window, self.group_wait, self.min_spacing) < timedelta(0):
            raise InvalidArgument("storm", "durations must not be negative")

    def window_start(self, now: datetime) -> datetime:
        """Count the route's alerts accepted at or after this instant to get `accepted_in_window`."""
        return now - self.window


P = TypeVar("P", bound=Pending)


@dataclass(frozen=True)
class DispatchPlan(Generic[P]):
    """`batch` is what to send now as one message (empty: nothing yet); `next_check_at` is when to look again."""

    batch: tuple[P, ...]
    next_check_at: datetime | None
    storm: bool

    @property
    def is_digest(self) -> bool:
        return len(self.batch) > 1


def plan_dispatch(
    pending: Sequence[P],
    *,
    accepted_in_window: int,
    last_sent_at: datetime | None,
    now: datetime,
    policy: StormPolicy | None = None,
) -> DispatchPlan[P]:
    """Decide what one route sends now.

    `pending`: the route's undelivered, due alerts (deliver_at <= now), any order.
    `accepted_in_window`: alerts accepted for this route since `policy.window_start(now)`, sent or not.
    `last_sent_at`: when the route last sent a message, for per-chat spacing.
    """
    policy = policy or StormPolicy()
    require_aware(now, "now")
    if not pending:
        return DispatchPlan(batch=(), next_check_at=None, storm=False)
    ordered = sorted(pending, key=lambda p: p.accepted_at)
    storm = accepted_in_window >= policy.threshold or len(ordered) >= policy.threshold
    not_before = last_sent_at + policy.min_spacing if last_sent_at else now
    if storm:
        not_before = max(not_before, ordered[0].accepted_at + policy.group_wait)
    if now < not_before:
        return DispatchPlan(batch=(), next_check_at=not_before, storm=storm)
    batch = tuple(ordered[: policy.max_alerts_per_digest]) if storm else (ordered[0],)
    rest = len(ordered) - len(batch)
    return DispatchPlan(batch=batch, next_check_at=now + policy.min_spacing if rest else None, storm=storm)
