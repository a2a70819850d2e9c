"""The ip-pool assembled: its application (use cases over the database), and its definition for the platform.

`DEFINITION` is registered as the `ip-pool` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool import jobs
from ippool.app.allocation import AllocationUseCases
from ippool.app.ips import IpUseCases
from ippool.app.schedules import ScheduleUseCases
from ippool.app.signals import SignalUseCases, listing_handler
from ippool.app.tenants import TenantUseCases
from ippool.config import IpPoolSettings, load_config
from ippool.server import IpPoolServicer
from libs.clock import Clock
from libs.db import Database
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.runtime import Runtime, ServiceDefinition
from libs.unit_of_work import SqlUnitOfWork

SERVICE = "ip-pool"


@dataclass
class IpPoolApp:
    db: Database
    clock: Clock
    config: IpPoolSettings
    ips: IpUseCases
    tenants: TenantUseCases
    schedules: ScheduleUseCases
    signals: SignalUseCases
    allocations: AllocationUseCases

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, source=SERVICE, clock=self.clock)


def build(rt: Runtime) -> IpPoolApp:
    now = rt.clock.now
    app = IpPoolApp(
        db=rt.db,
        clock=rt.clock,
        config=rt.config,
        ips=IpUseCases(rt.db, now),
        tenants=TenantUseCases(rt.db, now),
        schedules=ScheduleUseCases(rt.db, now),
        signals=SignalUseCases(rt.db, now),
        allocations=AllocationUseCases(rt.db, now),
    )
    for tenant_id in rt.config.seed_tenant_ids:
        app.tenants.ensure(tenant_id)
    return app


def add_servicers(app: IpPoolApp, server: grpc.Server) -> None:
    pb_grpc.add_IpPoolServiceServicer_to_server(
        IpPoolServicer(app.ips, app.tenants, app.schedules, app.signals, app.allocations), server
    )


def subscriptions(app: IpPoolApp) -> Subscriptions:
    on_listing = listing_handler(app.clock.now)
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={
            reputation_events.IpListingChanged: lambda uow, envelope, event: on_listing(uow.session, envelope, event)
        },
    )


def periodic_jobs(config: IpPoolSettings) -> list[PeriodicJob]:
    return [
        PeriodicJob("ippool-daily-warmup", jobs.daily_warmup, timedelta(seconds=config.warmup_job_seconds)),
        PeriodicJob("ippool-standby-release", jobs.standby_release, timedelta(seconds=config.standby_job_seconds)),
    ]


DEFINITION = ServiceDefinition(
    name=SERVICE,
    grpc_service="emailengine.ippool.v1.IpPoolService",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    build=build,
    add_servicers=add_servicers,
    load_config=load_config,
    subscriptions=subscriptions,
    periodic_jobs=periodic_jobs,
)
