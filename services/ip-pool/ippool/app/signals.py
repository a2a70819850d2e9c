"""Health signals: delivery stats per IP, provider group and day; blocklist listings.

Delivery stats are the day's totals so far for (IP, tenant-local day, provider group): recording the same
figures again changes nothing, so a retried batch is harmless. The daily warmup decision reads them.

Listings arrive as the reputation service's `IpListingChanged` event (`on_listing_changed`, applied once per
event by the platform's inbox) or through `RecordListing`. A first listing puts the IP in STANDBY one step
lower; when the last zone delists it the cool-down starts; the standby job releases it afterwards (see
`daily.py`). A zone that already lists the IP, or delists an IP it did not list, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta

from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool.app.history import record_transition
from ippool.app.ip_today import IpToday, ips_today
from ippool.app.ips import visible_ip
from ippool.app.schedules import schedule_of
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.address import parse_ip_address
from ippool.domain.history import SYSTEM_ACTOR
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import Transition, enter_standby, mark_delisted
from ippool.domain.providers import ProviderGroup
from ippool.domain.registration import validate_hostname
from ippool.domain.tenant import Tenant
from ippool.domain.usage import DayCounts
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import InvalidArgument, Violations

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
MAX_AGE_DAYS = 400
MAX_COUNT = 2**31 - 1


@dataclass(frozen=True)
class StatsInput:
    """One entry as the request gives it (before validation)."""

    address: str
    day: str
    provider: ProviderGroup | None
    counts: DayCounts = field(default_factory=DayCounts)


@dataclass(frozen=True)
class StatsEntry:
    """One validated entry: the day's totals for one IP and provider group (`day` None: the tenant's today)."""

    address: str
    day: date | None
    provider: ProviderGroup
    counts: DayCounts


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
        for counter in fields(DayCounts):
            if not 0 <= getattr(entry.counts, counter.name) <= MAX_COUNT:
                problems.add(f"{name}.{counter.name}", "must be a whole number >= 0")
        valid.append(StatsEntry(address, day, entry.provider or ProviderGroup.OTHER, entry.counts))
    problems.raise_if_any()
    return valid


class SignalUseCases:
    def __init__(self, unit_of_work: Callable[[], IpPoolUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def record_stats(self, caller: Caller, entries: list[StatsInput]) -> int:
        """Stores the batch whole or not at all."""
        valid = _validate_stats(entries)
        now = self._clock.now()
        with self._uow() as uow:
            ips: dict[str, Ip] = {}
            tenants: dict[str, Tenant] = {}
            # The same (IP, day, provider) twice in a batch: the later totals win, as if sent one after the other.
            totals: dict[tuple[str, date, ProviderGroup], tuple[str, str, date, ProviderGroup, DayCounts]] = {}
            for index, entry in enumerate(valid):
                ip = ips.get(entry.address) or visible_ip(uow, caller, entry.address)
                ips[entry.address] = ip
                caller.require_write(ip.tenant_id)
                audit.note(tenant_id=ip.tenant_id)
                tenant = tenants.get(ip.tenant_id) or uow.tenants.get(ip.tenant_id)
                assert tenant is not None
                tenants[ip.tenant_id] = tenant
                today = tenant.local_day(now)
                day = entry.day or today
                if day > today:
                    raise InvalidArgument(
                        f"stats[{index}].day", f"{day} is after today ({today}) in the tenant's time zone"
                    )
                if day < today - timedelta(days=MAX_AGE_DAYS):
                    raise InvalidArgument(f"stats[{index}].day", f"older than {MAX_AGE_DAYS} days")
                totals[(entry.address, day, entry.provider)] = (
                    entry.address,
                    ip.tenant_id,
                    day,
                    entry.provider,
                    entry.counts,
                )
            # An upsert: two batches racing to insert the same first row cannot both insert it, so no retry.
            uow.delivery_stats.record(totals.values(), now)
            uow.commit()
        return len(valid)

    def record_listing(self, caller: Caller, *, address: str, zone: str, listed: bool, reason: str) -> IpToday:
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
        now = self._clock.now()
        with self._uow() as uow:
            ip = visible_ip(uow, caller, normalised, lock=True)
            caller.require_write(ip.tenant_id)
            audit.note(tenant_id=ip.tenant_id)
            updated = self._apply_listing(
                uow, ip, zone=zone_name, listed=listed, reason=reason, now=now, actor=caller.subject or SYSTEM_ACTOR
            )
            view = ips_today(uow, [updated], now)[0]
            uow.commit()
        return view

    def on_listing_changed(
        self, uow: IpPoolUnitOfWork, envelope: event_pb2.EventEnvelope, event: reputation_events.IpListingChanged
    ) -> None:
        """The reputation service's IpListingChanged, applied in the consumer's unit of work (which commits)."""
        try:
            address = str(parse_ip_address(event.address))
            zone = validate_hostname(event.zone, "zone")
        except InvalidArgument as error:
            log.warning("malformed listing event ignored", extra={"event_id": envelope.event_id, "error": str(error)})
            return
        ip = uow.ips.get(address, lock=True)
        if ip is None:
            log.info("listing for an unknown IP ignored", extra={"address": address, "zone": zone})
            return
        if event.tenant_id and event.tenant_id != ip.tenant_id:
            log.warning(
                "listing names another tenant than the IP's; ignored",
                extra={"address": address, "event_tenant": event.tenant_id, "ip_tenant": ip.tenant_id},
            )
            return
        actor = f"event:{envelope.source or 'reputation'}"
        self._apply_listing(
            uow, ip, zone=zone, listed=event.listed, reason=event.reason, now=self._clock.now(), actor=actor
        )

    @staticmethod
    def _apply_listing(
        uow: IpPoolUnitOfWork, ip: Ip, *, zone: str, listed: bool, reason: str, now: datetime, actor: str
    ) -> Ip:
        """One zone's listing or delisting of the (locked) IP; returns the IP as it is afterwards."""
        tenant = uow.tenants.get(ip.tenant_id)
        assert tenant is not None
        schedule = schedule_of(uow, ip)
        detail = zone + (f" ({reason})" if reason else "")
        if listed:
            if not uow.listings.add(ip.address, zone, since=now, reason=reason):
                return ip
            transition = enter_standby(ip.status, schedule, now=now, reason=f"listed by {detail}")
            action, rule = ("STANDBY" if transition.state_changed else "LISTED"), "LISTING"
        else:
            if not uow.listings.remove(ip.address, zone):
                return ip
            remaining = uow.listings.zones(ip.address)
            if remaining:
                transition = Transition(
                    ip.status, ip.status, f"delisted by {detail}; still listed by {', '.join(remaining)}", now
                )
            else:
                transition = mark_delisted(ip.status, now=now)
                transition = replace(transition, reason=f"{transition.reason} (last: {detail})")
            action, rule = "DELISTED", "DELISTING"
        return record_transition(
            uow, ip, transition, schedule=schedule, day=tenant.local_day(now), action=action, rule=rule, actor=actor
        )
