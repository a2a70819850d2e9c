"""Use cases on tenants: the companies that send, each with its policy (time zone and sending window, health
gates, provider shares, rotation, default schedule).

Updates name the fields they change (`changes`: field path -> value, as an AIP field mask names them, e.g.
"time_zone", "health.max_bounce_rate_to_advance", or "rotation" for the whole part); a value of None puts the
field back to its default. The domain validates the resulting policy as a whole; field names in errors are
the request's (`tenant.health.min_sample`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from ippool.adapters.store import Store
from ippool.app.records import TenantRecord
from ippool.app.shared import resolve_schedule
from ippool.domain.health import HealthPolicy
from ippool.domain.providers import ProviderShares
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import RotationPolicy
from ippool.domain.sending_day import SendingWindow
from ippool.domain.tenant import TenantPolicy
from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size

TOP_FIELDS = (
    "display_name",
    "time_zone",
    "sending_window_start_hour",
    "sending_window_end_hour",
    "default_schedule_id",
)
PARTS: dict[str, type] = {"health": HealthPolicy, "provider_shares": ProviderShares, "rotation": RotationPolicy}
PART_FIELDS = {part: tuple(f.name for f in fields(cls)) for part, cls in PARTS.items()}
UPDATABLE_PATHS = frozenset(
    {*TOP_FIELDS, *PARTS, *(f"{part}.{name}" for part, names in PART_FIELDS.items() for name in names)}
)
_WINDOW_FIELDS = {
    "time_zone": "time_zone",
    "start_hour": "sending_window_start_hour",
    "end_hour": "sending_window_end_hour",
}
MAX_DISPLAY_NAME = 200


def check_paths(paths: list[str]) -> None:
    unknown = sorted(p for p in paths if p not in UPDATABLE_PATHS)
    if unknown:
        raise InvalidArgument(
            "update_mask",
            f"cannot update {', '.join(unknown)}; updatable: {', '.join((*TOP_FIELDS, *PARTS))} and the fields of "
            f"{', '.join(PARTS)} (e.g. health.min_sample)",
        )


def _attempt(problems: Violations, prefix: Callable[[str], str], build: Callable[[], Any]) -> Any:
    try:
        return build()
    except InvalidArgument as error:
        for violation in error.violations:
            problems.add(prefix(violation.field), violation.description)
        return None


def apply_changes(record: TenantRecord, changes: dict[str, Any]) -> TenantRecord:
    """The tenant with `changes` applied, validated whole (InvalidArgument naming every bad field)."""
    policy = record.policy
    display_name = record.display_name
    schedule_id = policy.schedule_id
    window: dict[str, Any] = {
        "time_zone": policy.window.time_zone,
        "start_hour": policy.window.start_hour,
        "end_hour": policy.window.end_hour,
    }
    parts: dict[str, dict[str, Any]] = {
        "health": {f.name: getattr(policy.health, f.name) for f in fields(HealthPolicy)},
        "provider_shares": asdict(policy.provider_shares),
        "rotation": asdict(policy.rotation),
    }
    defaults = {part: cls() for part, cls in PARTS.items()}

    def set_part_field(part: str, name: str, value: Any) -> None:
        parts[part][name] = getattr(defaults[part], name) if value is None else value

    for path, value in changes.items():
        part, _, name = path.partition(".")
        if path == "display_name":
            display_name = value or record.tenant_id
        elif path == "time_zone":
            window["time_zone"] = value or "UTC"
        elif path == "sending_window_start_hour":
            window["start_hour"] = value or 0
        elif path == "sending_window_end_hour":
            window["end_hour"] = value or 24
        elif path == "default_schedule_id":
            schedule_id = value or "default"
        elif part in PARTS and not name:
            for field_name in PART_FIELDS[part]:
                set_part_field(part, field_name, (value or {}).get(field_name))
        elif part in PARTS and name in PART_FIELDS[part]:
            set_part_field(part, name, value)
        else:
            check_paths([path])

    problems = Violations()
    if len(display_name) > MAX_DISPLAY_NAME:
        problems.add("tenant.display_name", f"at most {MAX_DISPLAY_NAME} characters")
    built_window = _attempt(problems, lambda f: f"tenant.{_WINDOW_FIELDS.get(f, f)}", lambda: SendingWindow(**window))
    built = {
        part: _attempt(
            problems, lambda f, part=part: f"tenant.{part}.{f}", lambda part=part: PARTS[part](**parts[part])
        )
        for part in PARTS
    }
    problems.raise_if_any()
    new_policy = _attempt(
        problems,
        lambda f: f"tenant.{f}",
        lambda: TenantPolicy(
            tenant_id=record.tenant_id,
            window=built_window,
            health=built["health"],
            provider_shares=built["provider_shares"],
            rotation=built["rotation"],
            schedule_id=schedule_id,
        ),
    )
    problems.raise_if_any()
    return replace(record, display_name=display_name, policy=new_policy)


class TenantUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def create(self, caller: Caller, tenant_id: str, changes: dict[str, Any]) -> TenantRecord:
        caller.require_admin()
        validate_tenant_id(tenant_id, "tenant.tenant_id")
        check_paths(list(changes))
        now = self._now()
        record = apply_changes(
            TenantRecord(tenant_id, tenant_id, TenantPolicy(tenant_id), create_time=now, update_time=now), changes
        )
        if record.policy.schedule_id != "default":
            raise InvalidArgument("tenant.default_schedule_id", "a new tenant has only the built-in 'default' schedule")
        try:
            with self._db.transaction() as session:
                store = Store(session)
                if store.tenant(tenant_id) is not None:
                    raise AlreadyExists("tenant", tenant_id)
                store.insert_tenant(record)
        except IntegrityError:
            raise AlreadyExists("tenant", tenant_id) from None
        return record

    def ensure(self, tenant_id: str) -> None:
        """Creates the tenant with default policies unless it exists (seeding at start-up)."""
        validate_tenant_id(tenant_id)
        now = self._now()
        try:
            with self._db.transaction() as session:
                store = Store(session)
                if store.tenant(tenant_id) is None:
                    store.insert_tenant(
                        TenantRecord(tenant_id, tenant_id, TenantPolicy(tenant_id), create_time=now, update_time=now)
                    )
        except IntegrityError:
            pass  # another replica seeded it at the same moment

    def get(self, caller: Caller, tenant_id: str) -> TenantRecord:
        validate_tenant_id(tenant_id)
        caller.require_read(tenant_id)
        return self.load(tenant_id)

    def load(self, tenant_id: str) -> TenantRecord:
        with self._db.transaction() as session:
            found = Store(session).tenant(tenant_id)
        if found is None:
            raise NotFound("tenant", tenant_id)
        return found

    def list(self, caller: Caller, size: int, token: str) -> tuple[list[TenantRecord], str]:
        limit = page_size(size)
        position = decode_token(token) or {}
        with self._db.transaction() as session:
            found = Store(session).list_tenants(
                only=None if caller.is_admin else caller.tenant_id,
                after=str(position.get("after", "")),
                limit=limit + 1,
            )
        page = found[:limit]
        return page, encode_token({"after": page[-1].tenant_id}) if len(found) > limit else ""

    def update(self, caller: Caller, tenant_id: str, changes: dict[str, Any]) -> TenantRecord:
        validate_tenant_id(tenant_id, "tenant.tenant_id")
        check_paths(list(changes))
        caller.require_write(tenant_id)
        with self._db.transaction() as session:
            store = Store(session)
            current = store.tenant(tenant_id, lock=True)
            if current is None:
                raise NotFound("tenant", tenant_id)
            updated = replace(apply_changes(current, changes), update_time=self._now())
            if resolve_schedule(store, tenant_id, updated.policy.schedule_id) is None:
                raise InvalidArgument(
                    "tenant.default_schedule_id", f"unknown schedule {updated.policy.schedule_id!r} for {tenant_id!r}"
                )
            store.update_tenant(updated)
        return updated
