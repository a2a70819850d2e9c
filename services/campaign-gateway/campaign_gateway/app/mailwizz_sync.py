"""Use cases keeping each tenant's MailWizz delivery servers in step with the IP pool: quotas, status, and a
server for every new IP (provisioning), never a row active with a quota of 0.

    sync = MailwizzQuotaSync(unit_of_work, clock, directory=..., ippool=..., request_sync=...)
    sync.sync_tenant("sos-expat")            -> QuotaSyncReport   (jobs; no caller)
    sync.sync_all()                          -> list[QuotaSyncReport]   (the periodic job)
    sync.plan(caller, tenant)                -> QuotaSyncReport   (dry run: the diff, nothing written)
    sync.sync(caller, tenant)                -> QuotaSyncReport
    sync.binding(caller, tenant) / sync.bindings(caller) -> BindingStatus (settings view + last sync)
    sync.on_ip_registered / on_ip_state_changed / on_ip_quota_changed(uow, envelope, event)   (event handlers)

One pass of a sync, under the MailWizz database's named lock (so two replicas never interleave, and the pass
that writes last is the one that read ip-pool last): read the tenant's IPs from ip-pool (every state, today's
quotas in the tenant's local day), decide each IP's row (`domain/quota_sync.desired_server`), compare with the
table (`plan_sync`), write the CREATE and UPDATE lines. A new IP's row is created inactive and, in the same sync,
a second pass activates it when warmup gives it a quota. A new row's host and port are where its IP's PowerMTA
node takes mail, read from the node registry (`uow.pmta_nodes.smtp_endpoint`); an IP whose node is not registered
gets no row yet (reported BLOCKED; the next sync after the node is registered makes it). Rows a MailWizz warmup
plan owns are left alone and reported; each new conflict (and each end of one) is published once as
`DeliveryServerConflictChanged`.

Why the event handlers only enqueue a per-tenant sync job instead of writing MySQL themselves: a handler runs
inside the consumer's inbox transaction, which should stay short and local. MailWizz's MySQL being slow or down
would hold that transaction open, then fail it again and again until the event is dead-lettered, and a burst of
events (a rotation moving 50 IPs) would make 50 writes of the same table. A job reads the IP pool's state when
it runs (so it is idempotent, and every sync after an event includes it), is retried by RQ with backoff, and
the periodic full sync (`EE_CAMPAIGN_GATEWAY_QUOTA_SYNC_SECONDS`) repairs anything a lost job missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from campaign_gateway.adapters.ippool_peer import PoolIp, TenantDay
from campaign_gateway.adapters.mailwizz_db import MailwizzDbError, NewServerDefaults
from campaign_gateway.app.ports import IpPool, MailwizzDirectory, TenantMailwizz
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork, MailwizzSyncState, SyncConflict
from campaign_gateway.domain.ip_states import IpState
from campaign_gateway.domain.pmta_config import vmta_name
from campaign_gateway.domain.quota_sync import (
    ChangeKind,
    IpSending,
    ServerChange,
    SyncPlan,
    desired_server,
    plan_sync,
)
from emailengine.campaign.v1 import events_pb2 as campaign_events
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import FailedPrecondition, NotFound, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuotaSyncReport:
    tenant: str
    dry_run: bool
    changes: tuple[ServerChange, ...]
    written: tuple[int, ...]
    created: tuple[int, ...]
    blocked: tuple[ServerChange, ...]  # CREATEs that cannot happen yet (IP on no registered PMTA node)
    time: datetime

    def conflicts(self) -> tuple[ServerChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.CONFLICT)


@dataclass(frozen=True)
class BindingStatus:
    tenant: str
    mailwizz: TenantMailwizz
    state: MailwizzSyncState | None


def ip_sending(ip: PoolIp, day: TenantDay, now: datetime) -> IpSending:
    """An ip-pool IP as the quota-sync rules read it (its VMTA named as the PowerMTA config names it)."""
    start, end = day.window_start_hour, day.window_end_hour
    whole_day = (start, end) in ((0, 0), (0, 24))
    local_hour = now.astimezone(ZoneInfo(day.time_zone or "UTC")).hour
    return IpSending(
        address=ip.address,
        vmta=vmta_name(ip.address),
        state=IpState(ip.state),
        daily_quota=ip.daily_quota,
        hourly_quota=ip.hourly_quota,
        inside_window=whole_day or start <= local_hour < end,
        resting=ip.resting,
    )


class MailwizzQuotaSync:
    def __init__(
        self,
        unit_of_work: Callable[[], CampaignUnitOfWork],
        clock: Clock,
        *,
        directory: MailwizzDirectory,
        ippool: IpPool,
        request_sync: Callable[[str], None],
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._directory = directory
        self._ippool = ippool
        self._request_sync = request_sync

    # ---- API

    def plan(self, caller: Caller, tenant: str) -> QuotaSyncReport:
        caller.require_read(tenant)
        return self.sync_tenant(tenant, dry_run=True)

    def sync(self, caller: Caller, tenant: str) -> QuotaSyncReport:
        caller.require_write(tenant)
        return self.sync_tenant(tenant)

    def binding(self, caller: Caller, tenant: str) -> BindingStatus:
        if not caller.may_read(tenant):
            raise NotFound("MailWizz binding", tenant)
        found = self._directory.binding(tenant)
        if found is None:
            raise NotFound("MailWizz binding", tenant)
        with self._uow() as uow:
            state = uow.mailwizz_sync.get(tenant)
        return BindingStatus(tenant, found, state)

    def bindings(self, caller: Caller) -> list[BindingStatus]:
        tenants = [t for t in self._directory.tenants() if caller.may_read(t)]
        return [self.binding(caller, tenant) for tenant in tenants]

    # ---- event handlers (in the consumer's unit of work; they only ask for a sync)

    def on_ip_registered(
        self, uow: object, envelope: event_pb2.EventEnvelope, event: ippool_events.IpRegistered
    ) -> None:
        self._ask(event.tenant_id or envelope.tenant_id)

    def on_ip_state_changed(
        self, uow: object, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
    ) -> None:
        self._ask(event.tenant_id or envelope.tenant_id)

    def on_ip_quota_changed(
        self, uow: object, envelope: event_pb2.EventEnvelope, event: ippool_events.IpQuotaChanged
    ) -> None:
        self._ask(event.tenant_id or envelope.tenant_id)

    def _ask(self, tenant: str) -> None:
        if tenant and self._directory.binding(tenant) is not None:
            self._request_sync(tenant)

    # ---- the sync

    def sync_all(self) -> list[QuotaSyncReport]:
        """Every tenant with a MailWizz binding; one tenant's failure is recorded and the others still sync."""
        reports = []
        for tenant in self._directory.tenants():
            try:
                reports.append(self.sync_tenant(tenant))
            except (Unavailable, FailedPrecondition):
                continue  # recorded in the tenant's sync state by sync_tenant
            except Exception as failure:  # one tenant's surprise must not stop the others' sync
                log.exception("quota sync failed", extra={"tenant": tenant})
                self._record_failure(tenant, f"the sync failed unexpectedly ({type(failure).__name__})")
        return reports

    def sync_tenant(self, tenant: str, *, dry_run: bool = False) -> QuotaSyncReport:
        mailwizz = self._directory.binding(tenant)
        if mailwizz is None:
            raise FailedPrecondition(f"tenant {tenant!r} has no MailWizz binding", reason="NO_MAILWIZZ_BINDING")
        try:
            report = self._sync(tenant, mailwizz, dry_run=dry_run)
        except MailwizzDbError as failure:
            error = Unavailable(f"the MailWizz database of tenant {tenant!r} failed: {failure}")
            if not dry_run:
                self._record_failure(tenant, error.message)
            raise error from None
        except Unavailable as failure:
            if not dry_run:
                self._record_failure(tenant, failure.message)
            raise
        if not dry_run:
            self._record(tenant, report)
        return report

    def _sync(self, tenant: str, mailwizz: TenantMailwizz, *, dry_run: bool) -> QuotaSyncReport:
        with mailwizz.servers.exclusive() as table:
            # ip-pool is read with the lock held: the pass that writes last is the one that read last.
            ips = self._ippool.list_ips(tenant_id=tenant)
            day = self._ippool.tenant_day(tenant)
            now = self._clock.now()
            nodes = {vmta_name(ip.address): ip.pmta_node for ip in ips}
            endpoints = self._smtp_endpoints(set(nodes.values()))
            desired = [desired_server(ip=ip_sending(ip, day, now)) for ip in ips]

            def defaults_for(change: ServerChange) -> NewServerDefaults | None:
                endpoint = endpoints.get(nodes.get(change.vmta, ""))
                if endpoint is None:
                    return None
                return NewServerDefaults(
                    hostname=endpoint[0],
                    port=endpoint[1],
                    from_email=mailwizz.view.from_email,
                    customer_id=mailwizz.view.customer_id,
                )

            plan = plan_sync(current=table.current_servers(), desired=desired)
            blocked = tuple(c for c in plan.writes() if c.kind is ChangeKind.CREATE and defaults_for(c) is None)
            if dry_run:
                return QuotaSyncReport(tenant, True, plan.changes, (), (), blocked, now)
            first = table.apply(plan, defaults=defaults_for)
            written, created = list(first.written), list(first.created)
            if first.created:
                # New rows start inactive; the second pass activates those whose IP may send now.
                plan = plan_sync(current=table.current_servers(), desired=desired)
                second = table.apply(
                    SyncPlan(tuple(c for c in plan.changes if c.kind is not ChangeKind.CREATE)), defaults=defaults_for
                )
                written += [server for server in second.written if server not in written]
            return QuotaSyncReport(tenant, False, plan.changes, tuple(written), tuple(created), blocked, now)

    def _smtp_endpoints(self, node_names: set[str]) -> dict[str, tuple[str, int]]:
        """Where each registered node among `node_names` takes mail from MailWizz."""
        with self._uow() as uow:
            found = {name: uow.pmta_nodes.smtp_endpoint(name) for name in sorted(node_names) if name}
        return {name: endpoint for name, endpoint in found.items() if endpoint is not None}

    def _record(self, tenant: str, report: QuotaSyncReport) -> None:
        conflicts = tuple(SyncConflict(c.server_id or 0, c.vmta, c.address or "", c.reason) for c in report.conflicts())
        outcome = "OK"
        if report.blocked:
            outcome = "OK; no registered PowerMTA node for " + ", ".join(c.address or c.vmta for c in report.blocked)
        with self._uow() as uow:
            before = uow.mailwizz_sync.get(tenant)
            known = {(c.server_id, c.reason): c for c in (before.conflicts if before else ())}
            now_known = {(c.server_id, c.reason): c for c in conflicts}
            for key, conflict in now_known.items():
                if key not in known:
                    uow.publish(self._conflict_event(tenant, conflict, True), tenant_id=tenant)
            for key, conflict in known.items():
                if key not in now_known:
                    uow.publish(self._conflict_event(tenant, conflict, False), tenant_id=tenant)
            uow.mailwizz_sync.save(MailwizzSyncState(tenant, report.time, outcome, conflicts))
            uow.commit()

    def _record_failure(self, tenant: str, message: str) -> None:
        with self._uow() as uow:
            before = uow.mailwizz_sync.get(tenant) or MailwizzSyncState(tenant)
            uow.mailwizz_sync.save(replace(before, last_sync_time=self._clock.now(), last_outcome=message))
            uow.commit()

    def _conflict_event(
        self, tenant: str, conflict: SyncConflict, started: bool
    ) -> campaign_events.DeliveryServerConflictChanged:
        event = campaign_events.DeliveryServerConflictChanged(
            tenant_id=tenant,
            server_id=conflict.server_id,
            vmta=conflict.vmta,
            address=conflict.address,
            reason=conflict.reason,
            conflict=started,
        )
        event.observed_at.FromDatetime(self._clock.now())
        return event
