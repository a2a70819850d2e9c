"""Two service replicas on PostgreSQL (separate runtimes and connection pools on one database)
running the daily job at the same moment advance each IP exactly once per day, and rotate a tenant once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from ippool.adapters.tables import ip_decisions, tenant_day_runs
from ippool.app.daily import DailyRun
from ippool.bootstrap import DEFINITION
from libs.server import build_runtime
from tests.integration.ippool.conftest import IpPoolService
from tests.integration.ippool.test_warmup_job import healthy, outbox_events

pytestmark = pytest.mark.integration

DAYS = 8


def race(apps: list[Any]) -> tuple[list[DailyRun], list[BaseException]]:
    """Runs the daily job of every replica's application at the same moment, one thread each."""
    barrier = threading.Barrier(len(apps))
    runs: list[DailyRun] = []
    errors: list[BaseException] = []

    def run(app: Any) -> None:
        try:
            barrier.wait()
            runs.append(jobs.daily_warmup(app))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return runs, errors


def test_two_replicas_racing_advance_each_ip_exactly_once(ippool_pg: IpPoolService) -> None:
    service = ippool_pg
    assert service.db.is_postgres
    replica = build_runtime(DEFINITION, service.settings, service.clock)  # its own engine, same database
    try:
        service.call(
            "UpdateTenant",
            pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="ulixai", rotation=pb.RotationPolicy(enabled=True))),
        )
        addresses = [f"192.0.2.{n}" for n in range(10, 20)] + [f"198.51.100.{n}" for n in range(10, 20)]
        for address in addresses:
            service.register(address, tenant="sos-expat" if address.startswith("192.") else "ulixai")
        for _day in range(DAYS):
            service.stats(*[healthy(a, service.ip(a).quota.daily) for a in addresses])
            service.next_day()
            runs, errors = race([service.app, replica.app, service.app, replica.app])
            assert errors == []
            assert sum(run.decided for run in runs) == len(addresses)

        for address in addresses:
            ip = service.ip(address)
            assert (ip.quota.daily, ip.warmup.step_index, ip.warmup.sending_day_in_step) == (200, 1, 2), address
            assert ip.warmup.sending_day == DAYS + 1
        with service.db.transaction() as session:
            per_day = session.execute(
                sa.select(ip_decisions.c.address, ip_decisions.c.day, sa.func.count())
                .where(ip_decisions.c.kind == "WARMUP")
                .group_by(ip_decisions.c.address, ip_decisions.c.day)
            ).all()
            rotations = session.execute(sa.select(sa.func.count()).select_from(tenant_day_runs)).scalar_one()
        assert len(per_day) == len(addresses) * DAYS and {n for *_, n in per_day} == {1}
        assert rotations == DAYS  # ulixai once a day; sos-expat has rotation off and nothing resting
        quota_events = outbox_events(service, events_pb2.IpQuotaChanged)
        assert sorted((e.previous_daily_quota, e.daily_quota) for e in quota_events) == sorted(
            [(0, 50), (50, 200)] * len(addresses)
        )
    finally:
        replica.db.dispose()
