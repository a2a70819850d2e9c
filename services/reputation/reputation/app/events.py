"""The events the reputation service publishes (their protobuf contracts), built from what was decided.

Zone names in events are the lists' public names (`zen.spamhaus.org`), never the name actually queried.
"""

from __future__ import annotations

from datetime import datetime

from emailengine.reputation.v1 import events_pb2
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import HealthStatus, ListingStatus, ZoneHealth
from reputation.domain.scan import ChangeKind, ListingChange
from reputation.domain.zones import DEFAULT_CATALOGUE, Severity, public_zone_name


def _severity(severity: Severity) -> str:
    return f"LISTING_SEVERITY_{severity.name}"


def _verdict(verdict: Verdict | None) -> str:
    return f"CHECK_VERDICT_{verdict.name}" if verdict is not None else "CHECK_VERDICT_UNSPECIFIED"


def listing_changed(tenant_id: str, change: ListingChange) -> events_pb2.IpListingChanged:
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
        zone=public_zone_name(change.zone_key, change.zone_name),
        reason=reason,
        zone_key=change.zone_key,
        severity=_severity(change.severity),
        codes=list(change.codes),
        meaning=meaning,
        txt_reason=change.reason,
        observed_at=change.observed_at,
        delist_url=zone.delist_url if zone is not None else "",
    )


def zone_health_changed(
    health: ZoneHealth, previous: HealthStatus, checked_at: datetime
) -> events_pb2.ZoneHealthChanged:
    return events_pb2.ZoneHealthChanged(
        zone=public_zone_name(health.zone_key, health.zone_name),
        zone_key=health.zone_key,
        healthy=health.healthy,
        previous_status=f"ZONE_HEALTH_STATUS_{previous.name}",
        status=f"ZONE_HEALTH_STATUS_{health.status.name}",
        reason=health.reason,
        checked_at=checked_at,
    )


def domain_check_changed(
    tenant_id: str, domain: str, role: str, previous: Verdict | None, result: CheckResult, observed_at: datetime
) -> events_pb2.DomainCheckChanged:
    listed_on = []
    if result.check is CheckKind.BLOCKLIST:
        listed_on = [public_zone_name(k) for k, v in result.details.items() if v == ListingStatus.LISTED.value]
    record = result.details.get("record", "")
    return events_pb2.DomainCheckChanged(
        tenant_id=tenant_id,
        domain=domain,
        check=result.check.value,
        subject=result.subject,
        previous_verdict=_verdict(previous),
        verdict=_verdict(result.verdict),
        reason=result.reason,
        domain_role=role,
        listed_on=listed_on,
        records=[record] if record else [],
        observed_at=observed_at,
    )
