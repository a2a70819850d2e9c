"""Use cases on sending IPs: register, read (with today's quota), list, pause, resume, retire, history.

Validation is the domain's (`ippool.domain.registration`, `ippool.domain.address`); states move only by the
domain's lifecycle transitions; every change is saved with its history entry and events by
`shared.commit_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from emailengine.ippool.v1 import events_pb2
from ippool.adapters.store import Store
from ippool.app.records import DecisionKind, DecisionRecord, IpRecord
from ippool.app.shared import (
    SERVICE,
    IpView,
    build_views,
    commit_change,
    local_today,
    publish_quota,
    require_schedule,
    resolve_schedule,
)
from ippool.domain.address import parse_ip_address
from ippool.domain.lifecycle import IpState, Transition, pause, resume, retire
from ippool.domain.registration import validate_name, validate_registration
from ippool.domain.schedule import WarmupPosition, daily_quota
from libs import audit, events
from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size

COMMANDS = ("PAUSE", "RESUME", "RETIRE")


class IpUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    # -- register ----------------------------------------------------------------------------------

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
    ) -> IpView:
        problems = Violations()
        registration = None
        try:
            registration = validate_registration(
                address=address,
                tenant_id=tenant_id,
                purpose=purpose or "marketing",
                pool=pool or "default",
                pmta_node=pmta_node or None,
                helo_hostname=helo_hostname or None,
            )
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        if schedule_id:
            try:
                validate_name(schedule_id, "schedule_id")
            except InvalidArgument as error:
                problems.items.extend(error.violations)
        problems.raise_if_any()
        assert registration is not None
        caller.require_write(registration.tenant_id)
        normalised = str(registration.address)
        audit.note(tenant_id=registration.tenant_id, resource=f"ips/{normalised}")
        now = self._now()
        try:
            with self._db.transaction() as session:
                store = Store(session)
                tenant = store.tenant(registration.tenant_id)
                chosen = schedule_id or (tenant.policy.schedule_id if tenant else "default")
                schedule = resolve_schedule(store, registration.tenant_id, chosen) if tenant else None
                if tenant is None:
                    problems.add("tenant_id", f"unknown tenant {registration.tenant_id!r}")
                if schedule is None and (tenant is not None or chosen != "default"):
                    problems.add("schedule_id", f"unknown schedule {chosen!r} for tenant {registration.tenant_id!r}")
                problems.raise_if_any()
                assert tenant is not None and schedule is not None
                if store.ip(normalised) is not None:
                    raise AlreadyExists("ip", normalised, "an address belongs to one tenant")
                today = local_today(tenant, now)
                record = IpRecord(
                    address=normalised,
                    tenant_id=registration.tenant_id,
                    purpose=registration.purpose.value.lower(),
                    pool=registration.pool,
                    pmta_node=registration.pmta_node or "",
                    helo_hostname=registration.helo_hostname or "",
                    state=IpState.WARMING,
                    state_reason=f"registered: warmup starts at {daily_quota(schedule, WarmupPosition.start())}/day",
                    schedule_id=schedule.schedule_id,
                    position=WarmupPosition.start(),
                    sending_day=1,
                    decided_day=today,
                    create_time=now,
                    update_time=now,
                )
                store.insert_ip(record)
                quota = daily_quota(schedule, record.position)
                decision_id = store.insert_decision(
                    DecisionRecord(
                        address=normalised,
                        tenant_id=record.tenant_id,
                        kind=DecisionKind.LIFECYCLE,
                        day=today,
                        action="REGISTER",
                        rule="ADMIN",
                        reason=f"registered on schedule {schedule.schedule_id!r}: {record.state_reason}",
                        state_before=IpState.WARMING,
                        state_after=IpState.WARMING,
                        step_index_before=0,
                        step_index_after=0,
                        quota_before=quota,
                        quota_after=quota,
                        time=now,
                        actor=caller.subject,
                    )
                )
                events.publish(
                    session,
                    source=SERVICE,
                    tenant_id=record.tenant_id,
                    event=events_pb2.IpRegistered(
                        address=normalised, tenant_id=record.tenant_id, helo_hostname=record.helo_hostname
                    ),
                    now=now,
                )
                publish_quota(session, record, today, 0, quota, record.state_reason, now, str(decision_id))
                return build_views(store, [record], now)[0]
        except IntegrityError:
            raise AlreadyExists("ip", normalised, "an address belongs to one tenant") from None

    # -- read --------------------------------------------------------------------------------------

    def get(self, caller: Caller, address: str) -> IpView:
        normalised = str(parse_ip_address(address))
        with self._db.transaction() as session:
            store = Store(session)
            record = store.ip(normalised)
            if record is None:
                raise NotFound("ip", normalised)
            caller.require_read(record.tenant_id)
            return build_views(store, [record], self._now())[0]

    def list(
        self, caller: Caller, *, tenant_id: str, state: IpState | None, size: int, token: str
    ) -> tuple[list[IpView], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        position = decode_token(token) or {}
        with self._db.transaction() as session:
            store = Store(session)
            found = store.list_ips(tenant_id=tenant, state=state, after=str(position.get("after", "")), limit=limit + 1)
            views = build_views(store, found[:limit], self._now())
        return views, encode_token({"after": views[-1].ip.address}) if len(found) > limit else ""

    def decisions(
        self, caller: Caller, address: str, *, kind: DecisionKind | None, size: int, token: str
    ) -> tuple[list[DecisionRecord], str]:
        normalised = str(parse_ip_address(address))
        limit = page_size(size)
        position = decode_token(token) or {}
        before = position.get("before")
        if before is not None and not isinstance(before, int):
            raise InvalidArgument("page_token", "is not a token this API returned")
        with self._db.transaction() as session:
            store = Store(session)
            record = store.ip(normalised)
            if record is None:
                raise NotFound("ip", normalised)
            caller.require_read(record.tenant_id)
            found = store.list_decisions(normalised, kind=kind, before_id=before, limit=limit + 1)
        page = found[:limit]
        return page, encode_token({"before": page[-1].decision_id}) if len(found) > limit else ""

    # -- admin commands ----------------------------------------------------------------------------

    def command(self, caller: Caller, address: str, command: str, reason: str) -> IpView:
        """PAUSE, RESUME or RETIRE, through the domain's lifecycle; a repeated command changes nothing."""
        if command not in COMMANDS:
            raise ValueError(command)
        normalised = str(parse_ip_address(address))
        now = self._now()
        with self._db.transaction() as session:
            store = Store(session)
            record = store.ip(normalised, lock=True)
            if record is None:
                raise NotFound("ip", normalised)
            caller.require_write(record.tenant_id)
            audit.note(tenant_id=record.tenant_id)
            tenant = store.tenant(record.tenant_id)
            assert tenant is not None
            schedule = require_schedule(store, record)
            transition: Transition
            if command == "PAUSE":
                transition = pause(record.status, now=now)
            elif command == "RESUME":
                transition = resume(record.status, schedule, now=now, listed=bool(store.listings(normalised)))
            else:
                transition = retire(record.status, now=now)
            if transition.changed:
                text = f"{transition.reason}: {reason}" if reason else f"{transition.reason} ({caller.subject})"
                after = replace(record.with_status(transition.after), state_reason=text, update_time=now)
                commit_change(
                    session,
                    before=record,
                    after=after,
                    schedule=schedule,
                    day=local_today(tenant, now),
                    kind=DecisionKind.LIFECYCLE,
                    action=command,
                    rule="ADMIN",
                    reason=text,
                    now=now,
                    actor=caller.subject,
                )
                record = after
            return build_views(store, [record], now)[0]
