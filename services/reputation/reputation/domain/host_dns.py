"""Reverse DNS of sending IPs (PTR, forward-confirmed, against the HELO name) and the domain's MX.

FCrDNS: some PTR name of the IP must resolve back to the IP; without it most mailbox providers
reject or junk mail, so a missing or unconfirmed PTR FAILs. A HELO name that differs from every
confirmed PTR name only WARNs: receivers score it, few reject on it alone.

A confirmed PTR can still hurt. A generic name (`generic_ptr_signs`: the IP's digits in it, a dynamic or
residential word, a hosting provider's default) is what receivers take for an end-user or unmanaged host: GMX,
Web.de and T-Online refuse it, Yahoo wants a "meaningful, non-generic" PTR, Microsoft answers DY-001, Spamhaus
puts such ranges in the PBL. A name outside both the sending domain and the HELO name's domain does not
"reflect your domain" (Yahoo, iCloud). Each takes the tenant's `CheckPolicy` verdict (WARN by default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address

from reputation.domain.check_policy import DEFAULT_CHECK_POLICY, CheckPolicy
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.organizational import organizational_domain, within


def _name(text: str) -> str:
    return text.rstrip(".").lower()


#: Words of a label that name end-user or dynamic address space (SpamAssassin RDNS_DYNAMIC, the CBL's advice).
DYNAMIC_WORDS = frozenset(
    {
        "dynamic",
        "dyn",
        "dhcp",
        "dialup",
        "dial",
        "ppp",
        "pppoe",
        "adsl",
        "vdsl",
        "xdsl",
        "dsl",
        "cable",
        "pool",
        "broadband",
        "cpe",
        "residential",
    }
)
#: Default reverse DNS of hosting providers and consumer ISPs (a name nobody chose for a mail server).
HOSTING_DEFAULTS: Mapping[str, str] = {
    "compute.amazonaws.com": "Amazon EC2",
    "compute-1.amazonaws.com": "Amazon EC2",
    "bc.googleusercontent.com": "Google Cloud",
    "your-server.de": "Hetzner",
    "ovh.net": "OVH",
    "kimsufi.com": "OVH Kimsufi",
    "poneytelecom.eu": "Scaleway",
    "contaboserver.net": "Contabo",
    "vultrusercontent.com": "Vultr",
    "linodeusercontent.com": "Linode",
    "members.linode.com": "Linode",
    "secureserver.net": "GoDaddy",
    "abo.wanadoo.fr": "Orange consumer access",
    "proxad.net": "Free consumer access",
    "rev.sfr.net": "SFR consumer access",
    "abo.bbox.fr": "Bouygues consumer access",
}
_TOKENS = re.compile(r"[a-z]+|[0-9]+")


def generic_ptr_signs(name: str, ip: str) -> list[str]:
    """Why a reverse DNS name looks generic, in words (empty: it looks like a host someone named)."""
    host = name.rstrip(".").lower()
    signs: list[str] = []
    address = ip_address(ip)
    if host.endswith((".in-addr.arpa", ".ip6.arpa")):
        return ["it is the reverse-lookup name itself"]
    numbers = [int(t) for t in _TOKENS.findall(host) if t.isdigit() and len(t) <= 3]
    if isinstance(address, IPv4Address):
        octets = [int(o) for o in str(address).split(".")]
        if _holds_run(numbers, octets) or _holds_run(numbers, octets[::-1]):
            signs.append(f"it carries the digits of {address}")
        elif f"{int(address):08x}" in host.replace("-", "").replace(".", ""):
            signs.append(f"it carries {address} in hexadecimal")
    elif isinstance(address, IPv6Address):
        groups = address.exploded.split(":")
        if "".join(groups[-2:]).lstrip("0") and "".join(groups[-2:]) in re.sub(r"[^0-9a-f]", "", host):
            signs.append(f"it carries the last groups of {address}")
    words = sorted({t for t in _TOKENS.findall(host) if t in DYNAMIC_WORDS})
    if words:
        signs.append(f"it says {', '.join(words)} (words of end-user or dynamic address space)")
    provider = next((label for suffix, label in HOSTING_DEFAULTS.items() if within(host, suffix)), None)
    if provider:
        signs.append(f"it matches the default naming of {provider}")
    return signs


def _holds_run(numbers: list[int], run: list[int]) -> bool:
    return any(numbers[i : i + len(run)] == run for i in range(len(numbers) - len(run) + 1))


def fcrdns_verdict(
    ip: str,
    helo: str | None,
    ptr: DnsAnswer,
    forward: Mapping[str, DnsAnswer],
    *,
    domain: str | None = None,
    policy: CheckPolicy = DEFAULT_CHECK_POLICY,
) -> CheckResult:
    """`ptr`: the PTR answer for the IP; `forward`: address answers (A for IPv4, AAAA for IPv6) per PTR name;
    `domain`: the sending domain the IP sends for (the PTR is judged against it and the HELO name)."""
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
    chosen = _name(helo) if helo is not None and _name(helo) in confirmed else confirmed[0]
    problems: list[tuple[Verdict, str]] = []
    if helo is not None and _name(helo) not in confirmed:
        problems.append(
            (
                Verdict.WARN,
                f"it says HELO {helo}: receivers expect the HELO name to match the reverse DNS",
            )
        )
    signs = generic_ptr_signs(chosen, ip)
    if signs:
        details["generic"] = "; ".join(signs)
        problems.append(
            (
                policy.generic_ptr,
                f"{chosen} looks generic ({'; '.join(signs)}): GMX, Web.de and T-Online refuse generic reverse DNS "
                "and Yahoo and Microsoft score it down; name the IP after the sending domain (e.g. mail.<domain>) "
                "and say that name in HELO",
            )
        )
    owners = [d for d in (domain, helo) if d]
    if owners and not any(within(chosen, organizational_domain(d)) for d in owners):
        details["foreign"] = "true"
        mine = " or ".join(dict.fromkeys(organizational_domain(d) for d in owners))
        problems.append(
            (
                policy.foreign_ptr,
                f"{chosen} is outside {mine}: Yahoo and iCloud expect the reverse DNS of a sending IP to reflect "
                "the sending domain",
            )
        )
    raised = [(verdict, text) for verdict, text in problems if verdict is not Verdict.PASS]
    if raised:
        verdict = max((v for v, _ in raised), key=lambda v: v.rank)
        texts = "; ".join(text for _, text in raised)
        return result(verdict, f"{ip} has forward-confirmed reverse DNS {chosen}, but {texts}")
    if helo is None:
        return result(Verdict.PASS, f"{ip} has forward-confirmed reverse DNS {chosen}")
    return result(Verdict.PASS, f"{ip} has forward-confirmed reverse DNS {chosen}, matching its HELO name")


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
