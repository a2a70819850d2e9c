"""What several use cases share: schedule lookup, the tenant's local day, recording an IP change, and the
read view of an IP with today's quota.

Every change to an IP goes through `commit_change`: the IP row, its history entry and its events
(IpStateChanged when the state changes, IpQuotaChanged when today's quota changes) in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy.orm import Session

from emailengine.ippool.v1 import events_pb2, ippool_service_pb2
from ippool.adapters.store import Store
from ippool.app.records import DecisionKind, DecisionRecord, IpRecord, TenantRecord, Usage
from ippool.domain.providers import ProviderGroup, provider_cap
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupSchedule, daily_quota
from ippool.domain.sending_day import hourly_quota, local_sending_day
from libs import events

SERVICE = "ip-pool"


def resolve_schedule(store: Store, tenant_id: str, schedule_id: str) -> WarmupSchedule | None:
    """The built-in default, or the tenant's own schedule of that id."""
    if schedule_id == DEFAULT_SCHEDULE.schedule_id:
        return DEFAULT_SCHEDULE
    found = store.schedule(tenant_id, schedule_id)
    return found.schedule if found else None


def require_schedule(store: Store, ip: IpRecord) -> WarmupSchedule:
    schedule = resolve_schedule(store, ip.tenant_id, ip.schedule_id)
    if schedule is None:  # schedules are never deleted; this is a broken database
        raise RuntimeError(f"ip {ip.address}: schedule {ip.schedule_id!r} of {ip.tenant_id!r} is missing")
    return schedule


def local_today(tenant: TenantRecord, now: datetime) -> date:
    return local_sending_day(now, tenant.policy.window.time_zone)


def state_value(state: object) -> int:
    return ippool_service_pb2.IpState.Value(f"IP_STATE_{state}")


def commit_change(
    session: Session,
    *,
    before: IpRecord,
    after: IpRecord,
    schedule: WarmupSchedule,
    day: date,
    kind: DecisionKind,
    action: str,
    rule: str,
    reason: str,
    now: datetime,
    actor: str,
    figures: dict | None = None,
    notes: tuple[str, ...] = (),
) -> DecisionRecord:
    """Saves `after`, records the decision in the IP's history and publishes what changed, atomically."""
    store = Store(session)
    store.save_ip(after)
    record = DecisionRecord(
        address=after.address,
        tenant_id=after.tenant_id,
        kind=kind,
        day=day,
        action=action,
        rule=rule,
        reason=reason,
        figures=figures,
        notes=notes,
        state_before=before.state,
        state_after=after.state,
        step_index_before=before.position.step_index,
        step_index_after=after.position.step_index,
        quota_before=daily_quota(schedule, before.position),
        quota_after=daily_quota(schedule, after.position),
        time=now,
        actor=actor,
    )
    decision_id = store.insert_decision(record)
    quota_before = before.effective_daily_quota(schedule, day)
    quota_after = after.effective_daily_quota(schedule, day)
    if before.state != after.state:
        events.publish(
            session,
            source=SERVICE,
            tenant_id=after.tenant_id,
            event=events_pb2.IpStateChanged(
                address=after.address,
                tenant_id=after.tenant_id,
                previous_state=state_value(before.state),  # type: ignore[arg-type]
                state=state_value(after.state),  # type: ignore[arg-type]
                reason=reason,
                daily_quota=quota_after,
                decision_id=str(decision_id),
            ),
            now=now,
        )
    if quota_before != quota_after:
        publish_quota(session, after, day, quota_before, quota_after, reason, now, str(decision_id))
    return replace(record, decision_id=decision_id)


def publish_quota(
    session: Session,
    ip: IpRecord,
    day: date,
    previous: int,
    current: int,
    reason: str,
    now: datetime,
    decision_id: str = "",
) -> None:
    events.publish(
        session,
        source=SERVICE,
        tenant_id=ip.tenant_id,
        event=events_pb2.IpQuotaChanged(
            address=ip.address,
            tenant_id=ip.tenant_id,
            day=day.isoformat(),
            previous_daily_quota=previous,
            daily_quota=current,
            reason=reason,
            decision_id=decision_id,
        ),
        now=now,
    )


# -- the read view ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderQuotaView:
    provider: ProviderGroup
    cap: int
    used_today: int
    remaining_today: int


@dataclass(frozen=True)
class QuotaView:
    day: date
    daily: int
    hourly: int
    used_today: int
    remaining_today: int
    by_provider: tuple[ProviderQuotaView, ...]


@dataclass(frozen=True)
class IpView:
    ip: IpRecord
    step_daily_volume: int
    quota: QuotaView
    active_listings: tuple[str, ...]


def quota_view(ip: IpRecord, tenant: TenantRecord, schedule: WarmupSchedule, usage: Usage, now: datetime) -> QuotaView:
    """Today's quota in the tenant's local day, as the domain computes it, less what was used."""
    day = local_today(tenant, now)
    daily = ip.effective_daily_quota(schedule, day)
    used_by_provider = usage.by_provider
    used = sum(used_by_provider.values())
    remaining = max(0, daily - used)
    shares = tenant.policy.provider_shares
    providers = []
    for group in ProviderGroup:
        cap = provider_cap(daily, shares, group)
        group_used = used_by_provider.get(group, 0)
        providers.append(ProviderQuotaView(group, cap, group_used, max(0, min(cap - group_used, remaining))))
    return QuotaView(
        day=day,
        daily=daily,
        hourly=hourly_quota(daily, tenant.policy.window, now),
        used_today=used,
        remaining_today=remaining,
        by_provider=tuple(providers),
    )


def build_views(store: Store, records: list[IpRecord], now: datetime) -> list[IpView]:
    """Views of IPs of any tenants, with a few queries for the whole page."""
    tenants = store.tenants({r.tenant_id for r in records})
    listings = store.listings_of([r.address for r in records])
    by_day: dict[date, list[str]] = {}
    for record in records:
        by_day.setdefault(local_today(tenants[record.tenant_id], now), []).append(record.address)
    usage: dict[str, Usage] = {}
    for day, addresses in by_day.items():
        usage.update(store.usage(addresses, day))
    schedules: dict[tuple[str, str], WarmupSchedule] = {}
    views = []
    for record in records:
        key = (record.tenant_id, record.schedule_id)
        if key not in schedules:
            schedules[key] = require_schedule(store, record)
        schedule = schedules[key]
        views.append(
            IpView(
                ip=record,
                step_daily_volume=daily_quota(schedule, record.position),
                quota=quota_view(record, tenants[record.tenant_id], schedule, usage[record.address], now),
                active_listings=tuple(listings.get(record.address, ())),
            )
        )
    return views
