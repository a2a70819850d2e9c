"""Storm grouping: normal traffic goes out alone and at once; a storm becomes one digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from libs.errors import InvalidArgument
from notifier.domain.storm import StormPolicy, plan_dispatch
from tests.unit.notifier.conftest import T0

POLICY = StormPolicy(
    window=timedelta(seconds=60), threshold=4, group_wait=timedelta(seconds=20), max_alerts_per_digest=5
)


@dataclass(frozen=True)
class Item:
    name: str
    accepted_at: datetime


def items(count: int, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> list[Item]:
    return [Item(f"a{i}", start + step * i) for i in range(count)]


def test_nothing_pending_nothing_to_do() -> None:
    plan = plan_dispatch([], accepted_in_window=0, last_sent_at=None, now=T0, policy=POLICY)
    assert plan.batch == () and plan.next_check_at is None


def test_a_single_alert_goes_at_once() -> None:
    [alert] = items(1)
    plan = plan_dispatch([alert], accepted_in_window=1, last_sent_at=None, now=T0, policy=POLICY)
    assert plan.batch == (alert,) and not plan.storm and not plan.is_digest


def test_below_the_threshold_alerts_go_one_by_one_spaced_per_chat() -> None:
    pending = items(2)
    now = T0 + timedelta(seconds=2)
    plan = plan_dispatch(pending, accepted_in_window=2, last_sent_at=None, now=now, policy=POLICY)
    assert plan.batch == (pending[0],) and plan.next_check_at == now + POLICY.min_spacing
    too_soon = plan_dispatch(
        pending[1:], accepted_in_window=2, last_sent_at=now, now=now + timedelta(milliseconds=300), policy=POLICY
    )
    assert too_soon.batch == () and too_soon.next_check_at == now + timedelta(seconds=1)


def test_a_storm_is_held_then_sent_as_one_digest() -> None:
    pending = items(4)
    now = T0 + timedelta(seconds=4)
    held = plan_dispatch(pending, accepted_in_window=7, last_sent_at=T0, now=now, policy=POLICY)
    assert held.storm and held.batch == ()
    assert held.next_check_at == T0 + POLICY.group_wait  # counted from the oldest waiting alert
    due = plan_dispatch(pending, accepted_in_window=7, last_sent_at=T0, now=held.next_check_at, policy=POLICY)
    assert due.is_digest and due.batch == tuple(pending) and due.next_check_at is None


def test_many_pending_at_once_is_a_storm_even_with_an_empty_history() -> None:
    pending = items(10)
    now = T0 + timedelta(seconds=30)
    plan = plan_dispatch(list(reversed(pending)), accepted_in_window=0, last_sent_at=None, now=now, policy=POLICY)
    assert plan.storm
    assert plan.batch == tuple(pending[:5])  # oldest first, capped
    assert plan.next_check_at == now + POLICY.min_spacing  # the rest follows in the next digest


def test_policy_validation() -> None:
    with pytest.raises(InvalidArgument):
        StormPolicy(threshold=0)
    with pytest.raises(InvalidArgument):
        StormPolicy(max_alerts_per_digest=1)
    assert POLICY.window_start(T0) == T0 - timedelta(seconds=60)
