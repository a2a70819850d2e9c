"""Use cases on warmup schedules (the built-in default and each tenant's own), and finding an IP's schedule.

A schedule is immutable once created (IPs hold positions in it); a tenant makes a new one instead. The
built-in "default" (`domain.schedule.DEFAULT_SCHEDULE`) belongs to every tenant and cannot be redefined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ippool.app.page_tokens import after_key, token_after
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.ip import Ip
from ippool.domain.registration import validate_name, validate_tenant_id
from ippool.domain.schedule import (
    BUILT_IN_SCHEDULE,
    DEFAULT_SCHEDULE,
    TenantSchedule,
    WarmupSchedule,
    WarmupStep,
)
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import Aborted, AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from libs.pagination import page_size

MAX_DISPLAY_NAME = 200


def find_schedule(uow: IpPoolUnitOfWork, tenant_id: str, schedule_id: str) -> WarmupSchedule | None:
    """The built-in default, or the tenant's own schedule of that id."""
    if schedule_id == DEFAULT_SCHEDULE.schedule_id:
        return DEFAULT_SCHEDULE
    found = uow.schedules.get(tenant_id, schedule_id)
    return found.schedule if found else None


def schedules_of(uow: IpPoolUnitOfWork, ips: Iterable[Ip]) -> dict[tuple[str, str], WarmupSchedule]:
    """The schedule of each IP by (tenant_id, schedule_id), in one query at most."""
    keys = {(ip.tenant_id, ip.schedule_id) for ip in ips}
    stored = uow.schedules.get_many(key for key in keys if key[1] != DEFAULT_SCHEDULE.schedule_id)
    found: dict[tuple[str, str], WarmupSchedule] = {}
    for key in keys:
        if key[1] == DEFAULT_SCHEDULE.schedule_id:
            found[key] = DEFAULT_SCHEDULE
        elif key in stored:
            found[key] = stored[key].schedule
        else:  # schedules are never deleted: this is a broken database
            raise RuntimeError(f"schedule {key[1]!r} of tenant {key[0]!r} is missing")
    return found


def schedule_of(uow: IpPoolUnitOfWork, ip: Ip) -> WarmupSchedule:
    return schedules_of(uow, [ip])[(ip.tenant_id, ip.schedule_id)]


@dataclass(frozen=True)
class StepInput:
    daily_volume: int
    sending_days: int
    """0 means open-ended (allowed on the last step only)."""


class ScheduleUseCases:
    def __init__(self, unit_of_work: Callable[[], IpPoolUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def create(
        self, caller: Caller, *, tenant_id: str, schedule_id: str, display_name: str, steps: list[StepInput]
    ) -> TenantSchedule:
        problems = Violations()
        try:
            validate_tenant_id(tenant_id)
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        try:
            validate_name(schedule_id, "schedule.schedule_id")
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        if schedule_id == DEFAULT_SCHEDULE.schedule_id:
            problems.add("schedule.schedule_id", "'default' is the built-in schedule; choose another id")
        if len(display_name) > MAX_DISPLAY_NAME:
            problems.add("schedule.display_name", f"at most {MAX_DISPLAY_NAME} characters")
        schedule = None
        try:
            schedule = WarmupSchedule(
                schedule_id or "-",
                tuple(WarmupStep(s.daily_volume, s.sending_days or None) for s in steps),
            )
        except InvalidArgument as error:
            problems.items.extend(
                FieldViolation(f"schedule.{v.field}", v.description)
                for v in error.violations
                if v.field != "schedule_id"
            )
        problems.raise_if_any()
        assert schedule is not None
        caller.require_write(tenant_id)
        created = TenantSchedule(
            schedule=schedule,
            tenant_id=tenant_id,
            display_name=display_name or schedule_id,
            create_time=self._clock.now(),
        )
        try:
            with self._uow() as uow:
                if uow.tenants.get(tenant_id) is None:
                    raise NotFound("tenant", tenant_id)
                if uow.schedules.get(tenant_id, schedule_id) is not None:
                    raise AlreadyExists("schedule", schedule_id, "schedules are immutable: create one with another id")
                uow.schedules.add(created)
                uow.commit()
        except Aborted:
            raise AlreadyExists("schedule", schedule_id) from None
        return created

    def get(self, caller: Caller, tenant_id: str, schedule_id: str) -> TenantSchedule:
        validate_tenant_id(tenant_id)
        with self._uow() as uow:
            if uow.tenants.get(tenant_id) is None or not caller.may_read(tenant_id):
                # Another tenant's schedules answer exactly like those of a tenant that does not exist.
                raise NotFound("tenant", tenant_id)
            if schedule_id == DEFAULT_SCHEDULE.schedule_id:
                return BUILT_IN_SCHEDULE
            found = uow.schedules.get(tenant_id, schedule_id)
        if found is None:
            raise NotFound("schedule", schedule_id)
        return found

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[TenantSchedule], str]:
        """The built-in default first, then the tenant's own by id."""
        validate_tenant_id(tenant_id)
        caller.require_read(tenant_id)
        limit = page_size(size)
        after = after_key(token)
        with self._uow() as uow:
            if uow.tenants.get(tenant_id) is None:
                raise NotFound("tenant", tenant_id)
            found: list[TenantSchedule] = [BUILT_IN_SCHEDULE] if after is None else []
            found += uow.schedules.list(tenant_id, after=after or "", limit=limit + 1 - len(found))
        page = found[:limit]
        last = "" if page and page[-1].built_in else (page[-1].schedule.schedule_id if page else "")
        return page, token_after(last) if len(found) > limit else ""
