"""IP states: pause, resume, retire, standby on listing, release after delisting and cool-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ippool.domain.health import DEFAULT_HEALTH_POLICY
from ippool.domain.lifecycle import (
    IpState,
    IpStatus,
    enter_standby,
    mark_delisted,
    pause,
    release,
    release_standby,
    resume,
    retire,
)
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupPosition, daily_quota
from libs.clock import FakeClock
from libs.errors import FailedPrecondition

COOLDOWN = DEFAULT_HEALTH_POLICY.standby_cooldown
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def warm() -> IpStatus:
    return IpStatus(state=IpState.WARM, position=WarmupPosition(step_index=5, sending_day_in_step=3))


def warming(step: int = 3) -> IpStatus:
    return IpStatus(state=IpState.WARMING, position=WarmupPosition(step_index=step, sending_day_in_step=4))


def test_pause_and_resume_round_trip() -> None:
    paused = pause(warming(), now=NOW)
    assert paused.after.state is IpState.PAUSED and paused.state_changed
    resumed = resume(paused.after, DEFAULT_SCHEDULE, now=NOW, listed=False)
    assert resumed.after == warming()
    assert "1500/day" in resumed.reason


def test_pause_and_resume_are_idempotent() -> None:
    paused = pause(warm(), now=NOW).after
    assert not pause(paused, now=NOW).changed
    assert not resume(warm(), DEFAULT_SCHEDULE, now=NOW, listed=False).changed


def test_resume_while_listed_goes_to_standby() -> None:
    paused = pause(warm(), now=NOW).after
    transition = resume(paused, DEFAULT_SCHEDULE, now=NOW, listed=True)
    assert transition.after.state is IpState.STANDBY and transition.after.standby_since == NOW


def test_retired_is_final() -> None:
    retired = retire(warm(), now=NOW).after
    assert retired.state is IpState.RETIRED
    assert not retire(retired, now=NOW).changed
    for command in (lambda: pause(retired, now=NOW), lambda: resume(retired, DEFAULT_SCHEDULE, now=NOW, listed=False)):
        with pytest.raises(FailedPrecondition):
            command()
    assert not enter_standby(retired, DEFAULT_SCHEDULE, now=NOW, reason="zen").changed
    assert not release_standby(retired, DEFAULT_SCHEDULE, now=NOW, cooldown=COOLDOWN).changed


def test_standby_cannot_be_resumed_by_hand() -> None:
    standby = enter_standby(warm(), DEFAULT_SCHEDULE, now=NOW, reason="zen").after
    with pytest.raises(FailedPrecondition):
        resume(standby, DEFAULT_SCHEDULE, now=NOW, listed=False)


def test_listing_then_delisting_then_cooldown_resumes_one_step_lower() -> None:
    clock = FakeClock(NOW)
    listed = enter_standby(warm(), DEFAULT_SCHEDULE, now=clock.now(), reason="listed on zen.spamhaus.org")
    assert listed.after.state is IpState.STANDBY and listed.after.standby_since == NOW
    assert "zen.spamhaus.org" in listed.reason
    status = listed.after
    clock.advance(timedelta(hours=5))
    assert release_standby(status, DEFAULT_SCHEDULE, now=clock.now(), cooldown=COOLDOWN).reason == "still listed"
    status = mark_delisted(status, now=clock.now()).after
    delisted_at = clock.now()
    clock.advance(COOLDOWN - timedelta(seconds=1))
    waiting = release_standby(status, DEFAULT_SCHEDULE, now=clock.now(), cooldown=COOLDOWN)
    assert not waiting.changed and "cool-down until" in waiting.reason
    clock.set(delisted_at + COOLDOWN)
    released = release_standby(status, DEFAULT_SCHEDULE, now=clock.now(), cooldown=COOLDOWN)
    assert released.after.state is IpState.WARMING
    assert released.after.position == WarmupPosition(step_index=4, sending_day_in_step=1)
    assert daily_quota(DEFAULT_SCHEDULE, released.after.position) == 5000
    assert released.after.standby_since is None and released.after.delisted_at is None


def test_second_listing_is_one_step_only_and_a_relisting_cancels_the_cooldown() -> None:
    status = enter_standby(warming(3), DEFAULT_SCHEDULE, now=NOW, reason="zen").after
    again = enter_standby(status, DEFAULT_SCHEDULE, now=NOW, reason="barracuda")
    assert not again.changed and again.after.position.step_index == 2
    status = mark_delisted(status, now=NOW).after
    relisted = enter_standby(status, DEFAULT_SCHEDULE, now=NOW + timedelta(hours=3), reason="zen").after
    assert relisted.delisted_at is None and relisted.position.step_index == 2
    assert not release_standby(relisted, DEFAULT_SCHEDULE, now=NOW + timedelta(days=5), cooldown=COOLDOWN).changed


def test_listing_while_paused_keeps_pause_but_takes_the_step_down() -> None:
    paused = pause(warming(3), now=NOW).after
    listed = enter_standby(paused, DEFAULT_SCHEDULE, now=NOW, reason="zen").after
    assert listed.state is IpState.PAUSED and listed.position.step_index == 2
    resumed = resume(listed, DEFAULT_SCHEDULE, now=NOW, listed=False).after
    assert resumed.state is IpState.WARMING and resumed.position.step_index == 2


def test_pausing_a_standby_ip_keeps_it_out_after_delisting() -> None:
    standby = enter_standby(warm(), DEFAULT_SCHEDULE, now=NOW, reason="zen").after
    paused = pause(standby, now=NOW).after
    assert paused.state is IpState.PAUSED
    assert not release_standby(paused, DEFAULT_SCHEDULE, now=NOW + timedelta(days=3), cooldown=COOLDOWN).changed
    resumed = resume(paused, DEFAULT_SCHEDULE, now=NOW + timedelta(days=3), listed=False).after
    assert resumed.state is IpState.WARMING and resumed.position.step_index == 4


def test_delisting_outside_standby_is_a_no_op() -> None:
    assert not mark_delisted(warm(), now=NOW).changed


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        pause(warm(), now=datetime(2026, 1, 5, 9, 30))


def test_releasing_an_address_retires_it_from_any_state_once() -> None:
    for status in (warm(), IpStatus.registered(), pause(warm(), now=NOW).after):
        released = release(status, now=NOW)
        assert released.after.state is IpState.RETIRED and released.state_changed
        assert released.after.position == status.position
    retired = retire(warm(), now=NOW).after
    again = release(retired, now=NOW)
    assert not again.changed and "released" in again.reason
