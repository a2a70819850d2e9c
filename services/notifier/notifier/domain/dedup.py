"""Duplicate suppression: one message per (tenant, dedup key) per window, the rest counted.

The window is fixed from the first accepted alert, not sliding: a condition that keeps firing is
re-announced once per window (a reminder), instead of being silenced for as long as it lasts.
Events arrive at least once, Alertmanager HA pairs both send, scans repeat: all of that lands here.
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
    alert_id: str | None = None  # the alert sent for this window (its duplicates point at it)


@dataclass(frozen=True)
class DedupVerdict:
    accepted: bool
    state: DedupState

    @property
    def suppressed(self) -> bool:
        return not self.accepted


@dataclass(frozen=True)
class DedupPolicy:
    window: timedelta = DEFAULT_DEDUP_WINDOW

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise InvalidArgument("dedup_window", "must be positive")

    def decide(self, previous: DedupState | None, now: datetime) -> DedupVerdict:
        """Accept and open a new window, or suppress and count; the caller stores `verdict.state`."""
        require_aware(now, "now")
        if previous is None or now >= previous.window_started_at + self.window:
            return DedupVerdict(accepted=True, state=DedupState(window_started_at=now, last_seen_at=now))
        # A clock that went backwards keeps the window rather than reopening it.
        state = replace(previous, suppressed_count=previous.suppressed_count + 1, last_seen_at=now)
        return DedupVerdict(accepted=False, state=state)


class DedupLedger:
    """In-memory dedup over DedupPolicy, for the embedded mode and tests; the DB keeps the same rows."""

    def __init__(self, policy: DedupPolicy | None = None):
        self.policy = policy or DedupPolicy()
        self._states: dict[tuple[str, str], DedupState] = {}

    def observe(self, tenant: str, dedup_key: str, now: datetime) -> DedupVerdict:
        key = (tenant, dedup_key)
        verdict = self.policy.decide(self._states.get(key), now)
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
