"""Health signals: delivery stats per IP, provider group and day; blocklist listings.

Delivery stats are the day's totals so far for (IP, tenant-local day, provider group): recording the same
figures again changes nothing, so a retried batch is harmless. The daily warmup decision reads them.

Listings arrive as the reputation service's `IpListingChanged` event (consumed once per event by the
platform's inbox) or through `RecordListing`. A first listing puts the IP in STANDBY one step lower; when the
last zone delists it the cool-down starts; the standby job releases it afterwards (see `daily.py`). A zone
that already lists the IP, or delists an IP it did not list, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool.adapters.store import Store
from ippool.app.records import SYSTEM_ACTOR, DayCounts, DecisionKind, IpRecord, StatsEntry
from ippool.app.shared import IpView, build_views, commit_change, local_today, require_schedule
from ippool.domain.address import parse_ip_address
from ippool.domain.lifecycle import Transition, enter_standby, mark_delisted
from ippool.domain.providers import ProviderGroup
from ippool.domain.registration import validate_hostname
from libs import audit
from libs.auth import Caller
from libs.db import Database
from libs.errors import InvalidArgument, NotFound, Violations

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
MAX_AGE_DAYS = 400
MAX_COUNT = 2**31 - 1
COUNTS = ("sent", "delivered", "bounced", "complained", "throttled")


@dataclass(frozen=True)
class StatsInput:
    """One entry as the request gives it (before validation)."""

    address: str
    day: str
    provider: ProviderGroup | None
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    throttled: int = 0


def _validate_stats(entries: list[StatsInput]) -> list[StatsEntry]:
    problems = Violations()
    if not entries:
        problems.add("stats", "at least one entry is required")
    if len(entries) > MAX_BATCH:
        problems.add("stats", f"at most {MAX_BATCH} entries per call")
    valid: list[StatsEntry] = []
    for index, entry in enumerate(entries[:MAX_BATCH]):
        name = f"stats[{index}]"
        address = ""
        try:
            address = str(parse_ip_address(entry.address, field_name=f"{name}.address"))
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        day = None
        if entry.day:
            try:
                day = date.fromisoformat(entry.day)
            except ValueError:
                problems.add(f"{name}.day", f"{entry.day!r} is not a day (YYYY-MM-DD)")
        for counter in COUNTS:
            value = getattr(entry, counter)
            if not 0 <= value <= MAX_COUNT:
                problems.add(f"{name}.{counter}", "must be a whole number >= 0")
        valid.append(
            StatsEntry(
                address=address,
                day=day,
                provider=entry.provider or ProviderGroup.OTHER,
                counts=DayCounts(*(getattr(entry, c) for c in COUNTS)),
            )
        )
    problems.raise_if_any()
    return valid


def apply_listing(
    session: Session,
    *,
    address: str,
    zone: str,
    listed: bool,
    reason: str,
    now: datetime,
    actor: str,
    tenant_id: str = "",
) -> IpRecord | None:
    """Applies one zone's listing or delisting to the IP inside the caller's transaction."""
    store = Store(session)
    record = store.ip(address, lock=True)
    if record is None:
        log.info("listing for an unknown IP ignored", extra={"address": address, "zone": zone})
        return None
    if tenant_id and tenant_id != record.tenant_id:
        log.warning(
            "listing names another tenant than the IP's; ignored",
            extra={"address": address, "event_tenant": tenant_id, "ip_tenant": record.tenant_id},
        )
        return record
    tenant = store.tenant(record.tenant_id)
    assert tenant is not None
    schedule = require_schedule(store, record)
    detail = f"{zone}" + (f" ({reason})" if reason else "")
    if listed:
        if not store.add_listing(address, zone, since=now, reason=reason):
            return record
        transition = enter_standby(record.status, schedule, now=now, reason=f"listed by {detail}")
        action, rule = ("STANDBY" if transition.state_changed else "LISTED"), "LISTING"
    else:
        if not store.remove_listing(address, zone):
            return record
        remaining = store.listings(address)
        if remaining:
            transition = Transition(
                record.status, record.status, f"delisted by {detail}; still listed by {', '.join(remaining)}", now
            )
        else:
            transition = mark_delisted(record.status, now=now)
            transition = replace(transition, reason=f"{transition.reason} (last: {detail})")
        action, rule = "DELISTED", "DELISTING"
    after = replace(
        record.with_status(transition.after),
        update_time=now,
        state_reason=transition.reason if transition.state_changed else record.state_reason,
    )
    commit_change(
        session,
        before=record,
        after=after,
        schedule=schedule,
        day=local_today(tenant, now),
        kind=DecisionKind.LIFECYCLE,
        action=action,
        rule=rule,
        reason=transition.reason,
        now=now,
        actor=actor,
    )
    return after


def listing_handler(now: Callable[[], datetime]) -> Callable[[Session, event_pb2.EventEnvelope, object], None]:
    """The consumer of emailengine.reputation.v1.IpListingChanged (runs in the inbox's transaction)."""

    def handle(session: Session, envelope: event_pb2.EventEnvelope, event: object) -> None:
        assert isinstance(event, reputation_events.IpListingChanged)
        try:
            address = str(parse_ip_address(event.address))
            validate_hostname(event.zone, "zone")
        except InvalidArgument as error:
            log.warning("malformed listing event ignored", extra={"event_id": envelope.event_id, "error": str(error)})
            return
        apply_listing(
            session,
            address=address,
            zone=event.zone.strip().rstrip(".").lower(),
            listed=event.listed,
            reason=event.reason,
            now=now(),
            actor=f"event:{envelope.source or 'reputation'}",
            tenant_id=event.tenant_id,
        )

    return handle


class SignalUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def record_stats(self, caller: Caller, entries: list[StatsInput]) -> int:
        """Stores the batch whole or not at all."""
        valid = _validate_stats(entries)
        now = self._now()
        for attempt in (1, 2):
            try:
                with self._db.transaction() as session:
                    self._store_stats(caller, Store(session), valid, now)
                return len(valid)
            except IntegrityError:
                if attempt == 2:  # two racing first inserts of the same row: the retry updates it
                    raise
        return len(valid)

    def _store_stats(self, caller: Caller, store: Store, entries: list[StatsEntry], now: datetime) -> None:
        records: dict[str, IpRecord] = {}
        tenants = {}
        for index, entry in enumerate(entries):
            record = records.get(entry.address) or store.ip(entry.address)
            if record is None:
                raise NotFound("ip", entry.address)
            records[entry.address] = record
            caller.require_write(record.tenant_id)
            audit.note(tenant_id=record.tenant_id)
            if record.tenant_id not in tenants:
                tenants[record.tenant_id] = store.tenant(record.tenant_id)
            today = local_today(tenants[record.tenant_id], now)
            day = entry.day or today
            if day > today:
                raise InvalidArgument(
                    f"stats[{index}].day", f"{day} is after today ({today}) in the tenant's time zone"
                )
            if day < today - timedelta(days=MAX_AGE_DAYS):
                raise InvalidArgument(f"stats[{index}].day", f"older than {MAX_AGE_DAYS} days")
            store.upsert_stats(
                address=entry.address,
                tenant_id=record.tenant_id,
                day=day,
                provider=entry.provider,
                counts=entry.counts,
                now=now,
            )

    def record_listing(self, caller: Caller, *, address: str, zone: str, listed: bool, reason: str) -> IpView:
        problems = Violations()
        normalised = zone_name = ""
        try:
            normalised = str(parse_ip_address(address))
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        try:
            zone_name = validate_hostname(zone, "zone")
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        problems.raise_if_any()
        now = self._now()
        with self._db.transaction() as session:
            store = Store(session)
            record = store.ip(normalised)
            if record is None:
                raise NotFound("ip", normalised)
            caller.require_write(record.tenant_id)
            audit.note(tenant_id=record.tenant_id)
            actor = caller.subject or SYSTEM_ACTOR
            updated = apply_listing(
                session, address=normalised, zone=zone_name, listed=listed, reason=reason, now=now, actor=actor
            )
            assert updated is not None
            return build_views(store, [updated], now)[0]
