"""Duplicate suppression around incidents: every change of an incident's state is told, each state once per window.

An incident is one (tenant, dedup key): an IP on a list, an IP's state in ip-pool, an Alertmanager alert's
fingerprint. Each alert says something about it (`Alert.incident_state`: `listed:high`, `delisted`, `firing`,
`resolved`, ...). The rule, in order:

* a state other than the one last told is news, at once, whatever the window: listed → delisted → listed again
  within the hour is three messages, so the last one the operator saw is never "delisted" while the IP is listed,
  and an Alertmanager alert that fires again after resolving is told again;
* unless it is older than the state last told (`occurred_at` before it): an event that arrives late, or an
  Alertmanager HA peer's copy of a firing that has since resolved, must not overwrite newer news; it is
  suppressed and counted;
* the same state again within the window is a duplicate (events arrive at least once, Alertmanager HA pairs both
  send, scans repeat): suppressed and counted;
* the same state after the window is told again, as a reminder: the window is fixed from the message that opened
  it, not sliding, so a condition that keeps firing is re-announced once per window instead of silenced for as
  long as it lasts.

Storms (many incidents at once) are grouped at delivery, per route (`notifier.domain.storm`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from libs.errors import InvalidArgument
from notifier.domain.alert import require_aware

DEFAULT_DEDUP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class DedupState:
    """What must be stored per (tenant, dedup key): one row, updated in the same transaction as the outbox."""

    window_started_at: datetime
    suppressed_count: int = 0
    last_seen_at: datetime | None = None
    alert_id: str | None = None  # the alert told for this window (its duplicates point at it)
    state: str = ""  # the incident state last told ("" for rows stored before states were kept)
    state_at: datetime | None = None  # when what was last told happened (the told alert's occurred_at)


@dataclass(frozen=True)
class DedupVerdict:
    accepted: bool
    state: DedupState
    stale: bool = False  # suppressed because older than what was told, not because it repeats it

    @property
    def suppressed(self) -> bool:
        return not self.accepted


@dataclass(frozen=True)
class DedupPolicy:
    window: timedelta = DEFAULT_DEDUP_WINDOW

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise InvalidArgument("dedup_window", "must be positive")

    def decide(
        self, previous: DedupState | None, now: datetime, *, state: str = "", occurred_at: datetime | None = None
    ) -> DedupVerdict:
        """Tell it (a new window opens, remembering `state`) or suppress and count; the caller stores
        `verdict.state`. `state` is what the alert says about its incident, `occurred_at` when that happened."""
        require_aware(now, "now")
        told = DedupState(window_started_at=now, last_seen_at=now, state=state, state_at=occurred_at or now)
        if previous is None:
            return DedupVerdict(accepted=True, state=told)
        counted = replace(previous, suppressed_count=previous.suppressed_count + 1, last_seen_at=now)
        if state != previous.state:
            when = occurred_at or now
            if previous.state_at is not None and when < previous.state_at:
                return DedupVerdict(accepted=False, state=counted, stale=True)
            return DedupVerdict(accepted=True, state=told)
        if now >= previous.window_started_at + self.window:
            return DedupVerdict(accepted=True, state=told)
        # A clock that went backwards keeps the window rather than reopening it.
        return DedupVerdict(accepted=False, state=counted)


class DedupLedger:
    """In-memory dedup over DedupPolicy, for the embedded mode and tests; the DB keeps the same rows."""

    def __init__(self, policy: DedupPolicy | None = None):
        self.policy = policy or DedupPolicy()
        self._states: dict[tuple[str, str], DedupState] = {}

    def observe(
        self, tenant: str, dedup_key: str, now: datetime, *, state: str = "", occurred_at: datetime | None = None
    ) -> DedupVerdict:
        key = (tenant, dedup_key)
        verdict = self.policy.decide(self._states.get(key), now, state=state, occurred_at=occurred_at)
        self._states[key] = verdict.state
        return verdict

    def suppressed_count(self, tenant: str, dedup_key: str) -> int:
        state = self._states.get((tenant, dedup_key))
        return state.suppressed_count if state else 0

    def forget_before(self, cutoff: datetime) -> int:
        """Drop states whose window ended before `cutoff` (they can no longer suppress anything)."""
        stale = [k for k, s in self._states.items() if s.window_started_at + self.policy.window < cutoff]
        for key in stale:
            del self._states[key]
        return len(stale)
