"""The reputation repositories over the service's own tables (one per aggregate; see `app/unit_of_work.py`).

Every read and write of a use case is a few set-wise statements: a batch of IPs is locked, read and written
with one statement per kind, whatever its size.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from reputation import mapping
from reputation.adapters.tables import (
    domain_check_state,
    ip_listings,
    monitored_ips,
    scan_results,
    tenant_domains,
    tenant_scan_settings,
    tenant_zones,
    zone_health,
)
from reputation.domain.check_policy import DEFAULT_CHECK_POLICY, check_policy_from
from reputation.domain.checks import Verdict
from reputation.domain.dnsbl import HealthStatus, ListingStatus, ZoneHealthRecord, ZoneResult
from reputation.domain.scan import IpListings, Listing, ScanRecord
from reputation.domain.scan_schedule import ScheduledIp, TenantScanInterval
from reputation.domain.tenant_domains import CheckKey, CheckState, SendingDomain, TenantDomainList
from reputation.domain.tenant_zones import TenantZoneChoice
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import AnswerCode, CodeKind, Severity, public_zone_name


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def lock_rows(session: Session, table: sa.Table, key: sa.Column[Any], keys: Sequence[str]) -> None:
    """Serialises writers on these rows until the transaction ends.

    PostgreSQL: row locks in key order (no deadlock between two batches). SQLite: a write as the first statement
    takes the database's write lock before anything is read, so what follows reads the latest.
    """
    if not keys:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(key).where(key.in_(keys)).order_by(key).with_for_update())
    else:
        session.execute(sa.update(table).where(key.in_(keys)).values({key.name: key}))


def _insert_missing(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: the rows another transaction added first are left to it."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _watched(row: sa.Row[Any]) -> WatchedIp:
    return WatchedIp(row.address, row.tenant_id, row.helo_hostname, row.active)


class SqlWatchedIps:
    def __init__(self, session: Session):
        self._session = session

    def get(self, address: str) -> WatchedIp | None:
        row = self._session.execute(sa.select(monitored_ips).where(monitored_ips.c.address == address)).first()
        return _watched(row) if row is not None else None

    def register(self, ip: WatchedIp, registered_at: datetime) -> None:
        values = {"tenant_id": ip.tenant_id, "helo_hostname": ip.helo_hostname, "active": True}
        updated = self._session.execute(
            monitored_ips.update().where(monitored_ips.c.address == ip.address).values(**values)
        ).rowcount
        if not updated:
            self._session.execute(
                monitored_ips.insert().values(address=ip.address, registered_at=registered_at, **values)
            )

    def retire(self, address: str) -> None:
        self._session.execute(monitored_ips.update().where(monitored_ips.c.address == address).values(active=False))

    def active(self, tenant_id: str = "") -> list[WatchedIp]:
        query = sa.select(monitored_ips).where(monitored_ips.c.active.is_(True))
        if tenant_id:
            query = query.where(monitored_ips.c.tenant_id == tenant_id)
        return [_watched(r) for r in self._session.execute(query.order_by(monitored_ips.c.address))]

    def never_scanned(self) -> list[WatchedIp]:
        scanned = sa.select(scan_results.c.address).where(scan_results.c.address == monitored_ips.c.address)
        query = sa.select(monitored_ips).where(monitored_ips.c.active.is_(True), ~scanned.exists())
        return [_watched(r) for r in self._session.execute(query.order_by(monitored_ips.c.address))]

    def helo_names(self, tenant_id: str, addresses: Collection[str]) -> dict[str, str]:
        query = sa.select(monitored_ips.c.address, monitored_ips.c.helo_hostname).where(
            monitored_ips.c.tenant_id == tenant_id, monitored_ips.c.address.in_(list(addresses))
        )
        return {r.address: r.helo_hostname for r in self._session.execute(query)}

    def lock(self, addresses: Sequence[str]) -> dict[str, str]:
        lock_rows(self._session, monitored_ips, monitored_ips.c.address, addresses)
        if not addresses:
            return {}
        query = sa.select(monitored_ips.c.address, monitored_ips.c.tenant_id).where(
            monitored_ips.c.address.in_(addresses)
        )
        return {r.address: r.tenant_id for r in self._session.execute(query)}

    def mark_scanned(self, scanned_at: Mapping[str, datetime]) -> None:
        if scanned_at:
            self._session.execute(
                monitored_ips.update()
                .where(monitored_ips.c.address == sa.bindparam("b_address"))
                .values(last_scan_at=sa.bindparam("b_time")),
                [{"b_address": a, "b_time": t} for a, t in scanned_at.items()],
            )

    def scan_schedule(self) -> list[ScheduledIp]:
        query = (
            sa.select(
                monitored_ips.c.address,
                monitored_ips.c.tenant_id,
                monitored_ips.c.next_scan_at,
                monitored_ips.c.registered_at,
            )
            .where(monitored_ips.c.active.is_(True))
            .order_by(monitored_ips.c.address)
        )
        return [
            ScheduledIp(r.address, r.tenant_id, aware(r.next_scan_at), aware(r.registered_at))
            for r in self._session.execute(query)
        ]

    def move_scans(self, moves: Mapping[str, tuple[datetime | None, datetime]]) -> set[str]:
        """One UPDATE per IP, in address order (PostgreSQL: two movers lock rows in the same order and never
        deadlock; the one that waited finds the value changed and moves nothing)."""
        moved: set[str] = set()
        column = monitored_ips.c.next_scan_at
        for address in sorted(moves):
            seen, new = moves[address]
            done = self._session.execute(
                monitored_ips.update()
                .where(
                    monitored_ips.c.address == address,
                    monitored_ips.c.active.is_(True),
                    column.is_(None) if seen is None else column == seen,
                )
                .values(next_scan_at=new)
            ).rowcount
            if done:
                moved.add(address)
        return moved


class SqlScanHistory:
    """One row per scan; the scan is kept as the API's ScanResult message."""

    def __init__(self, session: Session):
        self._session = session

    def add(self, entries: Sequence[tuple[str, str, ScanRecord]]) -> None:
        if entries:
            self._session.execute(
                scan_results.insert(),
                [
                    {
                        "address": address,
                        "tenant_id": tenant_id,
                        "scan_time": record.scan_time,
                        "listed": record.listed,
                        "result": mapping.scan_record_to_proto(record).SerializeToString(),
                    }
                    for address, tenant_id, record in entries
                ],
            )

    def latest(self, address: str, limit: int) -> list[ScanRecord]:
        query = (
            sa.select(scan_results.c.result)
            .where(scan_results.c.address == address)
            .order_by(scan_results.c.scan_time.desc(), scan_results.c.id.desc())
            .limit(limit)
        )
        return [
            mapping.scan_record_from_proto(pb.ScanResult.FromString(r.result)) for r in self._session.execute(query)
        ]

    def prune(self, before: datetime) -> int:
        latest = sa.select(sa.func.max(scan_results.c.id)).group_by(scan_results.c.address).scalar_subquery()
        result = self._session.execute(
            sa.delete(scan_results).where(scan_results.c.scan_time < before, scan_results.c.id.not_in(latest))
        )
        return int(result.rowcount or 0)


def listings_to_json(listed: Mapping[str, Listing]) -> str:
    """`ip_listings.listings`: {zone key: {zone_name, codes: [[address, kind, meaning, severity]], severity,
    reason, since}}."""
    out = {}
    for key, item in sorted(listed.items()):
        r = item.result
        out[key] = {
            "zone_name": r.zone_name,
            "codes": [[c.address, c.kind.value, c.meaning, int(c.severity)] for c in r.codes],
            "severity": int(r.severity),
            "reason": r.reason,
            "since": item.since.isoformat(),
        }
    return json.dumps(out, sort_keys=True)


def listings_from_json(text: str) -> dict[str, Listing]:
    out: dict[str, Listing] = {}
    for key, item in (json.loads(text) if text else {}).items():
        codes = tuple(AnswerCode(a, CodeKind(k), m, Severity(s)) for a, k, m, s in item.get("codes", []))
        result = ZoneResult(
            key,
            item.get("zone_name") or public_zone_name(key),
            ListingStatus.LISTED,
            codes=codes,
            severity=Severity(item.get("severity", 0)),
            reason=item.get("reason", ""),
        )
        out[key] = Listing(result, _aware(datetime.fromisoformat(item["since"])))
    return out


def _ip_listings(row: sa.Row[Any]) -> IpListings:
    return IpListings(
        row.address, row.tenant_id, listings_from_json(row.listings), _aware(row.scanned_at), aware(row.changed_at)
    )


class SqlIpListings:
    def __init__(self, session: Session):
        self._session = session

    def get(self, address: str) -> IpListings | None:
        return self.get_many([address]).get(address)

    def get_many(self, addresses: Collection[str]) -> dict[str, IpListings]:
        if not addresses:
            return {}
        query = sa.select(ip_listings).where(ip_listings.c.address.in_(list(addresses)))
        return {r.address: _ip_listings(r) for r in self._session.execute(query)}

    def of_tenant(self, tenant_id: str) -> list[IpListings]:
        query = sa.select(ip_listings).where(ip_listings.c.tenant_id == tenant_id).order_by(ip_listings.c.address)
        return [_ip_listings(r) for r in self._session.execute(query)]

    @staticmethod
    def _values(item: IpListings) -> dict[str, Any]:
        return {
            "tenant_id": item.tenant_id,
            "listings": listings_to_json(item.listed),
            "scanned_at": item.scanned_at,
            "changed_at": item.changed_at,
        }

    def add(self, items: Sequence[IpListings]) -> None:
        if items:
            self._session.execute(ip_listings.insert(), [{"address": i.address, **self._values(i)} for i in items])

    def update(self, items: Sequence[IpListings]) -> None:
        if items:
            columns = ("tenant_id", "listings", "scanned_at", "changed_at")
            self._session.execute(
                ip_listings.update()
                .where(ip_listings.c.address == sa.bindparam("b_address"))
                .values({c: sa.bindparam(f"b_{c}") for c in columns}),
                [{"b_address": i.address, **{f"b_{k}": v for k, v in self._values(i).items()}} for i in items],
            )


def _health(row: sa.Row[Any]) -> ZoneHealthRecord:
    return ZoneHealthRecord(
        row.zone_key, HealthStatus(row.status), row.reason, aware(row.checked_at), aware(row.changed_at)
    )


class SqlZoneHealth:
    def __init__(self, session: Session):
        self._session = session

    def all(self) -> dict[str, ZoneHealthRecord]:
        return {r.zone_key: _health(r) for r in self._session.execute(sa.select(zone_health))}

    def lock(self, zone_keys: Sequence[str], now: datetime) -> dict[str, ZoneHealthRecord]:
        keys = sorted(zone_keys)
        if not keys:
            return {}
        unchecked = HealthStatus.UNCHECKED.value
        _insert_missing(
            self._session,
            zone_health,
            [{"zone_key": k, "status": unchecked, "reason": "", "checked_at": now, "changed_at": now} for k in keys],
        )
        lock_rows(self._session, zone_health, zone_health.c.zone_key, keys)
        query = sa.select(zone_health).where(zone_health.c.zone_key.in_(keys))
        return {r.zone_key: _health(r) for r in self._session.execute(query)}

    def save(self, records: Sequence[ZoneHealthRecord]) -> None:
        if records:
            self._session.execute(
                zone_health.update()
                .where(zone_health.c.zone_key == sa.bindparam("b_key"))
                .values(
                    status=sa.bindparam("b_status"),
                    reason=sa.bindparam("b_reason"),
                    checked_at=sa.bindparam("b_checked"),
                    changed_at=sa.bindparam("b_changed"),
                ),
                [
                    {
                        "b_key": r.zone_key,
                        "b_status": r.status.value,
                        "b_reason": r.reason,
                        "b_checked": r.checked_at,
                        "b_changed": r.changed_at,
                    }
                    for r in records
                ],
            )


def _zone_choice(row: sa.Row[Any]) -> TenantZoneChoice:
    return TenantZoneChoice(
        row.tenant_id, tuple(json.loads(row.ip_zones)), tuple(json.loads(row.domain_zones)), aware(row.updated_at)
    )


class SqlTenantZones:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant_id: str) -> TenantZoneChoice:
        return self.get_many([tenant_id])[tenant_id]

    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantZoneChoice]:
        wanted = sorted({t for t in tenant_ids if t})
        found = {}
        if wanted:
            query = sa.select(tenant_zones).where(tenant_zones.c.tenant_id.in_(wanted))
            found = {r.tenant_id: _zone_choice(r) for r in self._session.execute(query)}
        return {t: found.get(t) or TenantZoneChoice(t) for t in tenant_ids}

    def save(self, choice: TenantZoneChoice, actor: str) -> None:
        self._session.execute(sa.delete(tenant_zones).where(tenant_zones.c.tenant_id == choice.tenant_id))
        if not choice.empty:
            self._session.execute(
                tenant_zones.insert().values(
                    tenant_id=choice.tenant_id,
                    ip_zones=json.dumps(list(choice.ip_zone_keys)),
                    domain_zones=json.dumps(list(choice.domain_zone_keys)),
                    updated_at=choice.updated_at,
                    updated_by=actor,
                )
            )


class SqlTenantScanSettings:
    def __init__(self, session: Session):
        self._session = session

    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantScanInterval]:
        wanted = sorted({t for t in tenant_ids if t})
        found: dict[str, TenantScanInterval] = {}
        if wanted:
            query = sa.select(tenant_scan_settings).where(tenant_scan_settings.c.tenant_id.in_(wanted))
            found = {
                r.tenant_id: TenantScanInterval(
                    r.tenant_id, timedelta(seconds=r.scan_interval_seconds), aware(r.updated_at)
                )
                for r in self._session.execute(query)
            }
        return {t: found.get(t) or TenantScanInterval(t) for t in tenant_ids}

    def save(self, setting: TenantScanInterval, actor: str) -> None:
        table = tenant_scan_settings
        self._session.execute(sa.delete(table).where(table.c.tenant_id == setting.tenant_id))
        if setting.interval is not None:
            self._session.execute(
                table.insert().values(
                    tenant_id=setting.tenant_id,
                    scan_interval_seconds=int(setting.interval.total_seconds()),
                    updated_at=setting.updated_at,
                    updated_by=actor,
                )
            )


def _domain_list(row: sa.Row[Any]) -> TenantDomainList:
    sending = tuple(
        SendingDomain(item["domain"], tuple(item.get("dkim_selectors", ())), item.get("return_path_domain", ""))
        for item in json.loads(row.sending_domains)
    )
    return TenantDomainList(
        row.tenant_id,
        sending,
        tuple(json.loads(row.tracking_domains)),
        aware(row.updated_at),
        aware(row.checked_at),
        check_policy_from(json.loads(row.check_policy or "{}")),
    )


def _sending_entry(sending: SendingDomain) -> dict[str, Any]:
    entry: dict[str, Any] = {"domain": sending.domain, "dkim_selectors": list(sending.dkim_selectors)}
    if sending.return_path_domain:
        entry["return_path_domain"] = sending.return_path_domain
    return entry


class SqlTenantDomains:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant_id: str) -> TenantDomainList:
        row = self._session.execute(sa.select(tenant_domains).where(tenant_domains.c.tenant_id == tenant_id)).first()
        return _domain_list(row) if row is not None else TenantDomainList(tenant_id)

    def all(self) -> list[TenantDomainList]:
        query = sa.select(tenant_domains).order_by(tenant_domains.c.tenant_id)
        return [_domain_list(r) for r in self._session.execute(query)]

    def lock(self, tenant_id: str) -> None:
        lock_rows(self._session, tenant_domains, tenant_domains.c.tenant_id, [tenant_id])

    def save(self, domains: TenantDomainList, actor: str) -> None:
        """Updated in place: the row is the lock a recording run waits on, and deleting it would let that run
        through. An empty list with the default policy is deleted."""
        tenant = domains.tenant_id
        if domains.empty and domains.check_policy == DEFAULT_CHECK_POLICY:
            self._session.execute(sa.delete(tenant_domains).where(tenant_domains.c.tenant_id == tenant))
            return
        values = {
            "sending_domains": json.dumps([_sending_entry(s) for s in domains.sending]),
            "tracking_domains": json.dumps(list(domains.tracking)),
            "updated_at": domains.updated_at,
            "updated_by": actor,
            "checked_at": domains.checked_at,
            "check_policy": json.dumps(domains.check_policy.as_dict()),
        }
        updated = self._session.execute(
            tenant_domains.update().where(tenant_domains.c.tenant_id == tenant).values(**values)
        ).rowcount
        if not updated:
            self._session.execute(tenant_domains.insert().values(tenant_id=tenant, **values))

    def mark_checked(self, tenant_id: str, checked_at: datetime) -> None:
        self._session.execute(
            tenant_domains.update().where(tenant_domains.c.tenant_id == tenant_id).values(checked_at=checked_at)
        )


def _check_state(row: sa.Row[Any]) -> CheckState:
    return CheckState(
        key=(row.domain, row.check_kind, row.subject),
        role=row.domain_role,
        verdict=Verdict(row.verdict),
        result=mapping.domain_check_from_proto(pb.DomainCheck.FromString(row.result)),
        verdict_at=aware(row.verdict_at),
        changed_at=aware(row.changed_at),
        unknown_reason=row.unknown_reason,
        unknown_at=aware(row.unknown_at),
    )


class SqlDomainChecks:
    """The believed verdict of each check; the check that gave it is kept as the API's DomainCheck message."""

    def __init__(self, session: Session):
        self._session = session

    def of_tenant(self, tenant_id: str) -> dict[CheckKey, CheckState]:
        rows = self._session.execute(sa.select(domain_check_state).where(domain_check_state.c.tenant_id == tenant_id))
        return {(r.domain, r.check_kind, r.subject): _check_state(r) for r in rows}

    @staticmethod
    def _values(state: CheckState) -> dict[str, Any]:
        return {
            "domain_role": state.role,
            "verdict": state.verdict.value,
            "result": mapping.domain_check_to_proto(state.result).SerializeToString(),
            "verdict_at": state.verdict_at,
            "changed_at": state.changed_at,
            "unknown_reason": state.unknown_reason,
            "unknown_at": state.unknown_at,
        }

    def add(self, tenant_id: str, state: CheckState) -> None:
        domain, check, subject = state.key
        self._session.execute(
            domain_check_state.insert().values(
                tenant_id=tenant_id, domain=domain, check_kind=check, subject=subject, **self._values(state)
            )
        )

    def update(self, tenant_id: str, state: CheckState) -> None:
        self._session.execute(
            domain_check_state.update().where(*self._key(tenant_id, state.key)).values(**self._values(state))
        )

    def forget(self, tenant_id: str, keys: Collection[CheckKey]) -> None:
        for key in keys:
            self._session.execute(sa.delete(domain_check_state).where(*self._key(tenant_id, key)))

    @staticmethod
    def _key(tenant_id: str, key: CheckKey) -> list[sa.ColumnElement[bool]]:
        c = domain_check_state.c
        domain, check, subject = key
        return [c.tenant_id == tenant_id, c.domain == domain, c.check_kind == check, c.subject == subject]
