"""The reputation service assembled: its application (use cases over its database and DNS), and its definition
for the platform.

`DEFINITION` is registered as the `reputation` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.rate_limit import InMemoryRateLimiter, RedisRateLimiter
from libs.runtime import Runtime, ServiceDefinition
from reputation import jobs
from reputation.adapters.dns_checks import ResolverDnsChecks
from reputation.adapters.unit_of_work import JobRunClaims, SqlReputationUnitOfWork
from reputation.app.context import ReputationContext
from reputation.app.domains import DomainValidation
from reputation.app.metrics import ReputationCollector, ReputationMetrics
from reputation.app.scan_settings import ScanSettingsUseCases
from reputation.app.scanning import IpScans
from reputation.app.tenant_domains import TenantDomainChecks
from reputation.app.watchlist import Watchlist, leaves_alone
from reputation.app.zones import ZoneUseCases
from reputation.config import ReputationConfig, load_config
from reputation.server import ReputationServicer

SERVICE = "reputation"


@dataclass
class ReputationApp:
    config: ReputationConfig
    unit_of_work: Callable[[], SqlReputationUnitOfWork]  # what the event handlers run in
    ips: IpScans
    domains: DomainValidation
    zones: ZoneUseCases
    tenant_domains: TenantDomainChecks
    watchlist: Watchlist
    scan_settings: ScanSettingsUseCases


def build(rt: Runtime) -> ReputationApp:
    def unit_of_work() -> SqlReputationUnitOfWork:
        return SqlReputationUnitOfWork(rt.db, source=SERVICE, clock=rt.clock)

    config: ReputationConfig = rt.config
    context = ReputationContext(
        unit_of_work=unit_of_work,
        config=config,
        clock=rt.clock,
        dns=ResolverDnsChecks(config.dns, clock=rt.clock, max_in_flight=config.max_in_flight, budgets=config.budgets),
        claims=JobRunClaims(rt.db),
        metrics=ReputationMetrics(rt.metrics),
        limiter=RedisRateLimiter(rt.redis) if rt.redis is not None else InMemoryRateLimiter(),
    )
    rt.platform_metrics.register(ReputationCollector(rt.platform_metrics.read_failures, unit_of_work, rt.clock))
    return ReputationApp(
        config=config,
        unit_of_work=unit_of_work,
        ips=IpScans(context),
        domains=DomainValidation(context),
        zones=ZoneUseCases(context),
        tenant_domains=TenantDomainChecks(context),
        watchlist=Watchlist(context),
        scan_settings=ScanSettingsUseCases(context),
    )


def add_servicers(app: ReputationApp, server: grpc.Server) -> None:
    pb_grpc.add_ReputationServiceServicer_to_server(ReputationServicer(app), server)


def subscriptions(app: ReputationApp) -> Subscriptions:
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={
            ippool_events.IpRegistered: app.watchlist.on_ip_registered,
            ippool_events.IpStateChanged: app.watchlist.on_ip_state_changed,
        },
        # A pause or a resume changes nothing here: the event is only marked handled, without a unit of work.
        no_effect={ippool_events.IpStateChanged: leaves_alone},
    )


def periodic_jobs(config: ReputationConfig) -> list[PeriodicJob]:
    # The jobs run every tick: the scan takes the IPs whose moment has come, the domain check the slot not taken
    # yet. A tenant's interval shorter than the tick is honoured at each tick.
    scan_tick = min(config.scan_tick, config.scan_interval)
    domain_tick = min(config.scan_tick, config.domain_check_interval)
    return [
        PeriodicJob("reputation-scan", jobs.scan_watched_ips, timedelta(seconds=scan_tick.total_seconds())),
        PeriodicJob(
            "reputation-domain-check", jobs.check_tenant_domains, timedelta(seconds=domain_tick.total_seconds())
        ),
    ]


DEFINITION = ServiceDefinition(
    name=SERVICE,
    grpc_service="emailengine.reputation.v1.ReputationService",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    build=build,
    add_servicers=add_servicers,
    load_config=load_config,
    subscriptions=subscriptions,
    periodic_jobs=periodic_jobs,
)
