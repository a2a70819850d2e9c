"""A tenant's sending IP: what was registered, where it stands in its lifecycle and warmup, and what it may
send on a given day.

Public API:
    Ip(address, tenant_id, purpose, pool, pmta_node, helo_hostname, state, state_reason, schedule_id, position,
       sending_day, decided_day, create_time, update_time, resting_until=None, standby_since=None,
       delisted_at=None, released_at=None)
    Ip.status / Ip.with_status(status)   -- the lifecycle part (`lifecycle.IpStatus`) read and replaced
    Ip.effective_daily_quota(schedule, day) -> int

The address is the identity: one address belongs to one tenant at a time. An admin may release it
(`released_at`): it stays retired with its tenant until any tenant registers it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from ippool.domain.lifecycle import SENDING_STATES, IpState, IpStatus
from ippool.domain.rotation import is_resting
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, daily_quota


@dataclass(frozen=True)
class Ip:
    address: str
    """Normalised (`address.parse_ip_address`)."""
    tenant_id: str
    purpose: str
    """"marketing" or "transactional"."""
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
    released_at: datetime | None = None
    """When an admin freed the address for any tenant to register again."""

    @property
    def status(self) -> IpStatus:
        return IpStatus(self.state, self.position, self.standby_since, self.delisted_at)

    def with_status(self, status: IpStatus) -> Ip:
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
