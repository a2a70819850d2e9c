"""The ip-pool service's own Prometheus metrics (on the service's /metrics), read from its database at scrape time.

    emailengine_ippool_ips{tenant,state}                      IPs per state (RETIRED included; 0 for an empty one)
    emailengine_ippool_ips_by_step{tenant,step}               IPs that may send (WARMING, WARM), per warmup step
    emailengine_ippool_quota_today{tenant,step}               today's daily quota of those IPs, summed per step
    emailengine_ippool_used_today{tenant}                     what they used of it today (sent or committed)
    emailengine_ippool_allocated_today{tenant}                what allocations committed them to today
    emailengine_ippool_decisions_last_day{tenant,kind,action,rule}   decisions recorded in the last 24 hours

"Today" is each tenant's local day. Steps are numbered from 1, as the API shows them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from ippool.app.ip_today import ips_today
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.lifecycle import SENDING_STATES, IpState
from libs.clock import Clock
from libs.metrics import ScrapeCollector, gauge
from libs.unit_of_work import UnitOfWorkFactory

DECISIONS_WINDOW = timedelta(days=1)


class IpPoolCollector(ScrapeCollector):
    source = "ip-pool"

    def __init__(self, read_failures: Counter, unit_of_work: UnitOfWorkFactory[IpPoolUnitOfWork], clock: Clock):
        super().__init__(read_failures)
        self._uow = unit_of_work
        self._clock = clock

    def families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "ips": gauge("emailengine_ippool_ips", "IPs per tenant and state", ["tenant", "state"]),
            "by_step": gauge(
                "emailengine_ippool_ips_by_step", "Sending IPs (WARMING, WARM) per warmup step", ["tenant", "step"]
            ),
            "quota": gauge(
                "emailengine_ippool_quota_today",
                "Today's daily quota of the sending IPs, summed per warmup step (the tenant's local day)",
                ["tenant", "step"],
            ),
            "used": gauge(
                "emailengine_ippool_used_today",
                "What the sending IPs used of today's quota (sent or committed, the larger per provider)",
                ["tenant"],
            ),
            "allocated": gauge(
                "emailengine_ippool_allocated_today",
                "Volume allocations committed the tenant's IPs to today",
                ["tenant"],
            ),
            "decisions": gauge(
                "emailengine_ippool_decisions_last_day",
                "Decisions recorded in the last 24 hours, per kind (WARMUP, LIFECYCLE, ROTATION), action and rule",
                ["tenant", "kind", "action", "rule"],
            ),
        }

    def fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        now = self._clock.now()
        states: dict[tuple[str, str], int] = defaultdict(int)
        steps: dict[tuple[str, str], int] = defaultdict(int)
        quota: dict[tuple[str, str], int] = defaultdict(int)
        used: dict[str, int] = defaultdict(int)
        allocated: dict[str, int] = defaultdict(int)
        with self._uow() as uow:
            tenants = uow.tenants.all()
            for tenant in tenants:
                ips = uow.ips.of_tenant(tenant.tenant_id)
                for ip in ips:
                    states[(tenant.tenant_id, ip.state.value)] += 1
                sending = [ip for ip in ips if ip.state in SENDING_STATES]
                for today in ips_today(uow, sending, now):
                    step = str(today.ip.position.step_index + 1)
                    steps[(tenant.tenant_id, step)] += 1
                    quota[(tenant.tenant_id, step)] += today.quota.daily
                    used[tenant.tenant_id] += today.quota.used_today
                day = tenant.local_day(now)
                committed = uow.allocations.committed({ip.address: day for ip in sending})
                allocated[tenant.tenant_id] = sum(sum(by_provider.values()) for by_provider in committed.values())
            decisions = uow.decisions.counts_since(now - DECISIONS_WINDOW)
        # Every state of every tenant, 0 included: a rule that asks "none may send" needs the WARMING and WARM
        # series at 0, not missing (an absent series compares to nothing, and the alert would never fire).
        for tenant in sorted(tenants, key=lambda t: t.tenant_id):
            for state in IpState:
                families["ips"].add_metric([tenant.tenant_id, state.value], states[(tenant.tenant_id, state.value)])
        for (tenant_id, step), count in sorted(steps.items()):
            families["by_step"].add_metric([tenant_id, step], count)
            families["quota"].add_metric([tenant_id, step], quota[(tenant_id, step)])
        for tenant in tenants:
            families["used"].add_metric([tenant.tenant_id], used[tenant.tenant_id])
            families["allocated"].add_metric([tenant.tenant_id], allocated[tenant.tenant_id])
        for tenant_id, kind, action, rule, count in sorted(decisions):
            families["decisions"].add_metric([tenant_id, kind, action, rule], count)
