"""Use cases on tenants: the companies that send, each with its policy (time zone and sending window, health
gates, provider shares, rotation, default schedule).

Updates name the fields they change (`changes`: field path -> value, as an AIP field mask names them, e.g.
"time_zone", "health.max_bounce_rate_to_advance", or "rotation" for the whole part); a value of None puts the
field back to its default. The domain validates the resulting policy as a whole; field names in errors are
the request's (`tenant.health.min_sample`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from ippool.app.page_tokens import after_key, token_after
from ippool.app.schedules import find_schedule
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.health import HealthPolicy
from ippool.domain.providers import ProviderShares
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import RotationPolicy
from ippool.domain.sending_day import SendingWindow
from ippool.domain.tenant import Tenant, TenantPolicy
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import page_size

TOP_FIELDS = (
    "display_name",
    "time_zone",
    "sending_window_start_hour",
    "sending_window_end_hour",
    "default_schedule_id",
)
# The policy parts a mask may name field by field: TenantPolicy's attributes, each a domain dataclass whose
# fields are the updatable paths (`health.min_sample`), so a new gate is added in the domain alone.
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


def apply_changes(tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    """The tenant with `changes` applied, validated whole (InvalidArgument naming every bad field)."""
    policy = tenant.policy
    display_name = tenant.display_name
    schedule_id = policy.schedule_id
    window: dict[str, Any] = {
        "time_zone": policy.window.time_zone,
        "start_hour": policy.window.start_hour,
        "end_hour": policy.window.end_hour,
    }
    parts: dict[str, dict[str, Any]] = {
        part: {name: getattr(getattr(policy, part), name) for name in PART_FIELDS[part]} for part in PARTS
    }
    defaults = {part: cls() for part, cls in PARTS.items()}

    def set_part_field(part: str, name: str, value: Any) -> None:
        parts[part][name] = getattr(defaults[part], name) if value is None else value

    for path, value in changes.items():
        part, _, name = path.partition(".")
        if path == "display_name":
            display_name = value or tenant.tenant_id
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
            tenant_id=tenant.tenant_id,
            window=built_window,
            schedule_id=schedule_id,
            **built,
        ),
    )
    problems.raise_if_any()
    return replace(tenant, display_name=display_name, policy=new_policy)


def visible_tenant(uow: IpPoolUnitOfWork, caller: Caller, tenant_id: str) -> Tenant:
    """The tenant, if the caller may see it; another tenant answers exactly like a missing one."""
    found = uow.tenants.get(tenant_id) if caller.may_read(tenant_id) else None
    if found is None:
        raise NotFound("tenant", tenant_id)
    return found


class TenantUseCases:
    def __init__(self, unit_of_work: Callable[[], IpPoolUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def create(self, caller: Caller, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        caller.require_admin()
        validate_tenant_id(tenant_id, "tenant.tenant_id")
        check_paths(list(changes))
        now = self._clock.now()
        tenant = apply_changes(Tenant(tenant_id, tenant_id, TenantPolicy(tenant_id), now, now), changes)
        if tenant.policy.schedule_id != "default":
            raise InvalidArgument("tenant.default_schedule_id", "a new tenant has only the built-in 'default' schedule")
        try:
            with self._uow() as uow:
                if uow.tenants.get(tenant_id) is not None:
                    raise AlreadyExists("tenant", tenant_id)
                uow.tenants.add(tenant)
                uow.commit()
        except Aborted:
            raise AlreadyExists("tenant", tenant_id) from None
        return tenant

    def ensure(self, tenant_id: str) -> None:
        """Creates the tenant with default policies unless it exists (seeding at start-up)."""
        validate_tenant_id(tenant_id)
        now = self._clock.now()
        try:
            with self._uow() as uow:
                if uow.tenants.get(tenant_id) is None:
                    uow.tenants.add(Tenant(tenant_id, tenant_id, TenantPolicy(tenant_id), now, now))
                    uow.commit()
        except Aborted:
            pass  # another replica seeded it at the same moment

    def get(self, caller: Caller, tenant_id: str) -> Tenant:
        validate_tenant_id(tenant_id)
        with self._uow() as uow:
            return visible_tenant(uow, caller, tenant_id)

    def list(self, caller: Caller, size: int, token: str) -> tuple[list[Tenant], str]:
        limit = page_size(size)
        after = after_key(token) or ""
        with self._uow() as uow:
            found = uow.tenants.list(only=None if caller.is_admin else caller.tenant_id, after=after, limit=limit + 1)
        page = found[:limit]
        return page, token_after(page[-1].tenant_id) if len(found) > limit else ""

    def update(self, caller: Caller, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        validate_tenant_id(tenant_id, "tenant.tenant_id")
        check_paths(list(changes))
        caller.require_write(tenant_id)
        with self._uow() as uow:
            current = uow.tenants.get(tenant_id, lock=True)
            if current is None:
                raise NotFound("tenant", tenant_id)
            updated = replace(apply_changes(current, changes), update_time=self._clock.now())
            if find_schedule(uow, tenant_id, updated.policy.schedule_id) is None:
                raise InvalidArgument(
                    "tenant.default_schedule_id", f"unknown schedule {updated.policy.schedule_id!r} for {tenant_id!r}"
                )
            uow.tenants.save(updated)
            uow.commit()
        return updated
