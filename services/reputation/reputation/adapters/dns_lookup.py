"""General DNS lookups for the domain checks (TXT, A/AAAA, MX, PTR) through the configured nameservers.

dnspython's resolver does the work (CNAME chains, TCP on truncation, e.g. 4096-bit DKIM keys);
every outcome, failures included, comes back as a `DnsAnswer` so that a dead resolver reads as
UNKNOWN with its reason, never as an exception or as "no record".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.message
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

from reputation.adapters.dns_client import DnsSettings, Nameserver, answer_from_message
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome


class DnsLookup(Protocol):
    """What the domain checks need."""

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer: ...


def _configure(resolver: dns.resolver.Resolver, nameservers: Iterable[Nameserver], settings: DnsSettings) -> None:
    resolver.nameservers = [dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in nameservers]
    resolver.lifetime = settings.timeout
    resolver.timeout = settings.timeout / max(1, settings.attempts)
    resolver.retry_servfail = False
    resolver.cache = None


def failure_answer(exc: Exception, settings: DnsSettings) -> DnsAnswer:
    """The `DnsAnswer` for a dnspython exception (the only place these are mapped)."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return DnsAnswer(DnsOutcome.NXDOMAIN)
    if isinstance(exc, dns.resolver.NoAnswer):
        return DnsAnswer(DnsOutcome.NODATA)
    if isinstance(exc, dns.exception.Timeout):
        return DnsAnswer(DnsOutcome.TIMEOUT, detail=f"no answer within {settings.timeout:g} s")
    if isinstance(exc, dns.resolver.NoNameservers):
        errors = exc.kwargs.get("errors") or []
        rcodes = {e[4].rcode() for e in errors if len(e) > 4 and isinstance(e[4], dns.message.Message)}
        if dns.rcode.SERVFAIL in rcodes:
            return DnsAnswer(DnsOutcome.SERVFAIL, detail=_short(exc))
        if dns.rcode.REFUSED in rcodes:
            return DnsAnswer(DnsOutcome.REFUSED, detail=_short(exc))
        return DnsAnswer(DnsOutcome.ERROR, detail=_short(exc))
    return DnsAnswer(DnsOutcome.ERROR, detail=_short(exc))


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class ResolverLookup:
    """Async lookups via dnspython's resolver, pointed at `settings.nameservers` only."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        self.resolver = dns.asyncresolver.Resolver(configure=False)
        _configure(self.resolver, settings.nameservers, settings)

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        try:
            answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=True, search=False)
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return failure_answer(exc, self.settings)
        assert answer.response is not None
        return answer_from_message(answer.response, dns.rdatatype.from_text(rdtype))

    async def ptr(self, ip: str) -> DnsAnswer:
        return await self.resolve(dns.reversename.from_address(ip).to_text(), "PTR")


class SyncResolverLookup:
    """The same lookups, blocking: for pyspf, which runs in a worker thread."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        self.resolver = dns.resolver.Resolver(configure=False)
        _configure(self.resolver, settings.nameservers, settings)

    def resolve_raw(self, name: str, rdtype: str, lifetime: float | None = None) -> dns.resolver.Answer:
        """dnspython's answer (raises dnspython exceptions): pyspf needs the raw records."""
        return self.resolver.resolve(
            name,
            rdtype,
            raise_on_no_answer=False,
            search=False,
            lifetime=min(lifetime or self.settings.timeout, self.settings.timeout),
        )
