"""The blocklist catalogue: which zones we query and what each of their answer codes means.

Each list speaks its own dialect: the same 127.0.0.2 is a hard listing on SpamCop and a test point
elsewhere, 127.0.0.1 is a whitelist on JunkEmailFilter, and Spamhaus answers 127.255.255.x to say
*your resolver* is the problem. The tables here are data; the one place that applies them to a DNS
answer is `reputation.domain.dnsbl.interpret_answer`.

Sources: each list's own documentation (its usage terms and return codes), as noted per zone below.
SORBS (dead since 2024-06) and Invaluement (rsync only) are deliberately absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address, IPv4Network
from types import MappingProxyType

from libs.errors import InvalidArgument
from reputation.domain.validation import normalize_zone_name, parse_each, quoted


class ZoneKind(StrEnum):
    """What a zone lists: sending IPs (reversed octets / nibbles) or domain names."""

    IP = "ip"
    DOMAIN = "domain"


class CodeKind(StrEnum):
    """How one answer address counts."""

    BLOCK = "block"  # a listing
    ALLOW = "allow"  # a whitelist entry (JunkEmailFilter 127.0.0.1, Mailspike H1..H5)
    NEUTRAL = "neutral"  # informational, neither good nor bad (Mailspike neutral, hostkarma yellow)
    ERROR = "error"  # the list refuses to answer us (Spamhaus 127.255.255.x): says nothing about the IP


class Severity(IntEnum):
    """How much a listing hurts delivery; ordered so policies can say "this or worse"."""

    NONE = 0
    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class AnswerCode:
    """One documented answer of one list."""

    address: str
    kind: CodeKind
    meaning: str
    severity: Severity = Severity.NONE


@dataclass(frozen=True)
class CodeRange:
    """A documented block of answers (e.g. Spamhaus' 127.255.255.0/24 errors) with one meaning."""

    network: IPv4Network
    kind: CodeKind
    meaning: str
    severity: Severity = Severity.NONE


@dataclass(frozen=True)
class Zone:
    """A DNS list and its dialect.

    `key` is the stable identifier stored in results and tenant settings; `name` is the DNS zone
    actually queried, which an operator may point elsewhere (a Spamhaus DQS key, a local rsync
    mirror) with `retarget` without losing the code table.
    """

    key: str
    name: str
    display_name: str
    kind: ZoneKind
    codes: Mapping[str, AnswerCode]
    ranges: tuple[CodeRange, ...] = ()
    bitmask: tuple[AnswerCode, ...] = ()  # address = "bit value"; used for SURBL/URIBL multi zones
    unknown_code_severity: Severity = Severity.MEDIUM
    supports_ipv6: bool = False
    # Domain lists: whether the list documents listings of host names (then the exact host is asked as well as
    # the registered domain); lists without it list registered domains only and are asked only for those.
    lists_hosts: bool = False
    listed_test_point: str = "127.0.0.2"
    clean_test_point: str = "127.0.0.1"
    delist_url: str = ""
    notes: str = ""
    # Queries a day the list's free-use terms allow from one resolver (None: none stated); the periodic scans stay
    # within it unless the operator sets another budget (reputation.domain.query_budget).
    free_daily_queries: int | None = None

    def retarget(self, name: str) -> Zone:
        """The same list queried under another DNS name (DQS key, mirror, test server)."""
        return replace(self, name=normalize_zone_name(name, "zone"))


def _codes(kind: CodeKind, severity: Severity, table: Iterable[tuple[str, str]]) -> dict[str, AnswerCode]:
    return {addr: AnswerCode(addr, kind, meaning, severity) for addr, meaning in table}


def _table(*parts: Mapping[str, AnswerCode]) -> Mapping[str, AnswerCode]:
    merged: dict[str, AnswerCode] = {}
    for part in parts:
        merged.update(part)
    return MappingProxyType(merged)


# Spamhaus answers in 127.255.255.0/24 when it will not answer *us*; never a listing.
_SPAMHAUS_ERRORS = _codes(
    CodeKind.ERROR,
    Severity.NONE,
    [
        ("127.255.255.250", "Spamhaus DQS key disabled"),
        ("127.255.255.251", "Spamhaus DQS key used from an unauthorised place"),
        ("127.255.255.252", "Spamhaus says the queried zone name has a typing error"),
        (
            "127.255.255.254",
            "Spamhaus refuses queries from this resolver (public/open resolver or unattributable "
            "reverse DNS): use your own recursive resolver",
        ),
        ("127.255.255.255", "Spamhaus refuses: excessive number of queries from this resolver"),
    ],
)
_SPAMHAUS_ERROR_RANGE = CodeRange(
    IPv4Network("127.255.255.0/24"),
    CodeKind.ERROR,
    "Spamhaus error code (the query was refused; says nothing about the address)",
)

SPAMHAUS_ZEN = Zone(
    key="spamhaus-zen",
    name="zen.spamhaus.org",
    display_name="Spamhaus ZEN",
    kind=ZoneKind.IP,
    codes=_table(
        _codes(
            CodeKind.BLOCK,
            Severity.CRITICAL,
            [
                ("127.0.0.2", "Spamhaus SBL: known spam source or spam operation"),
                ("127.0.0.3", "Spamhaus CSS: low-reputation (snowshoe) sending detected"),
                ("127.0.0.4", "Spamhaus XBL: hijacked or infected host (exploits)"),
                ("127.0.0.9", "Spamhaus DROP: hijacked or criminal netblock"),
                ("127.0.0.30", "Spamhaus BCL: botnet controller"),
            ],
        ),
        _codes(
            CodeKind.BLOCK,
            Severity.HIGH,
            [
                ("127.0.0.10", "Spamhaus PBL (ISP-maintained): range not meant to send mail directly"),
                ("127.0.0.11", "Spamhaus PBL (Spamhaus-maintained): range not meant to send mail directly"),
            ],
        ),
        _SPAMHAUS_ERRORS,
    ),
    ranges=(_SPAMHAUS_ERROR_RANGE,),
    unknown_code_severity=Severity.HIGH,
    supports_ipv6=True,
    delist_url="https://check.spamhaus.org/",
    notes="Free public mirrors are for low-volume non-commercial use; query via your own resolver or DQS.",
    # Low volume: up to about 100 000 queries a day from a resolver with attributable reverse DNS.
    free_daily_queries=100_000,
)

SPAMCOP = Zone(
    key="spamcop",
    name="bl.spamcop.net",
    display_name="SpamCop",
    kind=ZoneKind.IP,
    codes=_table(_codes(CodeKind.BLOCK, Severity.HIGH, [("127.0.0.2", "SpamCop: reported as a spam source")])),
    delist_url="https://www.spamcop.net/bl.shtml",
    notes="Listings expire on their own about 24 hours after the last report.",
)

BARRACUDA = Zone(
    key="barracuda",
    name="b.barracudacentral.org",
    display_name="Barracuda BRBL",
    kind=ZoneKind.IP,
    codes=_table(_codes(CodeKind.BLOCK, Severity.HIGH, [("127.0.0.2", "Barracuda BRBL: poor sending reputation")])),
    delist_url="https://www.barracudacentral.org/rbl/removal-request",
    notes="Free, but the querying resolver's IPs must be registered with Barracuda.",
)

PSBL = Zone(
    key="psbl",
    name="psbl.surriel.com",
    display_name="PSBL",
    kind=ZoneKind.IP,
    codes=_table(_codes(CodeKind.BLOCK, Severity.MEDIUM, [("127.0.0.2", "PSBL: sent mail to spam traps")])),
    delist_url="https://psbl.org/",
)

MAILSPIKE = Zone(
    key="mailspike",
    name="bl.mailspike.net",
    display_name="Mailspike",
    kind=ZoneKind.IP,
    codes=_table(
        _codes(CodeKind.BLOCK, Severity.HIGH, [("127.0.0.2", "Mailspike Z: part of a zero-hour spam wave")]),
        _codes(
            CodeKind.BLOCK,
            Severity.HIGH,
            [
                ("127.0.0.10", "Mailspike L5: worst reputation"),
                ("127.0.0.11", "Mailspike L4: very bad reputation"),
            ],
        ),
        _codes(CodeKind.BLOCK, Severity.MEDIUM, [("127.0.0.12", "Mailspike L3: bad reputation")]),
        _codes(
            CodeKind.BLOCK,
            Severity.LOW,
            [
                ("127.0.0.13", "Mailspike L2: suspicious reputation"),
                ("127.0.0.14", "Mailspike L1: slightly suspicious reputation"),
            ],
        ),
        _codes(CodeKind.NEUTRAL, Severity.NONE, [("127.0.0.15", "Mailspike: neutral reputation")]),
        _codes(
            CodeKind.ALLOW,
            Severity.NONE,
            [(f"127.0.0.{15 + n}", f"Mailspike H{n}: good reputation") for n in range(1, 6)],
        ),
    ),
    delist_url="https://mailspike.org/",
    notes="Free up to 100 000 queries a day.",
    free_daily_queries=100_000,  # mailspike.org/usage
)

SPAMRATS = Zone(
    key="spamrats",
    name="all.spamrats.com",
    display_name="SpamRATS",
    kind=ZoneKind.IP,
    codes=_table(
        _codes(
            CodeKind.BLOCK,
            Severity.MEDIUM,
            [("127.0.0.36", "RATS-Dyna: reverse DNS looks like a dynamic/residential address")],
        ),
        _codes(
            CodeKind.BLOCK,
            Severity.HIGH,
            [
                ("127.0.0.37", "RATS-NoPtr: the address has no reverse DNS (PTR)"),
                ("127.0.0.38", "RATS-Spam: spam or abuse seen from this address"),
                ("127.0.0.43", "RATS-Auth: brute-force authentication attempts from this address"),
            ],
        ),
    ),
    delist_url="https://www.spamrats.com/removal.php",
)

UCEPROTECT_L1 = Zone(
    key="uceprotect-1",
    name="dnsbl-1.uceprotect.net",
    display_name="UCEPROTECT level 1",
    kind=ZoneKind.IP,
    codes=_table(
        _codes(
            CodeKind.BLOCK,
            Severity.MEDIUM,
            [("127.0.0.2", "UCEPROTECT L1: this address sent to spam traps (expires after 7 days)")],
        )
    ),
    delist_url="https://www.uceprotect.net/en/rblcheck.php",
    notes="Only level 1 (single IPs); levels 2/3 list whole allocations and ASNs.",
)

MANITU = Zone(
    key="manitu",
    name="ix.dnsbl.manitu.net",
    display_name="Manitu NiX Spam",
    kind=ZoneKind.IP,
    codes=_table(_codes(CodeKind.BLOCK, Severity.MEDIUM, [("127.0.0.2", "NiX Spam: sent spam to NiX Spam traps")])),
    delist_url="https://www.dnsbl.manitu.net/",
)

JUNKEMAILFILTER = Zone(
    key="junkemailfilter",
    name="hostkarma.junkemailfilter.com",
    display_name="JunkEmailFilter HostKarma",
    kind=ZoneKind.IP,
    codes=_table(
        _codes(CodeKind.ALLOW, Severity.NONE, [("127.0.0.1", "HostKarma white: whitelisted sender")]),
        _codes(CodeKind.BLOCK, Severity.HIGH, [("127.0.0.2", "HostKarma black: blacklisted sender")]),
        _codes(CodeKind.NEUTRAL, Severity.NONE, [("127.0.0.3", "HostKarma yellow: mixed good and bad mail")]),
        _codes(CodeKind.BLOCK, Severity.LOW, [("127.0.0.4", "HostKarma brown: mostly bad, not blacklisted")]),
        _codes(CodeKind.NEUTRAL, Severity.NONE, [("127.0.0.5", "HostKarma NOBL: do not blocklist")]),
    ),
    ranges=(
        CodeRange(IPv4Network("127.0.1.0/24"), CodeKind.NEUTRAL, "HostKarma age information"),
        CodeRange(IPv4Network("127.0.2.0/24"), CodeKind.NEUTRAL, "HostKarma source information"),
    ),
    unknown_code_severity=Severity.LOW,
    delist_url="https://wiki.junkemailfilter.com/index.php/Spam_DNS_Lists",
    notes="127.0.0.1 is a whitelist answer, so the RFC 5782 'must not list 127.0.0.1' test accepts it.",
)

# --- domain lists -------------------------------------------------------------------------------

SPAMHAUS_DBL = Zone(
    key="spamhaus-dbl",
    name="dbl.spamhaus.org",
    display_name="Spamhaus DBL",
    kind=ZoneKind.DOMAIN,
    codes=_table(
        _codes(
            CodeKind.BLOCK,
            Severity.CRITICAL,
            [
                ("127.0.1.2", "Spamhaus DBL: spam domain"),
                ("127.0.1.4", "Spamhaus DBL: phishing domain"),
                ("127.0.1.5", "Spamhaus DBL: malware domain"),
                ("127.0.1.6", "Spamhaus DBL: botnet command-and-control domain"),
            ],
        ),
        _codes(
            CodeKind.BLOCK,
            Severity.HIGH,
            [
                ("127.0.1.102", "Spamhaus DBL: abused legitimate domain used for spam"),
                ("127.0.1.103", "Spamhaus DBL: abused legitimate spammed redirector"),
                ("127.0.1.104", "Spamhaus DBL: abused legitimate domain used for phishing"),
                ("127.0.1.105", "Spamhaus DBL: abused legitimate domain used for malware"),
                ("127.0.1.106", "Spamhaus DBL: abused legitimate domain used for botnet C&C"),
            ],
        ),
        _codes(CodeKind.ERROR, Severity.NONE, [("127.0.1.255", "Spamhaus DBL: IP queries are not allowed")]),
        _SPAMHAUS_ERRORS,
    ),
    ranges=(_SPAMHAUS_ERROR_RANGE,),
    unknown_code_severity=Severity.HIGH,
    lists_hosts=True,
    listed_test_point="dbltest.com",
    clean_test_point="invalid",
    delist_url="https://check.spamhaus.org/",
    notes="Lists domains and some host names: asked for the exact host and for its registered domain.",
)

SURBL = Zone(
    key="surbl",
    name="multi.surbl.org",
    display_name="SURBL multi",
    kind=ZoneKind.DOMAIN,
    codes=_table(
        _codes(
            CodeKind.ERROR,
            Severity.NONE,
            [("127.0.0.1", "SURBL refuses queries from this resolver (public resolver or over the free limit)")],
        )
    ),
    bitmask=(
        AnswerCode("4", CodeKind.BLOCK, "SURBL DM: disposable email domain", Severity.LOW),
        AnswerCode("8", CodeKind.BLOCK, "SURBL PH: phishing site", Severity.CRITICAL),
        AnswerCode("16", CodeKind.BLOCK, "SURBL MW: malware site", Severity.CRITICAL),
        AnswerCode("32", CodeKind.BLOCK, "SURBL CT: click-tracking domain", Severity.MEDIUM),
        AnswerCode("64", CodeKind.BLOCK, "SURBL ABUSE: spam and abuse site", Severity.HIGH),
        AnswerCode("128", CodeKind.BLOCK, "SURBL CR: cracked site", Severity.HIGH),
    ),
    listed_test_point="test.surbl.org",
    clean_test_point="invalid",
    delist_url="https://www.surbl.org/surbl-analysis",
    notes="Lists registered domains only: asked for the registered domain of a host (Public Suffix List).",
)

URIBL = Zone(
    key="uribl",
    name="multi.uribl.com",
    display_name="URIBL multi",
    kind=ZoneKind.DOMAIN,
    codes=_table(
        _codes(
            CodeKind.ERROR,
            Severity.NONE,
            [("127.0.0.1", "URIBL refuses queries from this resolver (public resolver or over the free limit)")],
        )
    ),
    bitmask=(
        AnswerCode("2", CodeKind.BLOCK, "URIBL black: domain seen in spam", Severity.HIGH),
        AnswerCode("4", CodeKind.BLOCK, "URIBL grey: bulk sender domain, opt-in questionable", Severity.LOW),
        AnswerCode("8", CodeKind.BLOCK, "URIBL red: domain of a new spam source", Severity.MEDIUM),
    ),
    listed_test_point="test.uribl.com",
    clean_test_point="invalid",
    delist_url="https://admin.uribl.com/",
    notes="Lists registered domains only: asked for the registered domain of a host (Public Suffix List).",
)

#: The 9 IP lists that are alive today, in the order results are shown.
DEFAULT_IP_ZONES: tuple[Zone, ...] = (
    SPAMHAUS_ZEN,
    SPAMCOP,
    BARRACUDA,
    PSBL,
    MAILSPIKE,
    SPAMRATS,
    UCEPROTECT_L1,
    MANITU,
    JUNKEMAILFILTER,
)
DEFAULT_DOMAIN_ZONES: tuple[Zone, ...] = (SPAMHAUS_DBL, SURBL, URIBL)


@dataclass(frozen=True)
class ZoneCatalogue:
    """The zones an installation knows, found by key or DNS name; a tenant picks a subset."""

    zones: tuple[Zone, ...] = DEFAULT_IP_ZONES + DEFAULT_DOMAIN_ZONES
    _index: Mapping[str, Zone] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Zone] = {}
        for zone in self.zones:
            for handle in (zone.key, zone.name):
                if handle in index and index[handle] is not zone:
                    raise ValueError(f"zone handle {handle!r} is used twice in the catalogue")
                index[handle] = zone
        object.__setattr__(self, "_index", MappingProxyType(index))

    def get(self, handle: str) -> Zone | None:
        """A zone by key (`spamhaus-zen`) or DNS name (`zen.spamhaus.org`), any case."""
        return self._index.get(handle.strip().lower().rstrip("."))

    def find(self, handle: str) -> Zone | None:
        """A zone by key, by the name queried, or by its public name (`zen.spamhaus.org` even when retargeted)."""
        found = self.get(handle)
        if found is None and self is not DEFAULT_CATALOGUE:
            public = DEFAULT_CATALOGUE.get(handle)
            found = self.get(public.key) if public is not None else None
        return found

    def select(
        self,
        handles: Sequence[str],
        field_name: str = "zones",
        kind: ZoneKind | None = None,
        *,
        max_items: int | None = None,
    ) -> tuple[Zone, ...]:
        """The zones named (of `kind`, when given), in the given order, duplicates dropped; every unknown or
        malformed name, and every zone of the wrong kind, is reported at once."""

        def pick(handle: str, where: str) -> Zone:
            zone = self.find(handle) if isinstance(handle, str) else None
            if zone is None:
                normalize_zone_name(handle, where)  # a malformed name says so rather than "unknown"
                raise InvalidArgument(where, f"unknown blocklist zone {quoted(handle)}")
            if kind is not None and zone.kind is not kind:
                raise InvalidArgument(
                    where, f"{quoted(handle)} lists {zone.kind.value}s; {field_name} takes {kind.value} lists"
                )
            return zone

        return tuple(parse_each(handles, pick, field_name, max_items=max_items))

    def ip_zones(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind is ZoneKind.IP)

    def domain_zones(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind is ZoneKind.DOMAIN)


DEFAULT_CATALOGUE = ZoneCatalogue()

_PUBLIC_NAMES = {zone.key: zone.name for zone in DEFAULT_CATALOGUE.zones}


def public_zone_name(zone_key: str, fallback: str = "") -> str:
    """The list's public DNS name for a catalogue key: what people and other services are shown, never the
    name actually queried (which may carry a Spamhaus DQS key or point at a private mirror)."""
    return _PUBLIC_NAMES.get(zone_key) or fallback or zone_key


def code_address(value: str) -> IPv4Address | None:
    """Parse an answer address; None when it is not an IPv4 address at all."""
    try:
        return IPv4Address(value)
    except ValueError:
        return None
