"""All of the ip-pool's SQL: one `Store` per database transaction, reading and writing `ippool.app.records`.

Locks: `ip(address, lock=True)` takes the IP's row lock (SELECT ... FOR UPDATE on PostgreSQL; on SQLite a
no-op write that takes the database's write lock first), so read-decide-write on one IP is never interleaved.
`lock_tenant_for_allocation` does the same for a tenant's allocations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ippool.adapters.tables import (
    allocation_lines,
    allocations,
    delivery_stats,
    ip_decisions,
    ip_listings,
    ips,
    schedules,
    tenant_day_runs,
    tenants,
)
from ippool.app.records import (
    DayCounts,
    DecisionKind,
    DecisionRecord,
    IpRecord,
    ScheduleRecord,
    TenantRecord,
    Usage,
)
from ippool.domain.health import HealthPolicy
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import ProviderGroup, ProviderShares
from ippool.domain.rotation import RotationPolicy
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, WarmupStep
from ippool.domain.sending_day import SendingWindow
from ippool.domain.tenant import TenantPolicy


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# -- policies as JSON ------------------------------------------------------------------------------


def health_to_json(policy: HealthPolicy) -> dict[str, Any]:
    data = asdict(policy)
    data["standby_cooldown"] = policy.standby_cooldown.total_seconds()
    return data


def health_from_json(data: dict[str, Any]) -> HealthPolicy:
    known = {f.name for f in fields(HealthPolicy)}
    values = {k: v for k, v in (data or {}).items() if k in known}
    if "standby_cooldown" in values:
        values["standby_cooldown"] = timedelta(seconds=float(values["standby_cooldown"]))
    return HealthPolicy(**values)


def _from_json(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in known})


def _tenant_from_row(row: sa.Row) -> TenantRecord:
    policy = TenantPolicy(
        tenant_id=row.tenant_id,
        window=SendingWindow(row.time_zone, row.sending_window_start_hour, row.sending_window_end_hour),
        health=health_from_json(row.health),
        provider_shares=_from_json(ProviderShares, row.provider_shares),
        rotation=_from_json(RotationPolicy, row.rotation),
        schedule_id=row.default_schedule_id,
    )
    return TenantRecord(
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        policy=policy,
        create_time=aware(row.create_time),  # type: ignore[arg-type]
        update_time=aware(row.update_time),
    )


def _tenant_values(record: TenantRecord) -> dict[str, Any]:
    policy = record.policy
    return {
        "tenant_id": record.tenant_id,
        "display_name": record.display_name,
        "time_zone": policy.window.time_zone,
        "sending_window_start_hour": policy.window.start_hour,
        "sending_window_end_hour": policy.window.end_hour,
        "create_time": record.create_time,
        "update_time": record.update_time,
        "default_schedule_id": policy.schedule_id,
        "health": health_to_json(policy.health),
        "provider_shares": asdict(policy.provider_shares),
        "rotation": asdict(policy.rotation),
    }


def steps_to_json(schedule: WarmupSchedule) -> list[dict[str, Any]]:
    return [{"daily_volume": s.daily_volume, "sending_days": s.sending_days} for s in schedule.steps]


def _schedule_from_row(row: sa.Row) -> ScheduleRecord:
    steps = tuple(WarmupStep(s["daily_volume"], s["sending_days"]) for s in row.steps)
    return ScheduleRecord(
        schedule=WarmupSchedule(row.schedule_id, steps),
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        create_time=aware(row.create_time),
    )


def _ip_from_row(row: sa.Row) -> IpRecord:
    return IpRecord(
        address=row.address,
        tenant_id=row.tenant_id,
        purpose=row.purpose,
        pool=row.pool,
        pmta_node=row.pmta_node,
        helo_hostname=row.helo_hostname,
        state=IpState(row.state),
        state_reason=row.state_reason,
        schedule_id=row.schedule_id,
        position=WarmupPosition(row.step_index, row.sending_day_in_step, row.last_sending_day),
        sending_day=row.sending_day,
        decided_day=row.decided_day,
        create_time=aware(row.create_time),  # type: ignore[arg-type]
        update_time=aware(row.update_time),  # type: ignore[arg-type]
        resting_until=row.resting_until,
        standby_since=aware(row.standby_since),
        delisted_at=aware(row.delisted_at),
    )


def _ip_values(record: IpRecord) -> dict[str, Any]:
    return {
        "address": record.address,
        "tenant_id": record.tenant_id,
        "purpose": record.purpose,
        "pool": record.pool,
        "pmta_node": record.pmta_node,
        "helo_hostname": record.helo_hostname,
        "state": record.state.value,
        "state_reason": record.state_reason,
        "schedule_id": record.schedule_id,
        "step_index": record.position.step_index,
        "sending_day_in_step": record.position.sending_day_in_step,
        "last_sending_day": record.position.last_sending_day,
        "sending_day": record.sending_day,
        "decided_day": record.decided_day,
        "resting_until": record.resting_until,
        "standby_since": record.standby_since,
        "delisted_at": record.delisted_at,
        "create_time": record.create_time,
        "update_time": record.update_time,
    }


def _decision_from_row(row: sa.Row) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row.id,
        address=row.address,
        tenant_id=row.tenant_id,
        kind=DecisionKind(row.kind),
        day=row.day,
        action=row.action,
        rule=row.rule,
        reason=row.reason,
        figures=row.figures,
        notes=tuple(row.notes or ()),
        state_before=IpState(row.state_before),
        state_after=IpState(row.state_after),
        step_index_before=row.step_index_before,
        step_index_after=row.step_index_after,
        quota_before=row.quota_before,
        quota_after=row.quota_after,
        time=aware(row.time),  # type: ignore[arg-type]
        actor=row.actor,
    )


class Store:
    def __init__(self, session: Session):
        self.session = session
        self._sqlite = session.get_bind().dialect.name == "sqlite"

    def _run(self, statement: Any) -> Any:
        return self.session.execute(statement)

    # -- tenants -----------------------------------------------------------------------------------

    def tenant(self, tenant_id: str, *, lock: bool = False) -> TenantRecord | None:
        query = sa.select(tenants).where(tenants.c.tenant_id == tenant_id)
        if lock:
            if self._sqlite:
                self._run(
                    tenants.update().where(tenants.c.tenant_id == tenant_id).values(update_time=tenants.c.update_time)
                )
            else:
                query = query.with_for_update()
        row = self._run(query).first()
        return _tenant_from_row(row) if row else None

    def tenants(self, tenant_ids: Iterable[str] | None = None) -> dict[str, TenantRecord]:
        query = sa.select(tenants).order_by(tenants.c.tenant_id)
        if tenant_ids is not None:
            query = query.where(tenants.c.tenant_id.in_(list(tenant_ids)))
        return {row.tenant_id: _tenant_from_row(row) for row in self._run(query)}

    def list_tenants(self, *, only: str | None, after: str, limit: int) -> list[TenantRecord]:
        query = sa.select(tenants).order_by(tenants.c.tenant_id).limit(limit)
        if only is not None:
            query = query.where(tenants.c.tenant_id == only)
        if after:
            query = query.where(tenants.c.tenant_id > after)
        return [_tenant_from_row(row) for row in self._run(query)]

    def insert_tenant(self, record: TenantRecord) -> None:
        self._run(tenants.insert().values(**_tenant_values(record)))

    def update_tenant(self, record: TenantRecord) -> None:
        values = _tenant_values(record)
        del values["tenant_id"], values["create_time"]
        self._run(tenants.update().where(tenants.c.tenant_id == record.tenant_id).values(**values))

    def lock_tenant_for_allocation(self, tenant_id: str) -> bool:
        """Serialises the tenant's reserving allocations until the transaction ends; False if no such tenant."""
        result = self._run(
            tenants.update().where(tenants.c.tenant_id == tenant_id).values(allocation_seq=tenants.c.allocation_seq + 1)
        )
        return bool(result.rowcount)

    # -- schedules ---------------------------------------------------------------------------------

    def schedule(self, tenant_id: str, schedule_id: str) -> ScheduleRecord | None:
        row = self._run(
            sa.select(schedules).where(schedules.c.tenant_id == tenant_id, schedules.c.schedule_id == schedule_id)
        ).first()
        return _schedule_from_row(row) if row else None

    def list_schedules(self, tenant_id: str, *, after: str, limit: int) -> list[ScheduleRecord]:
        query = (
            sa.select(schedules)
            .where(schedules.c.tenant_id == tenant_id)
            .order_by(schedules.c.schedule_id)
            .limit(limit)
        )
        if after:
            query = query.where(schedules.c.schedule_id > after)
        return [_schedule_from_row(row) for row in self._run(query)]

    def insert_schedule(self, record: ScheduleRecord) -> None:
        self._run(
            schedules.insert().values(
                tenant_id=record.tenant_id,
                schedule_id=record.schedule.schedule_id,
                display_name=record.display_name,
                steps=steps_to_json(record.schedule),
                create_time=record.create_time,
            )
        )

    # -- IPs ---------------------------------------------------------------------------------------

    def ip(self, address: str, *, lock: bool = False) -> IpRecord | None:
        query = sa.select(ips).where(ips.c.address == address)
        if lock:
            if self._sqlite:
                # SQLite has no row locks: take the database write lock before reading.
                self._run(ips.update().where(ips.c.address == address).values(update_time=ips.c.update_time))
            else:
                query = query.with_for_update()
        row = self._run(query).first()
        return _ip_from_row(row) if row else None

    def insert_ip(self, record: IpRecord) -> None:
        self._run(ips.insert().values(**_ip_values(record)))

    def save_ip(self, record: IpRecord) -> None:
        values = _ip_values(record)
        for key in ("address", "tenant_id", "create_time"):
            del values[key]
        self._run(ips.update().where(ips.c.address == record.address).values(**values))

    def list_ips(self, *, tenant_id: str, state: IpState | None, after: str, limit: int) -> list[IpRecord]:
        query = sa.select(ips).order_by(ips.c.address).limit(limit)
        if tenant_id:
            query = query.where(ips.c.tenant_id == tenant_id)
        if state is not None:
            query = query.where(ips.c.state == state.value)
        if after:
            query = query.where(ips.c.address > after)
        return [_ip_from_row(row) for row in self._run(query)]

    def tenant_ips(self, tenant_id: str, *, include_retired: bool = True, lock: bool = False) -> list[IpRecord]:
        """The tenant's IPs in address order (the order allocation and rotation see them)."""
        query = sa.select(ips).where(ips.c.tenant_id == tenant_id).order_by(ips.c.address)
        if not include_retired:
            query = query.where(ips.c.state != IpState.RETIRED.value)
        if lock and not self._sqlite:
            query = query.with_for_update()
        return [_ip_from_row(row) for row in self._run(query)]

    def any_resting(self, tenant_id: str) -> bool:
        query = sa.select(ips.c.address).where(ips.c.tenant_id == tenant_id, ips.c.resting_until.is_not(None)).limit(1)
        return self._run(query).first() is not None

    def ips_to_decide(self, tenant_id: str, day: date) -> list[str]:
        """The tenant's IPs whose warmup day `day` is not decided yet (retired IPs are never decided)."""
        query = (
            sa.select(ips.c.address)
            .where(ips.c.tenant_id == tenant_id, ips.c.decided_day < day, ips.c.state != IpState.RETIRED.value)
            .order_by(ips.c.address)
        )
        return list(self._run(query).scalars())

    def standby_delisted(self) -> list[str]:
        """STANDBY IPs whose listings all cleared: candidates for release after the cool-down."""
        query = (
            sa.select(ips.c.address)
            .where(ips.c.state == IpState.STANDBY.value, ips.c.delisted_at.is_not(None))
            .order_by(ips.c.address)
        )
        return list(self._run(query).scalars())

    # -- history -----------------------------------------------------------------------------------

    def insert_decision(self, record: DecisionRecord) -> int:
        result = self._run(
            ip_decisions.insert().values(
                address=record.address,
                tenant_id=record.tenant_id,
                kind=record.kind.value,
                day=record.day,
                warmup_day=record.day if record.kind is DecisionKind.WARMUP else None,
                action=record.action,
                rule=record.rule,
                reason=record.reason,
                figures=record.figures,
                notes=list(record.notes),
                state_before=record.state_before.value,
                state_after=record.state_after.value,
                step_index_before=record.step_index_before,
                step_index_after=record.step_index_after,
                quota_before=record.quota_before,
                quota_after=record.quota_after,
                time=record.time,
                actor=record.actor,
            )
        )
        return int(result.inserted_primary_key[0])

    def list_decisions(
        self, address: str, *, kind: DecisionKind | None, before_id: int | None, limit: int
    ) -> list[DecisionRecord]:
        query = sa.select(ip_decisions).where(ip_decisions.c.address == address).order_by(ip_decisions.c.id.desc())
        if kind is not None:
            query = query.where(ip_decisions.c.kind == kind.value)
        if before_id is not None:
            query = query.where(ip_decisions.c.id < before_id)
        return [_decision_from_row(row) for row in self._run(query.limit(limit))]

    # -- signals -----------------------------------------------------------------------------------

    def upsert_stats(
        self, *, address: str, tenant_id: str, day: date, provider: ProviderGroup, counts: DayCounts, now: datetime
    ) -> None:
        key = (
            delivery_stats.c.address == address,
            delivery_stats.c.day == day,
            delivery_stats.c.provider == provider.value,
        )
        values = {**asdict(counts), "update_time": now}
        if not self._run(delivery_stats.update().where(*key).values(**values)).rowcount:
            self._run(
                delivery_stats.insert().values(
                    address=address, day=day, provider=provider.value, tenant_id=tenant_id, **values
                )
            )

    def day_counts(self, address: str, day: date) -> dict[ProviderGroup, DayCounts]:
        rows = self._run(
            sa.select(delivery_stats).where(delivery_stats.c.address == address, delivery_stats.c.day == day)
        )
        return {
            ProviderGroup(r.provider): DayCounts(r.sent, r.delivered, r.bounced, r.complained, r.throttled)
            for r in rows
        }

    def listings(self, address: str) -> list[str]:
        query = sa.select(ip_listings.c.zone).where(ip_listings.c.address == address).order_by(ip_listings.c.zone)
        return list(self._run(query).scalars())

    def listings_of(self, addresses: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        if addresses:
            query = (
                sa.select(ip_listings.c.address, ip_listings.c.zone)
                .where(ip_listings.c.address.in_(addresses))
                .order_by(ip_listings.c.zone)
            )
            for row in self._run(query):
                found[row.address].append(row.zone)
        return found

    def add_listing(self, address: str, zone: str, *, since: datetime, reason: str) -> bool:
        """False when the zone already lists the IP."""
        exists = self._run(
            sa.select(ip_listings.c.zone).where(ip_listings.c.address == address, ip_listings.c.zone == zone)
        ).first()
        if exists:
            return False
        self._run(ip_listings.insert().values(address=address, zone=zone, listed_since=since, reason=reason))
        return True

    def remove_listing(self, address: str, zone: str) -> bool:
        """False when the zone did not list the IP."""
        result = self._run(ip_listings.delete().where(ip_listings.c.address == address, ip_listings.c.zone == zone))
        return bool(result.rowcount)

    # -- usage and allocations ---------------------------------------------------------------------

    def usage(self, addresses: list[str], day: date) -> dict[str, Usage]:
        """Sent (delivery stats) and committed (allocations) per IP and provider group on `day`."""
        sent: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        committed: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        if addresses:
            for row in self._run(
                sa.select(delivery_stats.c.address, delivery_stats.c.provider, delivery_stats.c.sent).where(
                    delivery_stats.c.day == day, delivery_stats.c.address.in_(addresses)
                )
            ):
                sent[row.address][ProviderGroup(row.provider)] = row.sent
            for row in self._run(
                sa.select(
                    allocation_lines.c.address,
                    allocation_lines.c.provider,
                    sa.func.max(allocation_lines.c.level).label("level"),
                )
                .where(allocation_lines.c.day == day, allocation_lines.c.address.in_(addresses))
                .group_by(allocation_lines.c.address, allocation_lines.c.provider)
            ):
                committed[row.address][ProviderGroup(row.provider)] = int(row.level)
        return {a: Usage(sent=sent.get(a, {}), committed=committed.get(a, {})) for a in addresses}

    def insert_allocation(
        self,
        *,
        allocation_id: str,
        tenant_id: str,
        day: date,
        requested: int,
        allocated_today: int,
        remainder: int,
        lines: list[tuple[str, ProviderGroup, int, int]],
        now: datetime,
        actor: str,
    ) -> None:
        self._run(
            allocations.insert().values(
                allocation_id=allocation_id,
                tenant_id=tenant_id,
                day=day,
                requested=requested,
                allocated_today=allocated_today,
                remainder=remainder,
                create_time=now,
                actor=actor,
            )
        )
        if lines:
            self.session.execute(
                allocation_lines.insert(),
                [
                    {
                        "allocation_id": allocation_id,
                        "address": address,
                        "provider": group.value,
                        "day": day,
                        "volume": volume,
                        "level": level,
                    }
                    for address, group, volume, level in lines
                ],
            )

    # -- once-a-day tenant work --------------------------------------------------------------------

    def tenant_day_done(self, tenant_id: str, day: date, kind: str) -> bool:
        query = sa.select(tenant_day_runs.c.tenant_id).where(
            tenant_day_runs.c.tenant_id == tenant_id, tenant_day_runs.c.day == day, tenant_day_runs.c.kind == kind
        )
        return self._run(query).first() is not None

    def mark_tenant_day(self, tenant_id: str, day: date, kind: str, now: datetime) -> None:
        """Raises IntegrityError (at once, or when the racing transaction commits) if already marked."""
        self._run(tenant_day_runs.insert().values(tenant_id=tenant_id, day=day, kind=kind, time=now))
