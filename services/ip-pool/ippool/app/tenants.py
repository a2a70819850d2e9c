"""Use cases on tenants: the companies that send, each with its time zone and sending window."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ippool.adapters.tables import tenants
from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size

TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
UPDATABLE_FIELDS = ("display_name", "time_zone", "sending_window_start_hour", "sending_window_end_hour")


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str = ""
    time_zone: str = "UTC"
    sending_window_start_hour: int = 0
    sending_window_end_hour: int = 24
    create_time: datetime | None = None


def validate_tenant_id(value: str, field: str = "tenant_id") -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not TENANT_ID.match(value):
        raise InvalidArgument(field, "must be 3-63 lowercase letters, digits or '-', starting with a letter")
    return value


def _validate(tenant: Tenant) -> None:
    v = Violations()
    try:
        validate_tenant_id(tenant.tenant_id, "tenant.tenant_id")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    try:
        zoneinfo.ZoneInfo(tenant.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        v.add("tenant.time_zone", f"{tenant.time_zone!r} is not an IANA time zone (e.g. Europe/Paris)")
    start, end = tenant.sending_window_start_hour, tenant.sending_window_end_hour
    if not 0 <= start <= 23:
        v.add("tenant.sending_window_start_hour", "must be 0-23")
    if not 1 <= end <= 24 or end <= start:
        v.add("tenant.sending_window_end_hour", "must be 1-24 and after the start hour")
    v.raise_if_any()


class TenantUseCases:
    def __init__(self, db: Database, now: callable):  # type: ignore[valid-type]
        self._db = db
        self._now = now

    def create(self, caller: Caller, tenant: Tenant) -> Tenant:
        caller.require_admin()
        tenant = replace(tenant, display_name=tenant.display_name or tenant.tenant_id, create_time=self._now())
        _validate(tenant)
        try:
            with self._db.transaction() as session:
                session.execute(tenants.insert().values(**tenant.__dict__))
        except IntegrityError:
            raise AlreadyExists("tenant", tenant.tenant_id) from None
        return tenant

    def ensure(self, tenant: Tenant) -> None:
        """Creates the tenant unless it exists (seeding at start-up)."""
        _validate(tenant)
        with self._db.transaction() as session:
            if session.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant.tenant_id)).first():
                return
            session.execute(
                tenants.insert().values(
                    **replace(
                        tenant, display_name=tenant.display_name or tenant.tenant_id, create_time=self._now()
                    ).__dict__
                )
            )

    def get(self, caller: Caller, tenant_id: str) -> Tenant:
        validate_tenant_id(tenant_id)
        caller.require_read(tenant_id)
        return self.load(tenant_id)

    def load(self, tenant_id: str) -> Tenant:
        with self._db.transaction() as session:
            row = session.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id)).first()
        if row is None:
            raise NotFound("tenant", tenant_id)
        return Tenant(**row._mapping)

    def list(self, caller: Caller, size: int, token: str) -> tuple[list[Tenant], str]:
        limit = page_size(size)
        query = sa.select(tenants).order_by(tenants.c.tenant_id).limit(limit + 1)
        if not caller.is_admin:
            query = query.where(tenants.c.tenant_id == caller.tenant_id)
        position = decode_token(token)
        if position:
            query = query.where(tenants.c.tenant_id > str(position.get("after", "")))
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        found = [Tenant(**r._mapping) for r in rows[:limit]]
        next_token = encode_token({"after": found[-1].tenant_id}) if len(rows) > limit else ""
        return found, next_token

    def update(self, caller: Caller, tenant: Tenant, fields: list[str]) -> Tenant:
        validate_tenant_id(tenant.tenant_id, "tenant.tenant_id")
        caller.require_write(tenant.tenant_id)
        unknown = [f for f in fields if f not in UPDATABLE_FIELDS]
        if unknown:
            raise InvalidArgument("update_mask", f"cannot update {', '.join(unknown)}; updatable: {UPDATABLE_FIELDS}")
        with self._db.transaction() as session:
            row = session.execute(
                sa.select(tenants).where(tenants.c.tenant_id == tenant.tenant_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound("tenant", tenant.tenant_id)
            current = Tenant(**row._mapping)
            changes = {f: getattr(tenant, f) for f in (fields or UPDATABLE_FIELDS)}
            updated = replace(current, **changes)
            _validate(updated)
            session.execute(tenants.update().where(tenants.c.tenant_id == tenant.tenant_id).values(**changes))
        return updated
