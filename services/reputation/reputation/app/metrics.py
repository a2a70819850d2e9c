"""The reputation service's own Prometheus metrics (on the service's /metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from reputation.app.listings import Recorded
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
