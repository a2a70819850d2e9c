"""Use cases on sending IPs: register, read (with today's quota), list, pause, resume, retire, history; and for
admins, release an address (any tenant may register it again) or transfer it to another tenant.

Validation is the domain's (`ippool.domain.registration`, `ippool.domain.address`); states move only by the
domain's lifecycle transitions; every change is saved with its history entry and events by
`history.record_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ippool.app.history import record_change, record_transition
from ippool.app.ip_today import IpToday, ips_today
from ippool.app.page_tokens import after_key, before_id, token_after, token_before
from ippool.app.schedules import find_schedule, schedule_of
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.address import parse_ip_address
from ippool.domain.history import DecisionKind, IpDecision
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState, IpStatus, Transition, enter_standby, pause, release, resume, retire
from ippool.domain.listings import effect
from ippool.domain.registration import IpRegistration, validate_name, validate_registration, validate_tenant_id
from ippool.domain.schedule import WarmupSchedule, daily_quota
from ippool.domain.tenant import Tenant
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.current_cache import CurrentCache
from libs.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import page_size
from libs.unit_of_work import UnitOfWorkFactory

ADMIN_RULE = "ADMIN"


def visible_ip(uow: IpPoolUnitOfWork, caller: Caller, address: str, *, lock: bool = False) -> Ip:
    """The IP, if the caller may see it; another tenant's answers exactly like a missing one."""
    ip = uow.ips.get(address, lock=lock)
    if ip is None or not caller.may_read(ip.tenant_id):
        raise NotFound("ip", address)
    return ip


def visible_ip_with_tenant(
    uow: IpPoolUnitOfWork, caller: Caller, address: str, *, lock: bool = False
) -> tuple[Ip, Tenant]:
    """`visible_ip` and the IP's tenant, in one read."""
    found = uow.ips.get_with_tenant(address, lock=lock)
    if found is None or not caller.may_read(found[0].tenant_id):
        raise NotFound("ip", address)
    return found


# An IP as read today depends on the database and on the tenant-local hour (the hourly quota, the day); every
# time zone's hours begin on a UTC quarter hour, so a read stays valid within one.
_QUARTER_HOUR = 900


class IpUseCases:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory[IpPoolUnitOfWork],
        clock: Clock,
        *,
        changes: Callable[[], int | None] | None = None,
    ):
        """`changes` reads the count of committed writes (`libs.change_counter`); with it, `get` serves an IP
        again from memory while nothing was written since it was read."""
        self._uow = unit_of_work
        self._clock = clock
        self._changes = changes
        self._read: CurrentCache[str, IpToday] = CurrentCache()

    # -- register ----------------------------------------------------------------------------------------

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
    ) -> IpToday:
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
        now = self._clock.now()
        try:
            with self._uow() as uow:
                tenant = uow.tenants.get(registration.tenant_id)
                chosen = schedule_id or (tenant.policy.schedule_id if tenant else "default")
                schedule = find_schedule(uow, registration.tenant_id, chosen) if tenant else None
                if tenant is None:
                    problems.add("tenant_id", f"unknown tenant {registration.tenant_id!r}")
                if schedule is None and (tenant is not None or chosen != "default"):
                    problems.add("schedule_id", f"unknown schedule {chosen!r} for tenant {registration.tenant_id!r}")
                problems.raise_if_any()
                assert tenant is not None and schedule is not None
                existing = uow.ips.get(normalised, lock=True)
                if existing is not None and existing.released_at is None:
                    raise AlreadyExists("ip", normalised, "an address belongs to one tenant")
                ip = self._register(
                    uow, registration, tenant, schedule, replacing=existing, why="", now=now, actor=caller.subject
                )
                registered = ips_today(uow, [ip], now)[0]
                uow.commit()
        except Aborted:
            raise AlreadyExists("ip", normalised, "an address belongs to one tenant") from None
        return registered

    @staticmethod
    def _register(
        uow: IpPoolUnitOfWork,
        registration: IpRegistration,
        tenant: Tenant,
        schedule: WarmupSchedule,
        *,
        replacing: Ip | None,
        why: str,
        now: datetime,
        actor: str,
    ) -> Ip:
        """The address registered for `tenant` at the start of `schedule`, on a new row or on the released
        one it replaces (in STANDBY when a listing that stops it is still active)."""
        status = IpStatus.registered()
        state_reason = f"registered: warmup starts at {daily_quota(schedule, status.position)}/day"
        stopping = effect(uow.listings.active(str(registration.address))).standby if replacing else ()
        if stopping:
            zones = ", ".join(item.describe() for item in stopping)
            listed = enter_standby(status, schedule, now=now, reason=f"listed by {zones}")
            status, state_reason = listed.after, listed.reason
        today = tenant.local_day(now)
        ip = Ip(
            address=str(registration.address),
            tenant_id=tenant.tenant_id,
            purpose=registration.purpose.value.lower(),
            pool=registration.pool,
            pmta_node=registration.pmta_node or "",
            helo_hostname=registration.helo_hostname or "",
            state=status.state,
            state_reason=state_reason,
            schedule_id=schedule.schedule_id,
            position=status.position,
            sending_day=1,
            decided_day=today,
            create_time=now,
            update_time=now,
            standby_since=status.standby_since,
            window_start=today,  # a released address's earlier figures were another registration's
        )
        record_change(
            uow,
            before=replacing,
            after=ip,
            registered=True,
            schedule=schedule,
            day=today,
            kind=DecisionKind.LIFECYCLE,
            action="REGISTER",
            rule=ADMIN_RULE,
            reason=f"{why}registered on schedule {schedule.schedule_id!r}: {state_reason}",
            now=now,
            actor=actor,
        )
        return ip

    # -- release and transfer (admins) -------------------------------------------------------------------

    def release(self, caller: Caller, address: str, reason: str) -> IpToday:
        """Frees the address for any tenant to register again; the IP stays, retired, with its tenant until then."""
        caller.require_admin()
        normalised = str(parse_ip_address(address))
        now = self._clock.now()
        with self._uow() as uow:
            ip = visible_ip(uow, caller, normalised, lock=True)
            audit.note(tenant_id=ip.tenant_id, resource=f"ips/{normalised}")
            if ip.released_at is None:
                ip = self._release(uow, ip, action="RELEASE_ADDRESS", reason=reason, now=now, actor=caller.subject)
            released = ips_today(uow, [ip], now)[0]
            uow.commit()
        return released

    def transfer(self, caller: Caller, address: str, *, tenant_id: str, reason: str) -> IpToday:
        """Moves the address to `tenant_id` at once: released from its tenant, registered for the other."""
        caller.require_admin()
        problems = Violations()
        normalised = ""
        try:
            normalised = str(parse_ip_address(address))
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        try:
            validate_tenant_id(tenant_id)
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        problems.raise_if_any()
        audit.note(tenant_id=tenant_id, resource=f"ips/{normalised}")
        now = self._clock.now()
        with self._uow() as uow:
            ip = visible_ip(uow, caller, normalised, lock=True)
            receiving = uow.tenants.get(tenant_id)
            if receiving is None:
                raise InvalidArgument("tenant_id", f"unknown tenant {tenant_id!r}")
            if ip.tenant_id != tenant_id or ip.released_at is not None:
                schedule = find_schedule(uow, tenant_id, receiving.policy.schedule_id)
                assert schedule is not None  # a tenant's default schedule exists (UpdateTenant checks it)
                why = f"transferred by hand: {reason}; " if reason else "transferred by hand; "
                if ip.released_at is None:
                    ip = self._release(uow, ip, action="TRANSFER", reason=reason, now=now, actor=caller.subject)
                facts = validate_registration(
                    address=ip.address,
                    tenant_id=tenant_id,
                    purpose=ip.purpose,
                    pool=ip.pool,
                    pmta_node=ip.pmta_node or None,
                    helo_hostname=ip.helo_hostname or None,
                )
                ip = self._register(
                    uow, facts, receiving, schedule, replacing=ip, why=why, now=now, actor=caller.subject
                )
            moved = ips_today(uow, [ip], now)[0]
            uow.commit()
        return moved

    @staticmethod
    def _release(uow: IpPoolUnitOfWork, ip: Ip, *, action: str, reason: str, now: datetime, actor: str) -> Ip:
        transition = release(ip.status, now=now)
        text = f"{transition.reason}: {reason}" if reason else f"{transition.reason} ({actor})"
        tenant = uow.tenants.get(ip.tenant_id)
        assert tenant is not None
        return record_transition(
            uow,
            ip,
            transition,
            schedule=schedule_of(uow, ip),
            day=tenant.local_day(now),
            action=action,
            rule=ADMIN_RULE,
            actor=actor,
            reason=text,
            state_reason=text,
            released_at=now,
        )

    # -- read --------------------------------------------------------------------------------------------

    def get(self, caller: Caller, address: str) -> IpToday:
        normalised = str(parse_ip_address(address))
        now = self._clock.now()
        generation = self._changes() if self._changes is not None else None
        version = (generation, int(now.timestamp()) // _QUARTER_HOUR)
        found = self._read.get(normalised, version) if generation is not None else None
        if found is None:
            with self._uow(read_only=True) as uow:
                ip = uow.ips.get(normalised)
                if ip is None:
                    raise NotFound("ip", normalised)
                found = ips_today(uow, [ip], now)[0]
            if generation is not None:
                self._read.put(normalised, version, found)
        if not caller.may_read(found.ip.tenant_id):
            raise NotFound("ip", normalised)  # another tenant's answers exactly like a missing one
        return found

    def list(
        self, caller: Caller, *, tenant_id: str, state: IpState | None, size: int, token: str
    ) -> tuple[list[IpToday], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        after = after_key(token) or ""
        with self._uow(read_only=True) as uow:
            found = uow.ips.list(tenant_id=tenant, state=state, after=after, limit=limit + 1)
            page = ips_today(uow, found[:limit], self._clock.now())
        return page, token_after(page[-1].ip.address) if len(found) > limit else ""

    def decisions(
        self, caller: Caller, address: str, *, kind: DecisionKind | None, size: int, token: str
    ) -> tuple[list[IpDecision], str]:
        normalised = str(parse_ip_address(address))
        limit = page_size(size)
        before = before_id(token)
        with self._uow(read_only=True) as uow:
            visible_ip(uow, caller, normalised)
            # A tenant sees the entries made while the address was its own; an admin sees them all.
            own = "" if caller.is_admin else caller.tenant_id
            found = uow.decisions.list(normalised, tenant_id=own, kind=kind, before_id=before, limit=limit + 1)
        page = found[:limit]
        return page, token_before(page[-1].decision_id or 0) if len(found) > limit else ""

    # -- lifecycle commands ------------------------------------------------------------------------------

    def pause(self, caller: Caller, address: str, reason: str) -> IpToday:
        return self._lifecycle(caller, address, reason, "PAUSE")

    def resume(self, caller: Caller, address: str, reason: str) -> IpToday:
        return self._lifecycle(caller, address, reason, "RESUME")

    def retire(self, caller: Caller, address: str, reason: str) -> IpToday:
        return self._lifecycle(caller, address, reason, "RETIRE")

    def _lifecycle(self, caller: Caller, address: str, reason: str, action: str) -> IpToday:
        """Through the domain's lifecycle; a repeated command changes nothing."""
        normalised = str(parse_ip_address(address))
        now = self._clock.now()
        with self._uow() as uow:
            ip, tenant = visible_ip_with_tenant(uow, caller, normalised, lock=True)
            caller.require_write(ip.tenant_id)
            audit.note(tenant_id=ip.tenant_id)
            schedule = schedule_of(uow, ip)
            day = tenant.local_day(now)
            # Read once for the decision and the answer: a lifecycle change moves no listing and no usage.
            facts = uow.facts.today({normalised: day})
            transition: Transition
            if action == "PAUSE":
                transition = pause(ip.status, now=now)
            elif action == "RESUME":
                stopping = effect(facts[normalised].listings).standby
                transition = resume(ip.status, schedule, now=now, listed=bool(stopping))
            else:
                transition = retire(ip.status, now=now)
            if transition.changed:
                text = f"{transition.reason}: {reason}" if reason else f"{transition.reason} ({caller.subject})"
                ip = record_transition(
                    uow,
                    ip,
                    transition,
                    schedule=schedule,
                    day=day,
                    action=action,
                    rule=ADMIN_RULE,
                    actor=caller.subject,
                    reason=text,
                    state_reason=text,
                )
            changed = ips_today(
                uow,
                [ip],
                now,
                tenants={tenant.tenant_id: tenant},
                schedules={(ip.tenant_id, ip.schedule_id): schedule},
                facts=facts,
            )[0]
            uow.commit()  # nothing to commit when the command changed nothing, but its audit line
        return changed
