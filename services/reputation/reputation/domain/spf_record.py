"""SPF records read statically, and the verdict of one `check_host(ip, domain)` evaluation.

The evaluation itself (RFC 7208 §4, macros, limits) is pyspf's, run by the DNS adapter; this module
only explains its outcome to a person and adds what an evaluation for one IP cannot see: a record
that passes the whole Internet (+all), deprecated `ptr`, a worst case beyond 10 DNS lookups.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reputation.domain.checks import CheckKind, CheckResult, Verdict

MAX_DNS_LOOKUPS = 10  # RFC 7208 §4.6.4
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4

MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+\-~?]?)([a-z][a-z0-9_.\-]*)(?:[:/](.*))?$", re.IGNORECASE)

_PYSPF_PREFIX = re.compile(r"^SPF (Permanent|Temporary) Error: ")


class SpfRecordError(ValueError):
    """The published SPF is unusable (receivers return permerror)."""


@dataclass(frozen=True)
class SpfTerm:
    name: str  # lower case mechanism or modifier name
    value: str | None
    qualifier: str = "+"  # "" for modifiers
    is_modifier: bool = False

    @property
    def needs_lookup(self) -> bool:
        return self.name in LOOKUP_TERMS


@dataclass(frozen=True)
class SpfRecord:
    text: str
    terms: tuple[SpfTerm, ...]

    @property
    def all_qualifier(self) -> str | None:
        return next((t.qualifier for t in self.terms if t.name == "all" and not t.is_modifier), None)

    @property
    def redirect(self) -> str | None:
        return next((t.value for t in self.terms if t.is_modifier and t.name == "redirect"), None)

    @property
    def includes(self) -> tuple[str, ...]:
        return tuple(t.value or "" for t in self.terms if t.name == "include" and not t.is_modifier)

    @property
    def direct_lookups(self) -> int:
        """DNS-querying terms in this record alone (include/redirect targets not counted)."""
        return sum(1 for t in self.terms if t.needs_lookup)


def select_spf_record(texts: Sequence[str]) -> str | None:
    """The one `v=spf1` TXT record among a name's TXT records (RFC 7208 §4.5); none → None."""
    found = [t for t in texts if _VERSION.match(t)]
    if len(found) > 1:
        raise SpfRecordError(f"{len(found)} SPF records are published; there must be exactly one")
    return found[0] if found else None


def parse_spf_record(text: str) -> SpfRecord:
    """Terms of one record; a syntax error raises `SpfRecordError` naming the bad term."""
    if not _VERSION.match(text):
        raise SpfRecordError("the record does not start with v=spf1")
    terms: list[SpfTerm] = []
    seen_modifiers: set[str] = set()
    for token in text.split()[1:]:
        modifier = _MODIFIER.match(token)
        if modifier and ":" not in modifier.group(1):
            name = modifier.group(1).lower()
            if name in ("redirect", "exp") and name in seen_modifiers:
                raise SpfRecordError(f"the {name}= modifier appears twice")
            seen_modifiers.add(name)
            terms.append(SpfTerm(name, modifier.group(2), qualifier="", is_modifier=True))
            continue
        mechanism = _MECHANISM.match(token)
        if not mechanism or mechanism.group(2).lower() not in MECHANISMS:
            raise SpfRecordError(f"unknown or malformed term {token!r}")
        qualifier = mechanism.group(1) or "+"
        terms.append(SpfTerm(mechanism.group(2).lower(), mechanism.group(3), qualifier))
    return SpfRecord(text, tuple(terms))


def record_warnings(record: SpfRecord) -> list[str]:
    """What is wrong with a record even when it passes our IP."""
    problems: list[str] = []
    qualifier = record.all_qualifier
    if qualifier == "+":
        problems.append("the record ends with +all: it authorises every address on the Internet")
    elif qualifier == "?":
        problems.append("the record ends with ?all: unlisted senders are neutral, so spoofing is not discouraged")
    elif qualifier is None and record.redirect is None:
        problems.append("the record has no 'all' term: addresses it does not list get a neutral result")
    if any(t.name == "ptr" and not t.is_modifier for t in record.terms):
        problems.append("the record uses 'ptr', which RFC 7208 §5.5 says not to use (slow, unreliable)")
    return problems


@dataclass(frozen=True)
class SpfEvaluation:
    """Outcome of `check_host(ip, domain, sender)`: RFC 7208 result plus what pyspf counted."""

    result: str  # pass | fail | softfail | neutral | none | permerror | temperror
    explanation: str = ""
    record: str | None = None
    lookups: int = 0
    void_lookups: int = 0
    worst_case_lookups: int | None = None  # over every include/redirect path, when counted


def spf_verdict(ip: str, domain: str, evaluation: SpfEvaluation) -> CheckResult:
    """PASS only when the IP is authorised by a sound record; the reason says what a receiver sees."""
    details = {
        "result": evaluation.result,
        "record": evaluation.record or "",
        "dns_lookups": str(evaluation.lookups),
        "void_lookups": str(evaluation.void_lookups),
    }
    if evaluation.worst_case_lookups is not None:
        details["worst_case_dns_lookups"] = str(evaluation.worst_case_lookups)

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.SPF, ip, verdict, reason, details)

    res = evaluation.result
    why = _PYSPF_PREFIX.sub("", evaluation.explanation)
    if res == "temperror":
        return result(
            Verdict.UNKNOWN,
            f"could not evaluate SPF of {domain} for {ip}: DNS did not answer ({why})",
        )
    if res == "none":
        return result(
            Verdict.FAIL,
            f"{domain} publishes no SPF record (no TXT record starting with v=spf1), so no receiver can "
            f"verify that {ip} may send for it",
        )
    if res == "permerror":
        return result(
            Verdict.FAIL,
            f"the SPF record of {domain} is broken ({why}); receivers treat it as a "
            "permanent error, as if there were no SPF at all",
        )
    if res in ("fail", "softfail", "neutral"):
        effect = {
            "fail": "receivers are told to reject its mail",
            "softfail": "receivers are told to treat its mail as suspicious",
            "neutral": "receivers get no assertion either way",
        }[res]
        return result(Verdict.FAIL, f"the SPF record of {domain} does not authorise {ip} ({res}: {effect})")
    if res != "pass":
        return result(Verdict.UNKNOWN, f"unexpected SPF result {res!r} for {ip}")
    warnings: list[str] = []
    if evaluation.record:
        with contextlib.suppress(SpfRecordError):  # pyspf accepted it; the static parser only advises
            warnings.extend(record_warnings(parse_spf_record(evaluation.record)))
    if evaluation.worst_case_lookups is not None and evaluation.worst_case_lookups > MAX_DNS_LOOKUPS:
        warnings.append(
            f"evaluating the whole record takes {evaluation.worst_case_lookups} DNS lookups (limit "
            f"{MAX_DNS_LOOKUPS}): senders matched after the 10th get permerror"
        )
    used = f"{evaluation.lookups} of {MAX_DNS_LOOKUPS} DNS lookups"
    if warnings:
        return result(Verdict.WARN, f"{ip} is authorised by the SPF of {domain} ({used}), but " + "; ".join(warnings))
    return result(Verdict.PASS, f"{ip} is authorised by the SPF record of {domain} ({used})")
