"""MX (else A or AAAA) of recipient domains, asked of the platform's own resolver (`EE_DNS_NAMESERVERS`).

`DnsRecipientResolver.lookup(domains)` answers every domain of a campaign at once, `concurrency` questions in
flight, and reports what DNS said as a `domain.recipients.RecipientDomain`; what that means for the contacts is
decided there. A timeout, SERVFAIL or an unreachable resolver is UNKNOWN (never "no mail host").
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from campaign_gateway.domain.recipients import MailHost, RecipientDomain


@dataclass(frozen=True)
class Nameserver:
    address: str
    port: int = 53


def parse_nameservers(value: str) -> tuple[Nameserver, ...]:
    """`host:port,[v6]:port,host` (port 53 by default); empty means the system resolver. ValueError names the item."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
        except ValueError:
            raise ValueError(f"{item!r} is not an address[:port] of a nameserver") from None
        if not 1 <= number <= 65535:
            raise ValueError(f"{item!r} has a port outside 1-65535")
        found.append(Nameserver(address, number))
    return tuple(found)


class DnsRecipientResolver:
    def __init__(self, nameservers: Sequence[Nameserver], *, timeout: float = 2.0, concurrency: int = 64):
        self._nameservers = tuple(nameservers)
        self._timeout = timeout
        self._concurrency = concurrency

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if not self._nameservers:
            return dns.asyncresolver.Resolver(configure=True)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ns.address, ns.port) for ns in self._nameservers]
        return resolver

    def lookup(self, domains: Sequence[str]) -> dict[str, RecipientDomain]:
        wanted = list(dict.fromkeys(d.lower().rstrip(".") for d in domains if d))
        if not wanted:
            return {}
        return asyncio.run(self._lookup_all(wanted))

    async def _lookup_all(self, domains: list[str]) -> dict[str, RecipientDomain]:
        resolver = self._resolver()
        resolver.lifetime = self._timeout
        gate = asyncio.Semaphore(self._concurrency)

        async def one(domain: str) -> RecipientDomain:
            async with gate:
                return await self._lookup(resolver, domain)

        answers = await asyncio.gather(*(one(domain) for domain in domains))
        return {answer.domain: answer for answer in answers}

    async def _lookup(self, resolver: dns.asyncresolver.Resolver, domain: str) -> RecipientDomain:
        try:
            answer = await resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            return RecipientDomain(domain, MailHost.NONE, detail=f"{domain} does not exist (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return await self._implicit_mx(resolver, domain)
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.exception.DNSException) as trouble:
            return RecipientDomain(domain, MailHost.UNKNOWN, detail=f"{type(trouble).__name__}")
        hosts = tuple(str(record.exchange).rstrip(".").lower() for record in answer)  # type: ignore[attr-defined]
        if hosts == ("",):
            return RecipientDomain(domain, MailHost.NULL_MX, hosts)
        return RecipientDomain(domain, MailHost.MX, tuple(h for h in hosts if h))

    async def _implicit_mx(self, resolver: dns.asyncresolver.Resolver, domain: str) -> RecipientDomain:
        unknown = False
        for rdtype in ("A", "AAAA"):
            try:
                await resolver.resolve(domain, rdtype, search=False)
                return RecipientDomain(domain, MailHost.ADDRESS_ONLY)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException:
                unknown = True
        if unknown:
            return RecipientDomain(domain, MailHost.UNKNOWN, detail="no MX, and the A/AAAA question got no answer")
        return RecipientDomain(domain, MailHost.NONE, detail=f"{domain} has no MX and no A or AAAA record")
