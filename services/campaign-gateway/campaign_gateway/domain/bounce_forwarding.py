"""THE place where a hard bounce or a complaint becomes a webhook delivery and a suppression.

Public API:
    BounceEvent                                   -- one forwarded event (what the receiver gets)
    event_from(notable, *, tenant_id, node, identity) -> BounceEvent
    wants(route_events, kind) -> bool             -- does a route take this kind (empty: every kind)
    delivery_id(route_id, identity) -> str        -- stable per (route, bounce): the receiver drops repeats with it
    bounce_body(event, *, delivery_id) -> bytes   -- canonical JSON, the bytes that are signed
    suppression_of(event, *, source, create_time) -> Suppression | None  -- the entry for the tenant's list
    suppression_for(*, kind, tenant_id, recipient, source, create_time) -> Suppression | None  -- the same, unbuilt
    RetryPlan, next_attempt(plan, *, attempts, first_attempt_at, now, status_code) -> datetime | None

Rules:
* a delivery is made for each (bounce, route of the bounce's tenant that takes its kind). Its id is derived from
  the route and the accounting record's identity, so the same bounce read twice (another pull, the pipe and the
  file) is the same delivery, stored once, and a retried request carries the same X-EmailEngine-Delivery;
* the recipient of a hard bounce or a complaint is suppressed for the tenant ("hard-bounce", "complaint"), as the
  address campaigns would send to (`domain/contacts.py`: the list's key and the form of an address are decided
  there, once). A complaint whose recipient the receiver redacted (no address, or an `.invalid` domain) is
  forwarded but not suppressed: there is nobody to suppress; nor is a recipient campaigns could not send to;
* retries: 2xx is delivered; anything else (a 5xx, a 4xx, no answer) is tried again after 5 s, doubling, at most
  every 10 minutes, for 7 days; then the delivery is FAILED (kept and counted on its route, never dropped).
  Only 410 Gone gives up at once: the receiver says the endpoint is gone for good.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from campaign_gateway.domain.accounting import Notable, NotableKind
from campaign_gateway.domain.contacts import Suppression, normalized_email


@dataclass(frozen=True)
class BounceEvent:
    kind: str
    """HARD_BOUNCE or COMPLAINT."""
    tenant_id: str
    node: str
    ip: str
    provider: str
    day: date
    """Tenant-local day the original message was queued."""
    time_logged: datetime
    recipient: str
    orig: str
    message_id: str
    env_id: str
    job_id: str
    dsn_status: str
    dsn_diag: str
    bounce_category: str
    feedback_type: str
    record_type: str


def event_from(notable: Notable, *, tenant_id: str, node: str) -> BounceEvent:
    record = notable.record
    return BounceEvent(
        kind=notable.kind.value,
        tenant_id=tenant_id,
        node=node,
        ip=notable.address,
        provider=notable.provider,
        day=notable.day,
        time_logged=record.time_logged,
        recipient=record.rcpt.strip(),
        orig=record.orig,
        message_id=record.message_id,
        env_id=record.env_id,
        job_id=record.job_id,
        dsn_status=record.dsn_status,
        dsn_diag=record.dsn_diag,
        bounce_category=record.bounce_cat,
        feedback_type=record.feedback_type,
        record_type=record.type.value,
    )


def wants(route_events: tuple[str, ...] | list[str], kind: str) -> bool:
    return not route_events or kind in route_events


def delivery_id(route_id: str, identity: bytes) -> str:
    """`bnc_` + 40 hex characters, the same for the same route and record whatever reads it."""
    return "bnc_" + hashlib.sha256(route_id.encode() + b"\x00" + identity).hexdigest()[:40]


WEBHOOK_BODY_TYPE = "emailengine.bounces"
WEBHOOK_BODY_VERSION = 1


def bounce_body(event: BounceEvent, *, delivery_id: str) -> bytes:
    values = asdict(event)
    values["day"] = event.day.isoformat()
    values["time_logged"] = event.time_logged.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {
        "type": WEBHOOK_BODY_TYPE,
        "version": WEBHOOK_BODY_VERSION,
        "delivery_id": delivery_id,
        "event": values,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def suppression_of(event: BounceEvent, *, source: str, create_time: datetime) -> Suppression | None:
    return suppression_for(
        kind=event.kind, tenant_id=event.tenant_id, recipient=event.recipient, source=source, create_time=create_time
    )


def suppression_for(
    *, kind: str, tenant_id: str, recipient: str, source: str, create_time: datetime
) -> Suppression | None:
    """`suppression_of` without building the event first (a tenant without routes needs only the suppression)."""
    email = normalized_email(recipient.strip().strip("<>"))
    if email is None or email.endswith(".invalid"):
        return None
    reason = "complaint" if kind == NotableKind.COMPLAINT else "hard-bounce"
    return Suppression(tenant_id, email, reason, source, create_time)


@dataclass(frozen=True)
class RetryPlan:
    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=10)
    give_up_after: timedelta = timedelta(days=7)


def next_attempt(
    plan: RetryPlan, *, attempts: int, first_attempt_at: datetime, now: datetime, status_code: int | None
) -> datetime | None:
    """When to try again after failed attempt number `attempts` (1 = the first); None: give up (FAILED)."""
    if status_code == 410:
        return None
    if now - first_attempt_at >= plan.give_up_after:
        return None
    delay = min(plan.first_delay * (2 ** min(max(attempts, 1) - 1, 30)), plan.max_delay)
    return now + delay
