"""Where a DNSBL answer is interpreted: query names, answer codes, zone health.

Everything that turns "the resolver said X for name Y" into "this IP is / is not / may be listed"
lives in this module and nowhere else. The rules, in order of precedence:

* a timeout, SERVFAIL, REFUSED or transport error is UNKNOWN, never clean;
* an address outside 127.0.0.0/8 means the zone is broken (expired domain, wildcard), not a listing;
* a documented error code (Spamhaus 127.255.255.x, SURBL/URIBL 127.0.0.1) is ZONE_ERROR, not a listing;
* any block code is LISTED (undocumented 127/8 codes count, RFC 5782 §2.1: any A record lists);
* an allow code (JunkEmailFilter 127.0.0.1) is ALLOWED; neutral codes alone are NOT_LISTED;
* NXDOMAIN (or an empty answer) is NOT_LISTED.

Zone health (RFC 5782 §5 and §7) uses the same interpretation on the zone's own test points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

from reputation.domain.validation import IPAddress
from reputation.domain.zones import AnswerCode, CodeKind, Severity, Zone, ZoneKind, code_address

LOOPBACK_NET = IPv4Network("127.0.0.0/8")
_BITMASK_NET = IPv4Network("127.0.0.0/24")


class DnsOutcome(StrEnum):
    """What came back from the resolver for one question, before any DNSBL meaning."""

    ANSWER = "answer"  # NOERROR with records of the asked type
    NODATA = "nodata"  # NOERROR, name exists, no records of that type
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"  # anything else: other rcode, transport error, malformed reply

    @property
    def is_failure(self) -> bool:
        """The resolver could not say; the question stays open."""
        return self not in (DnsOutcome.ANSWER, DnsOutcome.NODATA, DnsOutcome.NXDOMAIN)


@dataclass(frozen=True)
class DnsAnswer:
    """A resolver's reply reduced to what matters: outcome, record texts, a human detail on failure."""

    outcome: DnsOutcome
    records: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        """ "timeout (2.0 s)" / "SERVFAIL from 127.0.0.1:53" style text for reasons shown to people."""
        text = {
            DnsOutcome.TIMEOUT: "no answer (timeout)",
            DnsOutcome.SERVFAIL: "SERVFAIL",
            DnsOutcome.REFUSED: "REFUSED",
            DnsOutcome.NXDOMAIN: "NXDOMAIN",
            DnsOutcome.NODATA: "no records",
            DnsOutcome.ERROR: "DNS error",
            DnsOutcome.ANSWER: ", ".join(self.records),
        }[self.outcome]
        return f"{text}: {self.detail}" if self.detail and self.outcome is not DnsOutcome.ANSWER else text


class ListingStatus(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    ALLOWED = "allowed"  # on the list's whitelist
    ZONE_ERROR = "zone_error"  # the list answered with an error code or nonsense: no verdict
    UNKNOWN = "unknown"  # resolver failure: no verdict
    SKIPPED = "skipped"  # zone unhealthy or over its query budget: not asked

    @property
    def is_definitive(self) -> bool:
        """Only these may change what we believe about a listing."""
        return self in (ListingStatus.LISTED, ListingStatus.NOT_LISTED, ListingStatus.ALLOWED)


@dataclass(frozen=True)
class ZoneResult:
    """One target against one zone."""

    zone_key: str
    zone_name: str
    status: ListingStatus
    codes: tuple[AnswerCode, ...] = ()
    severity: Severity = Severity.NONE
    reason: str = ""  # the list's own TXT text for a listing
    detail: str = ""  # why, for anything that is not a plain listing or NXDOMAIN

    @property
    def listed(self) -> bool:
        return self.status is ListingStatus.LISTED

    def summary(self) -> str:
        """One line a person understands."""
        if self.status is ListingStatus.LISTED:
            meanings = "; ".join(c.meaning for c in self.codes if c.kind is CodeKind.BLOCK)
            return f"listed on {self.zone_name}: {meanings}" + (f" ({self.reason})" if self.reason else "")
        if self.status is ListingStatus.ALLOWED:
            return f"whitelisted by {self.zone_name}"
        if self.status is ListingStatus.NOT_LISTED:
            return f"not listed on {self.zone_name}"
        return f"{self.zone_name}: {self.status.value}: {self.detail}"


# --- query names ---------------------------------------------------------------------------------


def reversed_ip(ip: IPAddress) -> str:
    """IPv4 reversed octets; IPv6 its 32 reversed nibbles (the ip6.arpa layout)."""
    pointer = ip.reverse_pointer
    return pointer[: -len(".in-addr.arpa")] if isinstance(ip, IPv4Address) else pointer[: -len(".ip6.arpa")]


def query_name(zone: Zone, target: IPAddress | str) -> str:
    """The DNS name to ask `zone` about `target` (an IP for IP lists, a domain for domain lists)."""
    if zone.kind is ZoneKind.IP:
        if not isinstance(target, IPv4Address | IPv6Address):
            target = ip_address(target)
        return f"{reversed_ip(target)}.{zone.name}"
    if not isinstance(target, str):
        raise ValueError(f"{zone.name} lists domains, not addresses")
    return f"{target}.{zone.name}"


def zone_covers(zone: Zone, target: IPAddress | str) -> bool:
    """Whether asking `zone` about `target` makes sense at all (kind and address family)."""
    if zone.kind is ZoneKind.DOMAIN:
        return isinstance(target, str)
    if isinstance(target, IPv6Address):
        return zone.supports_ipv6
    return isinstance(target, IPv4Address)


def probe_names(zone: Zone) -> tuple[str, str]:
    """(must-be-listed, must-not-be-listed) query names of the zone's RFC 5782 test points."""
    if zone.kind is ZoneKind.IP:
        return query_name(zone, ip_address(zone.listed_test_point)), query_name(zone, ip_address(zone.clean_test_point))
    return query_name(zone, zone.listed_test_point), query_name(zone, zone.clean_test_point)


# --- answer codes --------------------------------------------------------------------------------


def classify_code(zone: Zone, address: str) -> list[AnswerCode]:
    """The documented meaning(s) of one answer address; undocumented 127/8 answers still list."""
    if address in zone.codes:
        return [zone.codes[address]]
    addr = code_address(address)
    if addr is None or addr not in LOOPBACK_NET:
        return [
            AnswerCode(
                address,
                CodeKind.ERROR,
                f"answer {address} is outside 127.0.0.0/8: the zone is not behaving as a blocklist "
                "(expired domain or wildcard record)",
            )
        ]
    for code_range in zone.ranges:
        if addr in code_range.network:
            return [AnswerCode(address, code_range.kind, code_range.meaning, code_range.severity)]
    if zone.bitmask and addr in _BITMASK_NET:
        last = int(addr) & 0xFF
        found = [c for c in zone.bitmask if last & int(c.address)]
        rest = last & ~sum(int(c.address) for c in zone.bitmask)
        if rest:
            found.append(
                AnswerCode(
                    address, CodeKind.BLOCK, f"undocumented bits {rest} in {address}", zone.unknown_code_severity
                )
            )
        if found:
            return found
    return [
        AnswerCode(
            address,
            CodeKind.BLOCK,
            f"listed with undocumented code {address}",
            zone.unknown_code_severity,
        )
    ]


def interpret_answer(zone: Zone, answer: DnsAnswer, reason: str = "") -> ZoneResult:
    """The verdict of one A-record answer of `zone`; `reason` is the zone's TXT text, if fetched."""
    outcome = answer.outcome
    if outcome is DnsOutcome.NXDOMAIN:
        return ZoneResult(zone.key, zone.name, ListingStatus.NOT_LISTED)
    if outcome is DnsOutcome.NODATA:
        return ZoneResult(zone.key, zone.name, ListingStatus.NOT_LISTED, detail="name exists but has no A record")
    if outcome.is_failure:
        return ZoneResult(
            zone.key, zone.name, ListingStatus.UNKNOWN, detail=f"resolver gave no verdict: {answer.describe()}"
        )
    codes: list[AnswerCode] = []
    for address in answer.records:
        codes.extend(classify_code(zone, address))
    errors = [c for c in codes if c.kind is CodeKind.ERROR]
    if errors:
        return ZoneResult(
            zone.key,
            zone.name,
            ListingStatus.ZONE_ERROR,
            codes=tuple(codes),
            detail="; ".join(f"{c.address}: {c.meaning}" for c in errors),
        )
    blocks = [c for c in codes if c.kind is CodeKind.BLOCK]
    if blocks:
        return ZoneResult(
            zone.key,
            zone.name,
            ListingStatus.LISTED,
            codes=tuple(codes),
            severity=max(c.severity for c in blocks),
            reason=reason,
        )
    if any(c.kind is CodeKind.ALLOW for c in codes):
        return ZoneResult(zone.key, zone.name, ListingStatus.ALLOWED, codes=tuple(codes), reason=reason)
    return ZoneResult(zone.key, zone.name, ListingStatus.NOT_LISTED, codes=tuple(codes))


def skipped(zone: Zone, why: str) -> ZoneResult:
    """A zone we did not ask (unhealthy, over budget): no verdict, with the reason."""
    return ZoneResult(zone.key, zone.name, ListingStatus.SKIPPED, detail=why)


def result_for_unhealthy(zone: Zone, health: ZoneHealth | None) -> ZoneResult:
    """What every target gets from a zone that failed its health check: never a verdict.

    UNKNOWN when the test point got no DNS answer (we could not ask), SKIPPED when the zone answered
    wrongly (dead list, listing the world, error code): its answers are ignored.
    """
    if health is None:
        return skipped(zone, "zone health was not checked")
    if health.no_answer:
        return ZoneResult(zone.key, zone.name, ListingStatus.UNKNOWN, detail=f"zone not checked: {health.reason}")
    return skipped(zone, f"zone unhealthy, answers ignored: {health.reason}")


# --- zone health ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneHealth:
    """Whether a zone may be trusted this cycle (RFC 5782 §7); unhealthy zones' answers are ignored."""

    zone_key: str
    zone_name: str
    healthy: bool
    reason: str = ""
    #: the test point got no DNS answer at all (timeout, SERVFAIL…): the zone may be dead, or the
    #: resolver; results are UNKNOWN rather than SKIPPED, and an alert should say "could not check".
    no_answer: bool = False

    @property
    def status(self) -> HealthStatus:
        if self.healthy:
            return HealthStatus.HEALTHY
        return HealthStatus.UNREACHABLE if self.no_answer else HealthStatus.UNHEALTHY


class HealthStatus(StrEnum):
    UNCHECKED = "unchecked"  # not checked yet
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # answers wrongly (dead, listing the world, error codes): its answers are ignored
    UNREACHABLE = "unreachable"  # no answer for its test points: results are unknown


@dataclass(frozen=True)
class ZoneHealthRecord:
    """A zone's health as last checked, kept between scans."""

    zone_key: str
    status: HealthStatus = HealthStatus.UNCHECKED
    reason: str = ""
    checked_at: datetime | None = None
    changed_at: datetime | None = None


def fold_health(previous: ZoneHealthRecord, observed: ZoneHealth, now: datetime) -> tuple[ZoneHealthRecord, bool]:
    """The health to keep after a check, and whether its change is news (one ZoneHealthChanged).

    Every change of status is news once, except a zone first seen healthy: that is what is expected of it.
    """
    status = observed.status
    changed = status is not previous.status
    record = ZoneHealthRecord(previous.zone_key, status, observed.reason, now, now if changed else previous.changed_at)
    news = changed and not (previous.status is HealthStatus.UNCHECKED and status is HealthStatus.HEALTHY)
    return record, news


def assess_zone_health(zone: Zone, listed_probe: DnsAnswer, clean_probe: DnsAnswer) -> ZoneHealth:
    """Judge a zone on its test points: the listed one must list, the clean one must not block.

    A whitelist answer for the clean point is accepted (JunkEmailFilter answers 127.0.0.1 =
    white for 127.0.0.1), so the check needs no per-zone special case.
    """
    listed_point, clean_point = zone.listed_test_point, zone.clean_test_point
    for probe, point in ((listed_probe, listed_point), (clean_probe, clean_point)):
        if probe.outcome.is_failure:
            return ZoneHealth(
                zone.key, zone.name, False, f"no answer for test point {point}: {probe.describe()}", no_answer=True
            )
    listed = interpret_answer(zone, listed_probe)
    clean = interpret_answer(zone, clean_probe)
    if clean.status is ListingStatus.LISTED:
        return ZoneHealth(
            zone.key,
            zone.name,
            False,
            f"lists {clean_point}, which no list may list: it is listing the world (answered {clean_probe.describe()})",
        )
    for result, point in ((listed, listed_point), (clean, clean_point)):
        if result.status is ListingStatus.ZONE_ERROR:
            return ZoneHealth(zone.key, zone.name, False, f"error answer for test point {point}: {result.detail}")
    if listed.status is not ListingStatus.LISTED:
        return ZoneHealth(
            zone.key,
            zone.name,
            False,
            f"does not list its test point {listed_point} (answered {listed_probe.describe()}): "
            "the list is dead or not answering as a blocklist",
        )
    return ZoneHealth(zone.key, zone.name, True)
