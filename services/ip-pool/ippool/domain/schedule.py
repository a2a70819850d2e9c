"""Warmup schedules and an IP's position in one.

Public API:
    WarmupStep(daily_volume, sending_days)          -- `sending_days` healthy sending days at `daily_volume`
    WarmupSchedule(schedule_id, steps)              -- validated on construction (InvalidArgument naming fields)
    DEFAULT_SCHEDULE                                -- 50, 200, 500, 1 500, 5 000 for 7 days each, then 10 000
    TenantSchedule(schedule, tenant_id, display_name, built_in=False, create_time=None)
    BUILT_IN_SCHEDULE                               -- DEFAULT_SCHEDULE as every tenant sees it
    WarmupPosition(step_index, sending_day_in_step, last_sending_day)
    WarmupPosition.start()                          -- where a newly registered IP begins: step 0, sending day 1
    daily_quota(schedule, position) -> int
    is_warm(schedule, position) -> bool             -- True on the last (open-ended) step
    advance(schedule, position) -> WarmupPosition   -- one more healthy sending day counted
    step_back(schedule, position, steps=1) -> WarmupPosition
    restart(position) -> WarmupPosition             -- back to step 0, sending day 1
    project_daily_quotas(schedule, position, days) -> tuple[int, ...]

Counting: warmup counts *sending* days, not calendar days. `sending_day_in_step` is 1-based: the day the IP is
on now. A healthy sending day moves it to the next day of the step, or to day 1 of the next step once the
step's `sending_days` are done. The last step is open-ended (reaching it means WARM); its `sending_days` is
ignored (None in the default) and its day counter keeps counting warm sending days, which rotation uses.
Stepping back lands on day 1 of the lower step: the IP must prove that volume again before climbing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache

from libs.errors import Violations

MAX_STEPS = 100
MAX_DAILY_VOLUME = 100_000_000
MAX_STEP_DAYS = 365


@dataclass(frozen=True)
class WarmupStep:
    """`daily_volume` messages per day for `sending_days` healthy sending days (None: open-ended)."""

    daily_volume: int
    sending_days: int | None


@dataclass(frozen=True)
class WarmupSchedule:
    """An ordered ramp of steps; the last one is the cruise volume of a warm IP."""

    schedule_id: str
    steps: tuple[WarmupStep, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        _validate_schedule(self)

    @property
    def last_step_index(self) -> int:
        return len(self.steps) - 1

    @property
    def warm_daily_volume(self) -> int:
        return self.steps[-1].daily_volume


def _validate_schedule(schedule: WarmupSchedule) -> None:
    """Reject the whole schedule at once, naming every bad field (`steps[2].daily_volume`, ...)."""
    problems = Violations()
    if not isinstance(schedule.schedule_id, str) or not schedule.schedule_id.strip():
        problems.add("schedule_id", "a schedule needs a non-empty id")
    steps = schedule.steps
    if not steps:
        problems.add("steps", "a schedule needs at least one step")
    elif len(steps) > MAX_STEPS:
        problems.add("steps", f"at most {MAX_STEPS} steps")
    previous_volume = 0
    for index, step in enumerate(steps):
        is_last = index == len(steps) - 1
        volume, days = step.daily_volume, step.sending_days
        if not isinstance(volume, int) or isinstance(volume, bool) or not 0 < volume <= MAX_DAILY_VOLUME:
            problems.add(f"steps[{index}].daily_volume", f"must be a whole number from 1 to {MAX_DAILY_VOLUME}")
        elif volume < previous_volume:
            problems.add(
                f"steps[{index}].daily_volume",
                f"must not be lower than the previous step's {previous_volume}: a warmup only ramps up",
            )
        else:
            previous_volume = volume
        if days is None and is_last:
            continue
        if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_STEP_DAYS:
            hint = "" if is_last else " (only the last step may be open-ended)"
            problems.add(f"steps[{index}].sending_days", f"must be a whole number from 1 to {MAX_STEP_DAYS}{hint}")
    problems.raise_if_any()


DEFAULT_SCHEDULE = WarmupSchedule(
    schedule_id="default",
    steps=(
        WarmupStep(daily_volume=50, sending_days=7),
        WarmupStep(daily_volume=200, sending_days=7),
        WarmupStep(daily_volume=500, sending_days=7),
        WarmupStep(daily_volume=1_500, sending_days=7),
        WarmupStep(daily_volume=5_000, sending_days=7),
        WarmupStep(daily_volume=10_000, sending_days=None),
    ),
)


@dataclass(frozen=True)
class TenantSchedule:
    """A schedule as a tenant has it: its own (immutable once created, IPs hold positions in it) or the
    built-in default that every tenant shares."""

    schedule: WarmupSchedule
    tenant_id: str
    """"" for the built-in default schedule."""
    display_name: str
    built_in: bool = False
    create_time: datetime | None = None


BUILT_IN_SCHEDULE = TenantSchedule(
    schedule=DEFAULT_SCHEDULE, tenant_id="", display_name="Default warmup (50 to 10 000 per day)", built_in=True
)


@dataclass(frozen=True)
class WarmupPosition:
    """Where an IP stands in its schedule; exactly the warmup fields the IP record persists."""

    step_index: int = 0
    sending_day_in_step: int = 1
    last_sending_day: date | None = None

    @classmethod
    def start(cls) -> WarmupPosition:
        return cls()


def _check_position(schedule: WarmupSchedule, position: WarmupPosition) -> None:
    if not 0 <= position.step_index <= schedule.last_step_index or position.sending_day_in_step < 1:
        raise ValueError(f"{position} does not fit schedule {schedule.schedule_id!r}")


def daily_quota(schedule: WarmupSchedule, position: WarmupPosition) -> int:
    """Messages the IP may send on a day spent at `position`."""
    _check_position(schedule, position)
    return schedule.steps[position.step_index].daily_volume


def is_warm(schedule: WarmupSchedule, position: WarmupPosition) -> bool:
    """True once the IP sits on the last, open-ended step."""
    _check_position(schedule, position)
    return position.step_index == schedule.last_step_index


def advance(schedule: WarmupSchedule, position: WarmupPosition) -> WarmupPosition:
    """Count one more healthy sending day; move to the next step when this one is done."""
    _check_position(schedule, position)
    step = schedule.steps[position.step_index]
    if step.sending_days is None or position.step_index == schedule.last_step_index:
        return replace(position, sending_day_in_step=position.sending_day_in_step + 1)
    if position.sending_day_in_step < step.sending_days:
        return replace(position, sending_day_in_step=position.sending_day_in_step + 1)
    return replace(position, step_index=position.step_index + 1, sending_day_in_step=1)


def step_back(schedule: WarmupSchedule, position: WarmupPosition, steps: int = 1) -> WarmupPosition:
    """Go down `steps` steps (not below step 0) and start that step again from its first day."""
    _check_position(schedule, position)
    if steps < 0:
        raise ValueError("steps must be >= 0")
    return replace(position, step_index=max(0, position.step_index - steps), sending_day_in_step=1)


def restart(position: WarmupPosition) -> WarmupPosition:
    """Back to the very first day of the schedule, keeping the last sending day on record."""
    return replace(position, step_index=0, sending_day_in_step=1)


def project_daily_quotas(schedule: WarmupSchedule, position: WarmupPosition, days: int) -> tuple[int, ...]:
    """Quotas of the next `days` days (tomorrow first), assuming today and every later day is healthy."""
    _check_position(schedule, position)
    if days < 0:
        raise ValueError("days must be >= 0")
    return _projection(schedule, position.step_index, position.sending_day_in_step, days)


@lru_cache(maxsize=4096)
def _projection(schedule: WarmupSchedule, step_index: int, day_in_step: int, days: int) -> tuple[int, ...]:
    """Cached: a fleet holds few distinct (schedule, step, day) triples, and allocation asks per IP."""
    position = WarmupPosition(step_index=step_index, sending_day_in_step=day_in_step)
    quotas: list[int] = []
    for _ in range(days):
        position = advance(schedule, position)
        quotas.append(schedule.steps[position.step_index].daily_volume)
    return tuple(quotas)
