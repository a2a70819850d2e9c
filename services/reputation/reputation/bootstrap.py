"""The reputation service assembled: its application (use cases over the database and DNS), and its
definition for the platform.

`DEFINITION` is registered as the `reputation` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.clock import Clock
from libs.db import Database
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.runtime import Runtime, ServiceDefinition
from libs.unit_of_work import SqlUnitOfWork
from reputation import jobs
from reputation.app import watchlist
from reputation.app.domains import DomainValidation
from reputation.app.metrics import ReputationMetrics
from reputation.app.scanning import IpScans
from reputation.app.tenant_domains import TenantDomainChecks
from reputation.app.zones import ZoneUseCases
from reputation.config import ReputationConfig, load_config
from reputation.server import ReputationServicer

SERVICE = "reputation"


@dataclass
class ReputationApp:
    db: Database
    clock: Clock
    config: ReputationConfig
    ips: IpScans
    domains: DomainValidation
    zones: ZoneUseCases
    tenant_domains: TenantDomainChecks

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, source=SERVICE, clock=self.clock)


def build(rt: Runtime) -> ReputationApp:
    config: ReputationConfig = rt.config
    metrics = ReputationMetrics(rt.metrics)
    return ReputationApp(
        db=rt.db,
        clock=rt.clock,
        config=config,
        ips=IpScans(rt.db, config, rt.clock, metrics),
        domains=DomainValidation(rt.db, config, rt.clock),
        zones=ZoneUseCases(rt.db, config, rt.clock),
        tenant_domains=TenantDomainChecks(rt.db, config, rt.clock, metrics),
    )


def add_servicers(app: ReputationApp, server: grpc.Server) -> None:
    pb_grpc.add_ReputationServiceServicer_to_server(ReputationServicer(app), server)


def subscriptions(app: ReputationApp) -> Subscriptions:
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={
            ippool_events.IpRegistered: lambda uow, envelope, event: watchlist.on_ip_registered(
                uow.session, envelope, event
            ),
            ippool_events.IpStateChanged: lambda uow, envelope, event: watchlist.on_ip_state_changed(
                uow.session, envelope, event
            ),
        },
    )


def periodic_jobs(config: ReputationConfig) -> list[PeriodicJob]:
    # The jobs run every tick; each works only when its interval's slot is not taken yet (claim_once).
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
