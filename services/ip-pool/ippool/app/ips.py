"""Use cases on sending IPs: register, read, list, pause, resume, retire."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from emailengine.ippool.v1 import events_pb2
from ippool.adapters.tables import ips, tenants
from ippool.app.tenants import validate_tenant_id
from libs import audit, events
from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size

SERVICE = "ip-pool"
PURPOSES = ("marketing", "transactional")
STATES = ("WARMING", "WARM", "STANDBY", "PAUSED", "RETIRED")
DEFAULT_SCHEDULE_ID = "default"


@dataclass(frozen=True)
class IpRecord:
    address: str
    tenant_id: str
    purpose: str
    pool: str
    pmta_node: str
    helo_hostname: str
    state: str
    state_reason: str
    schedule_id: str
    step_index: int
    step_sending_days: int
    sending_day: int
    create_time: datetime
    update_time: datetime


def normalise_address(value: str, field: str = "address") -> str:
    """The canonical text of a sending IP, refusing addresses that can never send mail."""
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidArgument(field, f"{value!r} is not an IPv4 or IPv6 address") from None
    for flag, why in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_link_local, "a link-local address"),
    ):
        if flag:
            raise InvalidArgument(field, f"{ip} is {why} and cannot send mail")
    return str(ip)


class IpUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def register(
        self,
        caller: Caller,
        *,
        address: str,
        tenant_id: str,
        purpose: str,
        pool: str,
        pmta_node: str,
        helo_hostname: str,
        schedule_id: str,
    ) -> IpRecord:
        v = Violations()
        normalised = ""
        try:
            normalised = normalise_address(address)
        except InvalidArgument as exc:
            v.items.extend(exc.violations)
        try:
            validate_tenant_id(tenant_id)
        except InvalidArgument as exc:
            v.items.extend(exc.violations)
        purpose = purpose or "marketing"
        if purpose not in PURPOSES:
            v.add("purpose", f"must be one of {', '.join(PURPOSES)}")
        schedule_id = schedule_id or DEFAULT_SCHEDULE_ID
        if schedule_id != DEFAULT_SCHEDULE_ID:
            v.add("schedule_id", f"unknown schedule {schedule_id!r}")
        v.raise_if_any()
        caller.require_write(tenant_id)
        audit.note(tenant_id=tenant_id, resource=f"ips/{normalised}")
        now = self._now()
        record = IpRecord(
            address=normalised,
            tenant_id=tenant_id,
            purpose=purpose,
            pool=pool or "default",
            pmta_node=pmta_node,
            helo_hostname=helo_hostname,
            state="WARMING",
            state_reason="registered; warmup started",
            schedule_id=schedule_id,
            step_index=0,
            step_sending_days=0,
            sending_day=1,
            create_time=now,
            update_time=now,
        )
        try:
            with self._db.transaction() as session:
                if not session.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first():
                    raise InvalidArgument("tenant_id", f"unknown tenant {tenant_id!r}")
                session.execute(ips.insert().values(**record.__dict__))
                events.publish(
                    session,
                    source=SERVICE,
                    tenant_id=tenant_id,
                    event=events_pb2.IpRegistered(address=normalised, tenant_id=tenant_id, helo_hostname=helo_hostname),
                    now=now,
                )
        except IntegrityError:
            raise AlreadyExists("ip", normalised, "an address belongs to one tenant") from None
        return record

    def get(self, caller: Caller, address: str) -> IpRecord:
        record = self._load(normalise_address(address))
        caller.require_read(record.tenant_id)
        return record

    def _load(self, address: str) -> IpRecord:
        with self._db.transaction() as session:
            row = session.execute(sa.select(ips).where(ips.c.address == address)).first()
        if row is None:
            raise NotFound("ip", address)
        return IpRecord(**row._mapping)

    def list(self, caller: Caller, *, tenant_id: str, state: str, size: int, token: str) -> tuple[list[IpRecord], str]:
        tenant = caller.visible_tenant(tenant_id)
        if state and state not in STATES:
            raise InvalidArgument("state", f"must be one of {', '.join(STATES)}")
        limit = page_size(size)
        query = sa.select(ips).order_by(ips.c.address).limit(limit + 1)
        if tenant:
            query = query.where(ips.c.tenant_id == tenant)
        if state:
            query = query.where(ips.c.state == state)
        position = decode_token(token)
        if position:
            query = query.where(ips.c.address > str(position.get("after", "")))
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        found = [IpRecord(**r._mapping) for r in rows[:limit]]
        return found, encode_token({"after": found[-1].address}) if len(rows) > limit else ""

    def change_state(self, caller: Caller, address: str, target: str, reason: str) -> IpRecord:
        normalised = normalise_address(address)
        with self._db.transaction() as session:
            row = session.execute(sa.select(ips).where(ips.c.address == normalised).with_for_update()).first()
            if row is None:
                raise NotFound("ip", normalised)
            record = IpRecord(**row._mapping)
            caller.require_write(record.tenant_id)
            audit.note(tenant_id=record.tenant_id)
            if record.state == "RETIRED":
                raise FailedPrecondition(f"ip {normalised} is retired")
            if target == "RESUME":
                if record.state != "PAUSED":
                    raise FailedPrecondition(f"ip {normalised} is {record.state}, not PAUSED")
                target = "WARMING"
            updated = replace(
                record,
                state=target,
                state_reason=reason or f"{target.lower()} by {caller.subject}",
                update_time=self._now(),
            )
            session.execute(
                ips.update()
                .where(ips.c.address == normalised)
                .values(state=updated.state, state_reason=updated.state_reason, update_time=updated.update_time)
            )
            events.publish(
                session,
                source=SERVICE,
                tenant_id=record.tenant_id,
                event=events_pb2.IpStateChanged(
                    address=normalised,
                    tenant_id=record.tenant_id,
                    previous_state=f"IP_STATE_{record.state}",  # type: ignore[arg-type]
                    state=f"IP_STATE_{updated.state}",  # type: ignore[arg-type]
                    reason=updated.state_reason,
                ),
            )
        return updated
