"""THE place where an IP's MailWizz delivery server is decided: its status and quotas, and what a sync changes.

Public API:
    IpState          -- WARMING, WARM, STANDBY, PAUSED, RETIRED (the IP pool's states, from `ip_states.py`)
    ServerStatus     -- MailWizz's delivery_server.status values
    IpSending        -- one IP as the pool sees it now: state, today's quotas, sending window, resting day
    DesiredServer    -- the row an IP should have: status, hourly and daily quota, and why
    CurrentServer    -- a managed row as read from MailWizz (server_id, vmta, status, quotas, warmup plan)
    ChangeKind       -- CREATE, UPDATE, UNCHANGED, CONFLICT, ORPHANED
    ServerChange     -- one line of a plan: kind, vmta, server_id, before, after, reason; `.describe()`
    SyncPlan         -- the changes; `.writes()` (what a real run does), `.conflicts()`, `.describe()` (dry run)
    desired_server(*, ip) -> DesiredServer
    plan_sync(*, current, desired) -> SyncPlan

The rules:

 1. MailWizz reads a quota of 0 as UNLIMITED. An IP that must not send therefore never gets an active row with a
    0 quota: its row is `inactive` (a retired IP's is `disabled`). It must not send when it is in STANDBY, PAUSED
    or RETIRED, resting today, outside its sending window, or when today's daily or hourly quota is 0.
 2. A row that must not send still carries non-zero quotas: today's when they are positive, else 1 (the smallest
    limit MailWizz can express). A row switched back to `active` by hand then still cannot send without limit.
 3. A sending IP's row is `active` with today's hourly and daily quotas (both > 0 by rule 1).
 4. A row with a MailWizz warmup plan (`warmup_plan_id` not null and not 0) is a CONFLICT and is never written:
    MailWizz's hourly cron overwrites its quota columns, so two owners would fight over them.
 5. A row that MailWizz is deleting (`pending-delete`) is a CONFLICT too; two rows for the same VMTA are both
    CONFLICTs (a hand-made copy): a human decides which one stays.
 6. A desired IP with no row gets a CREATE (a retired one gets nothing); the new row starts `inactive` (as
    MailWizz creates servers), with the quotas of rule 2 or 3. The next sync activates it if it may send.
 7. `in-use` is MailWizz's own marker for an active server being used right now: it counts as `active`, so a
    sync does not flip it back and forth.
 8. A row whose VMTA no IP claims is ORPHANED: reported, never touched (retired IPs are passed in as RETIRED).
 9. A row is written only when its status or a quota differs (UNCHANGED otherwise), and each write sets status
    and both quotas in one statement, so no reader ever sees an active row with a stale 0 quota in between.

Which row belongs to which IP is decided by the VMTA: the row's `X-Virtual-MTA` additional header names the
PowerMTA virtual MTA that owns the IP (see adapters/mailwizz_db.py). Quota edits take up to 300 s to be seen by
MailWizz (it caches the remaining quota), which is why the sync runs ahead of the hour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from campaign_gateway.domain.ip_states import SENDING_STATES, IpState


class ServerStatus(StrEnum):
    ACTIVE = "active"
    IN_USE = "in-use"
    INACTIVE = "inactive"
    DISABLED = "disabled"
    HIDDEN = "hidden"
    PENDING_DELETE = "pending-delete"


class ChangeKind(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    UNCHANGED = "UNCHANGED"
    CONFLICT = "CONFLICT"
    ORPHANED = "ORPHANED"


SMALLEST_LIMIT = 1


@dataclass(frozen=True)
class IpSending:
    address: str
    vmta: str
    state: IpState
    daily_quota: int
    hourly_quota: int
    inside_window: bool = True
    resting: bool = False


@dataclass(frozen=True)
class ServerSettings:
    """The three columns a sync owns."""

    status: ServerStatus
    hourly_quota: int
    daily_quota: int

    def __str__(self) -> str:
        return f"{self.status} hourly={self.hourly_quota} daily={self.daily_quota}"


@dataclass(frozen=True)
class DesiredServer:
    address: str
    vmta: str
    settings: ServerSettings
    reason: str


@dataclass(frozen=True)
class CurrentServer:
    server_id: int
    vmta: str
    settings: ServerSettings
    warmup_plan_id: int | None = None


@dataclass(frozen=True)
class ServerChange:
    kind: ChangeKind
    vmta: str
    reason: str
    server_id: int | None = None
    address: str | None = None
    before: ServerSettings | None = None
    after: ServerSettings | None = None

    def describe(self) -> str:
        who = f"{self.address or '?'} (vmta {self.vmta}, server {self.server_id if self.server_id else 'new'})"
        if self.kind is ChangeKind.UPDATE:
            return f"UPDATE {who}: {self.before} -> {self.after} ({self.reason})"
        if self.kind is ChangeKind.CREATE:
            return f"CREATE {who}: {self.after} ({self.reason})"
        return f"{self.kind} {who}: {self.reason}"


@dataclass(frozen=True)
class SyncPlan:
    changes: tuple[ServerChange, ...]

    def writes(self) -> tuple[ServerChange, ...]:
        return tuple(c for c in self.changes if c.kind in (ChangeKind.CREATE, ChangeKind.UPDATE))

    def conflicts(self) -> tuple[ServerChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.CONFLICT)

    def describe(self) -> list[str]:
        return [change.describe() for change in self.changes]


def _why_not_sending(ip: IpSending) -> str | None:
    if ip.state not in SENDING_STATES:
        return f"IP is {ip.state}"
    if ip.resting:
        return "IP rests today"
    if not ip.inside_window:
        return "outside the sending window"
    if ip.daily_quota <= 0 or ip.hourly_quota <= 0:
        return "today's quota is 0 (MailWizz would read 0 as unlimited)"
    return None


def desired_server(*, ip: IpSending) -> DesiredServer:
    """Rules 1-3: the status and quotas of the row of `ip`."""
    stopped = _why_not_sending(ip)
    if stopped is None:
        settings = ServerSettings(ServerStatus.ACTIVE, ip.hourly_quota, ip.daily_quota)
        return DesiredServer(ip.address, ip.vmta, settings, f"{ip.state} IP sending")
    status = ServerStatus.DISABLED if ip.state is IpState.RETIRED else ServerStatus.INACTIVE
    settings = ServerSettings(status, max(ip.hourly_quota, SMALLEST_LIMIT), max(ip.daily_quota, SMALLEST_LIMIT))
    return DesiredServer(ip.address, ip.vmta, settings, stopped)


def _normalized(settings: ServerSettings) -> ServerSettings:
    if settings.status is ServerStatus.IN_USE:
        return ServerSettings(ServerStatus.ACTIVE, settings.hourly_quota, settings.daily_quota)
    return settings


def _conflict_reason(row: CurrentServer, duplicated: bool) -> str | None:
    if row.warmup_plan_id:
        return f"MailWizz warmup plan {row.warmup_plan_id} owns this server's quotas"
    if row.settings.status is ServerStatus.PENDING_DELETE:
        return "MailWizz is deleting this server"
    if duplicated:
        return "several delivery servers carry this VMTA"
    return None


def _change_for(row: CurrentServer, want: DesiredServer | None, duplicated: bool) -> ServerChange:
    conflict = _conflict_reason(row, duplicated)
    address = want.address if want else None
    if conflict is not None:
        return ServerChange(ChangeKind.CONFLICT, row.vmta, conflict, row.server_id, address, row.settings)
    if want is None:
        return ServerChange(ChangeKind.ORPHANED, row.vmta, "no IP of this tenant uses this VMTA", row.server_id)
    if _normalized(row.settings) == want.settings:
        return ServerChange(ChangeKind.UNCHANGED, row.vmta, want.reason, row.server_id, address, row.settings)
    return ServerChange(ChangeKind.UPDATE, row.vmta, want.reason, row.server_id, address, row.settings, want.settings)


def _created(want: DesiredServer) -> ServerChange:
    settings = ServerSettings(ServerStatus.INACTIVE, want.settings.hourly_quota, want.settings.daily_quota)
    return ServerChange(ChangeKind.CREATE, want.vmta, "new IP: created inactive", None, want.address, None, settings)


def plan_sync(*, current: Sequence[CurrentServer], desired: Sequence[DesiredServer]) -> SyncPlan:
    """Rules 4-9: compare the managed rows with the desired ones, row by row."""
    wanted = {want.vmta: want for want in desired}
    copies = Counter(row.vmta for row in current)
    changes = [_change_for(row, wanted.get(row.vmta), copies[row.vmta] > 1) for row in current]
    changes += [
        _created(want)
        for want in desired
        if want.vmta not in copies and want.settings.status is not ServerStatus.DISABLED
    ]
    return SyncPlan(tuple(changes))
