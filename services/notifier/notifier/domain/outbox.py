"""What the outbox holds: stored alerts, routes as stored, one delivery per (alert, route), and dispatches (one
message on one route, a single alert or a storm digest), each with the facts its rules need.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from notifier.domain.alert import Alert
from notifier.domain.routing import Channel, Route
from notifier.domain.status import AlertStatus, AlertSummary, DeliveryFacts, DeliveryStatus


@dataclass(frozen=True)
class StoredAlert:
    alert_id: str
    alert: Alert
    create_time: datetime
    summary: AlertSummary
    suppressed_count: int = 0
    duplicate_of: str | None = None  # a suppressed duplicate: the alert that was sent in its stead

    @property
    def tenant(self) -> str:
        return self.alert.tenant

    @property
    def suppressed(self) -> bool:
        return self.summary.state is AlertStatus.SUPPRESSED


@dataclass(frozen=True)
class StoredRoute:
    """A route as stored. `route` is None when what is stored cannot be used (`problem` says why): such a route
    is listed and its deliveries fail saying so, but it never breaks the reading of the others."""

    route_id: str
    tenant: str | None  # None: an admin route
    channel: str
    target: str = field(repr=False)  # a chat id, or a webhook URL whose path may hold a secret
    route: Route | None
    problem: str = ""
    secret: str | None = field(default=None, repr=False)  # the webhook signing key: for the sender only
    create_time: datetime | None = None
    last_sent_at: datetime | None = None
    paused_until: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant is None

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


@dataclass(frozen=True)
class Delivery:
    """One alert on one route: the outbox row written with the alert."""

    delivery_id: str
    alert_id: str
    route_id: str
    route_tenant_id: str | None  # the route's tenant when the delivery was made (None: an admin route)
    channel: Channel
    destination: str  # what may be shown of the target: the chat id, or the webhook's origin
    state: DeliveryStatus
    accepted_at: datetime
    deliver_at: datetime
    silent: bool = False
    dispatch_id: str | None = None
    digest: bool = False
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def to_admin_route(self) -> bool:
        return self.route_tenant_id is None

    @property
    def facts(self) -> DeliveryFacts:
        return DeliveryFacts(self.state, self.attempts, self.last_error, self.delivered_at)


@dataclass(frozen=True)
class PendingDelivery:
    """A delivery waiting to be planned into a message, as the storm rule sees it."""

    delivery_id: str
    alert_id: str
    accepted_at: datetime
    silent: bool


@dataclass(frozen=True)
class Dispatch:
    """One message on one route, with its retry schedule and how many of its parts already reached the chat."""

    dispatch_id: str
    route_id: str
    state: DeliveryStatus
    digest: bool
    silent: bool
    created_at: datetime
    next_attempt_at: datetime
    parts_sent: int = 0
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_error: str = ""
    delivered_at: datetime | None = None

    def started(self, now: datetime, *, answer_within: timedelta) -> Dispatch:
        """The next attempt, on record before anything is sent: counted, and not due again before
        `answer_within` (a sender that dies mid-send leaves the attempt counted towards giving up)."""
        return replace(
            self,
            attempts=self.attempts + 1,
            first_attempt_at=self.first_attempt_at or now,
            next_attempt_at=now + answer_within,
        )
