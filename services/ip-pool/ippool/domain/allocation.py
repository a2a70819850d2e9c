"""Spreading a campaign's volume over one tenant's IPs: today first, then a day-by-day plan for the rest.

Public API:
    IpCapacity(address, tenant_id, state, schedule, position, used_today=0, used_by_provider={}, resting=False,
               purpose="marketing", pool="default", provider_holds={})
    IpAllocation(address, total, by_provider)
    ExcludedIp(address, reason)
    PlanDay(day_offset, day, total, by_provider)
    AllocationResult(...)               -- today's allocations, remainder, plan, what does not fit, exclusions
    allocate(*, tenant_id, ips, volume, today, shares=DEFAULT_PROVIDER_SHARES, plan_horizon_days=60,
             purpose=CampaignPurpose.MARKETING, pool="", purposes=DEFAULT_PURPOSE_POLICY)

Rules:
- Only the tenant's own IPs in WARMING or WARM that are not resting get volume. STANDBY, PAUSED, RETIRED and
  resting IPs are listed in `excluded` with the reason, and so are the IPs the campaign's purpose or pool may not
  use (`purposes.placement`: a transactional IP never gets marketing or cold volume). Another tenant's IP passed
  in by mistake is ignored and never named in the result (that would leak it); only `ignored_foreign_ips` counts
  them.
- Per IP today: at most its remaining daily quota (quota - used_today) and, per provider group, at most its
  cap (share x quota, or the provider's held cap when it throttled the IP) minus what that provider already got
  today.
- Evenly: each provider group is water-filled -- every IP gets the same amount, except those whose room is
  smaller, which are filled up (a young IP's small quota is used in full, which its warmup needs to advance).
  Groups are served GMAIL, MICROSOFT, YAHOO, then OTHER, because OTHER may use any IP's room while the capped
  groups cannot. The leftover units of an uneven division go to the first IPs in input order: pass the IPs in
  a stable order (e.g. by address) to get stable results. Tiers: the IPs a purpose uses first (transactional
  IPs for transactional volume) are filled before the overflow ones (marketing IPs), group by group.
- `volume` is either one count, taken as OTHER (recipients of no capped provider: pass a per-provider mapping
  whenever the recipients are known, as the campaign gateway does), or a mapping ProviderGroup -> count.
  A negative or non-integer count is InvalidArgument naming `volume` or `volume_by_provider[GROUP]`.
- The plan projects every eligible IP's quota along its schedule as if every day were healthy, spreads the
  remainder day by day the same way, stops after `plan_horizon_days` and reports what still does not fit as
  `unplanned`. It is optimistic and ignores other campaigns' future volume: the daily job re-plans. Held provider
  caps stay as they are in the plan.

Cost: O(n log n) per provider group for n IPs, never per message; plan days with the same quotas and full use
are computed once and repeated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from ippool.domain.lifecycle import SENDING_STATES, IpState
from ippool.domain.providers import DEFAULT_PROVIDER_SHARES, ProviderGroup, ProviderShares
from ippool.domain.purposes import DEFAULT_PURPOSE_POLICY, CampaignPurpose, PurposePolicy, placement
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, daily_quota, project_daily_quotas
from libs.errors import InvalidArgument, Violations

_GROUP_ORDER: tuple[ProviderGroup, ...] = tuple(ProviderGroup)
_BASIS = 10_000
MAX_PLAN_HORIZON_DAYS = 366


@dataclass(frozen=True)
class IpCapacity:
    """What allocation needs to know about one IP today."""

    address: str
    tenant_id: str
    state: IpState
    schedule: WarmupSchedule
    position: WarmupPosition
    used_today: int = 0
    """Messages already sent or allocated today, all providers together."""
    used_by_provider: Mapping[ProviderGroup, int] = field(default_factory=dict)
    resting: bool = False
    """Rested today by the rotation policy."""
    purpose: str = "marketing"
    """The IP's registered purpose ("marketing" or "transactional")."""
    pool: str = "default"
    provider_holds: Mapping[ProviderGroup, int] = field(default_factory=dict)
    """Caps held below the provider's share (the provider throttled the IP)."""

    @property
    def daily_quota(self) -> int:
        return daily_quota(self.schedule, self.position)


@dataclass(frozen=True)
class IpAllocation:
    address: str
    total: int
    by_provider: dict[ProviderGroup, int]


@dataclass(frozen=True)
class ExcludedIp:
    address: str
    reason: str


@dataclass(frozen=True)
class PlanDay:
    day_offset: int
    """1 is tomorrow."""
    day: date
    total: int
    by_provider: dict[ProviderGroup, int]


@dataclass(frozen=True)
class AllocationResult:
    tenant_id: str
    day: date
    requested: dict[ProviderGroup, int]
    allocations: tuple[IpAllocation, ...]
    """IPs that get volume today (those with 0 are left out), in input order."""
    allocated_today: int
    remainder: int
    """What cannot go today."""
    remainder_by_provider: dict[ProviderGroup, int]
    plan: tuple[PlanDay, ...]
    """Day-by-day spread of the remainder; days with nothing placed are left out."""
    unplanned: int
    """Part of the remainder that does not fit within the plan horizon."""
    unplanned_by_provider: dict[ProviderGroup, int]
    excluded: tuple[ExcludedIp, ...]
    ignored_foreign_ips: int = 0


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _requested_volume(volume: int | Mapping[ProviderGroup, int]) -> dict[ProviderGroup, int]:
    """Normalise `volume` into a count per group, rejecting negative or non-integer counts by field."""
    if not isinstance(volume, Mapping):
        if not _is_count(volume) or volume < 0:
            raise InvalidArgument("volume", "must be a whole number of messages >= 0")
        return {ProviderGroup.OTHER: volume} if volume else {}
    problems = Violations()
    requested = dict.fromkeys(_GROUP_ORDER, 0)
    for key, count in volume.items():
        try:
            group = ProviderGroup(key)
        except ValueError:
            problems.add(f"volume_by_provider[{key}]", f"unknown provider group (one of {', '.join(_GROUP_ORDER)})")
            continue
        if not _is_count(count) or count < 0:
            problems.add(f"volume_by_provider[{group}]", "must be a whole number of messages >= 0")
            continue
        requested[group] += count
    problems.raise_if_any()
    return {group: count for group, count in requested.items() if count}


def _water_fill(room: list[int], demand: int) -> list[int]:
    """Give every slot the same amount, up to its room; the first slots in order absorb the leftover units."""
    total_room = sum(room)
    if demand >= total_room:
        return room[:]
    if demand <= 0:
        return [0] * len(room)
    order = sorted(range(len(room)), key=room.__getitem__)
    taken = [0] * len(room)
    remaining = demand
    left = len(room)
    for position, index in enumerate(order):
        if room[index] * left >= remaining:
            level, extra = divmod(remaining, left)
            rest = order[position:]
            for slot in rest:
                taken[slot] = level
            if extra:
                for slot in sorted(rest)[:extra]:
                    taken[slot] = level + 1
            return taken
        taken[index] = room[index]
        remaining -= room[index]
        left -= 1
    return taken  # unreachable: demand < total_room guarantees the loop returns


@dataclass(frozen=True)
class _Fleet:
    """What does not change from day to day: each eligible IP's tier and held caps."""

    tiers: list[int]
    holds: list[Mapping[ProviderGroup, int]]


def _fill_day(
    quotas: Sequence[int],
    room_total: list[int],
    used_by_group: Mapping[ProviderGroup, Sequence[int]] | None,
    demand: Mapping[ProviderGroup, int],
    shares: ProviderShares,
    fleet: _Fleet,
) -> tuple[dict[ProviderGroup, list[int]], bool]:
    """One day's spread of `demand` over IPs, tier by tier; also says whether every group used all its room."""
    taken_by_group: dict[ProviderGroup, list[int]] = {}
    saturated = True
    tiers = sorted(set(fleet.tiers))
    for group in _GROUP_ORDER:
        wanted = demand.get(group, 0)
        if not wanted:
            continue
        basis_points = shares.basis_points(group)
        used = used_by_group.get(group) if used_by_group else None
        caps = [
            min(q * basis_points // _BASIS, held.get(group, q)) for q, held in zip(quotas, fleet.holds, strict=True)
        ]
        if used is None:
            room = [min(c, r) for c, r in zip(caps, room_total, strict=True)]
        else:
            room = [min(max(0, c - u), r) for c, r, u in zip(caps, room_total, used, strict=True)]
        if wanted < sum(room):
            saturated = False
        taken = [0] * len(room)
        for tier in tiers:
            tier_room = [r if t == tier else 0 for r, t in zip(room, fleet.tiers, strict=True)]
            tier_taken = _water_fill(tier_room, wanted)
            taken = [a + b for a, b in zip(taken, tier_taken, strict=True)]
            wanted -= sum(tier_taken)
        taken_by_group[group] = taken
        room_total[:] = [r - t for r, t in zip(room_total, taken, strict=True)]
    return taken_by_group, saturated


def _split_ips(
    tenant_id: str, ips: Sequence[IpCapacity], purpose: CampaignPurpose, pool: str, purposes: PurposePolicy
) -> tuple[list[IpCapacity], list[int], list[ExcludedIp], int]:
    """Keep the tenant's sending IPs this volume may use, with their tiers; say why the tenant's other IPs get
    nothing; count foreign ones."""
    eligible: list[IpCapacity] = []
    tiers: list[int] = []
    excluded: list[ExcludedIp] = []
    foreign = 0
    seen: set[str] = set()
    for ip in ips:
        if ip.tenant_id != tenant_id:
            foreign += 1
            continue
        if ip.address in seen:
            raise InvalidArgument("ips", f"{ip.address} is listed twice")
        seen.add(ip.address)
        placed = placement(ip_purpose=ip.purpose, ip_pool=ip.pool, purpose=purpose, pool=pool, policy=purposes)
        if isinstance(placed, str):
            excluded.append(ExcludedIp(ip.address, placed))
        elif ip.state not in SENDING_STATES:
            excluded.append(ExcludedIp(ip.address, f"{ip.state}: gets no volume"))
        elif ip.resting:
            excluded.append(ExcludedIp(ip.address, "resting today (rotation policy)"))
        else:
            eligible.append(ip)
            tiers.append(placed)
    return eligible, tiers, excluded, foreign


def _plan(
    eligible: Sequence[IpCapacity],
    fleet: _Fleet,
    demand: dict[ProviderGroup, int],
    today: date,
    shares: ProviderShares,
    horizon: int,
) -> list[PlanDay]:
    """Spread `demand` (mutated: what is left does not fit) over the next `horizon` days."""
    plan: list[PlanDay] = []
    if not eligible or not any(demand.values()):
        return plan
    projections = [project_daily_quotas(ip.schedule, ip.position, horizon) for ip in eligible]
    quotas_by_day = list(zip(*projections, strict=True))
    offset = 0
    while offset < horizon and any(demand.values()):
        quotas = quotas_by_day[offset]
        taken_by_group, saturated = _fill_day(quotas, list(quotas), None, demand, shares, fleet)
        day_total = {group: sum(taken) for group, taken in taken_by_group.items()}
        repeat = 1
        if saturated:
            same_quotas_until = offset + 1
            while same_quotas_until < horizon and quotas_by_day[same_quotas_until] == quotas:
                same_quotas_until += 1
            repeat = same_quotas_until - offset
            for group, total in day_total.items():
                if total:
                    repeat = min(repeat, demand[group] // total)
        by_provider = {group: total for group, total in day_total.items() if total}
        for _ in range(repeat):
            offset += 1
            if by_provider:
                plan.append(
                    PlanDay(offset, today + timedelta(days=offset), sum(by_provider.values()), dict(by_provider))
                )
        for group, total in by_provider.items():
            demand[group] -= total * repeat
    return plan


def allocate(
    *,
    tenant_id: str,
    ips: Sequence[IpCapacity],
    volume: int | Mapping[ProviderGroup, int],
    today: date,
    shares: ProviderShares = DEFAULT_PROVIDER_SHARES,
    plan_horizon_days: int = 60,
    purpose: CampaignPurpose = CampaignPurpose.MARKETING,
    pool: str = "",
    purposes: PurposePolicy = DEFAULT_PURPOSE_POLICY,
) -> AllocationResult:
    """Allocate `volume` over `tenant_id`'s sending IPs for `today`, and plan the remainder (module docstring)."""
    requested = _requested_volume(volume)
    if not _is_count(plan_horizon_days) or not 0 <= plan_horizon_days <= MAX_PLAN_HORIZON_DAYS:
        raise InvalidArgument("plan_horizon_days", f"must be a whole number from 0 to {MAX_PLAN_HORIZON_DAYS}")
    eligible, tiers, excluded, foreign = _split_ips(tenant_id, ips, purpose, pool, purposes)
    fleet = _Fleet(tiers=tiers, holds=[ip.provider_holds for ip in eligible])

    quotas = [ip.daily_quota for ip in eligible]
    room_total = [max(0, quota - ip.used_today) for quota, ip in zip(quotas, eligible, strict=True)]
    used_by_group = {group: [ip.used_by_provider.get(group, 0) for ip in eligible] for group in requested}
    taken_by_group, _ = _fill_day(quotas, room_total, used_by_group, requested, shares, fleet)

    allocations: list[IpAllocation] = []
    for index, ip in enumerate(eligible):
        by_provider = {group: taken[index] for group, taken in taken_by_group.items() if taken[index]}
        if by_provider:
            allocations.append(IpAllocation(ip.address, sum(by_provider.values()), by_provider))
    allocated_by_group = {group: sum(taken) for group, taken in taken_by_group.items()}
    remainder = {group: count - allocated_by_group.get(group, 0) for group, count in requested.items()}
    remainder = {group: count for group, count in remainder.items() if count}

    still_open = dict(remainder)
    plan = _plan(eligible, fleet, still_open, today, shares, plan_horizon_days)
    unplanned = {group: count for group, count in still_open.items() if count}
    return AllocationResult(
        tenant_id=tenant_id,
        day=today,
        requested=requested,
        allocations=tuple(allocations),
        allocated_today=sum(allocated_by_group.values()),
        remainder=sum(remainder.values()),
        remainder_by_provider=remainder,
        plan=tuple(plan),
        unplanned=sum(unplanned.values()),
        unplanned_by_provider=unplanned,
        excluded=tuple(excluded),
        ignored_foreign_ips=foreign,
    )
