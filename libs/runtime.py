"""What a service is made of, and what it runs on.

A service declares itself with a `ServiceDefinition` (in its `bootstrap.py`, registered as an entry point of
the `emailengine.services` group in pyproject.toml): its name, its gRPC API, its migrations, its own settings,
and how to build its application from a `Runtime`. The application (the service's use cases over its
adapters) is built once per runtime and held by it; the servicer, the event handlers and the jobs all get it
from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import redis
from prometheus_client import CollectorRegistry

from libs.clock import Clock, ShiftedClock, SystemClock
from libs.config import Settings
from libs.db import Database, connect, is_at_head, migrate
from libs.events import STREAM, EventConsumer, Subscriptions
from libs.jobs import InProcessJobs, Jobs, PeriodicJob, RqJobs
from libs.metrics import PlatformCollector, PlatformMetrics

log = logging.getLogger(__name__)

AppT = TypeVar("AppT")


@dataclass
class Runtime:
    """One running instance of a service: its settings, database, jobs, events, metrics, and its application."""

    service: str
    settings: Settings
    config: Any  # the service's own typed settings (its config.py), loaded once
    db: Database
    jobs: Jobs
    clock: Clock
    metrics: CollectorRegistry
    consumer: EventConsumer
    redis: redis.Redis | None
    # The metrics every service has; a service registers its own collectors on it (metrics.registry).
    platform_metrics: PlatformMetrics
    app: Any = None
    grpc_server: grpc.Server | None = None
    on_stop: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceDefinition(Generic[AppT]):
    name: str  # "ip-pool"
    grpc_service: str  # "emailengine.ippool.v1.IpPoolService": its main API, whose health Envoy checks
    migrations: Path
    # The application: use cases over the service's adapters, built once per runtime.
    build: Callable[[Runtime], AppT]
    # Registers the servicer(s) on a gRPC server.
    add_servicers: Callable[[AppT, grpc.Server], None]
    # The service's own settings (EE_<SERVICE>_*), read and validated once at start (libs.config.load).
    load_config: Callable[[], Any] = lambda: None
    # The events it consumes and the unit of work its handlers run in.
    subscriptions: Callable[[AppT], Subscriptions] | None = None
    # Periodic jobs, from the service's settings alone (the scheduler builds no application).
    periodic_jobs: Callable[[Any], list[PeriodicJob]] = lambda _config: []
    # Called once the service serves (e.g. to start a background loop); stop hooks go to runtime.on_stop.
    start: Callable[[AppT], None] = lambda _app: None
    # Further gRPC APIs the same process serves (routed and transcoded by Envoy like the main one).
    more_grpc_services: tuple[str, ...] = ()

    @property
    def grpc_services(self) -> tuple[str, ...]:
        return (self.grpc_service, *self.more_grpc_services)


def _wait_for_migrations(db: Database, definition: ServiceDefinition[Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not is_at_head(db, definition.migrations):
        if time.monotonic() >= deadline:
            db.dispose()
            raise SystemExit(
                f"{definition.name}: its database is not migrated to this version; start the service first "
                f"(emailengine serve {definition.name}) or run `emailengine migrate {definition.name}`"
            )
        log.info("waiting for the service to migrate its database", extra={"service": definition.name})
        time.sleep(1)


def build_runtime(
    definition: ServiceDefinition[Any],
    settings: Settings,
    clock: Clock | None = None,
    *,
    run_migrations: bool = True,
    migration_wait_seconds: float = 0.0,
) -> Runtime:
    """The runtime and its application.

    A worker passes run_migrations=False: it needs a database its service has migrated, waits for it a while
    (they start together), and says so, rather than migrating behind the service's back.
    """
    db = connect(settings, definition.name)
    if run_migrations:
        migrate(db, definition.migrations)
    else:
        _wait_for_migrations(db, definition, migration_wait_seconds)
    client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    registry = CollectorRegistry(auto_describe=True)
    platform_metrics = PlatformMetrics(registry)
    runtime = Runtime(
        service=definition.name,
        settings=settings,
        config=definition.load_config(),
        db=db,
        jobs=RqJobs(settings.redis_url, definition.name) if settings.redis_url else InProcessJobs(),
        clock=clock or (ShiftedClock(settings.clock_offset_file) if settings.clock_offset_file else SystemClock()),
        metrics=registry,
        consumer=EventConsumer(group=definition.name, db=db),
        redis=client,
        platform_metrics=platform_metrics,
    )
    consumer = runtime.consumer
    consumer.on_applied = lambda event_type: platform_metrics.events_applied.labels(event_type).inc()
    consumer.on_dead_lettered = lambda event_type: platform_metrics.events_dead_lettered.labels(event_type).inc()
    platform_metrics.register(
        PlatformCollector(
            platform_metrics.read_failures,
            db=db,
            consumer_group=consumer.group,
            consumes=lambda: bool(consumer.handlers),
            redis_client=client,
            stream=STREAM,
            now=runtime.clock.now,
        )
    )
    runtime.app = definition.build(runtime)
    runtime.jobs.bind(runtime.app)
    if definition.subscriptions is not None:
        runtime.consumer.subscribe(definition.subscriptions(runtime.app))
    return runtime
