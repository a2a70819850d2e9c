"""IP states and their legal transitions.

Public API:
    IpState                    -- WARMING, WARM, STANDBY, PAUSED, RETIRED
    SENDING_STATES             -- the states that receive volume: WARMING, WARM
    IpStatus(state, position, standby_since=None, delisted_at=None)
    IpStatus.registered()      -- a new IP: WARMING at step 0, sending day 1
    Transition(before, after, reason, at)   -- `.changed` tells whether an event must be published
    sending_state(schedule, position) -> IpState       -- WARM on the schedule's last step, else WARMING
    pause(status, *, now) -> Transition                 -- admin :pause
    resume(status, schedule, *, now, listed) -> Transition   -- admin :resume of a PAUSED IP
    retire(status, *, now) -> Transition                -- admin :retire; RETIRED is final
    release(status, *, now) -> Transition               -- admin :release of the address: RETIRED for its tenant
    enter_standby(status, schedule, *, now, reason) -> Transition   -- a listing appeared
    mark_delisted(status, *, now) -> Transition         -- the last listing cleared; the cool-down starts
    release_standby(status, schedule, *, now, cooldown) -> Transition  -- back to sending once cooled down

Graph (anything else raises FailedPrecondition; repeating a transition already done is a no-op, because
events and retries arrive at least once):

    WARMING <-> WARM            by the daily warmup decision (see `warmup.apply_decision`)
    WARMING/WARM  -> PAUSED     pause           PAUSED  -> WARMING/WARM  resume (-> STANDBY if still listed)
    WARMING/WARM  -> STANDBY    listing         STANDBY -> WARMING/WARM  release_standby after delisting + cool-down
    STANDBY       -> PAUSED     pause (the admin keeps it out even after delisting)
    any but RETIRED -> RETIRED  retire          RETIRED -> nothing (for that tenant)
    any             -> RETIRED  release: the address is freed; registering it again starts a new IP status

The "one step lower" penalty of a listing is applied when the listing is seen (`enter_standby`), not on release:
however the IP leaves standby (release, or pause then resume) it comes back one step lower, exactly once per
listing. A PAUSED IP that gets listed stays PAUSED (the admin's pause wins) but still takes the step down;
resuming it while listed sends it to STANDBY.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from ippool.domain.schedule import WarmupPosition, WarmupSchedule, daily_quota, is_warm, step_back
from libs.errors import FailedPrecondition


class IpState(StrEnum):
    WARMING = "WARMING"
    WARM = "WARM"
    STANDBY = "STANDBY"
    PAUSED = "PAUSED"
    RETIRED = "RETIRED"


SENDING_STATES = frozenset({IpState.WARMING, IpState.WARM})


@dataclass(frozen=True)
class IpStatus:
    """The mutable part of an IP record: state, warmup position and standby bookkeeping."""

    state: IpState
    position: WarmupPosition
    standby_since: datetime | None = None
    delisted_at: datetime | None = None
    """When the last active listing cleared while in STANDBY; None while still listed."""

    @classmethod
    def registered(cls) -> IpStatus:
        return cls(state=IpState.WARMING, position=WarmupPosition.start())


@dataclass(frozen=True)
class Transition:
    """The outcome of a lifecycle command, with the reason to keep in the IP's history."""

    before: IpStatus
    after: IpStatus
    reason: str
    at: datetime

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def state_changed(self) -> bool:
        return self.before.state != self.after.state


def sending_state(schedule: WarmupSchedule, position: WarmupPosition) -> IpState:
    """The state of an IP that is allowed to send: WARM on the last step, WARMING before it."""
    return IpState.WARM if is_warm(schedule, position) else IpState.WARMING


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")


def _refuse_if_retired(status: IpStatus, action: str) -> None:
    if status.state is IpState.RETIRED:
        raise FailedPrecondition(f"cannot {action}: the IP is retired, which is final", reason="IP_RETIRED")


def pause(status: IpStatus, *, now: datetime) -> Transition:
    """Admin pause: zero volume until an admin resumes it, whatever happens to its listings."""
    _require_aware(now)
    _refuse_if_retired(status, "pause")
    if status.state is IpState.PAUSED:
        return Transition(status, status, "already paused", now)
    return Transition(status, replace(status, state=IpState.PAUSED), f"paused by hand (was {status.state})", now)


def resume(status: IpStatus, schedule: WarmupSchedule, *, now: datetime, listed: bool) -> Transition:
    """Admin resume of a paused IP: back to sending at its position, or to STANDBY while still listed."""
    _require_aware(now)
    _refuse_if_retired(status, "resume")
    if status.state in SENDING_STATES:
        return Transition(status, status, f"already sending ({status.state})", now)
    if status.state is IpState.STANDBY:
        raise FailedPrecondition(
            "cannot resume: the IP is in standby and resumes on its own after delisting and the cool-down",
            reason="IP_IN_STANDBY",
        )
    if listed:
        after = replace(status, state=IpState.STANDBY, standby_since=now, delisted_at=None)
        return Transition(status, after, "resumed by hand while still listed: standby until delisted", now)
    state = sending_state(schedule, status.position)
    after = replace(status, state=state, standby_since=None, delisted_at=None)
    quota = daily_quota(schedule, status.position)
    return Transition(status, after, f"resumed by hand: {state} at {quota}/day", now)


def retire(status: IpStatus, *, now: datetime) -> Transition:
    """Admin retire: the IP never sends again through this tenant."""
    _require_aware(now)
    if status.state is IpState.RETIRED:
        return Transition(status, status, "already retired", now)
    return Transition(status, replace(status, state=IpState.RETIRED), f"retired by hand (was {status.state})", now)


def release(status: IpStatus, *, now: datetime) -> Transition:
    """An admin frees the address from its tenant: retired (if it was not), whatever state it was in."""
    _require_aware(now)
    if status.state is IpState.RETIRED:
        return Transition(status, status, "address released by hand (the IP was retired)", now)
    after = replace(status, state=IpState.RETIRED)
    return Transition(status, after, f"address released by hand (was {status.state})", now)


def enter_standby(status: IpStatus, schedule: WarmupSchedule, *, now: datetime, reason: str) -> Transition:
    """A listing appeared: stop the IP's volume at once and take one warmup step down (once per listing)."""
    _require_aware(now)
    if status.state is IpState.RETIRED:
        return Transition(status, status, f"listing ignored on a retired IP: {reason}", now)
    if status.state is IpState.STANDBY:
        if status.delisted_at is None:
            return Transition(status, status, f"already in standby: {reason}", now)
        after = replace(status, delisted_at=None)
        return Transition(status, after, f"listed again during the cool-down, cool-down cancelled: {reason}", now)
    lower = step_back(schedule, status.position)
    lower_quota = daily_quota(schedule, lower)
    if status.state is IpState.PAUSED:
        after = replace(status, position=lower)
        return Transition(
            status, after, f"listed while paused, stays paused, one step lower ({lower_quota}/day): {reason}", now
        )
    after = replace(status, state=IpState.STANDBY, position=lower, standby_since=now, delisted_at=None)
    return Transition(status, after, f"standby, will resume one step lower ({lower_quota}/day): {reason}", now)


def mark_delisted(status: IpStatus, *, now: datetime) -> Transition:
    """The IP's last listing cleared: start the cool-down (only meaningful in STANDBY)."""
    _require_aware(now)
    if status.state is not IpState.STANDBY:
        return Transition(status, status, f"delisting noted, nothing to do in {status.state}", now)
    if status.delisted_at is not None:
        return Transition(status, status, "already delisted, cool-down running", now)
    return Transition(status, replace(status, delisted_at=now), "delisted everywhere: cool-down starts", now)


def release_standby(status: IpStatus, schedule: WarmupSchedule, *, now: datetime, cooldown: timedelta) -> Transition:
    """Back to sending once delisted for at least `cooldown`; otherwise a no-op that says what it waits for."""
    _require_aware(now)
    if status.state is not IpState.STANDBY:
        return Transition(status, status, f"not in standby ({status.state})", now)
    if status.delisted_at is None:
        return Transition(status, status, "still listed", now)
    ready_at = status.delisted_at + cooldown
    if now < ready_at:
        return Transition(status, status, f"cool-down until {ready_at.isoformat()}", now)
    state = sending_state(schedule, status.position)
    after = replace(status, state=state, standby_since=None, delisted_at=None)
    quota = daily_quota(schedule, status.position)
    return Transition(status, after, f"delisted and cooled down for {cooldown}: {state} at {quota}/day", now)
