"""Recording scans: history, the listing state per IP, and IpListingChanged exactly once per change.

One unit of work per batch of IPs: lock the IPs (the same rows whichever scan records them: periodic, tenant,
single check, another replica), read their stored `IpListings`, fold each scan in with `apply_scan`, and write the
new state, the history and the events (outbox) together. Two scans of one IP recorded at the same moment are
therefore applied one after the other, and a scan older than the state (finished before the scan the state
comes from) is kept in the history but does not change the state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from reputation.app.events import listing_changed
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.domain.scan import (
    ChangeKind,
    IpListings,
    Listing,
    ListingChange,
    ScanRecord,
    ScanResult,
    apply_scan,
    publicize,
)
from reputation.domain.zones import CodeKind

# IPs recorded per unit of work: each batch holds the locks of its IPs until it commits.
BATCH = 200


@dataclass
class Recorded:
    """What recording one IP's scan did."""

    address: str
    tenant_id: str
    scan: ScanResult
    changes: list[ListingChange] = field(default_factory=list)
    applied: bool = True  # False when a newer scan had already been recorded


def record_scans(uow: ReputationUnitOfWork, scans: Sequence[ScanResult], trigger: str, now: datetime) -> list[Recorded]:
    """Records the scans of watched IPs in the caller's unit of work (see the module docstring)."""
    addresses = sorted({s.target for s in scans})
    tenants = uow.ips.lock(addresses)
    current = uow.listings.get_many(addresses)
    new: set[str] = set()
    changed: dict[str, IpListings] = {}
    history: list[tuple[str, str, ScanRecord]] = []
    scanned_at: dict[str, datetime] = {}
    out: list[Recorded] = []
    for scan in scans:
        address = scan.target
        tenant_id = tenants.get(address)
        if tenant_id is None:  # no longer watched: nothing to record
            continue
        public = publicize(scan)
        history.append((address, tenant_id, ScanRecord.of(public, trigger)))
        scanned_at[address] = max(public.finished_at, scanned_at.get(address, public.finished_at))
        before = current.get(address)
        if before is not None and before.scanned_at > public.finished_at:
            out.append(Recorded(address, tenant_id, public, applied=False))
            continue
        state, changes = apply_scan(before.state if before is not None else None, public)
        since = {key: item.since for key, item in before.listed.items()} if before is not None else {}
        after = IpListings(
            address,
            tenant_id,
            {key: Listing(result, since.get(key, public.finished_at)) for key, result in state.listed.items()},
            scanned_at=public.finished_at,
            changed_at=now if changes else (before.changed_at if before is not None else None),
        )
        if before is None:
            new.add(address)
        current[address] = changed[address] = after
        for change in changes:
            uow.publish(listing_changed(tenant_id, change), tenant_id=tenant_id)
        out.append(Recorded(address, tenant_id, public, changes))
    if history:
        uow.scans.add(history)
        uow.ips.mark_scanned(scanned_at)
    if new:
        uow.listings.add([changed[a] for a in sorted(new)])
    if set(changed) - new:
        uow.listings.update([changed[a] for a in sorted(set(changed) - new)])
    return out


def drop_zones(uow: ReputationUnitOfWork, tenant_id: str, zone_keys: Collection[str], why: str, now: datetime) -> int:
    """Forgets the tenant's listings on zones it no longer uses, each published as delisted. Returns how many."""
    if not zone_keys:
        return 0
    addresses = [item.address for item in uow.listings.of_tenant(tenant_id)]
    uow.ips.lock(addresses)
    updated: list[IpListings] = []
    published = 0
    for address, item in sorted(uow.listings.get_many(addresses).items()):
        gone = sorted(set(item.listed) & set(zone_keys))
        if not gone:
            continue
        for key in gone:
            result = item.listed[key].result
            blocks = [c for c in result.codes if c.kind is CodeKind.BLOCK]
            change = ListingChange(
                target=address,
                zone_key=key,
                zone_name=result.zone_name,
                kind=ChangeKind.DELISTED,
                severity=result.severity,
                codes=tuple(c.address for c in blocks),
                meaning="; ".join(c.meaning for c in blocks) + f" [{why}]",
                observed_at=now,
            )
            uow.publish(listing_changed(item.tenant_id, change), tenant_id=item.tenant_id)
            published += 1
        kept = {key: listing for key, listing in item.listed.items() if key not in gone}
        updated.append(replace(item, listed=kept, changed_at=now))
    if updated:
        uow.listings.update(updated)
    return published
