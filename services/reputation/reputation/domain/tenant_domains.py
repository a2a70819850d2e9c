"""A tenant's sending and tracking domains: what they are, which checks they get, and how a verdict changes.

* Sending domains get SPF (one check per watched IP of the tenant), DKIM (one per selector), DMARC, MX and the
  domain blocklists; tracking domains (links, pixels) the domain blocklists only. PTR is a property of an IP
  and stays with the IP's own checks.
* A verdict changes only through `fold_verdict`: an UNKNOWN (DNS did not let us judge) never changes what is
  believed and is never news; the first verdict of a check is news unless it is PASS (a good domain stays
  quiet); after that, every change of verdict is news, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from libs.errors import InvalidArgument, Violations
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.validation import normalize_domain, parse_each, quoted, raise_if_any, validate_selector

SENDING = "sending"
TRACKING = "tracking"
MAX_SENDING_DOMAINS = 100
MAX_TRACKING_DOMAINS = 100
MAX_SELECTORS_PER_DOMAIN = 32

#: The checks the DomainChecker runs for a sending domain of a tenant (the blocklists come from the scanner).
AUTH_CHECKS = frozenset({CheckKind.SPF, CheckKind.DKIM, CheckKind.DMARC, CheckKind.MX})

#: (domain, check, subject): what one stored verdict is about.
CheckKey = tuple[str, str, str]


@dataclass(frozen=True)
class SendingDomain:
    domain: str
    dkim_selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class TenantDomainList:
    tenant_id: str
    sending: tuple[SendingDomain, ...] = ()
    tracking: tuple[str, ...] = ()
    updated_at: datetime | None = None
    # When the domains were last checked; None since they were set (checked at the next tick).
    checked_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not self.sending and not self.tracking

    @property
    def blocklist_targets(self) -> list[str]:
        """Every domain to look up on the domain blocklists, once each, sending domains first."""
        return list(dict.fromkeys([*(s.domain for s in self.sending), *self.tracking]))


def parse_domain_list(
    tenant_id: str, sending: Sequence[tuple[str, Sequence[str]]], tracking: Sequence[str]
) -> TenantDomainList:
    """The request validated whole: every bad entry named as the request spells it (`sending_domains[1].domain`,
    `sending_domains[0].dkim_selectors[2]`, `tracking_domains[3]`). A domain twice in one list is an error (which
    selectors would count?); a tracking domain that is also a sending domain is kept (its blocklists are checked
    once)."""
    problems = Violations()
    chosen: list[SendingDomain] = []
    if len(sending) > MAX_SENDING_DOMAINS:
        problems.add("sending_domains", f"at most {MAX_SENDING_DOMAINS} sending domains per tenant")
    for i, (domain, selectors) in enumerate(sending[:MAX_SENDING_DOMAINS]):
        where = f"sending_domains[{i}]"
        name = _attempt(problems, normalize_domain, domain, f"{where}.domain")
        if name and any(s.domain == name for s in chosen):
            problems.add(f"{where}.domain", f"{quoted(name)} is listed twice")
            name = ""
        picked = parse_each(
            selectors, validate_selector, f"{where}.dkim_selectors", problems, max_items=MAX_SELECTORS_PER_DOMAIN
        )
        if name:
            chosen.append(SendingDomain(name, tuple(picked)))
    tracked: list[str] = []
    if len(tracking) > MAX_TRACKING_DOMAINS:
        problems.add("tracking_domains", f"at most {MAX_TRACKING_DOMAINS} tracking domains per tenant")
    for i, value in enumerate(tracking[:MAX_TRACKING_DOMAINS]):
        name = _attempt(problems, normalize_domain, value, f"tracking_domains[{i}]")
        if name in tracked:
            problems.add(f"tracking_domains[{i}]", f"{quoted(name)} is listed twice")
        elif name:
            tracked.append(name)
    raise_if_any(problems)
    return TenantDomainList(tenant_id, tuple(chosen), tuple(tracked))


def _attempt(problems: Violations, check: Callable[[str, str], str], value: str, where: str) -> str:
    try:
        return check(value, where)
    except InvalidArgument as exc:
        problems.items.extend(exc.violations)
        return ""


def planned_checks(domains: TenantDomainList, ips: Sequence[str]) -> dict[CheckKey, str]:
    """Every check the tenant's domains get, in the order they are shown, with the domain's role.

    The order is the DomainChecker's (SPF per IP, DKIM per selector, DMARC, MX) followed by the blocklists.
    """
    plan: dict[CheckKey, str] = {}
    for sending in domains.sending:
        name = sending.domain
        for ip in ips:
            plan[(name, CheckKind.SPF.value, ip)] = SENDING
        for selector in sending.dkim_selectors:
            plan[(name, CheckKind.DKIM.value, selector)] = SENDING
        plan[(name, CheckKind.DMARC.value, name)] = SENDING
        plan[(name, CheckKind.MX.value, name)] = SENDING
        plan[(name, CheckKind.BLOCKLIST.value, name)] = SENDING
    for name in domains.tracking:
        plan.setdefault((name, CheckKind.BLOCKLIST.value, name), TRACKING)
    return plan


@dataclass(frozen=True)
class VerdictStep:
    """What one observed verdict does to the believed one."""

    believed: Verdict | None  # after the step; None = nothing known yet
    changed: bool  # the believed verdict is not what it was
    publish: bool  # news: one DomainCheckChanged


def fold_verdict(believed: Verdict | None, observed: Verdict) -> VerdictStep:
    """`believed` is None (or UNKNOWN) while no check could judge yet."""
    known = believed if believed is not Verdict.UNKNOWN else None
    if observed is Verdict.UNKNOWN:
        return VerdictStep(known, False, False)
    if known is None:
        return VerdictStep(observed, True, observed is not Verdict.PASS)
    return VerdictStep(observed, observed is not known, observed is not known)


@dataclass(frozen=True)
class CheckState:
    """What the service believes about one check of a tenant's domains, kept between runs."""

    key: CheckKey
    role: str  # SENDING or TRACKING
    verdict: Verdict  # UNKNOWN while no check could judge yet
    result: CheckResult  # the check that gave the believed verdict (the last one, while unknown)
    verdict_at: datetime | None = None  # when the believed verdict was last confirmed
    changed_at: datetime | None = None  # when it last changed
    unknown_reason: str = ""  # the latest check, when it could not judge: why, and when
    unknown_at: datetime | None = None

    @property
    def believed(self) -> Verdict | None:
        return None if self.verdict is Verdict.UNKNOWN else self.verdict


def fold_check(
    state: CheckState | None, *, key: CheckKey, role: str, result: CheckResult, observed_at: datetime
) -> tuple[CheckState, VerdictStep] | None:
    """One result folded into the stored belief (`fold_verdict`); None when a later run's verdict is stored
    already. An UNKNOWN only notes why; it keeps the verdict, its time and its result."""
    if state is not None and state.verdict_at is not None and state.verdict_at > observed_at:
        return None
    believed = state.believed if state is not None else None
    step = fold_verdict(believed, result.verdict)
    if result.verdict is Verdict.UNKNOWN:
        if state is not None and believed is not None:
            return replace(state, unknown_reason=result.reason, unknown_at=observed_at), step
        base = state or CheckState(key, role, Verdict.UNKNOWN, result)
        pending = replace(base, role=role, verdict=Verdict.UNKNOWN, result=result)
        return replace(pending, unknown_reason=result.reason, unknown_at=observed_at), step
    changed_at = observed_at if step.changed else (state.changed_at if state is not None else None)
    return CheckState(key, role, result.verdict, result, observed_at, changed_at), step
