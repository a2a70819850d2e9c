"""SPF `check_host()` (RFC 7208) by pyspf 2.0.14, fed by our own resolver.

pyspf is the reference implementation and passes the whole RFC 7208 suite; what it lacks is a
way to choose the nameservers (it calls dnspython's default resolver through a module global,
`spf.DNSLookup`). We install one dispatcher there that reads the lookup function of the current
evaluation from a context variable, so concurrent evaluations in worker threads each use their own
resolver: the configured nameservers in production, the suite's zone data in the conformance test.

pyspf is synchronous: `check_host_async` runs it in a thread under a hard deadline, so a dead
resolver gives `temperror` (→ UNKNOWN) within the configured time.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import spf

from reputation.adapters.dns_lookup import SyncResolverLookup
from reputation.domain.spf_record import (
    MAX_DNS_LOOKUPS,
    SpfEvaluation,
    SpfRecordError,
    parse_spf_record,
    select_spf_record,
)

#: pyspf's DNS contract: (name, qtype, strict, timeout) → [((name, qtype), value), …]; raises spf.TempError.
#: Values: A/AAAA str, MX (preference, host), PTR host, TXT/SPF tuple of bytes strings, CNAME host.
SpfDnsLookup = Callable[[str, str, bool, float], list[tuple[tuple[str, str], object]]]

_current_lookup: contextvars.ContextVar[SpfDnsLookup | None] = contextvars.ContextVar("spf_dns_lookup", default=None)


def _dispatch(name: str, qtype: str, strict: bool = True, timeout: float = 20.0) -> list:
    lookup = _current_lookup.get()
    if lookup is None:
        raise spf.TempError("no DNS resolver configured for SPF evaluation")
    return lookup(name, qtype, strict, timeout)


spf.DNSLookup = _dispatch  # the one seam pyspf offers; see the module docstring


def dnspython_spf_lookup(resolver: SyncResolverLookup) -> SpfDnsLookup:
    """pyspf's DNS contract over our configured nameservers; DNS failures become `spf.TempError`."""

    def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20.0) -> list:
        try:
            answer = resolver.resolve_raw(name, qtype, lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel):
            return []  # not a name that can exist
        except dns.exception.Timeout:
            raise spf.TempError(f"DNS timeout looking up {name} {qtype}") from None
        except dns.resolver.NoNameservers:
            raise spf.TempError(f"DNS server failure (SERVFAIL/REFUSED) for {name} {qtype}") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise spf.TempError(f"DNS error for {name} {qtype}: {exc}") from None
        out: list[tuple[tuple[str, str], object]] = []
        if answer.rrset is None:
            return out
        for rdata in answer.rrset:
            rdtype = rdata.rdtype
            value: object
            if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                value = rdata.address
            elif rdtype == dns.rdatatype.MX:
                value = (rdata.preference, rdata.exchange.to_text(omit_final_dot=True))
            elif rdtype == dns.rdatatype.PTR:
                value = rdata.target.to_text(omit_final_dot=True)
            elif rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF):
                value = tuple(rdata.strings)
            else:
                continue
            out.append(((name, qtype), value))
        return out

    return lookup


_OLD_RESULTS = {"unknown": "permerror", "error": "temperror"}


class SpfChecker:
    """RFC 7208 evaluations through one DNS lookup function."""

    def __init__(self, dns_lookup: SpfDnsLookup, *, timeout: float = 10.0, count_worst_case: bool = True) -> None:
        self.dns_lookup = dns_lookup
        self.timeout = timeout
        self.count_worst_case = count_worst_case

    def evaluate(
        self,
        ip: str,
        sender: str,
        helo: str,
        *,
        strict: bool | int = True,
        default_explanation: str | None = None,
    ) -> SpfEvaluation:
        """pyspf's `check_host` for (ip, MAIL FROM sender, HELO name), blocking; never raises."""
        token = _current_lookup.set(self.dns_lookup)
        try:
            query = spf.query(i=ip, s=sender, h=helo, strict=strict, querytime=self.timeout)
            if default_explanation is not None:
                query.set_default_explanation(default_explanation)
            try:
                result, _code, explanation = query.check()
            except Exception as exc:  # a pyspf bug must not crash a check; report it, never as a pass
                return SpfEvaluation("temperror", f"SPF evaluation failed: {exc!r}")
            result = _OLD_RESULTS.get(result, result)
            record = None
            if result not in ("none", "temperror"):
                try:
                    record = query.dns_spf(query.d)  # served from the query's own cache
                except (spf.TempError, spf.PermError):
                    record = None
            return SpfEvaluation(
                result=result,
                explanation=explanation or "",
                record=record,
                lookups=query.lookups,
                void_lookups=query.void_lookups,
            )
        finally:
            _current_lookup.reset(token)

    def check_host(self, ip: str, domain: str) -> SpfEvaluation:
        """check_host(ip, domain, postmaster@domain), plus the record's worst-case lookup count."""
        evaluation = self.evaluate(ip, f"postmaster@{domain}", domain)
        if self.count_worst_case and evaluation.result == "pass" and evaluation.record:
            worst = self.worst_case_lookups(domain)
            if worst is not None:
                evaluation = SpfEvaluation(
                    evaluation.result,
                    evaluation.explanation,
                    evaluation.record,
                    evaluation.lookups,
                    evaluation.void_lookups,
                    worst,
                )
        return evaluation

    async def check_host_async(self, ip: str, domain: str) -> SpfEvaluation:
        """`check_host` in a worker thread; past `timeout` (+ a margin) it is temperror, never a hang."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.check_host, ip, domain), self.timeout + 1.0)
        except TimeoutError:
            return SpfEvaluation("temperror", f"SPF evaluation did not finish within {self.timeout:g} s")

    def worst_case_lookups(self, domain: str) -> int | None:
        """DNS-querying terms over every include/redirect path (what a non-matching sender costs).

        A record included twice is counted each time it is reached, as receivers evaluate it each time
        (RFC 7208 §4.6.4 counts lookups made, not names); only a loop (a name including itself) stops the walk.
        Each name's TXT is asked once. None when it cannot be told (a DNS failure, a broken included record).
        Macro targets count one lookup and are not followed.
        """
        token = _current_lookup.set(self.dns_lookup)
        records: dict[str, str | None] = {}

        def record(name: str) -> str | None:
            key = name.lower()
            if key not in records:
                found = _dispatch(name, "TXT", True, self.timeout)
                texts = [b"".join(v).decode("utf-8", "replace") for (_, qtype), v in found if qtype == "TXT"]  # type: ignore[arg-type]
                records[key] = select_spf_record(texts)
            return records[key]

        def walk(name: str, path: tuple[str, ...], budget: int) -> int:
            if len(path) > 10 or name.lower() in path:
                return 0
            text = record(name)
            if text is None:
                return 0
            total = 0
            for term in parse_spf_record(text).terms:
                if not term.needs_lookup:
                    continue
                total += 1
                if term.name in ("include", "redirect") and term.value and "%" not in term.value:
                    total += walk(term.value, (*path, name.lower()), budget - total)
                if total > budget:  # far past the limit: the figure is already damning
                    break
            return total

        try:
            return walk(domain, (), 4 * MAX_DNS_LOOKUPS)
        except (spf.TempError, spf.PermError, SpfRecordError):
            return None
        finally:
            _current_lookup.reset(token)
