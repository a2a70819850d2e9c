"""THE place where a recipient domain's DNS answer decides whether its contacts are sent to, and where a
campaign's volume is broken down by the provider groups ip-pool caps.

Public API:
    MailHost                 -- MX, ADDRESS_ONLY, NULL_MX, NONE, UNKNOWN (what DNS said about a domain)
    RecipientDomain(domain, mail_host, mx_hosts=(), detail="")
    receives_mail(*, domain) -> bool
    drop_unreachable(*, check, domains) -> ContactCheck
    allocation_group(*, domain, mx_hosts) -> str          -- GMAIL, MICROSOFT, YAHOO or OTHER
    volume_by_provider(*, contacts, domains) -> {group: count}

The rules:

 1. A domain with an MX record receives mail (MX). Without one, its A or AAAA record is its implicit MX
    (RFC 5321 section 5.1): it receives mail too (ADDRESS_ONLY).
 2. A "null MX" (`MX 0 .`, RFC 7505) says the domain accepts no mail: NULL_MX. A domain that does not exist, or
    has neither MX nor A nor AAAA, has nobody to receive: NONE. Both make their contacts NO_MAIL_HOST problems.
 3. DNS trouble (timeout, SERVFAIL, no resolver) is UNKNOWN and never drops a contact: the platform's resolver
    having a bad minute is no reason to leave people out of a campaign.
 4. Allocation groups are ip-pool's four (GMAIL, MICROSOFT, YAHOO, OTHER): a recipient's group comes from
    `domain/providers.classify` (the domain, then its MX hosts), and every finer group (Orange, Free, GMX...)
    counts as OTHER there (`providers.ip_pool_group`, as the delivery totals sent to ip-pool do).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from campaign_gateway.domain.contacts import Contact, ContactCheck, ContactProblem, ProblemKind
from campaign_gateway.domain.providers import classify, ip_pool_group, recipient_domain


class MailHost(StrEnum):
    MX = "MX"
    ADDRESS_ONLY = "ADDRESS_ONLY"
    NULL_MX = "NULL_MX"
    NONE = "NONE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class RecipientDomain:
    domain: str
    mail_host: MailHost
    mx_hosts: tuple[str, ...] = ()
    detail: str = ""


def receives_mail(*, domain: RecipientDomain) -> bool:
    """Rules 1-3."""
    return domain.mail_host not in (MailHost.NULL_MX, MailHost.NONE)


def _why_not(domain: RecipientDomain) -> str:
    if domain.mail_host is MailHost.NULL_MX:
        return f"{domain.domain} publishes a null MX: it accepts no mail"
    return domain.detail or f"{domain.domain} has no MX and no A or AAAA record"


def drop_unreachable(*, check: ContactCheck, domains: Mapping[str, RecipientDomain]) -> ContactCheck:
    """Rule 2: contacts whose domain nobody receives for become NO_MAIL_HOST problems (unknown domains stay)."""
    verdicts = [domains.get(recipient_domain(c.email)) for c in check.accepted]
    keep = [v is None or receives_mail(domain=v) for v in verdicts]
    dropped = [
        ContactProblem(position, contact.email, ProblemKind.NO_MAIL_HOST, _why_not(verdict))
        for contact, position, verdict, kept in zip(check.accepted, check.positions, verdicts, keep, strict=True)
        if not kept and verdict is not None
    ]
    return check.keep(keep, dropped)


def allocation_group(*, domain: str, mx_hosts: Sequence[str]) -> str:
    """Rule 4."""
    return ip_pool_group(classify(domain, mx_hosts))


def volume_by_provider(*, contacts: Sequence[Contact], domains: Mapping[str, RecipientDomain]) -> dict[str, int]:
    """Rule 4, per contact: {group: contacts}, groups without contacts left out."""
    per_domain = Counter(recipient_domain(c.email) for c in contacts)
    volumes: Counter[str] = Counter()
    for name, count in per_domain.items():
        found = domains.get(name)
        volumes[allocation_group(domain=name, mx_hosts=found.mx_hosts if found else ())] += count
    return dict(volumes)
