"""THE place where a recipient domain becomes a mailbox provider group.

Public API:
    ProviderGroup                                  -- GMAIL, MICROSOFT, YAHOO, ORANGE, FREE, SFR, LAPOSTE, GMX,
                                                      ICLOUD, OTHER
    ProviderSpec                                   -- one row of PROVIDERS (domains, brand labels, MX suffixes)
    PROVIDERS                                      -- the table, one row per group except OTHER
    spec_of(group) -> ProviderSpec | None
    recipient_domain(address_or_domain) -> str     -- lower-case, no trailing dot, part after the last '@'
    classify_domain(address_or_domain) -> ProviderGroup           -- by the domain name alone
    classify_mx(mx_hosts) -> ProviderGroup | None                 -- by MX host names, in the order given
    classify(address_or_domain, mx_hosts=()) -> ProviderGroup     -- domain first, then MX, else OTHER
    is_defunct_domain(address_or_domain) -> bool   -- a mailbox provider that no longer exists (voila.fr)
    IP_POOL_GROUPS                                 -- the groups ip-pool caps and judges apart: GMAIL, MICROSOFT, YAHOO
    ip_pool_group(group) -> str                    -- the ip-pool service's coarser group: GMAIL, MICROSOFT, YAHOO,
                                                      OTHER (its allocation, warmup caps and delivery stats know only
                                                      those)

The groups follow the mailbox-provider reference: the three big consumer providers, then the customer's French and
European market. Two ways to recognise a group:

* by the recipient domain: an exact consumer domain (`gmail.com`, `wanadoo.fr`, `me.com`...) or a brand that runs
  under many country domains (`hotmail.fr`, `live.co.uk`, `yahoo.de`, `aol.com`, `gmx.at`): the brand label
  followed by one or two short labels, never `sub.brand.tld` (somebody else's host);
* by the MX hosts, for company domains hosted at a provider: Google Workspace (`aspmx.l.google.com`), Microsoft 365
  (`contoso-com.mail.protection.outlook.com`), Yahoo Small Business... Matching is a suffix match on whole labels,
  the way Google counts quotas "based on the MX record domain" and KumoMTA rolls up by `MXSuffix`. Looking the MX
  up is I/O and belongs to an adapter; these functions take the answer.

Microsoft's consumer edge (`*.olc.protection.outlook.com`) and Microsoft 365 (`*.mail.protection.outlook.com`,
`*.mx.microsoft`) are one group here: the same company judges both, and the backoff replies are the same.

Not grouped (OTHER): Bouygues (bbox.fr), T-Online, Yandex, Mail.ru and every other receiver. `voila.fr` closed on
12 July 2016: it is OTHER and `is_defunct_domain` says so, so callers can suppress it.

`ProviderSpec.queue_domains` lists the domains that get their own `<domain>` block in PowerMTA's configuration:
the exact consumer domains plus the country variants the customer's lists actually carry. PowerMTA rates apply per
queue (domain/VMTA), so a brand's other country domains share the VMTA's overall rate instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ProviderGroup(StrEnum):
    GMAIL = "GMAIL"
    MICROSOFT = "MICROSOFT"
    YAHOO = "YAHOO"
    ORANGE = "ORANGE"
    FREE = "FREE"
    SFR = "SFR"
    LAPOSTE = "LAPOSTE"
    GMX = "GMX"
    """United Internet: GMX, WEB.DE and mail.com share one infrastructure."""
    ICLOUD = "ICLOUD"
    OTHER = "OTHER"


@dataclass(frozen=True)
class ProviderSpec:
    group: ProviderGroup
    domains: frozenset[str]
    """Exact consumer domains."""
    brand_labels: frozenset[str]
    """First labels of brands that exist under many country domains (hotmail.fr, yahoo.co.uk)."""
    mx_suffixes: tuple[str, ...]
    """MX host suffixes, matched on whole labels."""
    queue_domains: tuple[str, ...]
    """Domains that get a `<domain>` block of their own in a PowerMTA configuration (sorted)."""


def _spec(
    group: ProviderGroup,
    *,
    domains: Iterable[str],
    brands: Iterable[str] = (),
    mx: Iterable[str],
    extra_queue_domains: Iterable[str] = (),
) -> ProviderSpec:
    exact = frozenset(domains)
    return ProviderSpec(
        group=group,
        domains=exact,
        brand_labels=frozenset(brands),
        mx_suffixes=tuple(mx),
        queue_domains=tuple(sorted(exact | set(extra_queue_domains))),
    )


# The table. Sources: the mailbox-providers reference, section 1 (KumoMTA shaping rules, sisimai, providers' pages).
PROVIDERS: tuple[ProviderSpec, ...] = (
    _spec(
        ProviderGroup.GMAIL,
        domains=("gmail.com", "googlemail.com"),
        mx=("google.com", "googlemail.com"),  # gmail-smtp-in.l., aspmx.l., altN.aspmx.l., smtp.google.com
    ),
    _spec(
        ProviderGroup.MICROSOFT,
        domains=("msn.com", "outlook.com", "hotmail.com", "live.com"),
        brands=("outlook", "hotmail", "live"),
        mx=("olc.protection.outlook.com", "mail.protection.outlook.com", "mx.microsoft"),
        extra_queue_domains=("hotmail.fr", "live.fr", "outlook.fr"),
    ),
    _spec(
        ProviderGroup.YAHOO,
        # aim.com is listed in the reference but unverified; AOL domains are served by Yahoo's MX.
        domains=("ymail.com", "rocketmail.com", "aim.com", "yahoo.com", "aol.com"),
        brands=("yahoo", "aol"),
        mx=("yahoodns.net",),
        extra_queue_domains=("yahoo.fr", "aol.fr"),
    ),
    _spec(ProviderGroup.ORANGE, domains=("orange.fr", "wanadoo.fr"), mx=("orange.fr",)),
    _spec(ProviderGroup.FREE, domains=("free.fr", "aliceadsl.fr"), mx=("free.fr",)),
    _spec(
        ProviderGroup.SFR,
        domains=("sfr.fr", "neuf.fr", "club-internet.fr", "cegetel.net", "9online.fr", "noos.fr", "numericable.fr"),
        mx=("sfr.fr",),
    ),
    _spec(ProviderGroup.LAPOSTE, domains=("laposte.net",), mx=("laposte.net",)),
    _spec(
        ProviderGroup.GMX,
        domains=("gmx.de", "gmx.net", "gmx.fr", "gmx.at", "gmx.com", "gmx.ch", "web.de", "mail.com"),
        brands=("gmx",),
        mx=("gmx.net", "web.de"),
    ),
    _spec(ProviderGroup.ICLOUD, domains=("icloud.com", "me.com", "mac.com"), mx=("mail.icloud.com",)),
)

DEFUNCT_DOMAINS = frozenset({"voila.fr"})

_BY_GROUP = {spec.group: spec for spec in PROVIDERS}
_EXACT = {domain: spec.group for spec in PROVIDERS for domain in spec.domains}
_BRANDS = {label: spec.group for spec in PROVIDERS for label in spec.brand_labels}
# Longest suffix first, so "mail.protection.outlook.com" is tried before any shorter suffix that might overlap.
_MX_SUFFIXES = sorted(
    ((suffix, spec.group) for spec in PROVIDERS for suffix in spec.mx_suffixes), key=lambda item: -len(item[0])
)
_MAX_COUNTRY_LABEL = 3  # "fr", "com", "co" -- never a real host label like "mail"


def spec_of(group: ProviderGroup) -> ProviderSpec | None:
    """The table row of a group; None for OTHER."""
    return _BY_GROUP.get(group)


def recipient_domain(address_or_domain: str) -> str:
    """The domain of an address (after the last '@'), lower-cased, without surrounding spaces or a trailing dot."""
    return address_or_domain.rsplit("@", 1)[-1].strip().strip("<>").rstrip(".").lower()


def classify_domain(address_or_domain: str) -> ProviderGroup:
    """Provider group of a recipient domain (or address) by its name alone; OTHER when the name says nothing."""
    domain = recipient_domain(address_or_domain)
    exact = _EXACT.get(domain)
    if exact is not None:
        return exact
    labels = domain.split(".")
    if (
        2 <= len(labels) <= 3
        and labels[0] in _BRANDS
        and all(0 < len(label) <= _MAX_COUNTRY_LABEL for label in labels[1:])
    ):
        return _BRANDS[labels[0]]
    return ProviderGroup.OTHER


def _mx_group(host: str) -> ProviderGroup | None:
    name = host.strip().rstrip(".").lower()
    for suffix, group in _MX_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            return group
    return None


def classify_mx(mx_hosts: Iterable[str]) -> ProviderGroup | None:
    """Group of the first MX host (in the order given: pass them by preference) that a provider runs; else None."""
    for host in mx_hosts:
        group = _mx_group(host)
        if group is not None:
            return group
    return None


def classify(address_or_domain: str, mx_hosts: Iterable[str] = ()) -> ProviderGroup:
    """The domain's own name first (consumer domains), then its MX hosts (hosted company domains), else OTHER."""
    by_name = classify_domain(address_or_domain)
    if by_name is not ProviderGroup.OTHER:
        return by_name
    return classify_mx(mx_hosts) or ProviderGroup.OTHER


def is_defunct_domain(address_or_domain: str) -> bool:
    """True for a provider that closed (mail to it can only bounce): suppress such recipients."""
    return recipient_domain(address_or_domain) in DEFUNCT_DOMAINS


# The ip-pool service caps and judges GMAIL, MICROSOFT and YAHOO apart and everything else as OTHER: this service's
# finer groups (kept in its own tables) are summed into those when delivery totals are sent there.
IP_POOL_GROUPS = frozenset({ProviderGroup.GMAIL, ProviderGroup.MICROSOFT, ProviderGroup.YAHOO})


def ip_pool_group(group: ProviderGroup | str) -> str:
    """The ip-pool provider group a fine group counts in."""
    value = ProviderGroup(group)
    return value.value if value in IP_POOL_GROUPS else ProviderGroup.OTHER.value
