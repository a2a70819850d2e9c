"""The ip-pool service started in process by its real ServiceHost (gRPC, interceptor, outbox, consumer, jobs)
on a FakeClock, so tests drive simulated days: move the clock, call the job function, read through the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from ippool.bootstrap import DEFINITION
from libs.clock import FakeClock
from tests.harness.in_process import ServiceDriver, in_process_service
from tests.harness.servers import PostgresServer

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class IpPoolService(ServiceDriver):
    """A running ip-pool and a client for it: `call("GetIp", request)` as admin or with `token=`."""

    stub: pb_grpc.IpPoolServiceStub

    def call(self, method: str, request: Any, token: str | None = None) -> Any:
        metadata = (("authorization", f"Bearer {token or self.token()}"),)
        return getattr(self.stub, method)(request, metadata=metadata, timeout=10)

    def register(self, address: str, tenant: str = "sos-expat", token: str | None = None, **kwargs: Any) -> pb.Ip:
        return self.call("CreateIp", pb.CreateIpRequest(address=address, tenant_id=tenant, **kwargs), token)

    def ip(self, address: str) -> pb.Ip:
        return self.call("GetIp", pb.GetIpRequest(address=address))

    def stats(self, *entries: pb.DeliveryStats) -> None:
        self.call("RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=list(entries)))

    def decisions(self, address: str, kind: int = 0) -> list[pb.IpDecision]:
        return list(
            self.call(
                "ListIpDecisions", pb.ListIpDecisionsRequest(address=address, kind=kind, page_size=1000)
            ).decisions
        )

    def next_day(self) -> None:
        self.clock.advance(timedelta(days=1))


@contextmanager
def running_ippool(
    data_dir: Path, *, database_url: str = "", clock: FakeClock | None = None
) -> Iterator[IpPoolService]:
    clock = clock or FakeClock(START)
    env = {
        "EE_IPPOOL_SEED_TENANTS": "sos-expat,ulixai",
        "EE_IPPOOL_WARMUP_JOB_SECONDS": "3600",  # the tests call the job themselves
    }
    with in_process_service(DEFINITION, data_dir, clock=clock, env=env, database_url=database_url) as service:
        yield IpPoolService(service, clock, pb_grpc.IpPoolServiceStub(service.channel))


def postgres_url(server: PostgresServer, name: str) -> str:
    """A fresh database on the session's PostgreSQL (each service schema inside it)."""
    server.create_database(name)
    return server.url_for(name)


@pytest.fixture
def ippool(tmp_path: Path) -> Iterator[IpPoolService]:
    with running_ippool(tmp_path) as service:
        yield service


@pytest.fixture
def ippool_pg(tmp_path: Path, postgres: PostgresServer) -> Iterator[IpPoolService]:
    name = f"ippool_{tmp_path.name[-20:].replace('-', '_')}".lower()
    with running_ippool(tmp_path, database_url=postgres_url(postgres, name)) as service:
        yield service


def count(service: IpPoolService, table: str) -> int:
    with service.db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
