"""The one way every service starts: gRPC server, health, reflection, metrics, events, jobs, shutdown.

A service describes itself with a `ServiceDefinition` (libs.runtime); `ServiceHost` builds its runtime and
application and runs them the same way for all four.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from py_grpc_prometheus.prometheus_server_interceptor import PromServerInterceptor
from tenacity import RetryCallState, Retrying, wait_exponential

from emailengine.platform.v1 import platform_service_pb2, platform_service_pb2_grpc
from libs import events
from libs.auth import TokenVerifier, ensure_local_keys
from libs.clock import Clock
from libs.config import Settings
from libs.dead_letters import DeadLetters
from libs.interceptor import PlatformInterceptor
from libs.platform_service import PlatformServicer
from libs.runtime import Runtime, ServiceDefinition, build_runtime
from libs.service_catalog import consumer_groups

log = logging.getLogger(__name__)


class ServiceHost:
    """Runs one service. Start: `prepare()` (everything wired, nothing running), then `start()`. Stop, in phases
    so that several hosts in one process stop in the right order: `stop_intake()` (no new calls, in-flight ones
    finish and commit), `flush_events()` (the relay hands on what they committed), `close()`."""

    def __init__(self, definition: ServiceDefinition, settings: Settings, clock: Clock | None = None):
        self.definition = definition
        self.settings = settings
        self.runtime: Runtime = build_runtime(definition, settings, clock)
        self.health = health.HealthServicer(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1),
        )
        self._stopping = threading.Event()
        self._intake_stopped = False
        self._closed = False
        self._background: list[threading.Thread] = []
        self._metrics_server: object | None = None
        self._relay: events.OutboxRelay | None = None

    # -- start -------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Wires the gRPC server and subscribes the event consumer; nothing listens or runs yet. In the embedded
        layout every host is prepared before any starts, so no event is relayed before its consumers exist."""
        if self.runtime.grpc_server is not None:
            return
        s, rt = self.settings, self.runtime
        ensure_local_keys(s.service_key_path, s.service_jwks_path)
        verifier = TokenVerifier(s.jwks_path, s.jwt_issuer, s.jwt_audience, service_jwks_path=s.service_jwks_path)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=s.grpc_workers, thread_name_prefix=f"{self.definition.name}-rpc"),
            interceptors=(
                PromServerInterceptor(enable_handling_time_histogram=True, registry=rt.metrics),
                PlatformInterceptor(self.definition.name, verifier, rt.db),
            ),
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", s.max_request_bytes),
                ("grpc.max_send_message_length", 64 << 20),
                # Clients reconnect now and then, so they re-resolve and spread over replicas added since.
                ("grpc.max_connection_age_ms", 5 * 60 * 1000),
                ("grpc.max_connection_age_grace_ms", 30 * 1000),
            ],
        )
        rt.grpc_server = server
        self.definition.add_servicers(rt.app, server)
        for job in self.definition.periodic_jobs(rt.config):
            rt.jobs.every(job)
        platform_service_pb2_grpc.add_PlatformServiceServicer_to_server(
            PlatformServicer(self.definition.name, s, rt.db, DeadLetters(rt.db, rt.consumer)), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                *self.definition.grpc_services,
                platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        if rt.redis is None:
            events.IN_PROCESS.subscribe(rt.consumer)

    def start(self) -> None:
        self.prepare()
        s, rt = self.settings, self.runtime
        server = rt.grpc_server
        assert server is not None
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
        transport: events.Transport
        if rt.redis is not None:
            transport = events.RedisStreamTransport(rt.redis, groups=consumer_groups())
            if rt.consumer.handlers:
                reader = events.RedisStreamConsumer(
                    rt.redis, rt.consumer, claim_idle_ms=int(self.settings.event_claim_idle_seconds * 1000)
                )
                self._spawn("event-consumer", lambda: reader.poll_once(block_ms=500))
        else:
            transport = events.IN_PROCESS
        self._relay = events.OutboxRelay(rt.db, transport)
        self._spawn("outbox-relay", self._relay_step, idle_wait=self.settings.event_poll_seconds)

    def _relay_step(self) -> int:
        assert self._relay is not None
        moved = self._relay.relay_once()
        self.runtime.platform_metrics.events_relayed.inc(moved)
        return moved

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

    def stop_intake(self) -> None:
        """NOT_SERVING first (so Envoy stops sending), then let in-flight calls finish and commit; no new jobs."""
        if self._intake_stopped:
            return
        self._intake_stopped = True
        log.info("shutting down")
        self.health.enter_graceful_shutdown()
        time.sleep(self.settings.shutdown_drain_seconds)
        rt = self.runtime
        if rt.grpc_server is not None:
            rt.grpc_server.stop(self.settings.shutdown_grace_seconds).wait()
        rt.jobs.stop()

    def flush_events(self) -> None:
        """Stops the event threads, then relays what the last calls committed (nothing waits for a restart)."""
        self._stopping.set()
        for thread in self._background:
            thread.join(timeout=5)
        if self._relay is None:
            return
        for _ in range(100):
            try:
                if not self._relay_step():
                    return
            except Exception:
                log.exception("final relay failed; the events stay in the outbox for the next start")
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        rt = self.runtime
        events.IN_PROCESS.unsubscribe(rt.consumer)
        for hook in rt.on_stop:
            hook()
        if self._metrics_server is not None:
            server, _thread = self._metrics_server  # type: ignore[misc]
            server.shutdown()
        rt.db.dispose()
        log.info("stopped")

    def stop(self) -> None:
        self.stop_intake()
        self.flush_events()
        self.close()

    def wait(self) -> None:
        while not self._stopping.is_set():
            self._stopping.wait(1)


def start_all(hosts: list[ServiceHost]) -> None:
    """Every host wired and subscribed before any starts serving or relaying."""
    for host in hosts:
        host.prepare()
    for host in hosts:
        host.start()


def settle_memory() -> None:
    """Once a serving process has started: what start-up made (protobuf descriptors, SQLAlchemy metadata, the
    application) lives as long as the process, so it is moved out of the collector's sight, and young
    collections run less often. The full collections that walked it all were the tail of the read latency
    (GetIp's p99 under load 103 -> 56 ms)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def stop_all(hosts: list[ServiceHost]) -> None:
    """Intake stopped everywhere (in parallel: each drains), then events flushed, then everything closed."""
    stoppers = [threading.Thread(target=h.stop_intake) for h in hosts]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    for host in hosts:
        host.flush_events()
    for host in hosts:
        host.close()


def serve_forever(hosts: list[ServiceHost]) -> None:
    """Starts the hosts and stops them all on SIGTERM or SIGINT; returns when they are stopped."""
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start_all(hosts)
    settle_memory()
    done.wait()
    stop_all(hosts)
