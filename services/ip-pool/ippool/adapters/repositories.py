"""The ip-pool's repositories: one per aggregate, over the service's own tables (see `app/unit_of_work.py`).

Row locks: `get(..., lock=True)` is SELECT ... FOR UPDATE on PostgreSQL; SQLite has no row locks, so there a
no-op UPDATE of the row takes the database's write lock before the read. Either way no other transaction can
change the row until this one ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar, get_type_hints

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
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
from ippool.app.unit_of_work import IpFacts
from ippool.domain.health import DayCounts, HealthPolicy
from ippool.domain.history import DecisionKind, IpDecision
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState
from ippool.domain.listings import ActiveListing, ListingAction, ListingPolicy, ListingSeverity
from ippool.domain.providers import FeedbackLoops, ProviderGroup, ProviderShares
from ippool.domain.purposes import PurposePolicy
from ippool.domain.rotation import RotationPolicy
from ippool.domain.schedule import TenantSchedule, WarmupPosition, WarmupSchedule, WarmupStep
from ippool.domain.sending_day import SendingWindow
from ippool.domain.tenant import Tenant, TenantPolicy
from ippool.domain.usage import Reservation, Usage
from libs.errors import Aborted

PolicyPart = TypeVar("PolicyPart")
Row = TypeVar("Row")


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _from_row(cls: type[Row], row: sa.Row, **computed: Any) -> Row:
    """The dataclass from a row: the `computed` fields as given, every other from its column of the same name
    (datetimes as UTC)."""
    columns = row._mapping
    values = {
        f.name: aware(columns[f.name]) if isinstance(columns[f.name], datetime) else columns[f.name]
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name not in computed and f.name in columns
    }
    return cls(**values, **computed)


def _to_row(item: object, table: sa.Table, **computed: Any) -> dict[str, Any]:
    """The table's values for a dataclass: the `computed` columns as given, every other from its field."""
    return {
        c.name: computed[c.name] if c.name in computed else getattr(item, c.name)
        for c in table.columns
        if c.name in computed or hasattr(item, c.name)
    }


def _locked(session: Session, query: sa.Select, table: sa.Table, key: sa.ColumnElement[bool]) -> sa.Select:
    """`query` made to hold the row lock of the row `key` selects until the transaction ends."""
    if not _is_sqlite(session):
        return query.with_for_update()
    # SQLite has no row locks: a no-op UPDATE takes the database's write lock before the read.
    touched = next(c for c in table.columns if c.name == "update_time")
    session.execute(table.update().where(key).values({touched: touched}))
    return query


def _lock_ip(session: Session, address: str) -> None:
    """`_locked` for one IP, with statements built once (the write path's hot statement)."""
    if _is_sqlite(session):
        session.execute(_TOUCH_IP, {"key_address": address})


def _inserted(session: Session, statement: Any, what: str) -> Any:
    """Runs an INSERT of a row that must exist once (a statement, or a statement and its values); a concurrent
    writer's row first is Aborted."""
    try:
        if isinstance(statement, tuple):
            return session.execute(*statement)
        return session.execute(statement)
    except IntegrityError:
        raise Aborted(f"{what} was written by a concurrent call") from None


# -- a policy part (the domain dataclass) as a JSON object; durations in seconds -------------------------


def policy_to_json(part: object) -> dict[str, Any]:
    data = asdict(part)  # type: ignore[call-overload]
    return {
        name: v.total_seconds() if isinstance(v, timedelta) else str(v) if isinstance(v, StrEnum) else v
        for name, v in data.items()
    }


@cache
def _field_types(cls: type) -> dict[str, Any]:
    """The dataclass's resolved field types (resolving them compiles its string annotations: once per class)."""
    return get_type_hints(cls)


def policy_from_json(cls: type[PolicyPart], data: Mapping[str, Any] | None) -> PolicyPart:
    """The part from its JSON; fields absent (stored before they existed) take the domain's defaults."""
    types = _field_types(cls)
    values = {}
    for item in fields(cls):  # type: ignore[arg-type]
        if item.name in (data or {}):
            value = data[item.name]  # type: ignore[index]
            values[item.name] = timedelta(seconds=float(value)) if types[item.name] is timedelta else value
    return cls(**values)


# -- tenants ---------------------------------------------------------------------------------------------


def _tenant(row: sa.Row, prefix: str = "") -> Tenant:
    """`prefix`: of the tenant's column labels in a row that joins it to another table."""
    column = row._mapping
    tenant_id = column[prefix + "tenant_id"]
    policy = TenantPolicy(
        tenant_id=tenant_id,
        window=SendingWindow(
            column[prefix + "time_zone"],
            column[prefix + "sending_window_start_hour"],
            column[prefix + "sending_window_end_hour"],
        ),
        health=policy_from_json(HealthPolicy, column[prefix + "health"]),
        provider_shares=policy_from_json(ProviderShares, column[prefix + "provider_shares"]),
        rotation=policy_from_json(RotationPolicy, column[prefix + "rotation"]),
        schedule_id=column[prefix + "default_schedule_id"],
        listings=policy_from_json(ListingPolicy, column[prefix + "listings"]),
        feedback_loops=policy_from_json(FeedbackLoops, column[prefix + "feedback_loops"]),
        purposes=policy_from_json(PurposePolicy, column[prefix + "purposes"]),
    )
    return Tenant(
        tenant_id=tenant_id,
        display_name=column[prefix + "display_name"],
        policy=policy,
        create_time=aware(column[prefix + "create_time"]),  # type: ignore[arg-type]
        update_time=aware(column[prefix + "update_time"]),
    )


def _tenant_values(tenant: Tenant) -> dict[str, Any]:
    policy = tenant.policy
    return {
        "tenant_id": tenant.tenant_id,
        "display_name": tenant.display_name,
        "time_zone": policy.window.time_zone,
        "sending_window_start_hour": policy.window.start_hour,
        "sending_window_end_hour": policy.window.end_hour,
        "create_time": tenant.create_time,
        "update_time": tenant.update_time,
        "default_schedule_id": policy.schedule_id,
        "health": policy_to_json(policy.health),
        "provider_shares": policy_to_json(policy.provider_shares),
        "rotation": policy_to_json(policy.rotation),
        "listings": policy_to_json(policy.listings),
        "feedback_loops": policy_to_json(policy.feedback_loops),
        "purposes": policy_to_json(policy.purposes),
    }


# The read path's statements are built once: building a statement costs more than SQLite running it.
_TENANTS_IN = sa.select(tenants).where(tenants.c.tenant_id.in_(sa.bindparam("tenant_ids", expanding=True)))


_TENANT_BY_ID = sa.select(tenants).where(tenants.c.tenant_id == sa.bindparam("tenant_id"))


class SqlTenantRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant_id: str, *, lock: bool = False) -> Tenant | None:
        if not lock:
            row = self._session.execute(_TENANT_BY_ID, {"tenant_id": tenant_id}).first()
            return _tenant(row) if row else None
        key = tenants.c.tenant_id == tenant_id
        query = _locked(self._session, sa.select(tenants).where(key), tenants, key)
        row = self._session.execute(query).first()
        return _tenant(row) if row else None

    def get_many(self, tenant_ids: Iterable[str]) -> dict[str, Tenant]:
        wanted = sorted(set(tenant_ids))
        if not wanted:
            return {}
        rows = self._session.execute(_TENANTS_IN, {"tenant_ids": wanted})
        return {row.tenant_id: _tenant(row) for row in rows}

    def all(self) -> list[Tenant]:
        return [_tenant(row) for row in self._session.execute(sa.select(tenants).order_by(tenants.c.tenant_id))]

    def list(self, *, only: str | None, after: str, limit: int) -> list[Tenant]:
        query = sa.select(tenants).order_by(tenants.c.tenant_id).limit(limit)
        if only is not None:
            query = query.where(tenants.c.tenant_id == only)
        if after:
            query = query.where(tenants.c.tenant_id > after)
        return [_tenant(row) for row in self._session.execute(query)]

    def add(self, tenant: Tenant) -> None:
        _inserted(self._session, tenants.insert().values(**_tenant_values(tenant)), f"tenant {tenant.tenant_id!r}")

    def save(self, tenant: Tenant) -> None:
        values = _tenant_values(tenant)
        del values["tenant_id"], values["create_time"]
        self._session.execute(tenants.update().where(tenants.c.tenant_id == tenant.tenant_id).values(**values))

    def lock_for_allocation(self, tenant_id: str) -> bool:
        result = self._session.execute(
            tenants.update().where(tenants.c.tenant_id == tenant_id).values(allocation_seq=tenants.c.allocation_seq + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


# -- schedules -------------------------------------------------------------------------------------------


def _schedule(row: sa.Row) -> TenantSchedule:
    steps = tuple(WarmupStep(s["daily_volume"], s["sending_days"]) for s in row.steps)
    return TenantSchedule(
        schedule=WarmupSchedule(row.schedule_id, steps),
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        create_time=aware(row.create_time),
    )


class SqlScheduleRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant_id: str, schedule_id: str) -> TenantSchedule | None:
        row = self._session.execute(
            sa.select(schedules).where(schedules.c.tenant_id == tenant_id, schedules.c.schedule_id == schedule_id)
        ).first()
        return _schedule(row) if row else None

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], TenantSchedule]:
        wanted = set(keys)
        if not wanted:
            return {}
        query = sa.select(schedules).where(
            schedules.c.tenant_id.in_(sorted({t for t, _ in wanted})),
            schedules.c.schedule_id.in_(sorted({s for _, s in wanted})),
        )
        found = {(row.tenant_id, row.schedule_id): _schedule(row) for row in self._session.execute(query)}
        return {key: schedule for key, schedule in found.items() if key in wanted}

    def list(self, tenant_id: str, *, after: str, limit: int) -> list[TenantSchedule]:
        query = (
            sa.select(schedules)
            .where(schedules.c.tenant_id == tenant_id)
            .order_by(schedules.c.schedule_id)
            .limit(limit)
        )
        if after:
            query = query.where(schedules.c.schedule_id > after)
        return [_schedule(row) for row in self._session.execute(query)]

    def add(self, schedule: TenantSchedule) -> None:
        steps = [{"daily_volume": s.daily_volume, "sending_days": s.sending_days} for s in schedule.schedule.steps]
        _inserted(
            self._session,
            schedules.insert().values(
                tenant_id=schedule.tenant_id,
                schedule_id=schedule.schedule.schedule_id,
                display_name=schedule.display_name,
                steps=steps,
                create_time=schedule.create_time,
            ),
            f"schedule {schedule.schedule.schedule_id!r}",
        )


# -- IPs -------------------------------------------------------------------------------------------------


def _ip(row: sa.Row) -> Ip:
    position = WarmupPosition(row.step_index, row.sending_day_in_step, row.last_sending_day)
    holds = {ProviderGroup(group): int(cap) for group, cap in (row.provider_holds or {}).items()}
    return _from_row(Ip, row, state=IpState(row.state), position=position, provider_holds=holds)


def _ip_values(ip: Ip) -> dict[str, Any]:
    return _to_row(
        ip,
        ips,
        state=ip.state.value,
        step_index=ip.position.step_index,
        sending_day_in_step=ip.position.sending_day_in_step,
        last_sending_day=ip.position.last_sending_day,
        provider_holds={group.value: cap for group, cap in ip.provider_holds.items()},
    )


# The IP statements of the read and write paths, built once; their values come at execution.
_IP_BY_ADDRESS = sa.select(ips).where(ips.c.address == sa.bindparam("address"))
_IP_BY_ADDRESS_LOCKED = _IP_BY_ADDRESS.with_for_update()
# The IP and its tenant in one read; the tenant's columns are labelled apart (both tables have `tenant_id`,
# `create_time`, `update_time`). Only the IP's row is locked, as by `get(lock=True)` then a tenant read.
_TENANT_COLUMN = "tenant__"
_IP_WITH_TENANT = (
    sa.select(ips, *(column.label(_TENANT_COLUMN + column.name) for column in tenants.columns))
    .join_from(ips, tenants, tenants.c.tenant_id == ips.c.tenant_id)
    .where(ips.c.address == sa.bindparam("address"))
)
_IP_WITH_TENANT_LOCKED = _IP_WITH_TENANT.with_for_update(of=ips)
_TOUCH_IP = ips.update().where(ips.c.address == sa.bindparam("key_address")).values(update_time=ips.c.update_time)
_SAVE_IP = ips.update().where(ips.c.address == sa.bindparam("key_address"))


class SqlIpRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, address: str, *, lock: bool = False) -> Ip | None:
        if not lock:
            row = self._session.execute(_IP_BY_ADDRESS, {"address": address}).first()
            return _ip(row) if row else None
        if _is_sqlite(self._session):
            _lock_ip(self._session, address)
            row = self._session.execute(_IP_BY_ADDRESS, {"address": address}).first()
        else:
            row = self._session.execute(_IP_BY_ADDRESS_LOCKED, {"address": address}).first()
        return _ip(row) if row else None

    def get_with_tenant(self, address: str, *, lock: bool = False) -> tuple[Ip, Tenant] | None:
        statement = _IP_WITH_TENANT
        if lock and _is_sqlite(self._session):
            _lock_ip(self._session, address)
        elif lock:
            statement = _IP_WITH_TENANT_LOCKED
        row = self._session.execute(statement, {"address": address}).first()
        if row is not None:
            return _ip(row), _tenant(row, _TENANT_COLUMN)
        # None, or (PostgreSQL) the IP changed tenant while this waited for its lock: the joined row was its old
        # tenant's, so the row was dropped. Read as two queries would have, after the lock.
        ip = self.get(address, lock=lock)
        if ip is None:
            return None
        row = self._session.execute(_TENANT_BY_ID, {"tenant_id": ip.tenant_id}).first()
        assert row is not None  # an IP's tenant exists (foreign key)
        return ip, _tenant(row)

    def add(self, ip: Ip) -> None:
        _inserted(self._session, (ips.insert(), _ip_values(ip)), f"ip {ip.address!r}")

    def save(self, ip: Ip) -> None:
        values = _ip_values(ip)
        values["key_address"] = values.pop("address")  # the tenant too may change: a released address again
        self._session.execute(_SAVE_IP, values)

    def list(self, *, tenant_id: str, state: IpState | None, after: str, limit: int) -> list[Ip]:
        query = sa.select(ips).order_by(ips.c.address).limit(limit)
        if tenant_id:
            query = query.where(ips.c.tenant_id == tenant_id)
        if state is not None:
            query = query.where(ips.c.state == state.value)
        if after:
            query = query.where(ips.c.address > after)
        return [_ip(row) for row in self._session.execute(query)]

    def of_tenant(self, tenant_id: str, *, include_retired: bool = True, lock: bool = False) -> list[Ip]:
        query = sa.select(ips).where(ips.c.tenant_id == tenant_id).order_by(ips.c.address)
        if not include_retired:
            query = query.where(ips.c.state != IpState.RETIRED.value)
        if lock and not _is_sqlite(self._session):
            query = query.with_for_update()
        return [_ip(row) for row in self._session.execute(query)]

    def any_resting(self, tenant_id: str) -> bool:
        query = sa.select(ips.c.address).where(ips.c.tenant_id == tenant_id, ips.c.resting_until.is_not(None)).limit(1)
        return self._session.execute(query).first() is not None

    def undecided(self, tenant_id: str, day: date) -> list[str]:
        query = (
            sa.select(ips.c.address)
            .where(ips.c.tenant_id == tenant_id, ips.c.decided_day < day, ips.c.state != IpState.RETIRED.value)
            .order_by(ips.c.address)
        )
        return list(self._session.execute(query).scalars())

    def standby_delisted(self) -> list[str]:
        query = (
            sa.select(ips.c.address)
            .where(ips.c.state == IpState.STANDBY.value, ips.c.delisted_at.is_not(None))
            .order_by(ips.c.address)
        )
        return list(self._session.execute(query).scalars())


# -- history ---------------------------------------------------------------------------------------------


def _decision(row: sa.Row) -> IpDecision:
    return _from_row(
        IpDecision,
        row,
        decision_id=row.id,
        kind=DecisionKind(row.kind),
        notes=tuple(row.notes or ()),
        policy=dict(row.policy or {}),
        state_before=IpState(row.state_before),
        state_after=IpState(row.state_after),
    )


_DECISION_INSERT = ip_decisions.insert()


class SqlDecisionRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, decision: IpDecision) -> IpDecision:
        values = _to_row(
            decision,
            ip_decisions,
            id=None,
            kind=decision.kind.value,
            # Unique per address: a warmup day is decided once, whichever replica gets there first.
            warmup_day=decision.day if decision.kind is DecisionKind.WARMUP else None,
            notes=list(decision.notes),
            policy=dict(decision.policy),
            state_before=decision.state_before.value,
            state_after=decision.state_after.value,
        )
        del values["id"]  # the database numbers the entries
        result = _inserted(
            self._session, (_DECISION_INSERT, values), f"the decision of {decision.address} for {decision.day}"
        )
        return replace(decision, decision_id=int(result.inserted_primary_key[0]))

    def list(
        self, address: str, *, tenant_id: str, kind: DecisionKind | None, before_id: int | None, limit: int
    ) -> list[IpDecision]:
        query = sa.select(ip_decisions).where(ip_decisions.c.address == address).order_by(ip_decisions.c.id.desc())
        if tenant_id:
            query = query.where(ip_decisions.c.tenant_id == tenant_id)
        if kind is not None:
            query = query.where(ip_decisions.c.kind == kind.value)
        if before_id is not None:
            query = query.where(ip_decisions.c.id < before_id)
        return [_decision(row) for row in self._session.execute(query.limit(limit))]

    def counts_since(self, since: datetime) -> list[tuple[str, str, str, str, int]]:
        d = ip_decisions.c
        query = (
            sa.select(d.tenant_id, d.kind, d.action, d.rule, sa.func.count())
            .where(d.time >= since)
            .group_by(d.tenant_id, d.kind, d.action, d.rule)
        )
        return [(row[0], row[1], row[2], row[3], int(row[4])) for row in self._session.execute(query)]


# -- delivery stats, listings, allocations ---------------------------------------------------------------


def _upsert(session: Session, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT for this database (both dialects spell it the same)."""
    return (sqlite.insert if _is_sqlite(session) else postgresql.insert)(table)


_SENT_ON_DAYS = sa.select(
    delivery_stats.c.address, delivery_stats.c.day, delivery_stats.c.provider, delivery_stats.c.sent
).where(
    delivery_stats.c.address.in_(sa.bindparam("addresses", expanding=True)),
    delivery_stats.c.day.in_(sa.bindparam("days", expanding=True)),
)


class SqlDeliveryStatsRepository:
    def __init__(self, session: Session):
        self._session = session

    def record(self, entries: Iterable[tuple[str, str, date, ProviderGroup, DayCounts]], now: datetime) -> None:
        rows = [
            {"address": a, "tenant_id": t, "day": d, "provider": p.value, **asdict(c), "update_time": now}
            for a, t, d, p, c in entries
        ]
        if not rows:
            return
        # One atomic upsert: two calls racing to insert the same first row cannot both insert it.
        insert = _upsert(self._session, delivery_stats)
        counters = [f.name for f in fields(DayCounts)]
        self._session.execute(
            insert.on_conflict_do_update(
                index_elements=[delivery_stats.c.address, delivery_stats.c.day, delivery_stats.c.provider],
                set_={name: insert.excluded[name] for name in (*counters, "tenant_id", "update_time")},
            ),
            rows,
        )

    def day_counts(self, address: str, day: date) -> dict[ProviderGroup, DayCounts]:
        return self.days_counts(address, day, day).get(day, {})

    def days_counts(self, address: str, first: date, last: date) -> dict[date, dict[ProviderGroup, DayCounts]]:
        rows = self._session.execute(
            sa.select(delivery_stats).where(
                delivery_stats.c.address == address, delivery_stats.c.day >= first, delivery_stats.c.day <= last
            )
        )
        found: dict[date, dict[ProviderGroup, DayCounts]] = defaultdict(dict)
        for row in rows:
            found[row.day][ProviderGroup(row.provider)] = _from_row(DayCounts, row)
        return dict(found)

    def sent(self, days: Mapping[str, date]) -> dict[str, dict[ProviderGroup, int]]:
        """What each IP sent on its own day, per provider group (address -> tenant-local day)."""
        found: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        if days:
            # One query whatever the number of days; rows of another day than the IP's own are dropped.
            rows = self._session.execute(_SENT_ON_DAYS, {"addresses": sorted(days), "days": sorted(set(days.values()))})
            for row in rows:
                if days[row.address] == row.day:
                    found[row.address][ProviderGroup(row.provider)] = row.sent
        return dict(found)


def _listing(row: sa.Row) -> ActiveListing:
    return ActiveListing(
        zone=row.zone,
        severity=ListingSeverity(row.severity),
        action=ListingAction(row.action),
        policy_field=row.policy_field,
    )


_ZONES_OF = (
    sa.select(ip_listings.c.address, ip_listings.c.zone)
    .where(ip_listings.c.address.in_(sa.bindparam("addresses", expanding=True)))
    .order_by(ip_listings.c.zone)
)


class SqlListingRepository:
    def __init__(self, session: Session):
        self._session = session

    def zones(self, address: str) -> list[str]:
        return self.zones_of([address]).get(address, [])

    def zones_of(self, addresses: Iterable[str]) -> dict[str, list[str]]:
        wanted = sorted(set(addresses))
        found: dict[str, list[str]] = defaultdict(list)
        if wanted:
            for row in self._session.execute(_ZONES_OF, {"addresses": wanted}):
                found[row.address].append(row.zone)
        return dict(found)

    def active(self, address: str) -> list[ActiveListing]:
        query = sa.select(ip_listings).where(ip_listings.c.address == address).order_by(ip_listings.c.zone)
        return [_listing(row) for row in self._session.execute(query)]

    def get(self, address: str, zone: str) -> ActiveListing | None:
        row = self._session.execute(
            sa.select(ip_listings).where(ip_listings.c.address == address, ip_listings.c.zone == zone)
        ).first()
        return _listing(row) if row else None

    def add(
        self,
        address: str,
        zone: str,
        *,
        since: datetime,
        reason: str,
        severity: ListingSeverity = ListingSeverity.UNSPECIFIED,
        action: ListingAction = ListingAction.STANDBY,
        policy_field: str = "",
    ) -> bool:
        if self.get(address, zone) is not None:
            return False
        self._session.execute(
            ip_listings.insert().values(
                address=address,
                zone=zone,
                listed_since=since,
                reason=reason,
                severity=severity.value,
                action=action.value,
                policy_field=policy_field,
            )
        )
        return True

    def upgrade(self, address: str, listing: ActiveListing, *, reason: str) -> None:
        self._session.execute(
            ip_listings.update()
            .where(ip_listings.c.address == address, ip_listings.c.zone == listing.zone)
            .values(
                severity=listing.severity.value,
                action=listing.action.value,
                policy_field=listing.policy_field,
                reason=reason,
            )
        )

    def remove(self, address: str, zone: str) -> ActiveListing | None:
        found = self.get(address, zone)
        if found is not None:
            self._session.execute(
                ip_listings.delete().where(ip_listings.c.address == address, ip_listings.c.zone == zone)
            )
        return found


_COMMITTED_ON_DAYS = (
    sa.select(
        allocation_lines.c.address,
        allocation_lines.c.day,
        allocation_lines.c.provider,
        sa.func.max(allocation_lines.c.level).label("level"),
    )
    .where(
        allocation_lines.c.address.in_(sa.bindparam("addresses", expanding=True)),
        allocation_lines.c.day.in_(sa.bindparam("days", expanding=True)),
    )
    .group_by(allocation_lines.c.address, allocation_lines.c.day, allocation_lines.c.provider)
)


class SqlAllocationRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, reservation: Reservation) -> None:
        self._session.execute(
            allocations.insert().values(
                allocation_id=reservation.allocation_id,
                tenant_id=reservation.tenant_id,
                day=reservation.day,
                requested=reservation.requested,
                allocated_today=reservation.allocated_today,
                remainder=reservation.remainder,
                create_time=reservation.time,
                actor=reservation.actor,
            )
        )
        if reservation.lines:
            self._session.execute(
                allocation_lines.insert(),
                [
                    {
                        "allocation_id": reservation.allocation_id,
                        "address": line.address,
                        "provider": line.provider.value,
                        "day": reservation.day,
                        "volume": line.volume,
                        "level": line.level,
                    }
                    for line in reservation.lines
                ],
            )

    def committed(self, days: Mapping[str, date]) -> dict[str, dict[ProviderGroup, int]]:
        found: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        if days:
            rows = self._session.execute(
                _COMMITTED_ON_DAYS, {"addresses": sorted(days), "days": sorted(set(days.values()))}
            )
            for row in rows:
                if days[row.address] == row.day:
                    found[row.address][ProviderGroup(row.provider)] = int(row.level)
        return dict(found)

    def committed_on(self, address: str, first: date, last: date) -> dict[date, dict[ProviderGroup, int]]:
        lines = allocation_lines.c
        rows = self._session.execute(
            sa.select(lines.day, lines.provider, sa.func.max(lines.level).label("level"))
            .where(lines.address == address, lines.day >= first, lines.day <= last)
            .group_by(lines.day, lines.provider)
        )
        found: dict[date, dict[ProviderGroup, int]] = defaultdict(dict)
        for row in rows:
            found[row.day][ProviderGroup(row.provider)] = int(row.level)
        return dict(found)


# -- what an IP's answer today reads, in one query -------------------------------------------------------


def _facts_query(*, one: bool) -> sa.CompoundSelect:
    """Listings, delivery stats and allocation levels as rows of one shape (kind, address, name, day, amount,
    severity, action, policy_field); `one`: of one IP on one day (plain parameters, cheaper than expanding
    ones), else of the IPs in `addresses` on any of `days` (the caller keeps each IP's own day)."""
    stats, lines, listed = delivery_stats.c, allocation_lines.c, ip_listings.c

    def of(address: sa.ColumnElement[str], day: sa.ColumnElement[date] | None = None) -> sa.ColumnElement[bool]:
        if one:
            match = address == sa.bindparam("address")
            return match if day is None else match & (day == sa.bindparam("day"))
        match = address.in_(sa.bindparam("addresses", expanding=True))
        return match if day is None else match & day.in_(sa.bindparam("days", expanding=True))

    text = sa.type_coerce(sa.null(), sa.String)
    # The first branch's column types are the result's: its `day` is what SQLite's dates are parsed by.
    sent = sa.select(
        sa.literal_column("'sent'", sa.String).label("kind"),
        stats.address,
        stats.provider.label("name"),
        stats.day,
        stats.sent.label("amount"),
        text.label("severity"),
        text.label("action"),
        text.label("policy_field"),
    ).where(of(stats.address, stats.day))
    committed = (
        sa.select(
            sa.literal_column("'committed'", sa.String),
            lines.address,
            lines.provider,
            lines.day,
            sa.func.max(lines.level),
            text,
            text,
            text,
        )
        .where(of(lines.address, lines.day))
        .group_by(lines.address, lines.day, lines.provider)
    )
    listings = sa.select(
        sa.literal_column("'listing'", sa.String),
        listed.address,
        listed.zone,
        sa.null(),
        sa.null(),
        listed.severity,
        listed.action,
        listed.policy_field,
    ).where(of(listed.address))
    return sa.union_all(sent, committed, listings)


_FACTS_OF_ONE = _facts_query(one=True)
_FACTS_OF_MANY = _facts_query(one=False)


class SqlIpFactsReader:
    def __init__(self, session: Session):
        self._session = session

    def today(self, days: Mapping[str, date]) -> dict[str, IpFacts]:
        if not days:
            return {}
        if len(days) == 1:
            ((address, day),) = days.items()
            rows = self._session.execute(_FACTS_OF_ONE, {"address": address, "day": day})
        else:
            rows = self._session.execute(
                _FACTS_OF_MANY, {"addresses": sorted(days), "days": sorted(set(days.values()))}
            )
        listings: dict[str, list[ActiveListing]] = defaultdict(list)
        sent: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        committed: dict[str, dict[ProviderGroup, int]] = defaultdict(dict)
        for kind, address, name, day, amount, severity, action, policy_field in rows:
            if kind == "listing":
                listings[address].append(
                    ActiveListing(name, ListingSeverity(severity), ListingAction(action), policy_field)
                )
            elif days[address] == day:  # rows of another day than the IP's own are dropped
                (sent if kind == "sent" else committed)[address][ProviderGroup(name)] = int(amount)
        return {
            address: IpFacts(
                listings=tuple(sorted(listings[address], key=lambda item: item.zone)) if address in listings else (),
                usage=Usage(sent=sent.get(address, {}), committed=committed.get(address, {})),
            )
            for address in days
        }


class SqlTenantDayRunRepository:
    def __init__(self, session: Session):
        self._session = session

    def done(self, tenant_id: str, day: date, kind: str) -> bool:
        query = sa.select(tenant_day_runs.c.tenant_id).where(
            tenant_day_runs.c.tenant_id == tenant_id, tenant_day_runs.c.day == day, tenant_day_runs.c.kind == kind
        )
        return self._session.execute(query).first() is not None

    def mark(self, tenant_id: str, day: date, kind: str, now: datetime) -> None:
        _inserted(
            self._session,
            tenant_day_runs.insert().values(tenant_id=tenant_id, day=day, kind=kind, time=now),
            f"the {kind.lower()} of {tenant_id} on {day}",
        )
