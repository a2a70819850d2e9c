"""THE place where a campaign's purpose and pool decide which of the tenant's IPs may carry its volume.

Public API:
    CampaignPurpose        -- MARKETING, TRANSACTIONAL, COLD
    PurposePolicy(transactional_on_marketing_ips=True, cold_pool="")    -- one per tenant
    DEFAULT_PURPOSE_POLICY
    parse_campaign_purpose(value) -> CampaignPurpose      -- "" / None is MARKETING
    placement(*, ip_purpose, ip_pool, purpose, pool, policy) -> int | str
        -- the IP's tier (0: first, 1: overflow) or why it gets none of this volume

The rules:
- A transactional IP carries transactional volume only. Receipts and password resets must arrive; a marketing
  or cold campaign that draws complaints on those IPs would delay them. This is why transactional IPs exist.
- Marketing volume goes to marketing IPs. Cold volume (people who never subscribed) too, and only to the
  tenant's cold pool when it has one (`cold_pool`): the IPs of that pool carry cold volume and nothing else, so
  their complaints never touch the reputation of the IPs that mail subscribers.
- Transactional volume goes to transactional IPs first (tier 0); what does not fit overflows to marketing IPs
  (tier 1) unless the tenant says no (`transactional_on_marketing_ips`): a late receipt is worse than a receipt
  sent from a marketing IP.
- A named pool narrows to that pool's IPs; the rules above still hold inside it. No pool: every pool of the
  tenant, except the cold pool for volume that is not cold.
- No purpose (today's callers): MARKETING -- the one default that can never put anything on a transactional IP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ippool.domain.registration import Purpose, validate_name
from libs.errors import InvalidArgument, Violations


class CampaignPurpose(StrEnum):
    MARKETING = "MARKETING"
    TRANSACTIONAL = "TRANSACTIONAL"
    COLD = "COLD"


def parse_campaign_purpose(value: object) -> CampaignPurpose:
    """A campaign purpose from its name (any case); empty or None is MARKETING."""
    if value is None or value == "":
        return CampaignPurpose.MARKETING
    if isinstance(value, str):
        try:
            return CampaignPurpose(value.strip().upper())
        except ValueError:
            pass
    raise InvalidArgument("purpose", f"must be one of {', '.join(CampaignPurpose)}")


@dataclass(frozen=True)
class PurposePolicy:
    """Which IPs a campaign's purpose may use; one per tenant."""

    transactional_on_marketing_ips: bool = True
    """Transactional volume that does not fit on transactional IPs may go to marketing IPs."""
    cold_pool: str = ""
    """The pool whose IPs carry cold volume only; "" = none (cold volume goes to marketing IPs)."""

    def __post_init__(self) -> None:
        problems = Violations()
        if not isinstance(self.transactional_on_marketing_ips, bool):
            problems.add("transactional_on_marketing_ips", "must be true or false")
        if not isinstance(self.cold_pool, str):
            problems.add("cold_pool", "must be a pool name or empty")
        elif self.cold_pool:
            try:
                validate_name(self.cold_pool, "cold_pool")
            except InvalidArgument as error:
                problems.items.extend(error.violations)
        problems.raise_if_any()


DEFAULT_PURPOSE_POLICY = PurposePolicy()

FIRST = 0
OVERFLOW = 1


def placement(
    *, ip_purpose: str, ip_pool: str, purpose: CampaignPurpose, pool: str, policy: PurposePolicy
) -> int | str:
    """The IP's tier for this volume (FIRST or OVERFLOW), or the reason it gets none of it."""
    transactional_ip = ip_purpose.upper() == Purpose.TRANSACTIONAL
    in_cold_pool = bool(policy.cold_pool) and ip_pool == policy.cold_pool
    if pool and ip_pool != pool:
        return f"pool {ip_pool}: the campaign asks for pool {pool}"
    if transactional_ip:
        if purpose is CampaignPurpose.TRANSACTIONAL:
            return FIRST
        return f"transactional IP: takes no {purpose.lower()} volume"
    if in_cold_pool and purpose is not CampaignPurpose.COLD:
        return f"cold pool {ip_pool}: takes cold volume only"
    if purpose is CampaignPurpose.COLD and policy.cold_pool and not in_cold_pool:
        return f"cold volume goes to the cold pool {policy.cold_pool} only"
    if purpose is CampaignPurpose.TRANSACTIONAL:
        if policy.transactional_on_marketing_ips:
            return OVERFLOW
        return "marketing IP: the tenant keeps transactional volume on transactional IPs"
    return FIRST
