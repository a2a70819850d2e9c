"""Mailbox provider groups, recipient classification, and per-provider caps on an IP's daily quota.

Public API:
    ProviderGroup                                   -- GMAIL, MICROSOFT, YAHOO, OTHER (allocation order)
    classify_recipient_domain(domain_or_address) -> ProviderGroup
    ProviderShares(gmail=0.40, microsoft=0.30, yahoo=0.20, other=1.00)
    DEFAULT_PROVIDER_SHARES
    ProviderShares.share(group) -> float
    provider_cap(daily_quota, shares, group) -> int -- floor(share x quota), exact integer arithmetic

Why caps: a young IP must not put all of its small quota on one mailbox provider, which judges it on what it
sees. Each cap is a share of *that IP's* daily quota, so it grows with the warmup. Defaults: Gmail 40 %,
Microsoft 30 %, Yahoo/AOL 20 % -- roughly each group's weight in a European consumer list, with headroom --
and OTHER 100 %: "other" is many small receivers, none of which sees much of the volume. The shares add up to
more than 100 % on purpose: caps bound each provider, the daily quota bounds the total.

Classification is by recipient domain only; a custom domain hosted at Google or Microsoft is OTHER (finding
it would need an MX lookup, which is I/O and belongs elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from libs.errors import Violations


class ProviderGroup(StrEnum):
    """Mailbox provider groups; the declaration order is the order allocation serves them."""

    GMAIL = "GMAIL"
    MICROSOFT = "MICROSOFT"
    YAHOO = "YAHOO"
    OTHER = "OTHER"


_EXACT_DOMAINS: dict[str, ProviderGroup] = {
    "gmail.com": ProviderGroup.GMAIL,
    "googlemail.com": ProviderGroup.GMAIL,
    "msn.com": ProviderGroup.MICROSOFT,
    "windowslive.com": ProviderGroup.MICROSOFT,
    "passport.com": ProviderGroup.MICROSOFT,
    "ymail.com": ProviderGroup.YAHOO,
    "rocketmail.com": ProviderGroup.YAHOO,
    "aim.com": ProviderGroup.YAHOO,
    "verizon.net": ProviderGroup.YAHOO,
}

# Brands run under many country domains (hotmail.fr, live.co.uk, yahoo.de, aol.com, ...).
_BRAND_LABELS: dict[str, ProviderGroup] = {
    "outlook": ProviderGroup.MICROSOFT,
    "hotmail": ProviderGroup.MICROSOFT,
    "live": ProviderGroup.MICROSOFT,
    "yahoo": ProviderGroup.YAHOO,
    "aol": ProviderGroup.YAHOO,
}


def classify_recipient_domain(domain_or_address: str) -> ProviderGroup:
    """Provider group of a recipient domain (or of a full address: the part after the last '@')."""
    domain = domain_or_address.rsplit("@", 1)[-1].strip().rstrip(".").lower()
    exact = _EXACT_DOMAINS.get(domain)
    if exact is not None:
        return exact
    labels = domain.split(".")
    # brand.tld or brand.co.tld -- never sub.brand.tld, which is somebody else's host.
    if 2 <= len(labels) <= 3 and labels[0] in _BRAND_LABELS and all(len(label) <= 3 for label in labels[1:]):
        return _BRAND_LABELS[labels[0]]
    return ProviderGroup.OTHER


_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class ProviderShares:
    """Per-provider cap, as a share (0..1] of the IP's daily quota; one per tenant."""

    gmail: float = 0.40
    microsoft: float = 0.30
    yahoo: float = 0.20
    other: float = 1.00

    def __post_init__(self) -> None:
        problems = Violations()
        for group in ProviderGroup:
            value = getattr(self, group.value.lower())
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                problems.add(group.value.lower(), "must be a share between 0 and 1 (0.4 means 40 % of the quota)")
        problems.raise_if_any()

    def share(self, group: ProviderGroup) -> float:
        return float(getattr(self, group.value.lower()))

    def basis_points(self, group: ProviderGroup) -> int:
        """The share in 1/10 000, so caps are computed in integers without float surprises (0.29 x 100)."""
        return round(self.share(group) * _BASIS_POINTS)


DEFAULT_PROVIDER_SHARES = ProviderShares()


def provider_cap(daily_quota: int, shares: ProviderShares, group: ProviderGroup) -> int:
    """Most messages an IP with `daily_quota` may send to `group` in a day."""
    return daily_quota * shares.basis_points(group) // _BASIS_POINTS
