"""Warmup schedules: the default, validation of custom ones, position moves and projections."""

from __future__ import annotations

import pytest

from ippool.domain.schedule import (
    DEFAULT_SCHEDULE,
    WarmupPosition,
    WarmupSchedule,
    WarmupStep,
    advance,
    daily_quota,
    is_warm,
    project_daily_quotas,
    restart,
    step_back,
)
from libs.errors import InvalidArgument


def test_default_schedule_is_50_to_10_000_in_six_steps() -> None:
    assert [(s.daily_volume, s.sending_days) for s in DEFAULT_SCHEDULE.steps] == [
        (50, 7),
        (200, 7),
        (500, 7),
        (1500, 7),
        (5000, 7),
        (10000, None),
    ]
    assert DEFAULT_SCHEDULE.warm_daily_volume == 10000


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ((), "steps"),
        ((WarmupStep(0, 7), WarmupStep(100, None)), "steps[0].daily_volume"),
        ((WarmupStep(-5, 7), WarmupStep(100, None)), "steps[0].daily_volume"),
        ((WarmupStep(50, 0), WarmupStep(100, None)), "steps[0].sending_days"),
        ((WarmupStep(50, None), WarmupStep(100, None)), "steps[0].sending_days"),
        ((WarmupStep(500, 7), WarmupStep(100, None)), "steps[1].daily_volume"),
        ((WarmupStep(50, 7), WarmupStep(True, None)), "steps[1].daily_volume"),  # type: ignore[arg-type]
        ((WarmupStep(50, 7), WarmupStep(1.5, None)), "steps[1].daily_volume"),  # type: ignore[arg-type]
    ],
)
def test_bad_schedules_are_refused_naming_the_field(steps: tuple[WarmupStep, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        WarmupSchedule("custom", steps)
    assert field in [v.field for v in caught.value.violations]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        WarmupSchedule("", (WarmupStep(0, 0), WarmupStep(10, -1), WarmupStep(20, None)))
    assert [v.field for v in caught.value.violations] == [
        "schedule_id",
        "steps[0].daily_volume",
        "steps[0].sending_days",
        "steps[1].sending_days",
    ]


def test_last_step_may_have_a_day_count_and_stays_open_ended() -> None:
    schedule = WarmupSchedule("s", (WarmupStep(10, 1), WarmupStep(20, 2)))
    position = WarmupPosition(step_index=1, sending_day_in_step=2)
    assert advance(schedule, position) == WarmupPosition(step_index=1, sending_day_in_step=3)


def test_equal_volumes_are_allowed_and_one_step_is_immediately_warm() -> None:
    WarmupSchedule("flat", (WarmupStep(100, 3), WarmupStep(100, None)))
    single = WarmupSchedule("single", (WarmupStep(1000, None),))
    assert is_warm(single, WarmupPosition.start())


def test_moves() -> None:
    position = WarmupPosition(step_index=2, sending_day_in_step=7)
    assert advance(DEFAULT_SCHEDULE, position) == WarmupPosition(step_index=3, sending_day_in_step=1)
    assert step_back(DEFAULT_SCHEDULE, position) == WarmupPosition(step_index=1, sending_day_in_step=1)
    assert step_back(DEFAULT_SCHEDULE, position, 5) == WarmupPosition(step_index=0, sending_day_in_step=1)
    assert restart(position) == WarmupPosition()


def test_position_outside_the_schedule_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        daily_quota(DEFAULT_SCHEDULE, WarmupPosition(step_index=6))


def test_projection_starts_tomorrow_and_assumes_healthy_days() -> None:
    assert project_daily_quotas(DEFAULT_SCHEDULE, WarmupPosition(step_index=0, sending_day_in_step=6), 4) == (
        50,
        200,
        200,
        200,
    )
    assert project_daily_quotas(DEFAULT_SCHEDULE, WarmupPosition(step_index=5), 3) == (10000, 10000, 10000)
    assert project_daily_quotas(DEFAULT_SCHEDULE, WarmupPosition.start(), 0) == ()
