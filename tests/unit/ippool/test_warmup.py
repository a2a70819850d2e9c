"""The daily warmup decision: schedule following, health gates, minimum sample, idle restart."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ippool.domain.health import DayReport, HealthPolicy
from ippool.domain.lifecycle import IpState, IpStatus
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import (
    DEFAULT_SCHEDULE,
    WarmupPosition,
    WarmupSchedule,
    WarmupStep,
    daily_quota,
)
from ippool.domain.warmup import Action, Rule, apply_decision, decide_day

DAY_ONE = date(2026, 1, 5)


def healthy(day: date, quota: int) -> DayReport:
    return DayReport(day=day, sent=quota, delivered=quota)


def at(step_index: int, day_in_step: int = 1, last_sending_day: date | None = None) -> WarmupPosition:
    return WarmupPosition(step_index=step_index, sending_day_in_step=day_in_step, last_sending_day=last_sending_day)


def decide(position: WarmupPosition, report: DayReport | None, today: date, **policy: object):
    return decide_day(
        today=today, schedule=DEFAULT_SCHEDULE, position=position, yesterday=report, policy=HealthPolicy(**policy)
    )  # type: ignore[arg-type]


def test_healthy_45_days_follow_the_default_schedule_exactly() -> None:
    status = IpStatus.registered()
    quotas: list[int] = []
    states: list[IpState] = []
    today = DAY_ONE
    for _ in range(45):
        quota = daily_quota(DEFAULT_SCHEDULE, status.position)
        quotas.append(quota)
        states.append(status.state)
        tomorrow = today + timedelta(days=1)
        decision = decide_day(
            today=tomorrow, schedule=DEFAULT_SCHEDULE, position=status.position, yesterday=healthy(today, quota)
        )
        assert decision.action is Action.ADVANCE and decision.rule is Rule.HEALTHY
        status = apply_decision(status, DEFAULT_SCHEDULE, decision)
        today = tomorrow
    assert quotas == [50] * 7 + [200] * 7 + [500] * 7 + [1500] * 7 + [5000] * 7 + [10000] * 10
    assert states[:35] == [IpState.WARMING] * 35
    assert states[35:] == [IpState.WARM] * 10


def test_registered_ip_starts_warming_on_sending_day_one_at_50() -> None:
    status = IpStatus.registered()
    assert status.state is IpState.WARMING
    assert (status.position.step_index, status.position.sending_day_in_step) == (0, 1)
    assert daily_quota(DEFAULT_SCHEDULE, status.position) == 50


def test_bounces_at_3_percent_hold_with_rule_and_figures() -> None:
    position = at(3, 4)  # 1 500 a day
    report = DayReport(day=DAY_ONE, sent=1500, delivered=1455, bounced=45)
    decision = decide(position, report, DAY_ONE + timedelta(days=1))
    assert decision.action is Action.HOLD
    assert decision.rule is Rule.BOUNCE_HOLD
    assert decision.position_after == at(3, 4, DAY_ONE)
    assert decision.quota_after == 1500
    assert decision.figures is not None
    assert decision.figures.bounce_rate == pytest.approx(0.03)
    assert decision.figures.bounce_rate_counted
    assert decision.figures.target == 1500
    assert "3.00%" in decision.reason


def test_bounces_at_6_percent_step_back_one_step_to_its_first_day() -> None:
    position = at(3, 4)
    report = DayReport(day=DAY_ONE, sent=1500, delivered=1410, bounced=90)
    decision = decide(position, report, DAY_ONE + timedelta(days=1))
    assert decision.action is Action.STEP_BACK
    assert decision.rule is Rule.BOUNCE_STEP_BACK
    assert decision.position_after == at(2, 1, DAY_ONE)
    assert (decision.quota_before, decision.quota_after) == (1500, 500)
    record = decision.to_record()
    assert record["rule"] == "BOUNCE_STEP_BACK"
    assert record["figures"]["bounced"] == 90 and record["figures"]["sent"] == 1500
    assert record["figures"]["bounce_rate"] == pytest.approx(0.06)


def test_complaints_at_035_percent_step_back() -> None:
    position = at(4, 2)  # 5 000 a day
    report = DayReport(day=DAY_ONE, sent=2000, delivered=2000, complained=7)
    decision = decide(position, report, DAY_ONE + timedelta(days=1))
    assert decision.action is Action.STEP_BACK
    assert decision.rule is Rule.COMPLAINT_STEP_BACK
    assert decision.figures is not None and decision.figures.complaint_rate == pytest.approx(0.0035)
    assert decision.quota_after == 1500
    # The delivered-share shortfall (2 000 of 5 000) is kept as a note, the step back is what decided.
    assert any("delivered 2000 of 5000" in note for note in decision.notes)


def test_complaints_between_the_limits_hold() -> None:
    report = DayReport(day=DAY_ONE, sent=1500, delivered=1500, complained=2)  # 0.13 %
    decision = decide(at(3, 2), report, DAY_ONE + timedelta(days=1))
    assert (decision.action, decision.rule) == (Action.HOLD, Rule.COMPLAINT_HOLD)


def test_two_bounces_out_of_twenty_change_nothing() -> None:
    report = DayReport(day=DAY_ONE, sent=20, delivered=18, bounced=2)
    decision = decide(at(0, 3), report, DAY_ONE + timedelta(days=1))
    clean = decide(at(0, 3), DayReport(day=DAY_ONE, sent=20, delivered=20), DAY_ONE + timedelta(days=1))
    assert decision.action is Action.ADVANCE and decision.rule is Rule.HEALTHY
    assert decision.position_after == clean.position_after == at(0, 4, DAY_ONE)
    assert decision.figures is not None
    assert decision.figures.bounce_rate == pytest.approx(0.10)
    assert not decision.figures.bounce_rate_counted
    assert any("not counted" in note for note in decision.notes)


def test_step_back_rates_need_the_minimum_sample_too() -> None:
    # 10 bounces of 99 sent is 10 % but rests on too few messages.
    report = DayReport(day=DAY_ONE, sent=99, delivered=89, bounced=10)
    decision = decide_day(
        today=DAY_ONE + timedelta(days=1),
        position=at(1, 1),
        schedule=WarmupSchedule("small", (WarmupStep(99, 3), WarmupStep(200, None))),
        yesterday=report,
    )
    assert decision.action is Action.HOLD and decision.rule is Rule.DELIVERED_SHARE
    report = DayReport(day=DAY_ONE, sent=100, delivered=90, bounced=10)
    decision = decide(at(1, 1), report, DAY_ONE + timedelta(days=1))
    assert decision.rule is Rule.BOUNCE_STEP_BACK


def test_delivered_share_under_90_percent_holds_once_the_target_is_measurable() -> None:
    report = DayReport(day=DAY_ONE, sent=179, delivered=179)  # target 200
    decision = decide(at(1, 5), report, DAY_ONE + timedelta(days=1))
    assert (decision.action, decision.rule) == (Action.HOLD, Rule.DELIVERED_SHARE)
    report = DayReport(day=DAY_ONE, sent=180, delivered=180)
    assert decide(at(1, 5), report, DAY_ONE + timedelta(days=1)).action is Action.ADVANCE


def test_tiny_first_step_judges_delivered_share_over_what_was_sent() -> None:
    # 20 sent of a 50 target: the volume shortfall proves nothing, the IP climbs.
    assert decide(
        at(0, 7), DayReport(day=DAY_ONE, sent=20, delivered=20), DAY_ONE + timedelta(days=1)
    ).position_after == at(1, 1, DAY_ONE)
    # But an IP that had its mail deferred still holds.
    decision = decide(at(0, 7), DayReport(day=DAY_ONE, sent=50, delivered=30), DAY_ONE + timedelta(days=1))
    assert decision.rule is Rule.DELIVERED_SHARE


def test_blocklisting_and_throttling_hold() -> None:
    listed = DayReport(day=DAY_ONE, sent=500, delivered=500, blocklisted=True)
    assert decide(at(2, 3), listed, DAY_ONE + timedelta(days=1)).rule is Rule.BLOCKLISTED
    throttled = DayReport(day=DAY_ONE, sent=500, delivered=500, throttled_providers=frozenset({ProviderGroup.YAHOO}))
    decision = decide(at(2, 3), throttled, DAY_ONE + timedelta(days=1))
    assert (decision.action, decision.rule) == (Action.HOLD, Rule.PROVIDER_THROTTLED)
    assert "YAHOO" in decision.reason


def test_step_back_from_the_first_step_restarts_it() -> None:
    report = DayReport(day=DAY_ONE, sent=200, delivered=180, bounced=20)
    decision = decide_day(
        today=DAY_ONE + timedelta(days=1),
        schedule=WarmupSchedule("flat", (WarmupStep(200, 5), WarmupStep(400, None))),
        position=at(0, 4),
        yesterday=report,
    )
    assert decision.action is Action.STEP_BACK and decision.position_after == at(0, 1, DAY_ONE)


def test_warm_ip_steps_back_to_warming() -> None:
    status = IpStatus(state=IpState.WARM, position=at(5, 12))
    report = DayReport(day=DAY_ONE, sent=10000, delivered=9400, bounced=600)
    decision = decide(status.position, report, DAY_ONE + timedelta(days=1))
    after = apply_decision(status, DEFAULT_SCHEDULE, decision)
    assert after.state is IpState.WARMING and decision.quota_after == 5000


def test_no_sending_day_is_not_counted() -> None:
    position = at(2, 3, DAY_ONE - timedelta(days=2))
    for report in (None, DayReport(day=DAY_ONE)):
        decision = decide(position, report, DAY_ONE + timedelta(days=1))
        assert (decision.action, decision.rule) == (Action.HOLD, Rule.NO_SENDING)
        assert decision.position_after == position


def test_idle_for_30_days_restarts_warmup_once() -> None:
    last = DAY_ONE
    position = at(5, 40, last)
    decision = decide(position, None, last + timedelta(days=29))
    assert decision.rule is Rule.NO_SENDING
    decision = decide(position, None, last + timedelta(days=30))
    assert (decision.action, decision.rule) == (Action.RESTART, Rule.IDLE_RESTART)
    assert decision.position_after == at(0, 1, last) and decision.quota_after == 50
    again = decide(decision.position_after, None, last + timedelta(days=31))
    assert again.rule is Rule.NO_SENDING and again.position_after == decision.position_after


def test_idle_threshold_is_a_tenant_setting() -> None:
    decision = decide(at(3, 2, DAY_ONE), None, DAY_ONE + timedelta(days=10), idle_rewarm_days=10)
    assert decision.rule is Rule.IDLE_RESTART


def test_paused_ip_keeps_its_state_through_decisions() -> None:
    status = IpStatus(state=IpState.PAUSED, position=at(3, 2, DAY_ONE))
    decision = decide(status.position, None, DAY_ONE + timedelta(days=30))
    after = apply_decision(status, DEFAULT_SCHEDULE, decision)
    assert after.state is IpState.PAUSED and after.position == at(0, 1, DAY_ONE)


def test_custom_thresholds_apply() -> None:
    report = DayReport(day=DAY_ONE, sent=1000, delivered=970, bounced=30)
    assert decide(at(3, 1), report, DAY_ONE + timedelta(days=1)).rule is Rule.BOUNCE_HOLD
    strict = decide(
        at(3, 1), report, DAY_ONE + timedelta(days=1), step_back_bounce_rate=0.025, max_bounce_rate_to_advance=0.01
    )
    assert strict.rule is Rule.BOUNCE_STEP_BACK


def test_report_must_be_for_the_day_before() -> None:
    with pytest.raises(ValueError):
        decide(at(0), healthy(DAY_ONE, 50), DAY_ONE + timedelta(days=2))


def test_apply_refuses_a_decision_taken_on_another_position() -> None:
    decision = decide(at(1, 2), healthy(DAY_ONE, 200), DAY_ONE + timedelta(days=1))
    with pytest.raises(ValueError):
        apply_decision(IpStatus(IpState.WARMING, at(1, 3)), DEFAULT_SCHEDULE, decision)


def test_custom_schedule_is_followed() -> None:
    schedule = WarmupSchedule("fast", (WarmupStep(100, 2), WarmupStep(1000, 3), WarmupStep(5000, None)))
    position = WarmupPosition.start()
    quotas = []
    today = DAY_ONE
    for _ in range(8):
        quota = daily_quota(schedule, position)
        quotas.append(quota)
        today += timedelta(days=1)
        position = decide_day(
            today=today, schedule=schedule, position=position, yesterday=healthy(today - timedelta(days=1), quota)
        ).position_after
    assert quotas == [100, 100, 1000, 1000, 1000, 5000, 5000, 5000]


def test_idle_days_in_between_do_not_advance_warmup() -> None:
    """Sending every other day: quotas follow sending days, not calendar days."""
    status = IpStatus.registered()
    today = DAY_ONE
    sending_day_quotas = []
    for calendar_day in range(28):
        quota = daily_quota(DEFAULT_SCHEDULE, status.position)
        sends = calendar_day % 2 == 0
        if sends:
            sending_day_quotas.append(quota)
        report = healthy(today, quota) if sends else DayReport(day=today)
        today += timedelta(days=1)
        status = apply_decision(
            status,
            DEFAULT_SCHEDULE,
            decide_day(today=today, schedule=DEFAULT_SCHEDULE, position=status.position, yesterday=report),
        )
    assert sending_day_quotas == [50] * 7 + [200] * 7
