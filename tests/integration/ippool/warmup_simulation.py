"""A simulated warmup: six IPs of one tenant, a Gmail-heavy list mailed every day, realistic replies, day by day
through ip-pool's real use cases on a FakeClock over a real SQLite database.

`simulate(days=90, complaint_rate=..., seed=...)` returns each day's quotas, decisions and held provider caps;
`curve_table(run)` prints them as a compact day-by-day table (runs of identical days merged). Run both curves with
`python tools/warmup_simulation.py`.

What happens each simulated local day D (Europe/Paris, decision hour 06:00):
  05:00  the late figures of D-1 arrive: its asynchronous bounces and its complaints reported overnight (the
         campaign gateway sends the revised absolute totals of D-1, which replace the row);
  06:30  the daily job decides D (yesterday and the window of revised totals);
  09:00  the day's list is allocated over the IPs (reserving), within quotas and provider caps;
  23:00  the day's totals as known that evening are recorded.
The list: 45 000 recipients a day, Gmail 55 %, Orange 12 %, Microsoft 10 %, Free 6 %, Yahoo 5 %, SFR 4 %, iCloud
3 %, La Poste 2 %, GMX 1 %, other 2 %. Replies, drawn from a seeded generator so every run is the same:
  - bounces about 0.8 % of what is sent, a third of them asynchronous (they arrive with D+1's late figures);
  - Microsoft `451 4.7.650` on 1-4 attempts and Yahoo `[TSS04]` on 1-3 attempts on most days of the first five
    weeks, fewer afterwards, and now and then a bad Microsoft day (a fifth of its attempts deferred for
    reputation); Orange's `OFR004` connection limits as ordinary (capacity) deferrals;
  - complaints: `complaint_rate` of what feedback-loop providers deliver (Gmail and iCloud users complain too, but
    nobody tells the sender per message), half reported the same day, half overnight.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.allocation import AllocationUseCases
from ippool.app.daily import DailyUseCases
from ippool.app.ips import IpUseCases
from ippool.app.signals import SignalUseCases, StatsInput
from ippool.app.tenants import TenantUseCases
from ippool.bootstrap import DEFINITION, SERVICE
from ippool.domain.health import DayCounts
from ippool.domain.history import DecisionKind
from ippool.domain.providers import ProviderGroup
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import connect, migrate

G = ProviderGroup
TENANT = "sos-expat"
ZONE = ZoneInfo("Europe/Paris")
START = date(2026, 1, 5)
ADDRESSES = tuple(f"192.0.2.{n}" for n in range(11, 17))
OPERATOR = Caller("simulation", Role.OPERATOR, TENANT)
DAILY_LIST = 45_000
LIST_MIX = {
    G.GMAIL: 0.55,
    G.ORANGE: 0.12,
    G.MICROSOFT: 0.10,
    G.FREE: 0.06,
    G.YAHOO: 0.05,
    G.SFR: 0.04,
    G.ICLOUD: 0.03,
    G.LAPOSTE: 0.02,
    G.GMX: 0.01,
    G.OTHER: 0.02,
}
# Who reports complaints per message (the tenant's default feedback loops).
REPORTED = frozenset({G.MICROSOFT, G.YAHOO, G.ORANGE, G.SFR, G.LAPOSTE, G.OTHER})
BACKGROUND_COMPLAINT_RATE = 0.0003
WARM_QUOTA = 10_000


@dataclass(frozen=True)
class SimulatedDay:
    index: int
    day: date
    quotas: tuple[int, ...]
    """Each IP's daily quota once the day was decided."""
    rules: tuple[str, ...]
    """Each IP's decision rule for the day ("" on the registration day)."""
    held: tuple[str, ...]
    """Provider caps held that day, e.g. "192.0.2.11 MICROSOFT 60"."""
    sent: int


class _Pool:
    """ip-pool's use cases over one SQLite file, as bootstrap.build wires them."""

    def __init__(self, data_dir: Path, clock: FakeClock):
        self.db = connect(Settings(data_dir=data_dir), SERVICE)
        migrate(self.db, DEFINITION.migrations)
        self.clock = clock

        def unit_of_work(*, read_only: bool = False) -> SqlIpPoolUnitOfWork:
            return SqlIpPoolUnitOfWork(self.db, source=SERVICE, clock=clock, read_only=read_only)

        self.unit_of_work = unit_of_work
        self.ips = IpUseCases(unit_of_work, clock)
        self.tenants = TenantUseCases(unit_of_work, clock)
        self.signals = SignalUseCases(unit_of_work, clock)
        self.allocations = AllocationUseCases(unit_of_work, clock)
        self.daily = DailyUseCases(unit_of_work, clock)


@contextmanager
def _pool() -> Iterator[_Pool]:
    with tempfile.TemporaryDirectory(prefix="ippool-simulation-") as tmp:
        pool = _Pool(Path(tmp), FakeClock(_at(START, 7)))
        try:
            yield pool
        finally:
            pool.db.dispose()


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZONE).astimezone(UTC)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth; the means here are small), so rare events stay rare and whole."""
    if mean <= 0:
        return 0
    if mean > 200:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass
class _Totals:
    """One (IP, day, provider): what the evening knows, and what arrives overnight."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    throttled: int = 0
    deferred: int = 0
    late_bounces: int = 0
    late_complaints: int = 0

    def known(self, *, with_late: bool) -> DayCounts:
        return DayCounts(
            sent=self.sent,
            delivered=self.delivered,
            bounced=self.bounced + (self.late_bounces if with_late else 0),
            complained=self.complained + (self.late_complaints if with_late else 0),
            throttled=self.throttled,
            deferred=self.deferred,
        )


def _replies(rng: random.Random, index: int, group: ProviderGroup, sent: int, complaint_rate: float) -> _Totals:
    """What the receivers answer to `sent` messages of one IP for one provider on day `index` of the warmup."""
    bounces = _poisson(rng, sent * 0.008)
    late_bounces = _poisson(rng, bounces / 2) if bounces else 0
    late_bounces = min(late_bounces, bounces)
    delivered = sent - bounces
    totals = _Totals(sent=sent, delivered=delivered, bounced=bounces - late_bounces, late_bounces=late_bounces)
    young = index < 35
    if group is G.MICROSOFT and sent:
        if young and rng.random() < 0.05:
            totals.throttled = max(1, round(0.25 * sent))  # a bad day: a fifth of the attempts deferred
        elif rng.random() < (0.8 if young else 0.2):
            totals.throttled = rng.randint(1, 4 if young else 2)
    if group is G.YAHOO and sent and rng.random() < (0.7 if young else 0.2):
        totals.throttled = rng.randint(1, 3 if young else 1)
    capacity = rng.randint(0, 5) if group is G.ORANGE and sent else 0
    totals.deferred = totals.throttled + capacity
    if group in REPORTED:
        complaints = _poisson(rng, delivered * complaint_rate)
        totals.late_complaints = complaints // 2
        totals.complained = complaints - totals.late_complaints
    return totals


def _record(pool: _Pool, day: date, totals: dict[tuple[str, ProviderGroup], _Totals], *, with_late: bool) -> None:
    entries = [
        StatsInput(address, day.isoformat(), group, t.known(with_late=with_late))
        for (address, group), t in sorted(totals.items())
    ]
    if entries:
        pool.signals.record_stats(OPERATOR, entries)


def simulate(
    *, days: int = 90, complaint_rate: float = BACKGROUND_COMPLAINT_RATE, seed: int = 2026
) -> list[SimulatedDay]:
    """`days` simulated days of the six IPs (module docstring); the same seed gives the same run."""
    rng = random.Random(seed)
    run: list[SimulatedDay] = []
    with _pool() as pool:
        pool.tenants.ensure(TENANT)
        pool.tenants.update(OPERATOR, TENANT, {"time_zone": "Europe/Paris"})
        for address in ADDRESSES:
            pool.ips.register(
                OPERATOR,
                address=address,
                tenant_id=TENANT,
                purpose="marketing",
                pool="",
                pmta_node="",
                helo_hostname="",
                schedule_id="",
            )
        yesterday: dict[tuple[str, ProviderGroup], _Totals] = {}
        for index in range(days):
            day = START + timedelta(days=index)
            if index:
                pool.clock.set(_at(day, 5))
                _record(pool, day - timedelta(days=1), yesterday, with_late=True)
                pool.clock.set(_at(day, 6) + timedelta(minutes=30))
                pool.daily.run_day()
            run.append(_observe(pool, index, day, yesterday))
            pool.clock.set(_at(day, 9))
            wanted = {group: round(DAILY_LIST * share) for group, share in LIST_MIX.items()}
            allocation = pool.allocations.allocate(
                OPERATOR,
                tenant_id=TENANT,
                volume=sum(wanted.values()),
                volume_by_provider=list(wanted.items()),
                plan_horizon_days=0,
                validate_only=False,
            )
            today: dict[tuple[str, ProviderGroup], _Totals] = {}
            for placed in allocation.result.allocations:
                for group, count in placed.by_provider.items():
                    today[(placed.address, group)] = _replies(rng, index, group, count, complaint_rate)
            pool.clock.set(_at(day, 23))
            _record(pool, day, today, with_late=False)
            yesterday = today
    return run


def _observe(pool: _Pool, index: int, day: date, yesterday: dict[tuple[str, ProviderGroup], _Totals]) -> SimulatedDay:
    quotas, rules, held = [], [], []
    for address in ADDRESSES:
        ip = pool.ips.get(OPERATOR, address)
        quotas.append(ip.quota.daily)
        held += [f"{address} {p.provider} {p.cap}" for p in ip.quota.by_provider if p.held]
        if index:
            decisions, _ = pool.ips.decisions(OPERATOR, address, kind=DecisionKind.WARMUP, size=1, token="")
            rules.append(decisions[0].rule if decisions and decisions[0].day == day else "")
        else:
            rules.append("")
    return SimulatedDay(
        index=index,
        day=day,
        quotas=tuple(quotas),
        rules=tuple(rules),
        held=tuple(held),
        sent=sum(t.sent for t in yesterday.values()),
    )


def reached_warm(run: list[SimulatedDay]) -> list[int | None]:
    """Per IP, the first simulated day (1-based) at the warm quota, or None."""
    return [next((d.index + 1 for d in run if d.quotas[n] >= WARM_QUOTA), None) for n in range(len(ADDRESSES))]


def curve_table(run: list[SimulatedDay], title: str) -> str:
    """Day by day, each IP's quota; consecutive days with the same quotas are one row, which says what held or
    stepped back an IP in them (`rule x count`) and which provider caps were held."""
    width = 7
    header = "days    " + "".join(f"{'.' + a.rsplit('.', 1)[1]:>{width}}" for a in ADDRESSES)
    lines = [title, header + "  not HEALTHY in these days; held provider caps"]
    spans: list[tuple[int, int, tuple[int, ...], dict[str, int], set[str]]] = []
    for day in run:
        if not spans or spans[-1][2] != day.quotas:
            spans.append((day.index + 1, day.index + 1, day.quotas, {}, set()))
        first, _, quotas, rules, held = spans[-1]
        for rule in day.rules:
            if rule and rule != "HEALTHY":
                rules[rule] = rules.get(rule, 0) + 1
        held.update(f".{h.split(' ')[0].rsplit('.', 1)[1]} {h.split(' ', 1)[1]}" for h in day.held)
        spans[-1] = (first, day.index + 1, quotas, rules, held)
    for first, last, quotas, rules, held in spans:
        span = f"{first}" if first == last else f"{first}-{last}"
        note = ", ".join(f"{rule} x{n}" for rule, n in sorted(rules.items()))
        if held:
            note += ("; " if note else "") + "held " + ", ".join(sorted(held))
        lines.append(f"{span:<8}" + "".join(f"{q:>{width}}" for q in quotas) + (f"  {note}" if note else ""))
    warm = reached_warm(run)
    lines.append("warm (10 000/day) on day: " + ", ".join(str(w) if w else "never" for w in warm))
    return "\n".join(lines)


def both_curves(*, days: int = 90, seed: int = 2026) -> str:
    """The clean run and the 0.5 % complaint run, as tools/warmup_simulation.py prints them."""
    clean = simulate(days=days, seed=seed)
    complaining = simulate(days=days, complaint_rate=0.005, seed=seed)
    return "\n\n".join(
        [
            curve_table(clean, f"Clean list ({BACKGROUND_COMPLAINT_RATE:.2%} complaints at feedback-loop providers)"),
            curve_table(complaining, "Same run, 0.5 % complaints at feedback-loop providers"),
        ]
    )
