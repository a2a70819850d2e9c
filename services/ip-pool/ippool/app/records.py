"""What the use cases load and store: plain values around the domain's, one per table row.

The adapters (`ippool.adapters.store`) read and write them; the use cases hand their domain parts to
`ippool.domain` and persist what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ippool.domain.lifecycle import SENDING_STATES, IpState, IpStatus
from ippool.domain.providers import ProviderGroup
from ippool.domain.rotation import is_resting
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, daily_quota
from ippool.domain.tenant import TenantPolicy


class DecisionKind(StrEnum):
    WARMUP = "WARMUP"
    LIFECYCLE = "LIFECYCLE"
    ROTATION = "ROTATION"


SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class TenantRecord:
    tenant_id: str
    display_name: str
    policy: TenantPolicy
    create_time: datetime
    update_time: datetime | None = None


@dataclass(frozen=True)
class ScheduleRecord:
    schedule: WarmupSchedule
    tenant_id: str
    """"" for the built-in default schedule."""
    display_name: str
    built_in: bool = False
    create_time: datetime | None = None


@dataclass(frozen=True)
class IpRecord:
    address: str
    tenant_id: str
    purpose: str
    pool: str
    pmta_node: str
    helo_hostname: str
    state: IpState
    state_reason: str
    schedule_id: str
    position: WarmupPosition
    sending_day: int
    """1-based count of days with mail sent since the warmup (re)started."""
    decided_day: date
    """Tenant-local day the position was decided for (the registration day at first)."""
    create_time: datetime
    update_time: datetime
    resting_until: date | None = None
    standby_since: datetime | None = None
    delisted_at: datetime | None = None

    @property
    def status(self) -> IpStatus:
        return IpStatus(self.state, self.position, self.standby_since, self.delisted_at)

    def with_status(self, status: IpStatus) -> IpRecord:
        return replace(
            self,
            state=status.state,
            position=status.position,
            standby_since=status.standby_since,
            delisted_at=status.delisted_at,
        )

    def effective_daily_quota(self, schedule: WarmupSchedule, day: date) -> int:
        """What the IP may send on `day`: its step's volume when sending and not resting, else 0."""
        if self.state not in SENDING_STATES or is_resting(self.resting_until, day):
            return 0
        return daily_quota(schedule, self.position)


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of an IP's history."""

    address: str
    tenant_id: str
    kind: DecisionKind
    day: date
    action: str
    rule: str
    reason: str
    state_before: IpState
    state_after: IpState
    step_index_before: int
    step_index_after: int
    quota_before: int
    quota_after: int
    time: datetime
    actor: str
    figures: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    decision_id: int | None = None


@dataclass(frozen=True)
class DayCounts:
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    throttled: int = 0


@dataclass(frozen=True)
class StatsEntry:
    """One validated delivery-stats row to store (the day's totals for one IP and provider group)."""

    address: str
    day: date | None
    provider: ProviderGroup
    counts: DayCounts


@dataclass(frozen=True)
class Usage:
    """What an IP used on one day, per provider group.

    `sent` comes from the delivery stats; `committed` is, per provider group, the highest level reserved by
    an allocation that day (what was used when it was made, plus what it reserved). Used is whichever is
    more: sends of allocated messages are not counted twice, and an allocation always lands on top of what
    had been sent before it.
    """

    sent: dict[ProviderGroup, int] = field(default_factory=dict)
    committed: dict[ProviderGroup, int] = field(default_factory=dict)

    @property
    def by_provider(self) -> dict[ProviderGroup, int]:
        groups = set(self.sent) | set(self.committed)
        return {g: max(self.sent.get(g, 0), self.committed.get(g, 0)) for g in ProviderGroup if g in groups}

    @property
    def total(self) -> int:
        return sum(self.by_provider.values())
