"""A service started in this process by its real ServiceHost (gRPC, interceptor, outbox, consumer, jobs) on
free ports and an injectable clock, with a token minter: what the integration tests of each service drive."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from libs.auth import Role, ensure_local_keys, mint_token
from libs.clock import Clock, FakeClock
from libs.config import Settings, setting_name
from libs.jobs import InProcessJobs
from libs.server import ServiceDefinition, ServiceHost
from tests.harness.servers import free_port

FIRST_RUNS_TIMEOUT = 60.0


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Sets environment variables for the duration (services read their own settings at start-up)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Tokens:
    """Signs tokens with the service's local key, one per (tenant, role)."""

    settings: Settings
    _cache: dict[tuple[str, str], str] = field(default_factory=dict)

    def __call__(self, tenant: str = "", role: Role = Role.OPERATOR, subject: str = "") -> str:
        role = role if tenant else Role.ADMIN
        key = (tenant, str(role))
        if key not in self._cache:
            self._cache[key] = mint_token(
                self.settings.private_key_path,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                subject=subject or f"{role}-{tenant or 'all'}",
                role=role,
                tenant_id=tenant,
            )
        return self._cache[key]


@dataclass
class InProcessService:
    host: ServiceHost
    settings: Settings
    channel: grpc.Channel
    token: Tokens

    @property
    def db(self) -> Any:
        return self.host.runtime.db


@contextmanager
def in_process_service(
    definition: ServiceDefinition,
    data_dir: Path,
    *,
    clock: Clock,
    env: Mapping[str, str] | None = None,
    database_url: str = "",
) -> Iterator[InProcessService]:
    stem = setting_name(definition.name)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url="",
        shutdown_drain_seconds=0,
        shutdown_grace_seconds=1,
        **{f"{stem}_grpc_port": free_port(), f"{stem}_metrics_port": free_port()},
    )
    ensure_local_keys(settings.private_key_path, settings.jwks_path)
    with environment(env or {}):
        host = ServiceHost(definition, settings, clock)
        host.start()
    jobs = host.runtime.jobs
    # The periodic jobs run once as the service starts; a test that then drives them itself on its FakeClock
    # begins after that run, not racing it.
    if isinstance(jobs, InProcessJobs) and not jobs.wait_for_first_runs(FIRST_RUNS_TIMEOUT):
        host.stop()
        raise RuntimeError(f"{definition.name}: its periodic jobs' runs at start took over {FIRST_RUNS_TIMEOUT}s")
    channel = grpc.insecure_channel(settings.grpc_address(definition.name))
    try:
        yield InProcessService(host, settings, channel, Tokens(settings))
    finally:
        channel.close()
        host.stop()  # also leaves the process-wide in-process event bus


@dataclass
class ServiceDriver:
    """What a service's test client shares: the running service, its clock, its host, settings and tokens."""

    service: InProcessService
    clock: FakeClock

    @property
    def host(self) -> ServiceHost:
        return self.service.host

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def db(self) -> Any:
        return self.service.db

    @property
    def app(self) -> Any:
        """The service's application, what its job functions take."""
        return self.host.runtime.app

    def token(self, tenant: str = "", role: Role = Role.OPERATOR, subject: str = "") -> str:
        return self.service.token(tenant, role, subject)
