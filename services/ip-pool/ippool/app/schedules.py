"""Use cases on warmup schedules: the built-in default and each tenant's own.

A schedule is immutable once created (IPs hold positions in it); a tenant makes a new one instead. The
built-in "default" (the brief's 50, 200, 500, 1 500, 5 000 for a week each, then 10 000) belongs to every
tenant and cannot be redefined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from ippool.adapters.store import Store
from ippool.app.records import ScheduleRecord
from ippool.domain.registration import validate_name, validate_tenant_id
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupSchedule, WarmupStep
from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size

BUILT_IN = ScheduleRecord(
    schedule=DEFAULT_SCHEDULE, tenant_id="", display_name="Default warmup (50 to 10 000 per day)", built_in=True
)
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class StepInput:
    daily_volume: int
    sending_days: int
    """0 means open-ended (allowed on the last step only)."""


class ScheduleUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def create(
        self, caller: Caller, *, tenant_id: str, schedule_id: str, display_name: str, steps: list[StepInput]
    ) -> ScheduleRecord:
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
        record = ScheduleRecord(
            schedule=schedule, tenant_id=tenant_id, display_name=display_name or schedule_id, create_time=self._now()
        )
        try:
            with self._db.transaction() as session:
                store = Store(session)
                if store.tenant(tenant_id) is None:
                    raise NotFound("tenant", tenant_id)
                if store.schedule(tenant_id, schedule_id) is not None:
                    raise AlreadyExists("schedule", schedule_id, "schedules are immutable: create one with another id")
                store.insert_schedule(record)
        except IntegrityError:
            raise AlreadyExists("schedule", schedule_id) from None
        return record

    def get(self, caller: Caller, tenant_id: str, schedule_id: str) -> ScheduleRecord:
        validate_tenant_id(tenant_id)
        caller.require_read(tenant_id)
        with self._db.transaction() as session:
            store = Store(session)
            if store.tenant(tenant_id) is None:
                raise NotFound("tenant", tenant_id)
            if schedule_id == DEFAULT_SCHEDULE.schedule_id:
                return BUILT_IN
            found = store.schedule(tenant_id, schedule_id)
        if found is None:
            raise NotFound("schedule", schedule_id)
        return found

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[ScheduleRecord], str]:
        """The built-in default first, then the tenant's own by id."""
        validate_tenant_id(tenant_id)
        caller.require_read(tenant_id)
        limit = page_size(size)
        position = decode_token(token)
        after = str(position.get("after", "")) if position else ""
        with self._db.transaction() as session:
            store = Store(session)
            if store.tenant(tenant_id) is None:
                raise NotFound("tenant", tenant_id)
            found: list[ScheduleRecord] = [] if position else [BUILT_IN]
            found += store.list_schedules(tenant_id, after=after, limit=limit + 1 - len(found))
        page = found[:limit]
        last = "" if page and page[-1].built_in else (page[-1].schedule.schedule_id if page else "")
        next_token = encode_token({"after": last}) if len(found) > limit else ""
        return page, next_token
