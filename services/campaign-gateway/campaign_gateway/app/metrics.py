"""The campaign-gateway's own Prometheus metrics (on the service's /metrics), read from its database at scrape time.

The work they describe (quota syncs, deploys, accounting pulls) runs in whichever replica or RQ worker takes the job,
so they come from what that work recorded, not from counters of one process:

    emailengine_gateway_mailwizz_sync_ok{tenant}              1 when the last quota sync into MailWizz succeeded
    emailengine_gateway_mailwizz_sync_age_seconds{tenant}     time since the last quota sync attempt
    emailengine_gateway_mailwizz_sync_conflicts{tenant}       delivery servers in conflict at the last sync
    emailengine_gateway_pmta_deploys_last_day{node,outcome}   PowerMTA deploys of the last 24 hours
    emailengine_gateway_pmta_consecutive_failures{node}       failed deploys in a row (0 after a success)
    emailengine_gateway_accounting_records_total{node}        accounting records counted since the node was added
    emailengine_gateway_accounting_last_ingest_age_seconds{node}   time since the node's accounting last came in
    emailengine_gateway_accounting_node_error{node}           1 while the node's last pull or push failed
    emailengine_gateway_accounting_sent{tenant,provider}      accounting totals of the last two days (UTC), and
    emailengine_gateway_accounting_delivered / _bounced / _complained
    emailengine_gateway_bounce_rate{tenant,provider}          bounced / sent over those days
    emailengine_gateway_complaint_rate{tenant,provider}       complained / delivered over those days

The rates come without a minimum sample: the alerting rules pair them with the volumes above.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from libs.clock import Clock
from libs.metrics import ScrapeCollector, gauge

TOTALS_DAYS = 2
DIRECTORY_SECONDS = 300.0


@dataclass(frozen=True)
class SyncStatus:
    tenant: str
    last_sync_time: datetime | None
    ok: bool
    conflicts: int


@dataclass(frozen=True)
class NodeStatus:
    node: str
    consecutive_failures: int
    records_counted: int = 0
    last_ingest_time: datetime | None = None
    failing: bool = False


@dataclass
class GatewaySnapshot:
    syncs: list[SyncStatus] = field(default_factory=list)
    nodes: list[NodeStatus] = field(default_factory=list)
    deploys: list[tuple[str, str, int]] = field(default_factory=list)
    """(node, outcome, count) of the window."""
    totals: list[tuple[str, str, int, int, int, int]] = field(default_factory=list)
    """(address, provider, sent, delivered, bounced, complained) summed over the days asked."""


class GatewayReadModel(Protocol):
    def snapshot(self, *, deploys_since: datetime, totals_since: date) -> GatewaySnapshot: ...


class GatewayCollector(ScrapeCollector):
    source = "campaign-gateway"

    def __init__(
        self,
        read_failures: Counter,
        read_model: GatewayReadModel,
        tenants_of_addresses: Callable[[], Mapping[str, str]],
        clock: Clock,
    ):
        super().__init__(read_failures)
        self._read = read_model
        self._tenants_of_addresses = tenants_of_addresses
        self._clock = clock
        self._directory: Mapping[str, str] = {}
        self._directory_time = float("-inf")

    def families(self) -> dict[str, GaugeMetricFamily]:
        tp = ["tenant", "provider"]
        return {
            "sync_ok": gauge(
                "emailengine_gateway_mailwizz_sync_ok", "1 when the last quota sync into MailWizz succeeded", ["tenant"]
            ),
            "sync_age": gauge(
                "emailengine_gateway_mailwizz_sync_age_seconds", "Time since the last quota sync attempt", ["tenant"]
            ),
            "sync_conflicts": gauge(
                "emailengine_gateway_mailwizz_sync_conflicts",
                "MailWizz delivery servers in conflict at the last quota sync",
                ["tenant"],
            ),
            "deploys": gauge(
                "emailengine_gateway_pmta_deploys_last_day",
                "PowerMTA configuration deploys of the last 24 hours, per node and outcome",
                ["node", "outcome"],
            ),
            "deploy_failures": gauge(
                "emailengine_gateway_pmta_consecutive_failures",
                "PowerMTA deploys that failed in a row (0 after a success)",
                ["node"],
            ),
            "records": CounterMetricFamily(
                "emailengine_gateway_accounting_records",
                "Accounting records counted since the node was added",
                labels=["node"],
            ),
            "ingest_age": gauge(
                "emailengine_gateway_accounting_last_ingest_age_seconds",
                "Time since the node's accounting last came in",
                ["node"],
            ),
            "node_error": gauge(
                "emailengine_gateway_accounting_node_error",
                "1 while the node's last accounting pull or push failed",
                ["node"],
            ),
            "sent": gauge("emailengine_gateway_accounting_sent", "Messages sent, the last two days", tp),
            "delivered": gauge("emailengine_gateway_accounting_delivered", "Messages delivered, the last two days", tp),
            "bounced": gauge("emailengine_gateway_accounting_bounced", "Messages bounced, the last two days", tp),
            "complained": gauge(
                "emailengine_gateway_accounting_complained", "Complaints received, the last two days", tp
            ),
            "bounce_rate": gauge(
                "emailengine_gateway_bounce_rate", "Bounced over sent, the last two days (0.02 = 2 %)", tp
            ),
            "complaint_rate": gauge(
                "emailengine_gateway_complaint_rate", "Complaints over delivered, the last two days (0.001 = 0.1 %)", tp
            ),
        }

    def _tenants(self) -> Mapping[str, str]:
        """ip-pool's address -> tenant map, asked again every few minutes; the last one kept when it fails."""
        if time.monotonic() - self._directory_time >= DIRECTORY_SECONDS:
            try:
                self._directory = dict(self._tenants_of_addresses())
                self._directory_time = time.monotonic()
            except Exception:
                if not self._directory:
                    raise
        return self._directory

    def fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        now = self._clock.now()
        snap = self._read.snapshot(
            deploys_since=now - timedelta(days=1), totals_since=now.date() - timedelta(days=TOTALS_DAYS - 1)
        )
        for sync in sorted(snap.syncs, key=lambda s: s.tenant):
            families["sync_ok"].add_metric([sync.tenant], 1 if sync.ok else 0)
            families["sync_conflicts"].add_metric([sync.tenant], sync.conflicts)
            if sync.last_sync_time is not None:
                families["sync_age"].add_metric([sync.tenant], _age(now, sync.last_sync_time))
        for node in sorted(snap.nodes, key=lambda n: n.node):
            families["deploy_failures"].add_metric([node.node], node.consecutive_failures)
            families["records"].add_metric([node.node], node.records_counted)
            families["node_error"].add_metric([node.node], 1 if node.failing else 0)
            if node.last_ingest_time is not None:
                families["ingest_age"].add_metric([node.node], _age(now, node.last_ingest_time))
        for node_name, outcome, count in sorted(snap.deploys):
            families["deploys"].add_metric([node_name, outcome], count)
        if snap.totals:
            self._fill_rates(families, snap.totals, self._tenants())

    @staticmethod
    def _fill_rates(
        families: dict[str, GaugeMetricFamily],
        totals: list[tuple[str, str, int, int, int, int]],
        tenants: Mapping[str, str],
    ) -> None:
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for address, provider, *counts in totals:
            tenant = tenants.get(address)
            if tenant is None:  # an address ip-pool does not know: no tenant to put it under
                continue
            entry = sums[(tenant, provider)]
            for i, value in enumerate(counts):
                entry[i] += value
        for key, (sent, delivered, bounced, complained) in sorted(sums.items()):
            labels = list(key)
            families["sent"].add_metric(labels, sent)
            families["delivered"].add_metric(labels, delivered)
            families["bounced"].add_metric(labels, bounced)
            families["complained"].add_metric(labels, complained)
            if sent:
                families["bounce_rate"].add_metric(labels, bounced / sent)
            if delivered:
                families["complaint_rate"].add_metric(labels, complained / delivered)


def _age(now: datetime, then: datetime) -> float:
    then = then if then.tzinfo else then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())
