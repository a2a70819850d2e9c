"""Each tenant's sending and tracking domains, checked periodically and on demand, each change of verdict once.

* GetTenantDomains / SetTenantDomains: the list (validated whole, every bad entry named as the request spells
  it) with the believed verdict of each of its checks.
* A run: for each sending domain the DNS authentication checks (SPF per watched IP of the tenant, DKIM per
  selector, DMARC, MX), and every domain, sending and tracking, on the tenant's domain blocklists after their
  health check, all through the DNS port at once. Tenants sharing a zone choice share one scan.
* Recording, one unit of work per tenant: lock the tenant's domains (whichever run records that tenant:
  periodic, on demand, another replica), re-read its domains and watched IPs, fold each result into the stored
  belief of its (domain, check, subject) with `fold_check`, and publish each change as `DomainCheckChanged` in the
  same unit of work (outbox). An UNKNOWN only notes why; it never changes a verdict nor publishes. Results for a
  domain, selector or IP no longer configured are ignored and their state dropped.
* Periodic: once per EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS slot, by whichever replica or worker claims the
  slot; between slots, a tenant whose domains were set and not checked since is checked at the next tick (once,
  whichever replica).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from libs.auth import Caller
from reputation.app.context import UseCases
from reputation.app.dns import DomainAuthRequest, ScanGroup
from reputation.app.events import domain_check_changed
from reputation.app.scanning import default_owner
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.app.views import TenantDomainRun, TenantDomains
from reputation.app.zone_health import record_zone_health
from reputation.app.zones import tenant_zones
from reputation.domain.checks import CheckResult, DomainReport
from reputation.domain.dnsbl import ZoneHealth
from reputation.domain.scan import ScanResult, blocklist_check, publicize, slot_of
from reputation.domain.tenant_domains import (
    AUTH_CHECKS,
    CheckKey,
    CheckState,
    TenantDomainList,
    fold_check,
    parse_domain_list,
    planned_checks,
)
from reputation.domain.validation import validate_tenant_id
from reputation.domain.zones import Zone, ZoneKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantWork:
    """One tenant's domains as read before a run: what to ask DNS."""

    domains: TenantDomainList
    ips: tuple[str, ...]
    zones: tuple[Zone, ...]


class TenantDomainChecks(UseCases):
    """GetTenantDomains, SetTenantDomains, CheckTenantDomains and the periodic check of every tenant's domains."""

    def get(self, caller: Caller, tenant_id: str) -> TenantDomains:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_read(tenant)
        with self._uow() as uow:
            return _view(uow, tenant)

    def set(
        self, caller: Caller, tenant_id: str, sending: Sequence[tuple[str, Sequence[str]]], tracking: Sequence[str]
    ) -> TenantDomains:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        domains = replace(parse_domain_list(tenant, sending, tracking), updated_at=self._clock.now(), checked_at=None)
        with self._uow() as uow:
            uow.tenant_domains.lock(tenant)
            uow.tenant_domains.save(domains, caller.subject)
            plan = planned_checks(domains, _active_addresses(uow, tenant))
            uow.domain_checks.forget(tenant, [key for key in uow.domain_checks.of_tenant(tenant) if key not in plan])
            view = _view(uow, tenant)
            uow.commit()
        return view

    def check(self, caller: Caller, tenant_id: str) -> TenantDomainRun:
        """Checks the tenant's domains now (every CheckTenantDomains, within the caller's allowance of scans)."""
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        self._limit(caller, self._config.tenant_scan_limit, "CheckTenantDomains")
        runs = self.run([tenant], "check")
        return runs[0] if runs else TenantDomainRun(tenant, [], [])

    def run(self, tenants: Sequence[str], trigger: str) -> list[TenantDomainRun]:
        """Checks these tenants' domains now and records the results; a tenant without domains is skipped."""
        work: list[TenantWork] = []
        with self._uow() as uow:
            choices = uow.tenant_zones.get_many(tenants)
            for tenant in tenants:
                domains = uow.tenant_domains.get(tenant)
                if not domains.empty:
                    zones = tenant_zones(self._config, choices[tenant]).domain_zones
                    work.append(TenantWork(domains, _active_addresses(uow, tenant), zones))
        if not work:
            return []
        health, found = self._ask_dns(work)
        now = self._clock.now()
        with self._uow() as uow:
            record_zone_health(uow, health, now)
            uow.commit()
        runs: list[TenantDomainRun] = []
        for item, (sending, tracking) in zip(work, found, strict=True):
            run = TenantDomainRun(item.domains.tenant_id, sending, tracking)
            with self._uow() as uow:
                run.changes = _record_run(uow, run.tenant_id, _results(run), now)
                uow.commit()
            runs.append(run)
            for _domain, result in _results(run):
                self._metrics.domain_checks.labels(trigger, result.check.value, result.verdict.value).inc()
            for state in run.changes:
                self._metrics.domain_changes.labels(state.key[1], state.verdict.value).inc()
        log.info(
            "domain checks recorded",
            extra={
                "trigger": trigger,
                "tenants": len(runs),
                "checks": sum(len(_results(r)) for r in runs),
                "unknown": sum(r.unknown for r in runs),
                "changes": sum(len(r.changes) for r in runs),
            },
        )
        return runs

    def periodic(self, owner: str | None = None) -> list[TenantDomainRun] | None:
        """Every tenant's domains once per slot, whichever replica or worker claims it first; between slots, the
        tenants whose domains were set and not checked since. None when there was nothing for this caller."""
        now = self._clock.now()
        interval = self._config.domain_check_interval
        owner = owner or default_owner()
        with self._uow() as uow:
            every = uow.tenant_domains.all()
        if self._claims.claim(
            f"reputation-domains:{int(interval.total_seconds())}:{slot_of(now, interval)}", owner, now
        ):
            return self.run([d.tenant_id for d in every], "periodic")
        fresh = [
            d.tenant_id
            for d in every
            if d.checked_at is None
            and d.updated_at is not None
            and self._claims.claim(f"reputation-domains-first:{d.tenant_id}:{d.updated_at.isoformat()}", owner, now)
        ]
        return self.run(fresh, "first") if fresh else None

    def _ask_dns(
        self, work: Sequence[TenantWork]
    ) -> tuple[dict[str, ZoneHealth], list[tuple[list[DomainReport], list[DomainReport]]]]:
        """Zone health, then per tenant a report per sending domain (DNS checks + blocklists) and per tracking
        domain (blocklists), all tenants at once."""
        groups: dict[tuple[str, ...], tuple[tuple[Zone, ...], list[str]]] = {}
        for item in work:
            targets = groups.setdefault(tuple(z.key for z in item.zones), (item.zones, []))[1]
            targets.extend(d for d in item.domains.blocklist_targets if d not in targets)
        requests = [
            DomainAuthRequest(sending.domain, item.ips, sending.dkim_selectors, checks=AUTH_CHECKS)
            for item in work
            for sending in item.domains.sending
        ]
        reports, scanned = self._dns.check_domains(
            requests, [ScanGroup(zones, tuple(targets)) for zones, targets in groups.values()]
        )
        found: dict[tuple[tuple[str, ...], str], ScanResult] = {}
        for group_key, results in zip(groups, scanned.results, strict=False):
            found.update({(group_key, r.target): r for r in results})
        now = self._clock.now()
        out: list[tuple[list[DomainReport], list[DomainReport]]] = []
        auth = iter(reports)
        for item in work:
            group_key = tuple(z.key for z in item.zones)

            def blocklists(domain: str, group_key: tuple[str, ...] = group_key) -> CheckResult:
                scan = found.get((group_key, domain)) or ScanResult(domain, ZoneKind.DOMAIN, now, now, ())
                return blocklist_check(publicize(scan))

            sending = []
            for _sending in item.domains.sending:
                report = next(auth)
                sending.append(DomainReport(report.domain, now, (*report.checks, blocklists(report.domain))))
            sent = {s.domain for s in item.domains.sending}
            tracking = [DomainReport(d, now, (blocklists(d),)) for d in item.domains.tracking if d not in sent]
            out.append((sending, tracking))
        return scanned.health, out


def _active_addresses(uow: ReputationUnitOfWork, tenant: str) -> tuple[str, ...]:
    """The tenant's IPs in service (retired ones send nothing: their SPF is no longer checked)."""
    return tuple(ip.address for ip in uow.ips.active(tenant))


def _results(run: TenantDomainRun) -> list[tuple[str, CheckResult]]:
    return [(report.domain, check) for report in run.sending + run.tracking for check in report.checks]


def _view(uow: ReputationUnitOfWork, tenant: str) -> TenantDomains:
    domains = uow.tenant_domains.get(tenant)
    plan = planned_checks(domains, _active_addresses(uow, tenant))
    stored = uow.domain_checks.of_tenant(tenant)
    return TenantDomains(domains, tuple(stored[key] for key in plan if key in stored))


def _record_run(
    uow: ReputationUnitOfWork, tenant_id: str, results: Sequence[tuple[str, CheckResult]], observed_at: datetime
) -> list[CheckState]:
    """Folds one run's results into the tenant's believed verdicts (see the module docstring)."""
    uow.tenant_domains.lock(tenant_id)
    domains = uow.tenant_domains.get(tenant_id)
    plan = planned_checks(domains, _active_addresses(uow, tenant_id))
    stored = uow.domain_checks.of_tenant(tenant_id)
    uow.domain_checks.forget(tenant_id, [key for key in stored if key not in plan])
    changes: list[CheckState] = []
    for domain, result in results:
        key: CheckKey = (domain, result.check.value, result.subject)
        role = plan.get(key)
        if role is None:  # no longer configured while we checked
            continue
        before = stored.get(key)
        folded = fold_check(before, key=key, role=role, result=result, observed_at=observed_at)
        if folded is None:  # a later run's verdict is stored already
            continue
        state, step = folded
        if before is None:
            uow.domain_checks.add(tenant_id, state)
        else:
            uow.domain_checks.update(tenant_id, state)
        stored[key] = state
        if step.publish:
            previous = before.believed if before is not None else None
            event = domain_check_changed(tenant_id, domain, role, previous, result, observed_at)
            uow.publish(event, tenant_id=tenant_id)
            changes.append(state)
    uow.tenant_domains.mark_checked(tenant_id, observed_at)
    return changes
