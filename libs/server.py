"""The one way every service starts: gRPC server, health, reflection, metrics, events, jobs, shutdown.

A service describes itself with a `ServiceDefinition` (libs.runtime); `ServiceHost` builds its runtime and
application and runs them the same way for all four.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, start_http_server
from py_grpc_prometheus.prometheus_server_interceptor import PromServerInterceptor
from tenacity import RetryCallState, Retrying, wait_exponential

from emailengine.platform.v1 import platform_service_pb2, platform_service_pb2_grpc
from libs import events
from libs.auth import TokenVerifier
from libs.clock import Clock
from libs.config import Settings
from libs.interceptor import PlatformInterceptor
from libs.platform_service import PlatformServicer
from libs.runtime import Runtime, ServiceDefinition, build_runtime

log = logging.getLogger(__name__)


class ServiceHost:
    """Runs one service: serve(), then stop() (or SIGTERM) for a graceful exit."""

    def __init__(self, definition: ServiceDefinition, settings: Settings, clock: Clock | None = None):
        self.runtime: Runtime
        self.definition = definition
        self.settings = settings
        self.runtime = build_runtime(definition, settings, clock)
        self.health = health.HealthServicer(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1),
        )
        self._stopping = threading.Event()
        self._background: list[threading.Thread] = []
        self._metrics_server: object | None = None

    # -- start -------------------------------------------------------------------------------------

    def start(self) -> None:
        s, rt = self.settings, self.runtime
        verifier = TokenVerifier(s.jwks_path, s.jwt_issuer, s.jwt_audience)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=s.grpc_workers, thread_name_prefix=f"{self.definition.name}-rpc"),
            interceptors=(
                PromServerInterceptor(enable_handling_time_histogram=True, registry=rt.metrics),
                PlatformInterceptor(self.definition.name, verifier, rt.db),
            ),
            options=[("grpc.so_reuseport", 0)],
        )
        rt.grpc_server = server
        self.definition.add_servicers(rt.app, server)
        for job in self.definition.periodic_jobs(rt.config):
            rt.jobs.every(job)
        platform_service_pb2_grpc.add_PlatformServiceServicer_to_server(
            PlatformServicer(self.definition.name, s, rt.db), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                self.definition.grpc_service,
                platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = s.listen_address(self.definition.name)
        if server.add_insecure_port(address) == 0:
            raise SystemExit(f"{self.definition.name}: cannot listen on {address}")
        server.start()
        self._metrics_server = start_http_server(
            s.metrics_port(self.definition.name), addr=s.bind_host, registry=rt.metrics
        )
        self._start_event_threads()
        rt.jobs.start()
        self.definition.start(rt.app)
        for name in ("", self.definition.grpc_service):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            extra={"grpc": address, "metrics": f"{s.bind_host}:{s.metrics_port(self.definition.name)}"},
        )

    def _start_event_threads(self) -> None:
        rt = self.runtime
        relayed = Counter("emailengine_events_relayed_total", "Events moved from the outbox", registry=rt.metrics)
        applied = Counter(
            "emailengine_events_applied_total", "Events applied by this service", ["event_type"], registry=rt.metrics
        )
        rt.consumer.on_applied = lambda event_type: applied.labels(event_type).inc()
        transport: events.Transport
        if rt.redis is not None:
            transport = events.RedisStreamTransport(rt.redis)
            if rt.consumer.handlers:
                reader = events.RedisStreamConsumer(rt.redis, rt.consumer)
                self._spawn("event-consumer", lambda: reader.poll_once(block_ms=500))
        else:
            transport = events.IN_PROCESS
            events.IN_PROCESS.subscribe(rt.consumer)
        relay = events.OutboxRelay(rt.db, transport)

        def relay_step() -> int:
            moved = relay.relay_once()
            relayed.inc(moved)
            return moved

        self._spawn("outbox-relay", relay_step, idle_wait=self.settings.event_poll_seconds)

    def _spawn(self, name: str, step: Callable[[], int], idle_wait: float = 0.0) -> None:
        """Runs `step` in a loop until stop; a failing step is retried with backoff, never ending the loop."""

        def log_failure(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.error("background step failed; retrying", exc_info=error, extra={"task": name})

        retrying = Retrying(
            wait=wait_exponential(multiplier=0.5, max=30),
            sleep=self._stopping.wait,
            retry_error_callback=lambda _state: 0,  # stopping while failing: nothing done
            stop=lambda _state: self._stopping.is_set(),
            before_sleep=log_failure,
        )

        def loop() -> None:
            while not self._stopping.is_set():
                done = retrying(step)
                if not done and idle_wait:
                    self._stopping.wait(idle_wait)

        thread = threading.Thread(target=loop, name=f"{self.definition.name}-{name}", daemon=True)
        thread.start()
        self._background.append(thread)

    # -- stop --------------------------------------------------------------------------------------

    def stop(self) -> None:
        """NOT_SERVING first (so Envoy stops sending), then let in-flight calls finish, then exit."""
        if self._stopping.is_set():
            return
        log.info("shutting down")
        self.health.enter_graceful_shutdown()
        time.sleep(self.settings.shutdown_drain_seconds)
        self._stopping.set()
        rt = self.runtime
        if rt.grpc_server is not None:
            rt.grpc_server.stop(self.settings.shutdown_grace_seconds).wait()
        for thread in self._background:
            thread.join(timeout=5)
        rt.jobs.stop()
        events.IN_PROCESS.unsubscribe(rt.consumer)
        for hook in rt.on_stop:
            hook()
        if self._metrics_server is not None:
            server, _thread = self._metrics_server  # type: ignore[misc]
            server.shutdown()
        rt.db.dispose()
        log.info("stopped")

    def wait(self) -> None:
        while not self._stopping.is_set():
            self._stopping.wait(1)


def serve_forever(hosts: list[ServiceHost]) -> None:
    """Starts the hosts and stops them all on SIGTERM or SIGINT; returns when they are stopped."""
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for host in hosts:
        host.start()
    done.wait()
    stoppers = [threading.Thread(target=h.stop) for h in hosts]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
