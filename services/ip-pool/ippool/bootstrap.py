"""The ip-pool assembled: its application (use cases over its unit of work), and its definition for the platform.

`DEFINITION` is registered as the `ip-pool` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool import jobs
from ippool.adapters import tables
from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.allocation import AllocationUseCases
from ippool.app.daily import DailyUseCases
from ippool.app.ips import IpUseCases
from ippool.app.metrics import IpPoolCollector
from ippool.app.schedules import ScheduleUseCases
from ippool.app.signals import SignalUseCases
from ippool.app.tenants import TenantUseCases
from ippool.config import IpPoolSettings, load_config
from ippool.server import IpPoolServicer
from libs.change_counter import ChangeCounter
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.runtime import Runtime, ServiceDefinition

SERVICE = "ip-pool"


@dataclass
class IpPoolApp:
    config: IpPoolSettings
    unit_of_work: Callable[[], SqlIpPoolUnitOfWork]
    ips: IpUseCases
    tenants: TenantUseCases
    schedules: ScheduleUseCases
    signals: SignalUseCases
    allocations: AllocationUseCases
    daily: DailyUseCases


def build(rt: Runtime) -> IpPoolApp:
    def unit_of_work(*, read_only: bool = False) -> SqlIpPoolUnitOfWork:
        return SqlIpPoolUnitOfWork(rt.db, source=SERVICE, clock=rt.clock, read_only=read_only)

    changes = ChangeCounter(rt.db, tables.changes)
    rt.on_stop.append(changes.close)
    app = IpPoolApp(
        config=rt.config,
        unit_of_work=unit_of_work,
        ips=IpUseCases(unit_of_work, rt.clock, changes=changes.current),
        tenants=TenantUseCases(unit_of_work, rt.clock),
        schedules=ScheduleUseCases(unit_of_work, rt.clock),
        signals=SignalUseCases(unit_of_work, rt.clock),
        allocations=AllocationUseCases(unit_of_work, rt.clock),
        daily=DailyUseCases(unit_of_work, rt.clock),
    )
    for tenant_id in rt.config.seed_tenant_ids:
        app.tenants.ensure(tenant_id)
    metrics = rt.platform_metrics
    metrics.register(IpPoolCollector(metrics.read_failures, lambda: unit_of_work(read_only=True), rt.clock))
    return app


def add_servicers(app: IpPoolApp, server: grpc.Server) -> None:
    pb_grpc.add_IpPoolServiceServicer_to_server(IpPoolServicer(app), server)


def subscriptions(app: IpPoolApp) -> Subscriptions:
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={reputation_events.IpListingChanged: app.signals.on_listing_changed},  # type: ignore[dict-item]
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
