"""The use cases' values <-> the emailengine.reputation.v1 messages.

The servicer answers with these; the scan history and the believed domain checks are stored as the same messages
(`ScanResult`, `DomainCheck`), so the repositories read and write them through here too. Zone names are the lists'
public names (`zen.spamhaus.org`), never the name actually queried.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.errors import InvalidArgument
from reputation.app.views import (
    IpReputation,
    TenantDomainRun,
    TenantDomains,
    TenantScan,
    TenantScanSettings,
    ZoneStatus,
)
from reputation.domain.check_policy import CheckPolicy
from reputation.domain.checks import CheckKind, CheckResult, DomainReport, Verdict
from reputation.domain.dnsbl import HealthStatus, ListingStatus
from reputation.domain.scan import ScanRecord, ZoneVerdict
from reputation.domain.tenant_domains import SendingDomain
from reputation.domain.tenant_zones import TenantZones
from reputation.domain.zones import AnswerCode, CodeRange, Severity, public_zone_name

_STATUS = {
    ListingStatus.NOT_LISTED: pb.LISTING_STATUS_NOT_LISTED,
    ListingStatus.LISTED: pb.LISTING_STATUS_LISTED,
    ListingStatus.ALLOWED: pb.LISTING_STATUS_WHITELISTED,
    ListingStatus.ZONE_ERROR: pb.LISTING_STATUS_ERROR,
    ListingStatus.UNKNOWN: pb.LISTING_STATUS_UNKNOWN,
    ListingStatus.SKIPPED: pb.LISTING_STATUS_SKIPPED,
}
_STATUS_OF = {number: status for status, number in _STATUS.items()}
# The coarse severity older clients read beside the zone's own (listing_severity).
_COARSE = {
    Severity.NONE: pb.SEVERITY_UNSPECIFIED,
    Severity.INFO: pb.SEVERITY_INFO,
    Severity.LOW: pb.SEVERITY_WARNING,
    Severity.MEDIUM: pb.SEVERITY_WARNING,
    Severity.HIGH: pb.SEVERITY_CRITICAL,
    Severity.CRITICAL: pb.SEVERITY_CRITICAL,
}
_VERDICT = {verdict: pb.CheckVerdict.Value(f"CHECK_VERDICT_{verdict.name}") for verdict in Verdict}
_VERDICT_OF = {number: verdict for verdict, number in _VERDICT.items()}


def timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def listing_severity(severity: Severity) -> int:
    return pb.ListingSeverity.Value(f"LISTING_SEVERITY_{severity.name}")


# -- scans ----------------------------------------------------------------------------------------


def zone_verdict_to_proto(verdict: ZoneVerdict) -> pb.ZoneResult:
    return pb.ZoneResult(
        zone=verdict.zone,
        zone_key=verdict.zone_key,
        status=_STATUS[verdict.status],
        answers=verdict.answers,
        meaning=verdict.meaning,
        reason=verdict.reason,
        severity=_COARSE[verdict.severity],
        listing_severity=listing_severity(verdict.severity),
        detail=verdict.detail,
    )


# What a coarse severity stands for in a stored result written before the zone's own severity was kept.
_FROM_COARSE = {
    pb.SEVERITY_INFO: Severity.INFO,
    pb.SEVERITY_WARNING: Severity.MEDIUM,
    pb.SEVERITY_CRITICAL: Severity.CRITICAL,
}


def zone_verdict_from_proto(message: pb.ZoneResult) -> ZoneVerdict:
    name = pb.ListingSeverity.Name(message.listing_severity).removeprefix("LISTING_SEVERITY_")
    known = name in Severity.__members__
    severity = Severity[name] if known else _FROM_COARSE.get(message.severity, Severity.NONE)
    return ZoneVerdict(
        zone=message.zone,
        zone_key=message.zone_key,
        status=_STATUS_OF.get(message.status, ListingStatus.UNKNOWN),
        answers=tuple(message.answers),
        meaning=message.meaning,
        reason=message.reason,
        severity=severity,
        detail=message.detail,
    )


def scan_record_to_proto(record: ScanRecord) -> pb.ScanResult:
    return pb.ScanResult(
        scan_time=timestamp(record.scan_time),
        listed=record.listed,
        zones=[zone_verdict_to_proto(z) for z in record.zones],
        complete=record.complete,
        trigger=record.trigger,
    )


def scan_record_from_proto(message: pb.ScanResult) -> ScanRecord:
    return ScanRecord(
        scan_time=_time(message.scan_time),
        trigger=message.trigger,
        listed=message.listed,
        complete=message.complete,
        zones=tuple(zone_verdict_from_proto(z) for z in message.zones),
    )


def ip_reputation(view: IpReputation) -> pb.IpReputation:
    return pb.IpReputation(
        address=view.address,
        tenant_id=view.tenant_id,
        latest=scan_record_to_proto(view.latest) if view.latest is not None else None,
        history=[scan_record_to_proto(r) for r in view.history],
        current_listings=[zone_verdict_to_proto(z) for z in view.current_listings],
        listed=view.listed,
        watched=view.watched,
    )


def tenant_scan(scan: TenantScan) -> pb.ScanTenantResponse:
    return pb.ScanTenantResponse(
        tenant_id=scan.tenant_id,
        scanned=scan.scanned,
        listed=scan.listed,
        incomplete=scan.incomplete,
        changes=scan.changes,
        ips=[ip_reputation(ip) for ip in scan.ips],
    )


# -- domain checks --------------------------------------------------------------------------------


def verdict(value: Verdict) -> int:
    return _VERDICT[value]


def domain_check_to_proto(result: CheckResult) -> pb.DomainCheck:
    record = result.details.get("record", "")
    return pb.DomainCheck(
        check=result.check.value,
        subject=result.subject,
        verdict=_VERDICT[result.verdict],
        reason=result.reason,
        records=[record] if record else [],
        details=dict(result.details),
    )


def domain_check_from_proto(message: pb.DomainCheck) -> CheckResult:
    return CheckResult(
        CheckKind(message.check),
        message.subject,
        _VERDICT_OF.get(message.verdict, Verdict.UNKNOWN),
        message.reason,
        dict(message.details),
    )


def domain_validation(report: DomainReport) -> pb.DomainValidation:
    return pb.DomainValidation(
        domain=report.domain,
        verdict=_VERDICT[report.verdict],
        checks=[domain_check_to_proto(c) for c in report.checks],
        check_time=timestamp(report.checked_at),
    )


_POLICY_SETTINGS = tuple(f.name for f in fields(CheckPolicy))


def check_policy_values(message: pb.DomainCheckPolicy) -> dict[str, str]:
    """The settings as the request gave them: "" where UNSPECIFIED (the default); anything but PASS, WARN or FAIL
    is passed on as it is, for the use case to refuse naming the setting."""
    values: dict[str, str] = {}
    for name in _POLICY_SETTINGS:
        number = getattr(message, name)
        if number == pb.CHECK_VERDICT_UNSPECIFIED:
            values[name] = ""
        else:
            values[name] = _VERDICT_OF[number].value if number in _VERDICT_OF else str(number)
    return values


def check_policy(policy: CheckPolicy) -> pb.DomainCheckPolicy:
    return pb.DomainCheckPolicy(**{name: _VERDICT[getattr(policy, name)] for name in _POLICY_SETTINGS})


def sending_domain(sending: SendingDomain) -> pb.SendingDomain:
    return pb.SendingDomain(
        domain=sending.domain, dkim_selectors=sending.dkim_selectors, return_path_domain=sending.return_path_domain
    )


def tenant_domains(view: TenantDomains) -> pb.TenantDomains:
    domains = view.domains
    reply = pb.TenantDomains(
        tenant_id=domains.tenant_id,
        sending_domains=[sending_domain(s) for s in domains.sending],
        tracking_domains=domains.tracking,
        update_time=timestamp(domains.updated_at),
        check_time=timestamp(domains.checked_at),
        verdict=_VERDICT[view.verdict] if view.verdict is not None else pb.CHECK_VERDICT_UNSPECIFIED,
        check_policy=check_policy(domains.check_policy),
    )
    for state in view.checks:
        reply.checks.append(
            pb.TenantDomainCheck(
                domain=state.key[0],
                domain_role=state.role,
                result=domain_check_to_proto(state.result),
                unknown_reason=state.unknown_reason,
                check_time=timestamp(state.verdict_at),
                change_time=timestamp(state.changed_at),
                unknown_time=timestamp(state.unknown_at),
            )
        )
    return reply


def tenant_domain_run(run: TenantDomainRun) -> pb.CheckTenantDomainsResponse:
    return pb.CheckTenantDomainsResponse(
        tenant_id=run.tenant_id,
        sending_domains=[domain_validation(r) for r in run.sending],
        tracking_domains=[domain_validation(r) for r in run.tracking],
        changes=len(run.changes),
        unknown=run.unknown,
    )


# -- zones ----------------------------------------------------------------------------------------


_HEALTH = {status: pb.ZoneHealthStatus.Value(f"ZONE_HEALTH_STATUS_{status.name}") for status in HealthStatus}


def answer_code(code: AnswerCode | CodeRange) -> pb.AnswerCode:
    address = str(code.network) if isinstance(code, CodeRange) else code.address
    return pb.AnswerCode(
        address=address, kind=code.kind.value, meaning=code.meaning, severity=listing_severity(code.severity)
    )


def zone_status(item: ZoneStatus) -> pb.Zone:
    zone, health = item.zone, item.health
    codes = [answer_code(c) for c in zone.codes.values()]
    codes += [answer_code(r) for r in zone.ranges]
    codes += [answer_code(b) for b in zone.bitmask]
    unchecked = health.status is HealthStatus.UNCHECKED
    return pb.Zone(
        zone=public_zone_name(zone.key, zone.name),
        key=zone.key,
        name=zone.display_name,
        kind=zone.kind.value,
        healthy=health.status is HealthStatus.HEALTHY,
        health=_HEALTH[health.status],
        health_detail=health.reason or ("not checked yet" if unchecked else ""),
        health_checked_at=timestamp(health.checked_at),
        health_changed_at=timestamp(health.changed_at),
        codes=codes,
        supports_ipv6=zone.supports_ipv6,
        delist_url=zone.delist_url,
        notes=zone.notes,
        default=item.default,
        daily_query_budget=(item.budget.daily_budget or 0) if item.budget else 0,
        wanted_daily_queries=item.budget.wanted if item.budget else 0,
        planned_daily_queries=item.budget.planned if item.budget else 0,
        budget_limited=item.budget.limited if item.budget else False,
    )


def tenant_zones(zones: TenantZones) -> pb.TenantZones:
    return pb.TenantZones(
        tenant_id=zones.tenant_id,
        ip_zones=[z.key for z in zones.ip_zones],
        domain_zones=[z.key for z in zones.domain_zones],
        default_ip_zones=zones.default_ip,
        default_domain_zones=zones.default_domain,
        update_time=timestamp(zones.updated_at),
    )


# -- scan settings --------------------------------------------------------------------------------


def duration(value: timedelta) -> Duration:
    message = Duration()
    message.FromTimedelta(value)
    return message


def scan_interval(settings: pb.TenantScanSettings) -> timedelta | None:
    """The interval asked for: None when unset or 0s (the installation's default)."""
    if not settings.HasField("scan_interval"):
        return None
    if settings.scan_interval.nanos:  # a timedelta would round them away
        raise InvalidArgument("settings.scan_interval", "must be a whole number of seconds")
    value = settings.scan_interval.ToTimedelta()
    return value or None


def tenant_scan_settings(view: TenantScanSettings) -> pb.TenantScanSettings:
    return pb.TenantScanSettings(
        tenant_id=view.tenant_id,
        scan_interval=duration(view.interval) if view.interval is not None else None,
        effective_scan_interval=duration(view.effective),
        default_scan_interval=view.interval is None,
        zone_intervals=[
            pb.ZoneScanInterval(
                zone_key=zone.zone_key, scan_interval=duration(zone.interval), budget_limited=zone.budget_limited
            )
            for zone in view.zones
        ],
        update_time=timestamp(view.updated_at),
    )
