"""Reverse DNS of sending IPs (PTR, forward-confirmed, against the HELO name) and the domain's MX.

FCrDNS: some PTR name of the IP must resolve back to the IP; without it most mailbox providers
reject or junk mail, so a missing or unconfirmed PTR FAILs. A HELO name that differs from every
confirmed PTR name only WARNs: receivers score it, few reject on it alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome


def _name(text: str) -> str:
    return text.rstrip(".").lower()


def fcrdns_verdict(ip: str, helo: str | None, ptr: DnsAnswer, forward: Mapping[str, DnsAnswer]) -> CheckResult:
    """`ptr`: the PTR answer for the IP; `forward`: address answers (A for IPv4, AAAA for IPv6) per PTR name."""
    details: dict[str, str] = {}
    if helo:
        details["helo"] = helo

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.PTR, ip, verdict, reason, details)

    if ptr.outcome.is_failure:
        return result(Verdict.UNKNOWN, f"could not read the reverse DNS of {ip}: {ptr.describe()}")
    names = [_name(n) for n in ptr.records] if ptr.outcome is DnsOutcome.ANSWER else []
    if not names:
        return result(
            Verdict.FAIL,
            f"{ip} has no reverse DNS (PTR record): most mailbox providers reject or junk its mail",
        )
    details["ptr"] = ", ".join(names)
    confirmed: list[str] = []
    unanswered: list[str] = []
    mismatched: list[str] = []
    for name in names:
        answer = forward.get(name)
        if answer is None or answer.outcome.is_failure:
            unanswered.append(name)
        elif ip in answer.records:
            confirmed.append(name)
        else:
            found = ", ".join(answer.records) if answer.records else "no address"
            mismatched.append(f"{name} resolves to {found}")
    if not confirmed:
        if unanswered:
            return result(
                Verdict.UNKNOWN,
                f"the PTR of {ip} is {', '.join(names)}, but resolving it back failed "
                f"({', '.join(unanswered)} did not answer)",
            )
        return result(
            Verdict.FAIL,
            f"forward-confirmed reverse DNS fails: the PTR of {ip} is {', '.join(names)} but "
            f"{'; '.join(mismatched)}, not {ip}",
        )
    details["confirmed"] = ", ".join(confirmed)
    if helo is None:
        return result(Verdict.PASS, f"{ip} has forward-confirmed reverse DNS {confirmed[0]}")
    if _name(helo) not in confirmed:
        return result(
            Verdict.WARN,
            f"{ip} has forward-confirmed reverse DNS {confirmed[0]}, but it says HELO {helo}: receivers "
            "expect the HELO name to match the reverse DNS",
        )
    return result(Verdict.PASS, f"{ip} has forward-confirmed reverse DNS {confirmed[0]}, matching its HELO name")


def parse_mx(record: str) -> tuple[int, str]:
    """ "10 mx.example.com." → (10, "mx.example.com"); the null MX "0 ." → (0, "")."""
    preference, _, host = record.strip().partition(" ")
    return int(preference), _name(host.strip())


def mx_verdict(domain: str, mx: DnsAnswer, addresses: Mapping[str, DnsAnswer]) -> CheckResult:
    """`addresses`: A/AAAA answers per MX host (and for the domain itself when it has no MX)."""
    details: dict[str, str] = {}

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.MX, domain, verdict, reason, details)

    if mx.outcome.is_failure:
        return result(Verdict.UNKNOWN, f"could not read the MX records of {domain}: {mx.describe()}")
    if mx.outcome is DnsOutcome.NXDOMAIN:
        return result(Verdict.FAIL, f"{domain} does not exist in DNS (NXDOMAIN)")
    records = sorted(parse_mx(r) for r in mx.records) if mx.outcome is DnsOutcome.ANSWER else []
    if not records:
        fallback = addresses.get(domain)
        if fallback is not None and fallback.outcome is DnsOutcome.ANSWER and fallback.records:
            return result(
                Verdict.WARN,
                f"{domain} has no MX record; mail to it falls back to its address {fallback.records[0]}",
            )
        if fallback is not None and fallback.outcome.is_failure:
            return result(Verdict.UNKNOWN, f"{domain} has no MX and its address lookup failed")
        return result(
            Verdict.FAIL,
            f"{domain} has no MX record and no address: bounces and replies cannot reach it, and receivers "
            "may refuse mail from a domain that cannot receive any",
        )
    details["mx"] = ", ".join(f"{p} {h or '.'}" for p, h in records)
    if any(host == "" for _, host in records):
        return result(
            Verdict.FAIL,
            f"{domain} publishes a null MX (RFC 7505): it declares it receives no mail, so bounces are lost "
            "and receivers may refuse its mail",
        )
    resolved = [h for _, h in records if (a := addresses.get(h)) and a.outcome is DnsOutcome.ANSWER and a.records]
    failed = [h for _, h in records if (a := addresses.get(h)) is None or a.outcome.is_failure]
    dead = [h for _, h in records if h not in resolved and h not in failed]
    if not resolved:
        if failed:
            return result(Verdict.UNKNOWN, f"the MX hosts of {domain} could not be resolved: {', '.join(failed)}")
        return result(Verdict.FAIL, f"no MX host of {domain} has an address: {', '.join(dead)}")
    if dead:
        return result(Verdict.WARN, f"MX {', '.join(resolved)}; but {', '.join(dead)} has no address")
    return result(Verdict.PASS, f"MX {', '.join(resolved)}")
