"""ValidateDomain: SPF per IP, DKIM per selector, DMARC, PTR/FCrDNS per IP (vs its HELO), MX.

Input is validated whole first (every bad field named). All checks then run concurrently, each under
`check_timeout`: a check that has not finished by then is UNKNOWN with that reason, so one dead
nameserver costs one timeout, not one per lookup. The verdicts themselves are the domain's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from functools import partial
from ipaddress import IPv4Address

from libs.clock import Clock, SystemClock
from libs.errors import InvalidArgument, Violations
from reputation.adapters.dns_client import DnsSettings
from reputation.adapters.dns_lookup import DnsLookup, ResolverLookup, SyncResolverLookup
from reputation.adapters.spf_check import SpfChecker, dnspython_spf_lookup
from reputation.domain.checks import CheckKind, CheckResult, DomainReport, Verdict
from reputation.domain.dkim import dkim_record_name, dkim_verdict
from reputation.domain.dmarc import dmarc_lookup_names, dmarc_verdict, is_dmarc_record
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.host_dns import fcrdns_verdict, mx_verdict, parse_mx
from reputation.domain.spf_record import spf_verdict
from reputation.domain.validation import IPAddress, normalize_hostname, parse_domain_check, parse_ip, raise_if_any


class DomainChecker:
    """Runs the DNS authentication checks of one sending domain."""

    def __init__(
        self,
        lookup: DnsLookup,
        spf_checker: SpfChecker,
        *,
        check_timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.lookup = lookup
        self.spf = spf_checker
        self.check_timeout = check_timeout
        self.clock = clock or SystemClock()

    @classmethod
    def from_settings(cls, settings: DnsSettings, *, clock: Clock | None = None) -> DomainChecker:
        """The production wiring: dnspython over `settings.nameservers` for lookups and for pyspf."""
        spf_checker = SpfChecker(dnspython_spf_lookup(SyncResolverLookup(settings)), timeout=settings.check_timeout)
        return cls(ResolverLookup(settings), spf_checker, check_timeout=settings.check_timeout, clock=clock)

    async def validate_domain(
        self,
        domain: str,
        ips: Sequence[str] = (),
        dkim_selectors: Sequence[str] = (),
        *,
        helo_names: Mapping[str, str] | None = None,
        dkim_signing_keys: Mapping[str, bytes] | None = None,
        checks: Collection[CheckKind] | None = None,
    ) -> DomainReport:
        """One verdict per check: SPF and PTR per IP, DKIM per selector, then DMARC and MX.

        `helo_names`: IP → the HELO name PowerMTA uses for it; `dkim_signing_keys`: selector → PEM
        private key PowerMTA signs with (compared with the published key); `checks`: only these kinds
        (default all; a tenant's periodic domain checks leave PTR, a property of the IP, out). Raises
        InvalidArgument naming every bad field (`domain`, `ips[1]`, `dkim_selectors[0]`, `helo_names[192.0.2.1]`).
        """
        name, addresses, selectors, helos = _validate(domain, ips, dkim_selectors, helo_names or {})
        keys = {s.lower(): pem for s, pem in (dkim_signing_keys or {}).items()}
        wanted = set(CheckKind) if checks is None else set(checks)
        jobs: list[tuple[CheckKind, str, Callable[[], Awaitable[CheckResult]]]] = []
        for ip in addresses:
            jobs.append((CheckKind.SPF, str(ip), partial(self.check_spf, str(ip), name)))
        for selector in selectors:
            jobs.append((CheckKind.DKIM, selector, partial(self.check_dkim, name, selector, keys.get(selector))))
        jobs.append((CheckKind.DMARC, name, partial(self.check_dmarc, name)))
        for ip in addresses:
            jobs.append((CheckKind.PTR, str(ip), partial(self.check_ptr, ip, helos.get(ip))))
        jobs.append((CheckKind.MX, name, partial(self.check_mx, name)))
        results = await asyncio.gather(
            *(self._bounded(kind, subject, start()) for kind, subject, start in jobs if kind in wanted)
        )
        return DomainReport(name, self.clock.now(), tuple(results))

    async def _bounded(self, kind: CheckKind, subject: str, job: Awaitable[CheckResult]) -> CheckResult:
        try:
            return await asyncio.wait_for(job, self.check_timeout + 2.0)
        except TimeoutError:
            return CheckResult(kind, subject, Verdict.UNKNOWN, f"DNS did not answer within {self.check_timeout:g} s")

    async def check_spf(self, ip: str, domain: str) -> CheckResult:
        return spf_verdict(ip, domain, await self.spf.check_host_async(ip, domain))

    async def check_dkim(self, domain: str, selector: str, signing_key_pem: bytes | None = None) -> CheckResult:
        answer = await self.lookup.resolve(dkim_record_name(selector, domain), "TXT")
        return dkim_verdict(domain, selector, answer, signing_key_pem)

    async def check_dmarc(self, domain: str) -> CheckResult:
        answers: list[tuple[str, DnsAnswer]] = []
        for name in dmarc_lookup_names(domain):
            answer = await self.lookup.resolve(name, "TXT")
            answers.append((name, answer))
            if answer.outcome.is_failure or (
                answer.outcome is DnsOutcome.ANSWER and any(is_dmarc_record(r) for r in answer.records)
            ):
                break
        return dmarc_verdict(domain, answers)

    async def check_ptr(self, ip: IPAddress, helo: str | None = None) -> CheckResult:
        ptr = await self.lookup.resolve(ip.reverse_pointer, "PTR")
        forward: dict[str, DnsAnswer] = {}
        if ptr.outcome is DnsOutcome.ANSWER:
            family = "A" if isinstance(ip, IPv4Address) else "AAAA"
            names = list(dict.fromkeys(r.rstrip(".").lower() for r in ptr.records))[:10]
            answers = await asyncio.gather(*(self.lookup.resolve(n, family) for n in names))
            forward = dict(zip(names, (_canonical_addresses(a) for a in answers), strict=True))
        return fcrdns_verdict(str(ip), helo, ptr, forward)

    async def check_mx(self, domain: str) -> CheckResult:
        mx = await self.lookup.resolve(domain, "MX")
        addresses: dict[str, DnsAnswer] = {}
        if mx.outcome is DnsOutcome.ANSWER:
            hosts = [h for _, h in sorted(parse_mx(r) for r in mx.records) if h][:10]
            answers = await asyncio.gather(*(self._addresses(h) for h in hosts))
            addresses = dict(zip(hosts, answers, strict=True))
        elif mx.outcome is DnsOutcome.NODATA:
            addresses[domain] = await self._addresses(domain)
        return mx_verdict(domain, mx, addresses)

    async def _addresses(self, host: str) -> DnsAnswer:
        """A and AAAA of a host together: an answer if either has records, a failure if both fail."""
        a, aaaa = await asyncio.gather(self.lookup.resolve(host, "A"), self.lookup.resolve(host, "AAAA"))
        records = a.records + aaaa.records
        if records:
            return DnsAnswer(DnsOutcome.ANSWER, records)
        if a.outcome.is_failure:
            return a
        return aaaa if aaaa.outcome.is_failure else a


def _canonical_addresses(answer: DnsAnswer) -> DnsAnswer:
    """Addresses in canonical text so an IPv6 PTR target compares equal to the IP asked about."""
    if answer.outcome is not DnsOutcome.ANSWER:
        return answer
    canonical = []
    for record in answer.records:
        try:
            canonical.append(str(parse_ip(record)))
        except InvalidArgument:
            canonical.append(record)
    return DnsAnswer(answer.outcome, tuple(canonical), answer.detail)


def _validate(
    domain: str, ips: Sequence[str], selectors: Sequence[str], helo_names: Mapping[str, str]
) -> tuple[str, list[IPAddress], list[str], dict[IPAddress, str]]:
    problems = Violations()
    name, addresses, chosen = parse_domain_check(domain, ips, selectors, problems)
    helos: dict[IPAddress, str] = {}
    for key, value in helo_names.items():
        where = f"helo_names[{key}]"
        try:
            helos[parse_ip(key, where)] = normalize_hostname(value, where)
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
    raise_if_any(problems)
    return name, addresses, chosen, helos
