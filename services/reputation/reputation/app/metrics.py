"""The reputation service's own Prometheus metrics (on the service's /metrics).

`ReputationMetrics` counts what this process scans; `ReputationCollector` reads, at scrape time, what the database
holds whichever replica scanned:

    emailengine_reputation_listed_ips{tenant,zone}       watched IPs a zone lists now
    emailengine_reputation_zone_status{zone,status}      1 for the zone's last known health (healthy, unhealthy,
                                                         unreachable, unchecked)
    emailengine_reputation_overdue_scans{tenant}         watched IPs whose periodic scan is over an hour late
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from libs.clock import Clock
from libs.metrics import ScrapeCollector, gauge
from reputation.domain.dnsbl import HealthStatus

if TYPE_CHECKING:
    from reputation.app.listings import Recorded
    from reputation.app.unit_of_work import ReputationUnitOfWork
    from reputation.domain.dnsbl import ZoneHealth
    from reputation.domain.query_budget import ZonePlan


class ReputationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.scans = Counter(
            "emailengine_reputation_ip_scans_total", "IP scan results recorded", ["trigger"], registry=registry
        )
        self.changes = Counter(
            "emailengine_reputation_listing_changes_total",
            "IpListingChanged events published",
            ["change", "zone"],
            registry=registry,
        )
        self.listed = Counter(
            "emailengine_reputation_listed_results_total",
            "IP scan results with a listing",
            ["trigger"],
            registry=registry,
        )
        self.zone_healthy = Gauge(
            "emailengine_reputation_zone_healthy",
            "1 when the zone passed its last health check",
            ["zone"],
            registry=registry,
        )
        self.scan_seconds = Histogram(
            "emailengine_reputation_scan_seconds",
            "Wall time of the DNS part of a scan run",
            ["trigger"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )

        self.domain_checks = Counter(
            "emailengine_reputation_domain_checks_total",
            "Checks of tenants' domains recorded",
            ["trigger", "check", "verdict"],
            registry=registry,
        )
        self.domain_changes = Counter(
            "emailengine_reputation_domain_check_changes_total",
            "DomainCheckChanged events published",
            ["check", "verdict"],
            registry=registry,
        )

        self.zone_daily_budget = Gauge(
            "emailengine_reputation_zone_daily_query_budget",
            "Queries a day the periodic scans may send the zone, every tenant together (absent: no budget)",
            ["zone"],
            registry=registry,
        )
        self.zone_wanted = Gauge(
            "emailengine_reputation_zone_wanted_daily_queries",
            "Queries a day the periodic scans would send the zone at every tenant's scan interval",
            ["zone"],
            registry=registry,
        )
        self.zone_planned = Gauge(
            "emailengine_reputation_zone_planned_daily_queries",
            "Queries a day the periodic scans send the zone (within its daily budget)",
            ["zone"],
            registry=registry,
        )
        self.zone_budget_limited = Gauge(
            "emailengine_reputation_zone_budget_limited",
            "1 when the zone's daily query budget makes it asked less often than some tenant's scan interval",
            ["zone"],
            registry=registry,
        )

    def observe_budgets(self, plans: Mapping[str, ZonePlan]) -> None:
        for key, plan in plans.items():
            if plan.daily_budget is not None:
                self.zone_daily_budget.labels(key).set(plan.daily_budget)
            self.zone_wanted.labels(key).set(plan.wanted)
            self.zone_planned.labels(key).set(plan.planned)
            self.zone_budget_limited.labels(key).set(1 if plan.limited else 0)

    def observe(self, trigger: str, recorded: Sequence[Recorded], health: Mapping[str, ZoneHealth]) -> None:
        self.scans.labels(trigger).inc(len(recorded))
        self.listed.labels(trigger).inc(sum(1 for r in recorded if r.scan.is_listed))
        for item in recorded:
            for change in item.changes:
                self.changes.labels(change.kind.value, change.zone_key).inc()
        for key, item in health.items():
            self.zone_healthy.labels(key).set(1 if item.healthy else 0)


OVERDUE_AFTER = timedelta(hours=1)


class ReputationCollector(ScrapeCollector):
    source = "reputation"

    def __init__(self, read_failures: Counter, unit_of_work: Callable[[], ReputationUnitOfWork], clock: Clock):
        super().__init__(read_failures)
        self._uow = unit_of_work
        self._clock = clock

    def families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "listed": gauge("emailengine_reputation_listed_ips", "Watched IPs the zone lists now", ["tenant", "zone"]),
            "zone": gauge(
                "emailengine_reputation_zone_status",
                "1 for the zone's last known health (healthy, unhealthy, unreachable, unchecked), else 0",
                ["zone", "status"],
            ),
            "overdue": gauge(
                "emailengine_reputation_overdue_scans",
                "Watched IPs whose periodic scan is more than an hour late",
                ["tenant"],
            ),
        }

    def fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        now = self._clock.now()
        listed: dict[tuple[str, str], int] = defaultdict(int)
        overdue: dict[str, int] = defaultdict(int)
        with self._uow() as uow:
            schedule = uow.ips.scan_schedule()
            beliefs = uow.listings.get_many([ip.address for ip in schedule])
            health = uow.zone_health.all()
        for ip in schedule:
            # A watched IP never scanned is due since it was registered: with no scan running at all it must
            # count as late too, not only the ones a scan once planned.
            due = ip.due_since
            overdue[ip.tenant_id] += int(due is not None and due < now - OVERDUE_AFTER)
            belief = beliefs.get(ip.address)
            for zone in belief.listed if belief is not None else ():
                listed[(ip.tenant_id, zone)] += 1
        for (tenant, zone), count in sorted(listed.items()):
            families["listed"].add_metric([tenant, zone], count)
        for zone, record in sorted(health.items()):
            for status in HealthStatus:
                families["zone"].add_metric([zone, status.value], 1 if record.status is status else 0)
        for tenant, count in sorted(overdue.items()):
            families["overdue"].add_metric([tenant], count)
