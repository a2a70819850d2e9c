"""Prometheus metrics shared by every service, and the way a service reads gauges from its database at scrape time.

Every metric of the platform is named `emailengine_*` (the gRPC ones are py-grpc-prometheus's standard
`grpc_server_*`). Labels stay bounded: tenant, state, zone, provider, node, outcome, never an IP address, an e-mail
address or a campaign id. Which service a series comes from is the scrape target's `service` label (each service has
its own /metrics port), so no metric carries it itself.

Gauges that describe what the database holds (outbox depth, dead letters, IPs per state...) are read when Prometheus
scrapes, by a `ScrapeCollector`: every replica reads the same rows and reports the same values, so rules and
dashboards aggregate them with `max`, never `sum`. A read that fails is logged and counted in
`emailengine_metrics_read_failures_total{source}`; the scrape itself still answers, without that source's samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from libs.db import Database
from libs.tables import event_dead_letters, event_outbox

log = logging.getLogger(__name__)

PREFIX = "emailengine_"


class ScrapeCollector(Collector):
    """Gauges read at scrape time. A subclass lists its (empty) families in `families()` and fills them in
    `fill()` with cheap queries; `describe()` gives the families without reading anything."""

    source = "unnamed"

    def __init__(self, read_failures: Counter):
        self._read_failures = read_failures

    def families(self) -> dict[str, Any]:
        """The empty metric families (GaugeMetricFamily, CounterMetricFamily...), by a name of the subclass's own."""
        raise NotImplementedError

    def fill(self, families: dict[str, Any]) -> None:
        raise NotImplementedError

    def describe(self) -> Iterable[Metric]:
        return list(self.families().values())

    def collect(self) -> Iterator[Metric]:
        families = self.families()
        try:
            self.fill(families)
        except Exception:
            log.warning("metrics not read; this scrape goes without them", exc_info=True, extra={"source": self.source})
            self._read_failures.labels(self.source).inc()
            families = self.families()
        yield from families.values()


def gauge(name: str, documentation: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class PlatformCollector(ScrapeCollector):
    """The service's share of the platform: its outbox, its dead letters, and its consumer group on the stream."""

    source = "platform"

    def __init__(
        self,
        read_failures: Counter,
        *,
        db: Database,
        consumer_group: str,
        consumes: Callable[[], bool],
        redis_client: redis.Redis | None,
        stream: str,
        now: Callable[[], datetime],
    ):
        super().__init__(read_failures)
        self._db = db
        self._group = consumer_group
        self._consumes = consumes
        self._redis = redis_client
        self._stream = stream
        self._now = now

    def families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "outbox": gauge("emailengine_outbox_pending_events", "Events committed and not relayed yet", []),
            "outbox_age": gauge(
                "emailengine_outbox_oldest_pending_age_seconds",
                "Age of the oldest event not relayed yet (0 when none waits)",
                [],
            ),
            "dead": gauge(
                "emailengine_dead_letters",
                "Events the service could not apply after its retries, not replayed yet",
                [],
            ),
            "pending": gauge(
                "emailengine_consumer_pending_events",
                "Entries the service's consumer group read and has not acknowledged (Redis streams only)",
                [],
            ),
            "lag": gauge(
                "emailengine_consumer_lag_events",
                "Entries of the stream the service's consumer group has not read yet (Redis streams only)",
                [],
            ),
        }

    def fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        outbox, dead = event_outbox, event_dead_letters
        with self._db.transaction() as session:
            waiting, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.relayed_at.is_(None))
            ).one()
            letters = session.execute(
                sa.select(sa.func.count()).where(dead.c.consumer_group == self._group, dead.c.replayed_at.is_(None))
            ).scalar_one()
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=self._now().tzinfo)  # SQLite drops the zone
            age = max(0.0, (self._now() - oldest).total_seconds())
        families["outbox"].add_metric([], waiting)
        families["outbox_age"].add_metric([], age)
        families["dead"].add_metric([], letters)
        if self._redis is not None and self._consumes():
            for group in _groups(self._redis, self._stream):
                if _text(group["name"]) == self._group:
                    families["pending"].add_metric([], int(group["pending"]))
                    lag = group.get("lag")
                    if lag is not None:  # Redis 7; None when the server cannot tell (entries deleted)
                        families["lag"].add_metric([], int(lag))


def _groups(client: redis.Redis, stream: str) -> list[dict]:
    try:
        return list(client.xinfo_groups(stream))
    except redis.ResponseError:  # no stream yet
        return []


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PlatformMetrics:
    """The metrics every service has: events relayed and applied, and failed scrape-time reads. Service code adds
    its own collectors with `register()`."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.read_failures = Counter(
            "emailengine_metrics_read_failures_total",
            "Scrape-time reads of metrics that failed (their samples were left out of that scrape)",
            ["source"],
            registry=registry,
        )
        self.events_relayed = Counter(
            "emailengine_events_relayed_total", "Events moved from the outbox", registry=registry
        )
        self.events_applied = Counter(
            "emailengine_events_applied_total", "Events applied by this service", ["event_type"], registry=registry
        )
        self.events_dead_lettered = Counter(
            "emailengine_events_dead_lettered_total",
            "Events this process gave up applying and set aside as dead letters",
            ["event_type"],
            registry=registry,
        )

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)


def metric_names(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can expose, with the suffixes Prometheus sees (`_total` of a counter,
    `_bucket`/`_sum`/`_count` of a histogram), as the registry computed them from the collectors' descriptions
    when they were registered: no database is read."""
    return set(registry._names_to_collectors)
