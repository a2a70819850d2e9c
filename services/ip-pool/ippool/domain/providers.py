"""Mailbox provider groups, per-provider caps on an IP's daily quota, and which providers send complaints.

Public API:
    ProviderGroup                                   -- GMAIL, MICROSOFT, YAHOO, ORANGE, FREE, SFR, LAPOSTE, GMX,
                                                       ICLOUD, OTHER (allocation order)
    ProviderShares(gmail=0.40, microsoft=0.30, yahoo=0.20, orange=0.20, free=0.15, sfr=0.15, laposte=0.10,
                   gmx=0.10, icloud=0.10, other=1.00)
    DEFAULT_PROVIDER_SHARES
    ProviderShares.share(group) -> float
    provider_cap(daily_quota, shares, group, held=None) -> int  -- floor(share x quota), at most `held`
    FeedbackLoops(gmail=False, microsoft=True, yahoo=True, orange=True, free=False, sfr=True, laposte=True,
                  gmx=False, icloud=False, other=True)
    DEFAULT_FEEDBACK_LOOPS
    FeedbackLoops.covers(group) -> bool

The groups are the campaign gateway's (it classifies each recipient by domain, then by MX, and sends its figures
per group): the three big consumer providers, then the customer's French and European market. ip-pool takes the
groups as given and never classifies a recipient itself.

Why caps: a young IP must not put all of its small quota on one mailbox provider, which judges it on what it
sees. Each cap is a share of *that IP's* daily quota, so it grows with the warmup. Defaults, roughly each group's
weight in a French consumer list with headroom: Gmail 40 %, Microsoft 30 %, Yahoo/AOL 20 %, Orange 20 % (the
largest French ISP, strict with new IPs: two connections per IP, OFR_999 suspensions), Free and SFR 15 %, La
Poste, GMX/Web.de and iCloud 10 %; OTHER 100 %: "other" is many small receivers, none of which sees much of the
volume. The shares add up to more than 100 % on purpose: caps bound each provider, the daily quota bounds the
total. A provider that throttles the IP gets its cap *held* below its share (`held`, see `throttling`).

Feedback loops (the mailbox-provider reference's table): Microsoft (JMRP), Yahoo/AOL (CFL), Orange, SFR and La
Poste (Signal Spam, Validity) send a report per complaint; Gmail (Postmaster Tools only) and iCloud send none,
Free none known, GMX only to "trusted" senders. Only the covered groups' deliveries make the complaint rate, so a
Gmail-heavy list does not dilute it with deliveries that can never complain. OTHER is covered by default: it is
many receivers, some with feedback loops (Comcast, Validity's universal loop), and it also carries figures a
caller did not break down by provider, whose complaints must count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from libs.errors import Violations


class ProviderGroup(StrEnum):
    """Mailbox provider groups; the declaration order is the order allocation serves them (OTHER last, because
    OTHER may use any IP's room while the capped groups cannot)."""

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

    @property
    def field_name(self) -> str:
        """The group's field in the per-provider policies (`provider_shares.laposte`, `feedback_loops.gmail`)."""
        return self.value.lower()


_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class ProviderShares:
    """Per-provider cap, as a share (0..1] of the IP's daily quota; one per tenant."""

    gmail: float = 0.40
    microsoft: float = 0.30
    yahoo: float = 0.20
    orange: float = 0.20
    free: float = 0.15
    sfr: float = 0.15
    laposte: float = 0.10
    gmx: float = 0.10
    icloud: float = 0.10
    other: float = 1.00

    def __post_init__(self) -> None:
        problems = Violations()
        for group in ProviderGroup:
            value = getattr(self, group.field_name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                problems.add(group.field_name, "must be a share between 0 and 1 (0.4 means 40 % of the quota)")
        problems.raise_if_any()

    def share(self, group: ProviderGroup) -> float:
        return float(getattr(self, group.field_name))

    def basis_points(self, group: ProviderGroup) -> int:
        """The share in 1/10 000, so caps are computed in integers without float surprises (0.29 x 100)."""
        return round(self.share(group) * _BASIS_POINTS)


DEFAULT_PROVIDER_SHARES = ProviderShares()


def provider_cap(daily_quota: int, shares: ProviderShares, group: ProviderGroup, held: int | None = None) -> int:
    """Most messages an IP with `daily_quota` may send to `group` in a day: its share, or `held` when lower."""
    cap = daily_quota * shares.basis_points(group) // _BASIS_POINTS
    return cap if held is None else min(cap, held)


@dataclass(frozen=True)
class FeedbackLoops:
    """Which provider groups send a complaint report per message (the tenant is enrolled); one per tenant."""

    gmail: bool = False
    microsoft: bool = True
    yahoo: bool = True
    orange: bool = True
    free: bool = False
    sfr: bool = True
    laposte: bool = True
    gmx: bool = False
    icloud: bool = False
    other: bool = True

    def __post_init__(self) -> None:
        problems = Violations()
        for group in ProviderGroup:
            if not isinstance(getattr(self, group.field_name), bool):
                problems.add(group.field_name, "must be true or false")
        problems.raise_if_any()

    def covers(self, group: ProviderGroup) -> bool:
        return bool(getattr(self, group.field_name))

    @property
    def groups(self) -> tuple[ProviderGroup, ...]:
        return tuple(group for group in ProviderGroup if self.covers(group))


DEFAULT_FEEDBACK_LOOPS = FeedbackLoops()
