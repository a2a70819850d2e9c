"""Recording scans: history, the listing state per IP, and IpListingChanged exactly once per change.

One transaction per batch of IPs: lock the IPs' `monitored_ips` rows (the same rows whichever scan —
periodic, tenant, single check — records them), read the stored `ListingState`, fold the scan in with
`apply_scan`, write the new state, the history row and the events (outbox) together. Two scans of one IP
recorded at the same moment are therefore applied one after the other, and a scan older than the state
(finished before the scan the state comes from) is kept in the history but does not change the state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from emailengine.reputation.v1 import events_pb2
from libs import events
from reputation.adapters.tables import ip_listings, monitored_ips, scan_results
from reputation.app import protos
from reputation.domain.dnsbl import ListingStatus, ZoneResult
from reputation.domain.scan import ChangeKind, ListingChange, ListingState, ScanResult, apply_scan
from reputation.domain.zones import DEFAULT_CATALOGUE, AnswerCode, CodeKind, Severity

SOURCE = "reputation"
BATCH = 200


@dataclass(frozen=True)
class StoredListing:
    """One zone listing an IP, as believed now."""

    result: ZoneResult
    since: datetime


@dataclass
class Recorded:
    """What recording one IP's scan did."""

    address: str
    tenant_id: str
    scan: ScanResult
    changes: list[ListingChange] = field(default_factory=list)
    applied: bool = True  # False when a newer scan had already been recorded


def lock_rows(session: Session, is_postgres: bool, table: sa.Table, key: sa.Column, keys: Sequence[str]) -> None:
    """Serialise writers on these rows until the transaction ends.

    PostgreSQL: row locks in key order (no deadlock between two batches). SQLite: a write as the first
    statement takes the database's write lock before anything is read, so what follows reads the latest.
    """
    if not keys:
        return
    if is_postgres:
        session.execute(sa.select(key).where(key.in_(keys)).order_by(key).with_for_update())
    else:
        session.execute(sa.update(table).where(key.in_(keys)).values({key.name: key}))


# -- listing state as stored ----------------------------------------------------------------------


def state_to_json(listings: dict[str, StoredListing]) -> str:
    out = {}
    for key, item in sorted(listings.items()):
        r = item.result
        out[key] = {
            "zone_name": r.zone_name,
            "codes": [[c.address, c.kind.value, c.meaning, int(c.severity)] for c in r.codes],
            "severity": int(r.severity),
            "reason": r.reason,
            "since": item.since.isoformat(),
        }
    return json.dumps(out, sort_keys=True)


def state_from_json(text: str) -> dict[str, StoredListing]:
    out: dict[str, StoredListing] = {}
    for key, item in (json.loads(text) if text else {}).items():
        codes = tuple(AnswerCode(a, CodeKind(k), m, Severity(s)) for a, k, m, s in item.get("codes", []))
        result = ZoneResult(
            key,
            item.get("zone_name") or protos.public_zone_name(key),
            ListingStatus.LISTED,
            codes=codes,
            severity=Severity(item.get("severity", 0)),
            reason=item.get("reason", ""),
        )
        out[key] = StoredListing(result, datetime.fromisoformat(item["since"]))
    return out


def current_listings(session: Session, address: str) -> tuple[dict[str, StoredListing], bool]:
    """(the zones believed to list the IP, whether the IP was ever scanned)."""
    row = session.execute(sa.select(ip_listings.c.listings).where(ip_listings.c.address == address)).first()
    return (state_from_json(row.listings), True) if row else ({}, False)


# -- events ---------------------------------------------------------------------------------------


def listing_event(tenant_id: str, change: ListingChange) -> events_pb2.IpListingChanged:
    zone = DEFAULT_CATALOGUE.get(change.zone_key)
    listed = change.kind is ChangeKind.LISTED
    meaning = change.meaning
    if listed:
        reason = meaning + (f" ({change.reason})" if change.reason else "")
    else:
        reason = f"no longer listed; was: {meaning}" if meaning else "no longer listed"
    return events_pb2.IpListingChanged(
        address=change.target,
        tenant_id=tenant_id,
        listed=listed,
        zone=protos.public_zone_name(change.zone_key, change.zone_name),
        reason=reason,
        zone_key=change.zone_key,
        severity=protos.listing_severity(change.severity),
        codes=list(change.codes),
        meaning=meaning,
        txt_reason=change.reason,
        observed_at=protos.timestamp(change.observed_at),
        delist_url=zone.delist_url if zone is not None else "",
    )


def publish_changes(session: Session, tenant_id: str, changes: Sequence[ListingChange], now: datetime) -> None:
    for change in changes:
        events.publish(session, source=SOURCE, tenant_id=tenant_id, event=listing_event(tenant_id, change), now=now)


# -- recording ------------------------------------------------------------------------------------


def record_scans(
    session: Session, is_postgres: bool, scans: Sequence[ScanResult], trigger: str, now: datetime
) -> list[Recorded]:
    """Records the scans of watched IPs in the caller's transaction (see the module docstring)."""
    addresses = sorted({s.target for s in scans})
    lock_rows(session, is_postgres, monitored_ips, monitored_ips.c.address, addresses)
    tenants = dict(
        session.execute(
            sa.select(monitored_ips.c.address, monitored_ips.c.tenant_id).where(monitored_ips.c.address.in_(addresses))
        ).all()
    )
    stored = {
        row.address: row
        for row in session.execute(sa.select(ip_listings).where(ip_listings.c.address.in_(addresses))).all()
    }
    out: list[Recorded] = []
    history: list[dict[str, object]] = []
    last_scan: list[dict[str, object]] = []
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for scan in scans:
        address = scan.target
        tenant_id = tenants.get(address)
        if tenant_id is None:  # no longer watched (unknown IP): nothing to record
            continue
        public = protos.publicize(scan)
        history.append(
            {
                "address": address,
                "tenant_id": tenant_id,
                "scan_time": public.finished_at,
                "listed": public.is_listed,
                "result": protos.scan_result(public, trigger).SerializeToString(),
            }
        )
        last_scan.append({"b_address": address, "b_time": public.finished_at})
        row = stored.get(address)
        if row is not None and aware(row.scanned_at) > public.finished_at:
            out.append(Recorded(address, tenant_id, public, applied=False))
            continue
        before = state_from_json(row.listings) if row is not None else {}
        state = ListingState(address, {k: v.result for k, v in before.items()}) if row is not None else None
        new_state, changes = apply_scan(state, public)
        after = {
            key: StoredListing(result, before[key].since if key in before else public.finished_at)
            for key, result in new_state.listed.items()
        }
        values = {
            "tenant_id": tenant_id,
            "listings": state_to_json(after),
            "scanned_at": public.finished_at,
            "changed_at": now if changes else (row.changed_at if row is not None else None),
        }
        if row is None:
            inserts.append({"address": address, **values})
        else:
            updates.append({"b_address": address, **{f"b_{k}": v for k, v in values.items()}})
        publish_changes(session, tenant_id, changes, now)
        out.append(Recorded(address, tenant_id, public, changes))
    # One statement per kind of write, for the whole batch.
    if history:
        session.execute(scan_results.insert(), history)
        session.execute(
            monitored_ips.update()
            .where(monitored_ips.c.address == sa.bindparam("b_address"))
            .values(last_scan_at=sa.bindparam("b_time")),
            last_scan,
        )
    if inserts:
        session.execute(ip_listings.insert(), inserts)
    if updates:
        session.execute(
            ip_listings.update()
            .where(ip_listings.c.address == sa.bindparam("b_address"))
            .values({k: sa.bindparam(f"b_{k}") for k in ("tenant_id", "listings", "scanned_at", "changed_at")}),
            updates,
        )
    return out


def drop_zones(
    session: Session, is_postgres: bool, tenant_id: str, zone_keys: set[str], why: str, now: datetime
) -> int:
    """Forget listings on zones a tenant no longer uses: each is published as delisted. Returns the count."""
    if not zone_keys:
        return 0
    addresses = [
        r.address
        for r in session.execute(
            sa.select(ip_listings.c.address).where(ip_listings.c.tenant_id == tenant_id).order_by(ip_listings.c.address)
        )
    ]
    lock_rows(session, is_postgres, monitored_ips, monitored_ips.c.address, addresses)
    published = 0
    for row in session.execute(sa.select(ip_listings).where(ip_listings.c.address.in_(addresses))).all():
        listings = state_from_json(row.listings)
        gone = sorted(set(listings) & zone_keys)
        if not gone:
            continue
        changes = []
        for key in gone:
            result = listings.pop(key).result
            blocks = [c for c in result.codes if c.kind is CodeKind.BLOCK]
            changes.append(
                ListingChange(
                    target=row.address,
                    zone_key=key,
                    zone_name=result.zone_name,
                    kind=ChangeKind.DELISTED,
                    severity=result.severity,
                    codes=tuple(c.address for c in blocks),
                    meaning="; ".join(c.meaning for c in blocks) + f" [{why}]",
                    observed_at=now,
                )
            )
        session.execute(
            ip_listings.update()
            .where(ip_listings.c.address == row.address)
            .values(listings=state_to_json(listings), changed_at=now)
        )
        publish_changes(session, row.tenant_id, changes, now)
        published += len(changes)
    return published


def prune_history(session: Session, before: datetime) -> int:
    """Deletes scan results older than `before`, always keeping each IP's latest."""
    latest = sa.select(sa.func.max(scan_results.c.id)).group_by(scan_results.c.address).scalar_subquery()
    result = session.execute(
        sa.delete(scan_results).where(scan_results.c.scan_time < before, scan_results.c.id.not_in(latest))
    )
    return int(result.rowcount or 0)


def aware(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
