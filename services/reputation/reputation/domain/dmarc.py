"""DMARC policy records (RFC 7489 §6.3), found by walking up the domain tree.

Without the Public Suffix List we use the DMARCbis tree walk: `_dmarc.<domain>`, then each parent
that still has two labels. A record found on a parent applies its `sp=` (or `p=`) to the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.tag_list import TagListError, parse_tag_list

POLICIES = ("none", "quarantine", "reject")
MAX_WALK = 8


class DmarcRecordError(ValueError):
    """The record is invalid: receivers behave as if there were none."""


@dataclass(frozen=True)
class DmarcRecord:
    tags: dict[str, str]
    policy: str | None  # None: p= missing
    subdomain_policy: str | None
    pct: int
    rua: tuple[str, ...]
    ruf: tuple[str, ...]


def dmarc_lookup_names(domain: str) -> list[str]:
    """`_dmarc.` names to ask, the domain itself first, then its parents (two labels at least)."""
    labels = domain.split(".")
    return [f"_dmarc.{'.'.join(labels[i:])}" for i in range(min(len(labels) - 1, MAX_WALK))]


def is_dmarc_record(text: str) -> bool:
    return text.replace(" ", "").lower().startswith("v=dmarc1")


def parse_dmarc_record(text: str) -> DmarcRecord:
    try:
        tags = parse_tag_list(text, duplicates="keep_first")
    except TagListError as exc:
        raise DmarcRecordError(str(exc)) from None
    if next(iter(tags), None) != "v" or tags["v"] != "DMARC1":
        raise DmarcRecordError("the record must start with v=DMARC1")
    policy = tags.get("p", "").lower() or None
    if policy is not None and policy not in POLICIES:
        raise DmarcRecordError(f"p={tags['p']} is not none, quarantine or reject")
    sub = tags.get("sp", "").lower() or None
    if sub is not None and sub not in POLICIES:
        raise DmarcRecordError(f"sp={tags['sp']} is not none, quarantine or reject")
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        raise DmarcRecordError(f"pct={tags['pct']} is not a number") from None
    if not 0 <= pct <= 100:
        raise DmarcRecordError(f"pct={pct} is outside 0..100")

    def uris(tag: str) -> tuple[str, ...]:
        return tuple(u.strip() for u in tags.get(tag, "").split(",") if u.strip())

    return DmarcRecord(tags, policy, sub, pct, uris("rua"), uris("ruf"))


def dmarc_verdict(domain: str, answers: Sequence[tuple[str, DnsAnswer]]) -> CheckResult:
    """Verdict from the TXT answers at the `dmarc_lookup_names` in order (the walk stops at a record)."""
    details: dict[str, str] = {}

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.DMARC, domain, verdict, reason, details)

    for name, answer in answers:
        if answer.outcome.is_failure:
            return result(Verdict.UNKNOWN, f"could not read {name}: {answer.describe()}")
        if answer.outcome is not DnsOutcome.ANSWER:
            continue
        found = [t for t in answer.records if is_dmarc_record(t)]
        if not found:
            continue
        details["name"] = name
        if len(found) > 1:
            return result(Verdict.FAIL, f"{len(found)} DMARC records at {name}: receivers ignore them all")
        details["record"] = found[0]
        return _judge(domain, name, found[0], result)
    return result(
        Verdict.FAIL,
        f"no DMARC record at _dmarc.{domain} (or a parent domain): receivers apply no policy and large "
        "mailbox providers expect one from bulk senders",
    )


def _judge(domain: str, name: str, text: str, result: Callable[[Verdict, str], CheckResult]) -> CheckResult:
    try:
        record = parse_dmarc_record(text)
    except DmarcRecordError as exc:
        return result(Verdict.FAIL, f"the DMARC record at {name} is invalid ({exc}): receivers ignore it")
    inherited = name != f"_dmarc.{domain}"
    policy = (record.subdomain_policy or record.policy) if inherited else record.policy
    where = f" (inherited from {name[len('_dmarc.') :]})" if inherited else ""
    warnings: list[str] = []
    bad_uris = [u for u in record.rua + record.ruf if not u.lower().startswith("mailto:")]
    if policy is None:
        if not record.rua or bad_uris:
            return result(Verdict.FAIL, f"the DMARC record at {name} has no policy (p=) and no valid rua")
        warnings.append("there is no p= tag, so receivers apply p=none")
        policy = "none"
    if policy == "none":
        warnings.append("mail failing DMARC is still delivered (p=none): spoofing is only reported")
    if record.pct < 100:
        warnings.append(f"pct={record.pct}: the policy applies to only {record.pct}% of failing mail")
    if not record.rua:
        warnings.append("there is no aggregate report address (rua=): you will not see who sends as the domain")
    if bad_uris:
        warnings.append(f"report addresses must be mailto: URIs, not {', '.join(bad_uris)}")
    reports = f", reports to {', '.join(record.rua)}" if record.rua else ""
    if warnings:
        return result(Verdict.WARN, f"DMARC policy {policy}{where}{reports}; but " + "; ".join(warnings))
    return result(Verdict.PASS, f"DMARC policy {policy}{where}{reports}")
