"""Each tenant's sending and tracking domains, checked periodically and on demand, each change of verdict once.

* GetTenantDomains / SetTenantDomains: the list (validated whole, every bad entry named as the request spells
  it) with the believed verdict of each of its checks.
* A run: for each sending domain the colleague's `DomainChecker` (SPF per watched IP of the tenant, DKIM per
  selector, DMARC, MX), and every domain, sending and tracking, on the tenant's domain blocklists after their
  health check (`scan_async`, as ValidateDomain does). Tenants sharing a zone choice share one scan.
* Recording, one transaction per tenant: lock the tenant's `tenant_domains` row (whichever run — periodic,
  on demand, another replica — records that tenant), re-read its domains and watched IPs, fold each result into
  the stored verdict of its (domain, check, subject) with `fold_verdict`, and publish each change as
  `DomainCheckChanged` in the same transaction (outbox). An UNKNOWN only notes why; it never changes a verdict
  nor publishes. Results for a domain, selector or IP no longer configured are ignored and their state dropped.
* Periodic: once per EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS slot, by whichever replica or worker claims the
  slot (`claim_once`); between slots, a tenant whose domains were set and not checked since is checked at the
  next tick (once, whichever replica).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from emailengine.reputation.v1 import events_pb2
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs import events
from libs.auth import Caller
from libs.clock import Clock
from libs.db import Database
from libs.jobs import claim_once
from reputation.adapters.domain_checks import DomainChecker
from reputation.adapters.tables import domain_check_state, monitored_ips, tenant_domains
from reputation.app import protos
from reputation.app.listings import SOURCE, aware, lock_rows
from reputation.app.metrics import ReputationMetrics
from reputation.app.scanning import scan_async, slot_of
from reputation.app.tenant_zones import choice_for
from reputation.app.zone_health import record_health
from reputation.config import ReputationConfig
from reputation.domain.checks import CheckKind, CheckResult, DomainReport, Verdict, worst
from reputation.domain.dnsbl import ListingStatus, ZoneHealth
from reputation.domain.scan import ScanResult, blocklist_check
from reputation.domain.tenant_domains import (
    AUTH_CHECKS,
    CheckKey,
    SendingDomain,
    TenantDomainList,
    fold_verdict,
    parse_domain_list,
    planned_checks,
)
from reputation.domain.validation import validate_tenant_id
from reputation.domain.zones import Zone, ZoneKind

log = logging.getLogger(__name__)

# Sending domains whose DNS checks run at once (each runs its own checks concurrently).
MAX_DOMAINS_IN_FLIGHT = 16


@dataclass(frozen=True)
class TenantWork:
    """One tenant's domains as read before a run: what to ask DNS."""

    domains: TenantDomainList
    ips: tuple[str, ...]
    zones: tuple[Zone, ...]


@dataclass
class TenantRun:
    """What checking one tenant's domains found and did."""

    tenant_id: str
    sending: list[DomainReport]
    tracking: list[DomainReport]
    changes: list[events_pb2.DomainCheckChanged] = field(default_factory=list)

    @property
    def results(self) -> list[tuple[str, CheckResult]]:
        return [(report.domain, check) for report in self.sending + self.tracking for check in report.checks]

    @property
    def unknown(self) -> int:
        return sum(1 for _domain, check in self.results if check.verdict is Verdict.UNKNOWN)


# -- storage --------------------------------------------------------------------------------------


def load_domains(session: Session, tenant_id: str) -> TenantDomainList:
    row = session.execute(sa.select(tenant_domains).where(tenant_domains.c.tenant_id == tenant_id)).first()
    if row is None:
        return TenantDomainList(tenant_id)
    sending = tuple(
        SendingDomain(item["domain"], tuple(item.get("dkim_selectors", ()))) for item in json.loads(row.sending_domains)
    )
    return TenantDomainList(
        tenant_id,
        sending,
        tuple(json.loads(row.tracking_domains)),
        updated_at=aware(row.updated_at),
        checked_at=aware(row.checked_at) if row.checked_at else None,
    )


def store_domains(session: Session, domains: TenantDomainList, now: datetime, actor: str) -> None:
    """Updated in place (the row is the lock a recording run waits on; deleting it would let that run through)."""
    tenant = domains.tenant_id
    if domains.empty:
        session.execute(sa.delete(tenant_domains).where(tenant_domains.c.tenant_id == tenant))
        return
    values = {
        "sending_domains": json.dumps(
            [{"domain": s.domain, "dkim_selectors": list(s.dkim_selectors)} for s in domains.sending]
        ),
        "tracking_domains": json.dumps(list(domains.tracking)),
        "updated_at": now,
        "updated_by": actor,
        "checked_at": None,
    }
    updated = session.execute(
        tenant_domains.update().where(tenant_domains.c.tenant_id == tenant).values(**values)
    ).rowcount
    if not updated:
        session.execute(tenant_domains.insert().values(tenant_id=tenant, **values))


def watched_ips(session: Session, tenant_id: str) -> tuple[str, ...]:
    """The tenant's IPs in service (retired ones send nothing: their SPF is no longer checked)."""
    query = (
        sa.select(monitored_ips.c.address)
        .where(monitored_ips.c.tenant_id == tenant_id, monitored_ips.c.active.is_(True))
        .order_by(monitored_ips.c.address)
    )
    return tuple(session.execute(query).scalars())


def stored_checks(session: Session, tenant_id: str) -> dict[CheckKey, sa.Row]:
    rows = session.execute(sa.select(domain_check_state).where(domain_check_state.c.tenant_id == tenant_id))
    return {(r.domain, r.check_kind, r.subject): r for r in rows}


def forget_checks(session: Session, tenant_id: str, keys: Sequence[CheckKey]) -> None:
    c = domain_check_state.c
    for domain, check, subject in keys:
        session.execute(
            sa.delete(domain_check_state).where(
                c.tenant_id == tenant_id, c.domain == domain, c.check_kind == check, c.subject == subject
            )
        )


def _believed(row: sa.Row | None) -> Verdict | None:
    if row is None or row.verdict == Verdict.UNKNOWN.value:
        return None
    return Verdict(row.verdict)


# -- events ---------------------------------------------------------------------------------------


def change_event(
    tenant_id: str, domain: str, role: str, previous: Verdict | None, result: CheckResult, observed_at: datetime
) -> events_pb2.DomainCheckChanged:
    listed_on = []
    if result.check is CheckKind.BLOCKLIST:
        listed_on = [protos.public_zone_name(k) for k, v in result.details.items() if v == ListingStatus.LISTED.value]
    record = result.details.get("record", "")
    return events_pb2.DomainCheckChanged(
        tenant_id=tenant_id,
        domain=domain,
        check=result.check.value,
        subject=result.subject,
        previous_verdict=protos.verdict(previous) if previous is not None else pb.CHECK_VERDICT_UNSPECIFIED,
        verdict=protos.verdict(result.verdict),
        reason=result.reason,
        domain_role=role,
        listed_on=listed_on,
        records=[record] if record else [],
        observed_at=protos.timestamp(observed_at),
    )


# -- recording ------------------------------------------------------------------------------------


def record_run(
    session: Session,
    is_postgres: bool,
    tenant_id: str,
    results: Sequence[tuple[str, CheckResult]],
    observed_at: datetime,
) -> list[events_pb2.DomainCheckChanged]:
    """Folds one run's results into the tenant's believed verdicts (see the module docstring)."""
    lock_rows(session, is_postgres, tenant_domains, tenant_domains.c.tenant_id, [tenant_id])
    domains = load_domains(session, tenant_id)
    plan = planned_checks(domains, watched_ips(session, tenant_id))
    stored = stored_checks(session, tenant_id)
    forget_checks(session, tenant_id, [key for key in stored if key not in plan])
    changes: list[events_pb2.DomainCheckChanged] = []
    c = domain_check_state.c
    for domain, result in results:
        key: CheckKey = (domain, result.check.value, result.subject)
        role = plan.get(key)
        if role is None:  # no longer configured while we checked
            continue
        row = stored.get(key)
        if row is not None and row.verdict_at is not None and aware(row.verdict_at) > observed_at:
            continue  # a later run's verdict is stored already
        believed = _believed(row)
        step = fold_verdict(believed, result.verdict)
        message = protos.domain_check(result).SerializeToString()
        if result.verdict is Verdict.UNKNOWN:
            values: dict[str, object] = {"unknown_reason": result.reason, "unknown_at": observed_at}
            if row is None or believed is None:
                values.update(domain_role=role, verdict=Verdict.UNKNOWN.value, result=message)
        else:
            values = {
                "domain_role": role,
                "verdict": result.verdict.value,
                "result": message,
                "verdict_at": observed_at,
                "unknown_reason": "",
                "unknown_at": None,
            }
            if step.changed:
                values["changed_at"] = observed_at
        if row is None:
            session.execute(
                domain_check_state.insert().values(
                    tenant_id=tenant_id, domain=domain, check_kind=key[1], subject=key[2], **values
                )
            )
        else:
            session.execute(
                domain_check_state.update()
                .where(c.tenant_id == tenant_id, c.domain == domain, c.check_kind == key[1], c.subject == key[2])
                .values(**values)
            )
        if step.publish:
            event = change_event(tenant_id, domain, role, believed, result, observed_at)
            events.publish(session, source=SOURCE, tenant_id=tenant_id, event=event, now=observed_at)
            changes.append(event)
    session.execute(
        tenant_domains.update().where(tenant_domains.c.tenant_id == tenant_id).values(checked_at=observed_at)
    )
    return changes


# -- DNS ------------------------------------------------------------------------------------------


async def check_async(
    config: ReputationConfig, clock: Clock, work: Sequence[TenantWork]
) -> tuple[dict[str, ZoneHealth], list[tuple[list[DomainReport], list[DomainReport]]]]:
    """Zone health, then per tenant: a report per sending domain (DNS checks + blocklists) and per tracking domain
    (blocklists), all tenants at once."""
    checker = DomainChecker.from_settings(config.dns, clock=clock)
    limit = asyncio.Semaphore(MAX_DOMAINS_IN_FLIGHT)

    async def authenticate(item: TenantWork, sending: SendingDomain) -> DomainReport:
        async with limit:
            return await checker.validate_domain(sending.domain, item.ips, sending.dkim_selectors, checks=AUTH_CHECKS)

    groups: dict[tuple[str, ...], tuple[tuple[Zone, ...], list[str]]] = {}
    for item in work:
        targets = groups.setdefault(tuple(z.key for z in item.zones), (item.zones, []))[1]
        targets.extend(d for d in item.domains.blocklist_targets if d not in targets)
    auth_jobs = [authenticate(item, sending) for item in work for sending in item.domains.sending]
    *auth, (health, scans) = await asyncio.gather(*auth_jobs, scan_async(config, clock, list(groups.values())))
    found: dict[tuple[tuple[str, ...], str], ScanResult] = {}
    position = 0
    for group_key, (_zones, targets) in groups.items():
        if len(scans) >= position + len(targets):
            found.update({(group_key, t): s for t, s in zip(targets, scans[position:], strict=False)})
        position += len(targets)
    now = clock.now()
    out: list[tuple[list[DomainReport], list[DomainReport]]] = []
    reports = iter(auth)
    for item in work:
        group_key = tuple(z.key for z in item.zones)

        def blocklists(domain: str, group_key: tuple[str, ...] = group_key) -> CheckResult:
            scan = found.get((group_key, domain)) or ScanResult(domain, ZoneKind.DOMAIN, now, now, ())
            return blocklist_check(protos.publicize(scan))

        sending = []
        for _sending in item.domains.sending:
            report = next(reports)
            sending.append(DomainReport(report.domain, now, (*report.checks, blocklists(report.domain))))
        sent = {s.domain for s in item.domains.sending}
        tracking = [DomainReport(d, now, (blocklists(d),)) for d in item.domains.tracking if d not in sent]
        out.append((sending, tracking))
    return health, out


# -- use cases ------------------------------------------------------------------------------------


class TenantDomainChecks:
    """GetTenantDomains, SetTenantDomains, CheckTenantDomains and the periodic check of every tenant's domains."""

    def __init__(self, db: Database, config: ReputationConfig, clock: Clock, metrics: ReputationMetrics) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics

    def get(self, caller: Caller, tenant_id: str) -> pb.TenantDomains:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_read(tenant)
        with self.db.transaction() as session:
            return self._view(session, tenant)

    def set(
        self, caller: Caller, tenant_id: str, sending: Sequence[tuple[str, Sequence[str]]], tracking: Sequence[str]
    ) -> pb.TenantDomains:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        domains = parse_domain_list(tenant, sending, tracking)
        with self.db.transaction() as session:
            lock_rows(session, self.db.is_postgres, tenant_domains, tenant_domains.c.tenant_id, [tenant])
            store_domains(session, domains, self.clock.now(), caller.subject)
            plan = planned_checks(domains, watched_ips(session, tenant))
            forget_checks(session, tenant, [key for key in stored_checks(session, tenant) if key not in plan])
            return self._view(session, tenant)

    def _view(self, session: Session, tenant: str) -> pb.TenantDomains:
        domains = load_domains(session, tenant)
        plan = planned_checks(domains, watched_ips(session, tenant))
        stored = stored_checks(session, tenant)
        reply = pb.TenantDomains(
            tenant_id=tenant,
            sending_domains=[
                pb.SendingDomain(domain=s.domain, dkim_selectors=s.dkim_selectors) for s in domains.sending
            ],
            tracking_domains=domains.tracking,
        )
        if domains.updated_at is not None:
            reply.update_time.CopyFrom(protos.timestamp(domains.updated_at))
        if domains.checked_at is not None:
            reply.check_time.CopyFrom(protos.timestamp(domains.checked_at))
        verdicts = []
        for key, role in plan.items():
            row = stored.get(key)
            if row is None:
                continue
            item = pb.TenantDomainCheck(
                domain=key[0],
                domain_role=role,
                result=pb.DomainCheck.FromString(row.result),
                unknown_reason=row.unknown_reason,
            )
            for name, value in (
                ("check_time", row.verdict_at),
                ("change_time", row.changed_at),
                ("unknown_time", row.unknown_at),
            ):
                if value is not None:
                    getattr(item, name).CopyFrom(protos.timestamp(aware(value)))
            reply.checks.append(item)
            verdicts.append(Verdict(row.verdict))
        if verdicts:
            reply.verdict = protos.verdict(worst(verdicts))
        return reply

    def check(self, caller: Caller, tenant_id: str) -> pb.CheckTenantDomainsResponse:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        runs = self.run([tenant], "check")
        reply = pb.CheckTenantDomainsResponse(tenant_id=tenant)
        for run in runs:
            reply.sending_domains.extend(_validation(r) for r in run.sending)
            reply.tracking_domains.extend(_validation(r) for r in run.tracking)
            reply.changes += len(run.changes)
            reply.unknown += run.unknown
        return reply

    def run(self, tenants: Sequence[str], trigger: str) -> list[TenantRun]:
        """Checks these tenants' domains now and records the results; a tenant without domains is skipped."""
        work: list[TenantWork] = []
        with self.db.transaction() as session:
            for tenant in tenants:
                domains = load_domains(session, tenant)
                if not domains.empty:
                    zones = choice_for(session, self.config, tenant).domain_zones
                    work.append(TenantWork(domains, watched_ips(session, tenant), zones))
        if not work:
            return []
        health, found = asyncio.run(check_async(self.config, self.clock, work))
        now = self.clock.now()
        record_health(self.db, health, now)
        runs: list[TenantRun] = []
        for item, (sending, tracking) in zip(work, found, strict=True):
            run = TenantRun(item.domains.tenant_id, sending, tracking)
            with self.db.transaction() as session:
                run.changes = record_run(session, self.db.is_postgres, run.tenant_id, run.results, now)
            runs.append(run)
            for _domain, result in run.results:
                self.metrics.domain_checks.labels(trigger, result.check.value, result.verdict.value).inc()
            for event in run.changes:
                self.metrics.domain_changes.labels(event.check, _verdict_name(event.verdict)).inc()
        log.info(
            "domain checks recorded",
            extra={
                "trigger": trigger,
                "tenants": len(runs),
                "checks": sum(len(r.results) for r in runs),
                "unknown": sum(r.unknown for r in runs),
                "changes": sum(len(r.changes) for r in runs),
            },
        )
        return runs

    def periodic(self, owner: str | None = None) -> list[TenantRun] | None:
        """Every tenant's domains once per slot, whichever replica or worker claims it first; between slots, the
        tenants whose domains were set and not checked since. None when there was nothing for this caller."""
        now = self.clock.now()
        interval = self.config.domain_check_interval
        owner = owner or f"{socket.gethostname()}-{os.getpid()}"
        slot_key = f"reputation-domains:{int(interval.total_seconds())}:{slot_of(now, interval)}"
        with self.db.transaction() as session:
            rows = session.execute(
                sa.select(
                    tenant_domains.c.tenant_id, tenant_domains.c.updated_at, tenant_domains.c.checked_at
                ).order_by(tenant_domains.c.tenant_id)
            ).all()
        if claim_once(self.db, slot_key, owner, now):
            return self.run([r.tenant_id for r in rows], "periodic")
        fresh = [
            r.tenant_id
            for r in rows
            if r.checked_at is None
            and claim_once(
                self.db, f"reputation-domains-first:{r.tenant_id}:{aware(r.updated_at).isoformat()}", owner, now
            )
        ]
        return self.run(fresh, "first") if fresh else None


def _validation(report: DomainReport) -> pb.DomainValidation:
    return pb.DomainValidation(
        domain=report.domain,
        verdict=protos.verdict(report.verdict),
        checks=[protos.domain_check(c) for c in report.checks],
        check_time=protos.timestamp(report.checked_at),
    )


def _verdict_name(value: int) -> str:
    return pb.CheckVerdict.Name(value).removeprefix("CHECK_VERDICT_").lower()
