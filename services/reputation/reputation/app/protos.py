"""Domain values ↔ the emailengine.reputation.v1 messages (responses, stored history, events).

Zone names shown to people and published in events are the lists' public names (`zen.spamhaus.org`),
never the name actually queried, which may carry a Spamhaus DQS key or point at a private mirror.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from reputation.domain.checks import CheckResult, Verdict
from reputation.domain.dnsbl import ListingStatus, ZoneHealth, ZoneResult
from reputation.domain.scan import ScanResult
from reputation.domain.zones import DEFAULT_CATALOGUE, AnswerCode, CodeKind, CodeRange, Severity, Zone

_STATUS = {
    ListingStatus.NOT_LISTED: pb.LISTING_STATUS_NOT_LISTED,
    ListingStatus.LISTED: pb.LISTING_STATUS_LISTED,
    ListingStatus.ALLOWED: pb.LISTING_STATUS_WHITELISTED,
    ListingStatus.ZONE_ERROR: pb.LISTING_STATUS_ERROR,
    ListingStatus.UNKNOWN: pb.LISTING_STATUS_UNKNOWN,
    ListingStatus.SKIPPED: pb.LISTING_STATUS_SKIPPED,
}
_COARSE = {
    Severity.NONE: pb.SEVERITY_UNSPECIFIED,
    Severity.INFO: pb.SEVERITY_INFO,
    Severity.LOW: pb.SEVERITY_WARNING,
    Severity.MEDIUM: pb.SEVERITY_WARNING,
    Severity.HIGH: pb.SEVERITY_CRITICAL,
    Severity.CRITICAL: pb.SEVERITY_CRITICAL,
}
_VERDICT = {
    Verdict.PASS: pb.CHECK_VERDICT_PASS,
    Verdict.WARN: pb.CHECK_VERDICT_WARN,
    Verdict.FAIL: pb.CHECK_VERDICT_FAIL,
    Verdict.UNKNOWN: pb.CHECK_VERDICT_UNKNOWN,
}
HEALTH_STATUS = {
    "unchecked": pb.ZONE_HEALTH_STATUS_UNCHECKED,
    "healthy": pb.ZONE_HEALTH_STATUS_HEALTHY,
    "unhealthy": pb.ZONE_HEALTH_STATUS_UNHEALTHY,
    "unreachable": pb.ZONE_HEALTH_STATUS_UNREACHABLE,
}


def timestamp(when: datetime | None) -> Timestamp:
    stamp = Timestamp()
    if when is not None:
        stamp.FromDatetime(when)
    return stamp


_PUBLIC_NAMES = {zone.key: zone.name for zone in DEFAULT_CATALOGUE.zones}


def public_zone_name(zone_key: str, fallback: str = "") -> str:
    """The list's public DNS name for a catalogue key (what people and other services see)."""
    return _PUBLIC_NAMES.get(zone_key) or fallback or zone_key


def publicize(scan: ScanResult) -> ScanResult:
    """The same scan with every zone result named by its public name (zone health keeps the queried names)."""
    if all(r.zone_name == _PUBLIC_NAMES.get(r.zone_key, r.zone_name) for r in scan.results):
        return scan
    return replace(
        scan, results=tuple(replace(r, zone_name=public_zone_name(r.zone_key, r.zone_name)) for r in scan.results)
    )


def health_status(health: ZoneHealth) -> str:
    if health.healthy:
        return "healthy"
    return "unreachable" if health.no_answer else "unhealthy"


def listing_severity(severity: Severity) -> int:
    return pb.ListingSeverity.Value(f"LISTING_SEVERITY_{severity.name}")


def answer_code(code: AnswerCode | CodeRange) -> pb.AnswerCode:
    address = str(code.network) if isinstance(code, CodeRange) else code.address
    return pb.AnswerCode(
        address=address, kind=code.kind.value, meaning=code.meaning, severity=listing_severity(code.severity)
    )


def zone_result(result: ZoneResult) -> pb.ZoneResult:
    shown = [c for c in result.codes if c.kind is CodeKind.BLOCK] if result.listed else list(result.codes)
    meanings = [c.meaning for c in shown]
    return pb.ZoneResult(
        zone=public_zone_name(result.zone_key, result.zone_name),
        zone_key=result.zone_key,
        status=_STATUS[result.status],
        answers=list(dict.fromkeys(c.address for c in result.codes)),
        meaning="; ".join(dict.fromkeys(meanings)),
        reason=result.reason,
        severity=_COARSE[result.severity],
        listing_severity=listing_severity(result.severity),
        detail=result.detail,
    )


def scan_result(scan: ScanResult, trigger: str) -> pb.ScanResult:
    return pb.ScanResult(
        scan_time=timestamp(scan.finished_at),
        listed=scan.is_listed,
        zones=[zone_result(r) for r in scan.results],
        complete=scan.complete,
        trigger=trigger,
    )


def verdict(value: Verdict) -> int:
    return _VERDICT[value]


def domain_check(result: CheckResult) -> pb.DomainCheck:
    record = result.details.get("record", "")
    return pb.DomainCheck(
        check=result.check.value,
        subject=result.subject,
        verdict=_VERDICT[result.verdict],
        reason=result.reason,
        records=[record] if record else [],
        details=dict(result.details),
    )


def zone_message(
    zone: Zone, *, status: str, reason: str, checked_at: datetime | None, changed_at: datetime | None, default: bool
) -> pb.Zone:
    codes = [answer_code(c) for c in zone.codes.values()]
    codes += [answer_code(r) for r in zone.ranges]
    codes += [answer_code(b) for b in zone.bitmask]
    return pb.Zone(
        zone=public_zone_name(zone.key, zone.name),
        key=zone.key,
        name=zone.display_name,
        kind=zone.kind.value,
        healthy=status == "healthy",
        health=HEALTH_STATUS[status],
        health_detail=reason or ("not checked yet" if status == "unchecked" else ""),
        health_checked_at=timestamp(checked_at) if checked_at else None,
        health_changed_at=timestamp(changed_at) if changed_at else None,
        codes=codes,
        supports_ipv6=zone.supports_ipv6,
        delist_url=zone.delist_url,
        notes=zone.notes,
        default=default,
    )
