"""The ip-pool service started in process by its real ServiceHost (gRPC, interceptor, outbox, consumer, jobs)
on a FakeClock, so tests drive simulated days: move the clock, call the job function, read through the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from ippool.server import DEFINITION
from libs.auth import Role, ensure_local_keys, mint_token
from libs.clock import FakeClock
from libs.config import Settings
from libs.server import ServiceHost
from tests.harness.servers import PostgresServer, free_port

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class IpPoolService:
    """A running ip-pool and a client for it: `call("GetIp", request)` as admin or with `token=`."""

    host: ServiceHost
    clock: FakeClock
    settings: Settings
    stub: pb_grpc.IpPoolServiceStub
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def db(self) -> Any:
        return self.host.runtime.db

    def token(self, tenant: str = "", role: Role = Role.OPERATOR, subject: str = "") -> str:
        role = role if tenant else Role.ADMIN
        key = (tenant, str(role))
        if key not in self._tokens:
            self._tokens[key] = mint_token(
                self.settings.private_key_path,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                subject=subject or f"{role}-{tenant or 'all'}",
                role=role,
                tenant_id=tenant,
            )
        return self._tokens[key]

    def call(self, method: str, request: Any, token: str | None = None) -> Any:
        metadata = (("authorization", f"Bearer {token or self.token()}"),)
        return getattr(self.stub, method)(request, metadata=metadata, timeout=10)

    def register(self, address: str, tenant: str = "sos-expat", **kwargs: Any) -> pb.Ip:
        return self.call("CreateIp", pb.CreateIpRequest(address=address, tenant_id=tenant, **kwargs))

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
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url="",
        ippool_grpc_port=free_port(),
        ippool_metrics_port=free_port(),
        shutdown_drain_seconds=0,
        shutdown_grace_seconds=1,
    )
    ensure_local_keys(settings.private_key_path, settings.jwks_path)
    saved = {k: os.environ.get(k) for k in ("EE_IPPOOL_SEED_TENANTS", "EE_IPPOOL_WARMUP_JOB_SECONDS")}
    os.environ["EE_IPPOOL_SEED_TENANTS"] = "sos-expat,ulixai"
    os.environ["EE_IPPOOL_WARMUP_JOB_SECONDS"] = "3600"  # the tests call the job themselves
    try:
        host = ServiceHost(DEFINITION, settings, clock)
        host.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    channel = grpc.insecure_channel(settings.grpc_address("ip-pool"))
    try:
        yield IpPoolService(host, clock, settings, pb_grpc.IpPoolServiceStub(channel))
    finally:
        channel.close()
        host.stop()  # also leaves the process-wide in-process event bus


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
