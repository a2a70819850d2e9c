"""Dedup: a duplicate within the window is suppressed and counted; the window is fixed, not sliding."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.clock import FakeClock
from libs.errors import InvalidArgument
from notifier.domain.dedup import DEFAULT_DEDUP_WINDOW, DedupLedger, DedupPolicy, DedupState
from tests.unit.notifier.conftest import T0


def test_ten_identical_alerts_within_the_window_give_one() -> None:
    clock = FakeClock(T0)
    ledger = DedupLedger()
    verdicts = []
    for _ in range(10):
        verdicts.append(ledger.observe("sos-expat", "ip-listed:1", clock.now()))
        clock.advance(timedelta(seconds=30))
    assert [v.accepted for v in verdicts] == [True] + [False] * 9
    assert ledger.suppressed_count("sos-expat", "ip-listed:1") == 9
    assert verdicts[-1].state.last_seen_at == T0 + timedelta(seconds=270)


def test_the_window_is_fixed_so_a_lasting_condition_is_announced_again() -> None:
    policy = DedupPolicy(window=timedelta(minutes=10))
    first = policy.decide(None, T0)
    # A duplicate every 5 minutes would keep a sliding window open forever; a fixed one reopens.
    second = policy.decide(first.state, T0 + timedelta(minutes=5))
    third = policy.decide(second.state, T0 + timedelta(minutes=10))
    assert (first.accepted, second.accepted, third.accepted) == (True, False, True)
    assert third.state == DedupState(
        window_started_at=T0 + timedelta(minutes=10),
        last_seen_at=third.state.last_seen_at,
        state_at=T0 + timedelta(minutes=10),
    )
    assert third.state.suppressed_count == 0


def test_keys_are_per_tenant() -> None:
    ledger = DedupLedger()
    assert ledger.observe("sos-expat", "k", T0).accepted
    assert ledger.observe("ulixai", "k", T0).accepted
    assert ledger.observe("sos-expat", "other", T0).accepted
    assert not ledger.observe("sos-expat", "k", T0).accepted


def test_a_clock_going_backwards_keeps_suppressing() -> None:
    policy = DedupPolicy()
    first = policy.decide(None, T0)
    assert not policy.decide(first.state, T0 - timedelta(seconds=5)).accepted


def test_forget_before_drops_only_expired_states() -> None:
    ledger = DedupLedger()
    ledger.observe("t", "old", T0)
    ledger.observe("t", "new", T0 + DEFAULT_DEDUP_WINDOW)
    assert ledger.forget_before(T0 + DEFAULT_DEDUP_WINDOW + timedelta(seconds=1)) == 1
    assert ledger.observe("t", "old", T0 + DEFAULT_DEDUP_WINDOW + timedelta(seconds=2)).accepted
    assert not ledger.observe("t", "new", T0 + DEFAULT_DEDUP_WINDOW + timedelta(seconds=2)).accepted


def test_window_must_be_positive() -> None:
    with pytest.raises(InvalidArgument):
        DedupPolicy(window=timedelta(0))
