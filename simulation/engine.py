"""THE simulated run: a tenant's fleet through the real rules of every service, hour by hour on a virtual clock.

Public API:
    SimulationConfig(days=42, ips=10, seed=2026, list_per_ip=6000, scenario=None, start=2026-01-05)
    simulate(config) -> SimulationRun
    SimulationRun(config, scenario, addresses, schedule, days, seconds, records, deploys)
        .ip_days(address), .alerts(), .alerts_by_incident()
    SimulatedDay(number, day, ips, happenings, alerts, requested, allocated)
    IpDay(address, state, states, step_quota, quota, end_quota, action, rule, reason, held_caps, given, sent,
          bounce_rate)
    Happening(at, source, what, address=""), SentAlert(at, incident, state, severity, title, chats, suppressed)

The world: one tenant (`sos-expat`, Europe/Paris, ip-pool's default policy and schedule) with `ips` new IPs on two
PowerMTA nodes, registered on day 1 at 07:00, mailing a Gmail-heavy list of `list_per_ip` x `ips` recipients every
day (more than the IPs may send until they are warm, so the warmup, not the list, sets the pace). Each local day:

  every hour   ip-pool's standby release job; every 4 hours (reputation's default slot, 01:00, 05:00, ... local
               in winter) a blocklist scan of every IP against the nine IP zones, answered from the scenario
  05:00        the late figures of yesterday (asynchronous bounces, overnight complaints) reach the accounting
               aggregator, and the revised totals of yesterday are recorded in ip-pool
  06:30        ip-pool's daily job decides the day (decision hour 06:00)
  09:00        the day's list is allocated over the IPs; each sends what it got from 09:00 to 21:00, until its
               MailWizz server is switched off (a standby stops it mid-day)
  23:00        the day's accounting records as known that evening are aggregated and recorded in ip-pool

After anything that changed an IP (ip-pool's events, read from its outbox), campaign-gateway's rules decide the
MailWizz delivery servers (created, quotas, active or not) and re-render each PowerMTA node's config (pool
membership), and the notifier turns the events into alerts (dedup per incident, routed to the tenant chat and to
the admin chat, which takes warnings and worse). Reputation's own listing changes are applied to ip-pool as its
event consumer applies them (`on_listing_changed`) and alerted the same way.

Not simulated: the network, MailWizz and PowerMTA themselves (their rows and configs are kept in memory as the
rules wrote them), storm grouping and quiet hours, receivers refusing mail while an IP is listed but not yet
detected, and the rotation (off by default).
"""

from __future__ import annotations

import random
import tempfile
import time as timer
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from google.protobuf import any_pb2
from google.protobuf.message import Message

from campaign_gateway.adapters.ippool_peer import PoolIp, TenantDay
from campaign_gateway.app.mailwizz_sync import ip_sending
from campaign_gateway.domain.accounting import AccountingAggregator, AccountingRecord
from campaign_gateway.domain.pmta_config import IpState as PmtaIpState
from campaign_gateway.domain.pmta_config import NodeIp, PmtaNode, RenderedConfig, address_from_vmta, render_node_config
from campaign_gateway.domain.providers import ProviderGroup as GatewayGroup
from campaign_gateway.domain.quota_sync import ChangeKind, CurrentServer, desired_server, plan_sync
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.allocation import AllocationUseCases
from ippool.app.daily import DailyUseCases
from ippool.app.ip_today import IpToday
from ippool.app.ips import IpUseCases
from ippool.app.signals import SignalUseCases, StatsInput
from ippool.app.tenants import TenantUseCases
from ippool.bootstrap import DEFINITION, SERVICE
from ippool.domain.health import DayCounts
from ippool.domain.history import DecisionKind
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import DEFAULT_SCHEDULE
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import connect, migrate
from libs.errors import Violations
from libs.events import OutboxRelay, unpack
from notifier.app.events import alert_from_ip_listing_changed, alert_from_ip_state_changed
from notifier.domain.alert import Alert
from notifier.domain.dedup import DedupLedger
from notifier.domain.routing import RoutingTable, routing_table_from_config
from reputation.app.events import listing_changed
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome, interpret_answer
from reputation.domain.scan import DEFAULT_SCAN_INTERVAL, ListingState, ScanResult, apply_scan
from reputation.domain.zones import DEFAULT_IP_ZONES, ZoneKind
from simulation.scenarios import Scenario, default_scenario
from simulation.traffic import DayMail, day_records, list_by_provider

TENANT = "sos-expat"
TIME_ZONE = "Europe/Paris"
ZONE = ZoneInfo(TIME_ZONE)
START = date(2026, 1, 5)
OPERATOR = Caller("simulation", Role.OPERATOR, TENANT)
NODES = (PmtaNode("pmta-1", "pmta-1.mail.example.net"), PmtaNode("pmta-2", "pmta-2.mail.example.net"))
TENANT_CHAT, ADMIN_CHAT = "tenant chat", "admin chat"
ROUTES: dict[str, Any] = {
    "routes": [
        {"id": TENANT_CHAT.replace(" ", "-"), "tenant": TENANT, "channel": "telegram", "chat_id": "-1001000000001"},
        {
            "id": ADMIN_CHAT.replace(" ", "-"),
            "admin": True,
            "channel": "telegram",
            "chat_id": "-1001000000002",
            "min_severity": "warning",
        },
    ]
}
MAX_DAYS = 366
MAX_IPS = 200


@dataclass(frozen=True)
class SimulationConfig:
    days: int = 42
    ips: int = 10
    seed: int = 2026
    list_per_ip: int = 6000
    """The day's list is this many recipients per IP."""
    scenario: Scenario | None = None
    """None: `scenarios.default_scenario` for these days and IPs."""
    start: date = START

    def __post_init__(self) -> None:
        problems = Violations()
        if not 1 <= self.days <= MAX_DAYS:
            problems.add("days", f"must be a whole number from 1 to {MAX_DAYS}")
        if not 1 <= self.ips <= MAX_IPS:
            problems.add("ips", f"must be a whole number from 1 to {MAX_IPS}")
        if not 0 <= self.list_per_ip <= 1_000_000:
            problems.add("list_per_ip", "must be a whole number from 0 to 1 000 000")
        problems.raise_if_any()

    @property
    def addresses(self) -> tuple[str, ...]:
        """TEST-NET addresses (RFC 5737): 192.0.2.11, 192.0.2.12, ..."""
        return tuple(f"192.0.2.{11 + n}" if n < 240 else f"198.51.100.{n - 229}" for n in range(self.ips))

    def chosen_scenario(self) -> Scenario:
        return self.scenario if self.scenario is not None else default_scenario(days=self.days, ips=self.ips)


@dataclass
class IpDay:
    """One IP's day: the decision taken at 06:30 and what the day made of it."""

    address: str
    state: str
    """The state once the day was decided (on day 1: once registered)."""
    states: list[str]
    """Every state the IP was in during the day, in order (a standby at 13:00: WARMING, STANDBY)."""
    step_quota: int
    """The volume of the IP's warmup step once decided (what it sends when it sends)."""
    quota: int
    """Today's daily quota once decided: 0 when it may not send."""
    end_quota: int = 0
    """The daily quota at the end of the day (0 after a standby; the step's volume after a release)."""
    action: str = ""
    """The day's warmup decision: ADVANCE, HOLD, STEP_BACK, RESTART ("" on day 1)."""
    rule: str = ""
    reason: str = ""
    held_caps: dict[str, int] = field(default_factory=dict)
    """Provider caps held below their share once decided (a provider throttled the IP): provider -> cap."""
    given: int = 0
    """What the 09:00 allocation gave the IP."""
    sent: int = 0
    bounce_rate: float | None = None
    """bounced / sent of the day, with the late bounces that came overnight."""


@dataclass(frozen=True)
class Happening:
    """Something a service did; the report groups the ones with the same time, source and `what`."""

    at: datetime
    """Local time."""
    source: str
    what: str
    address: str = ""


@dataclass(frozen=True)
class SentAlert:
    at: datetime
    incident: str
    """The notifier's dedup key: the IP on a list, the IP's state."""
    state: str
    severity: str
    title: str
    chats: tuple[str, ...]
    suppressed: bool = False


@dataclass
class SimulatedDay:
    number: int
    day: date
    ips: list[IpDay] = field(default_factory=list)
    happenings: list[Happening] = field(default_factory=list)
    alerts: list[SentAlert] = field(default_factory=list)
    requested: int = 0
    allocated: int = 0


@dataclass
class SimulationRun:
    config: SimulationConfig
    scenario: Scenario
    addresses: tuple[str, ...]
    schedule: tuple[int, ...]
    """The daily volume of each step of the IPs' warmup schedule."""
    days: list[SimulatedDay]
    seconds: float = 0.0
    records: int = 0
    """Accounting records the campaign-gateway aggregator counted."""
    deploys: int = 0
    """PowerMTA node configs rendered differently from the one before (what a deploy would push)."""

    def ip_days(self, address: str) -> list[IpDay]:
        return [next(ip for ip in day.ips if ip.address == address) for day in self.days]

    def alerts(self) -> list[SentAlert]:
        return [alert for day in self.days for alert in day.alerts]

    def alerts_by_incident(self) -> dict[str, list[SentAlert]]:
        found: dict[str, list[SentAlert]] = defaultdict(list)
        for alert in self.alerts():
            found[alert.incident].append(alert)
        return dict(found)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


def _envelope(source: str, event: Message, now: datetime) -> event_pb2.EventEnvelope:
    """The envelope `libs.events.publish` would wrap the event in."""
    payload = any_pb2.Any()
    payload.Pack(event)
    envelope = event_pb2.EventEnvelope(event_id=str(uuid.uuid4()), source=source, tenant_id=TENANT, payload=payload)
    envelope.occurred_at.FromDatetime(now)
    return envelope


class _Collected:
    """The outbox relay's transport: the events ip-pool published, kept for the simulation to hand out."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []

    def send(self, event_type: str, raw_envelope: bytes, event_id: str) -> None:
        self.envelopes.append(raw_envelope)


def _no_fsync(dbapi_connection: Any, _record: object) -> None:
    # A throwaway database: nothing to keep if the machine stops.
    dbapi_connection.execute("PRAGMA synchronous=OFF")


class _IpPool:
    """ip-pool's use cases over a SQLite file, as `ippool.bootstrap.build` wires them."""

    def __init__(self, data_dir: Path, clock: FakeClock):
        self.db = connect(Settings(data_dir=data_dir), SERVICE, url=f"sqlite:///{data_dir / 'ip-pool.db'}")
        sa.event.listen(self.db.engine, "connect", _no_fsync)
        migrate(self.db, DEFINITION.migrations)

        def unit_of_work(*, read_only: bool = False) -> SqlIpPoolUnitOfWork:
            return SqlIpPoolUnitOfWork(self.db, source=SERVICE, clock=clock, read_only=read_only)

        self.unit_of_work = unit_of_work
        self.ips = IpUseCases(unit_of_work, clock)
        self.tenants = TenantUseCases(unit_of_work, clock)
        self.signals = SignalUseCases(unit_of_work, clock)
        self.allocations = AllocationUseCases(unit_of_work, clock)
        self.daily = DailyUseCases(unit_of_work, clock)

    def views(self) -> list[IpToday]:
        found, token = [], ""
        while True:
            page, token = self.ips.list(OPERATOR, tenant_id=TENANT, state=None, size=0, token=token)
            found += page
            if not token:
                return found


def _state(view: IpToday) -> str:
    return view.ip.state.value


def _held(view: IpToday) -> dict[str, int]:
    """The provider caps the IP's record holds (a hold at the provider's share is one too: it will not grow)."""
    return {group.value: cap for group, cap in sorted(view.ip.provider_holds.items())}


class _Simulation:
    def __init__(self, config: SimulationConfig, data_dir: Path):
        self.config = config
        self.scenario = config.chosen_scenario()
        self.addresses = config.addresses
        self.index = {address: n for n, address in enumerate(self.addresses)}
        self.node_of = {address: NODES[n % len(NODES)] for n, address in enumerate(self.addresses)}
        self.clock = FakeClock(_local(config.start, time(0)))
        self.pool = _IpPool(data_dir, self.clock)
        self.outbox = _Collected()
        self.relay = OutboxRelay(self.pool.db, self.outbox)
        self.listings: dict[str, ListingState] = {}
        self.dedup = DedupLedger()
        self.routes: RoutingTable = routing_table_from_config(ROUTES)
        self.servers: dict[str, CurrentServer] = {}
        self.configs: dict[str, RenderedConfig] = {}
        self.aggregators: dict[date, AccountingAggregator] = {}
        self.overnight: dict[date, list[AccountingRecord]] = {}
        self.given: dict[str, dict[ProviderGroup, int]] = {}
        self.stopped: dict[str, datetime] = {}
        self.registered = False
        steps = tuple(step.daily_volume for step in DEFAULT_SCHEDULE.steps)
        self.run = SimulationRun(config, self.scenario, self.addresses, steps, [])
        self.today = SimulatedDay(0, config.start)
        self.number = 0

    # -- the day -------------------------------------------------------------------------------------------

    def simulate(self) -> SimulationRun:
        for number in range(1, self.config.days + 1):
            self._day(number, self.config.start + timedelta(days=number - 1))
        return self.run

    def _day(self, number: int, day: date) -> None:
        self.number = number
        self.today = SimulatedDay(number, day, requested=self.config.list_per_ip * self.config.ips)
        self.run.days.append(self.today)
        self.given, self.stopped = {}, {}
        if len(self.run.days) > 1:
            # Until the 06:30 decision each IP is as yesterday left it (a night's standby or release shows today).
            self.today.ips = [
                IpDay(ip.address, ip.states[-1], [ip.states[-1]], ip.step_quota, ip.end_quota, held_caps=ip.held_caps)
                for ip in self.run.days[-2].ips
            ]
        agenda: list[tuple[time, int, Callable[[], None]]] = [(time(hour), 0, self._hourly) for hour in range(24)]
        if number == 1:
            agenda.append((time(7), 1, self._register))
        else:
            agenda.append((time(5), 1, lambda: self._late_figures(day - timedelta(days=1))))
            agenda.append((time(6, 30), 1, self._decide))
        agenda += [(time(9), 1, self._allocate), (time(23), 1, self._evening), (time(23, 59), 1, self._end_of_day)]
        for at, _, step in sorted(agenda, key=lambda item: (item[0], item[1])):
            self.clock.set(_local(day, at))
            step()
            self._drain()

    def _hourly(self) -> None:
        if not self.registered:
            return
        self.pool.daily.release_standbys()
        interval = int(DEFAULT_SCAN_INTERVAL.total_seconds())
        if int(self.clock.now().timestamp()) % interval == 0:
            self._scan()

    def _register(self) -> None:
        self.pool.tenants.ensure(TENANT)
        self.pool.tenants.update(OPERATOR, TENANT, {"time_zone": TIME_ZONE})
        for n, address in enumerate(self.addresses):
            self.pool.ips.register(
                OPERATOR,
                address=address,
                tenant_id=TENANT,
                purpose="marketing",
                pool="",
                pmta_node=self.node_of[address].name,
                helo_hostname=f"mta-{n + 1}.mail.example.net",
                schedule_id="",
            )
        self.registered = True
        self._snapshot(decided=False)

    def _decide(self) -> None:
        self.pool.daily.run_day()
        self._snapshot(decided=True)

    def _snapshot(self, *, decided: bool) -> None:
        """Each IP as the day's decision (or its registration) left it."""
        known = {ip.address: ip for ip in self.today.ips}
        for view in self.pool.views():
            address, state = view.ip.address, _state(view)
            ip = known.get(address)
            if ip is None:
                ip = known[address] = IpDay(address, state, [state], view.step_daily_volume, view.quota.daily)
            elif ip.states[-1] != state:
                ip.states.append(state)
            ip.state, ip.step_quota, ip.quota = state, view.step_daily_volume, view.quota.daily
            ip.held_caps = _held(view)
            if decided:
                entries, _ = self.pool.ips.decisions(OPERATOR, address, kind=DecisionKind.WARMUP, size=1, token="")
                if entries and entries[0].day == self.today.day:
                    ip.action, ip.rule, ip.reason = entries[0].action, entries[0].rule, entries[0].reason
        self.today.ips = sorted(known.values(), key=lambda ip: self.index[ip.address])

    def _end_of_day(self) -> None:
        quotas = {view.ip.address: view.quota.daily for view in self.pool.views()}
        for ip in self.today.ips:
            ip.end_quota = quotas[ip.address]

    # -- mail and accounting -------------------------------------------------------------------------------

    def _allocate(self) -> None:
        wanted = list_by_provider(self.today.requested)
        allocation = self.pool.allocations.allocate(
            OPERATOR,
            tenant_id=TENANT,
            volume=sum(wanted.values()),
            volume_by_provider=[(ProviderGroup(group.value), count) for group, count in wanted.items()],
            plan_horizon_days=0,
            validate_only=False,
        )
        for placed in allocation.result.allocations:
            self.given[placed.address] = dict(placed.by_provider)
        self.today.allocated = sum(sum(by.values()) for by in self.given.values())
        for ip in self.today.ips:
            ip.given = sum(self.given.get(ip.address, {}).values())

    def _evening(self) -> None:
        """The day's mail as the evening knows it: aggregated by campaign-gateway, recorded in ip-pool."""
        day = self.today.day
        aggregator = self.aggregators[day] = AccountingAggregator(timezone_for=lambda _address: ZONE)
        overnight: list[AccountingRecord] = []
        for address, by_provider in sorted(self.given.items(), key=lambda item: self.index[item[0]]):
            ip = self.index[address]
            mail: DayMail = day_records(
                rng=random.Random(f"{self.config.seed}/{address}/{self.number}"),
                address=address,
                day=day,
                day_number=self.number,
                by_provider={GatewayGroup(group.value): count for group, count in by_provider.items()},
                stop_at=self.stopped.get(address),
                zone=ZONE,
                bounce_rate=self.scenario.bounce_rate(ip, self.number),
                gmail_throttle_rate=self.scenario.throttle_rate(ip, self.number),
            )
            aggregator.add_all(mail.evening)
            overnight += mail.overnight
            self.run.records += len(mail.evening)
        self.overnight[day] = overnight
        self._record_totals(day)

    def _late_figures(self, day: date) -> None:
        """Yesterday's asynchronous bounces and overnight complaints: its totals revised in ip-pool."""
        aggregator = self.aggregators.pop(day, None)
        if aggregator is None:
            return
        late = self.overnight.pop(day, [])
        aggregator.add_all(late)
        aggregator.resolve_pending()
        self.run.records += len(late)
        self._record_totals(day, aggregator)
        yesterday = self.run.days[-2]
        sent: dict[str, int] = defaultdict(int)
        bounced: dict[str, int] = defaultdict(int)
        for key, totals in aggregator.totals().items():
            sent[key.address] += totals.sent
            bounced[key.address] += totals.bounced
        for ip in yesterday.ips:
            ip.bounce_rate = bounced[ip.address] / sent[ip.address] if sent[ip.address] else None

    def _record_totals(self, day: date, aggregator: AccountingAggregator | None = None) -> None:
        totals = (aggregator or self.aggregators[day]).totals()
        entries = [
            StatsInput(
                key.address,
                key.day.isoformat(),
                ProviderGroup(key.provider.value),
                DayCounts(
                    sent=t.sent,
                    delivered=t.delivered,
                    bounced=t.bounced,
                    complained=t.complained,
                    throttled=t.throttled,
                    deferred=t.deferred,
                ),
            )
            for key, t in totals.items()
        ]
        if entries:
            self.pool.signals.record_stats(OPERATOR, entries)
        if aggregator is None:
            sent: dict[str, int] = defaultdict(int)
            for key, t in totals.items():
                sent[key.address] += t.sent
            for ip in self.today.ips:
                ip.sent = sent[ip.address]

    # -- reputation ----------------------------------------------------------------------------------------

    def _scan(self) -> None:
        """Reputation's periodic scan of every IP, answered by the scenario's blocklists."""
        now = self.clock.now()
        local = now.astimezone(ZONE).time()
        for address in self.addresses:
            results = []
            for zone in DEFAULT_IP_ZONES:
                code = self.scenario.listed_code(self.index[address], zone.key, self.number, local)
                answer = DnsAnswer(DnsOutcome.ANSWER, (code,)) if code else DnsAnswer(DnsOutcome.NXDOMAIN)
                results.append(interpret_answer(zone, answer))
            scan = ScanResult(address, ZoneKind.IP, now, now, tuple(results))
            state, changes = apply_scan(self.listings.get(address), scan)
            self.listings[address] = state
            for change in changes:
                event = listing_changed(TENANT, change, still_listed_on=sorted(state.zones))
                envelope = _envelope("reputation", event, now)
                word = "listed on" if event.listed else "delisted from"
                what = f"{word} {event.zone} ({change.severity.name}: {change.meaning})"
                self._happened("reputation", what, address)
                with self.pool.unit_of_work() as uow:
                    self.pool.signals.on_listing_changed(uow, envelope, event)
                    uow.commit()
                self._alert(alert_from_ip_listing_changed(envelope, event))

    # -- events: notifier, MailWizz, PowerMTA -------------------------------------------------------------

    def _drain(self) -> None:
        """Relays ip-pool's outbox and hands each event to the notifier; then campaign-gateway follows."""
        while self.relay.relay_once():
            pass
        envelopes, self.outbox.envelopes = self.outbox.envelopes, []
        for raw in envelopes:
            envelope = event_pb2.EventEnvelope.FromString(raw)
            event = unpack(envelope)
            if isinstance(event, ippool_events.IpStateChanged):
                state, previous = _state_name(event.state), _state_name(event.previous_state)
                self._happened("ip-pool", f"{previous} -> {state}: {event.reason}", event.address)
                for ip in self.today.ips:
                    if ip.address == event.address and ip.states[-1] != state:
                        ip.states.append(state)
                alert = alert_from_ip_state_changed(envelope, event)
                if alert is not None:
                    self._alert(alert)
        if envelopes:
            self._follow(self.pool.views())

    def _alert(self, alert: Alert) -> None:
        now = self.clock.now()
        verdict = self.dedup.observe(
            alert.tenant, alert.dedup_key, now, state=alert.incident_state, occurred_at=alert.occurred_at
        )
        chats = tuple(
            TENANT_CHAT if delivery.route.tenant else ADMIN_CHAT for delivery in self.routes.route(alert, now)
        )
        self.today.alerts.append(
            SentAlert(
                at=now.astimezone(ZONE),
                incident=alert.dedup_key,
                state=alert.incident_state,
                severity=alert.severity.label,
                title=alert.title,
                chats=chats if verdict.accepted else (),
                suppressed=verdict.suppressed,
            )
        )

    def _follow(self, views: list[IpToday]) -> None:
        """campaign-gateway's sync: MailWizz rows, then every PowerMTA node's config."""
        now = self.clock.now()
        tenant_day = TenantDay(TENANT, TIME_ZONE, 0, 24)
        pool_ips = [
            PoolIp(
                address=v.ip.address,
                tenant_id=v.ip.tenant_id,
                purpose=v.ip.purpose,
                pool=v.ip.pool,
                pmta_node=v.ip.pmta_node,
                helo_hostname=v.ip.helo_hostname,
                state=_state(v),
                day=v.quota.day,
                daily_quota=v.quota.daily,
                hourly_quota=v.quota.hourly,
                provider_caps={p.provider.value: p.cap for p in v.quota.by_provider},
            )
            for v in views
        ]
        desired = [desired_server(ip=ip_sending(ip, tenant_day, now)) for ip in pool_ips]
        for _ in range(2):  # a new server is created inactive, then activated by the same sync
            plan = plan_sync(current=list(self.servers.values()), desired=desired)
            if not plan.writes():
                break
            for change in plan.writes():
                assert change.after is not None
                if change.kind is ChangeKind.CREATE:
                    server = CurrentServer(len(self.servers) + 1, change.vmta, change.after)
                    self._happened("MailWizz", f"new delivery server, {change.after.status}", change.address or "")
                else:
                    server = replace(self.servers[change.vmta], settings=change.after)
                    before = change.before
                    assert before is not None
                    after = change.after
                    if (before.status, before.daily_quota) != (after.status, after.daily_quota):
                        what = f"{before.status} {before.daily_quota}/day -> {after.status} {after.daily_quota}/day"
                        self._happened("MailWizz", what, change.address or "")
                    if before.status == "active" and change.after.status != "active" and change.address:
                        self.stopped.setdefault(change.address, now)
                self.servers[change.vmta] = server
        self._deploy(pool_ips)

    def _deploy(self, pool_ips: Iterable[PoolIp]) -> None:
        by_node: dict[str, list[NodeIp]] = defaultdict(list)
        for ip in pool_ips:
            by_node[ip.pmta_node].append(
                NodeIp(
                    address=ip.address,
                    helo_hostname=ip.helo_hostname,
                    tenant_id=ip.tenant_id,
                    state=PmtaIpState(ip.state),
                    daily_quota=ip.daily_quota,
                    hourly_quota=ip.hourly_quota,
                    provider_caps={
                        GatewayGroup(group): cap for group, cap in ip.provider_caps.items() if group != "OTHER"
                    },
                )
            )
        for node in NODES:
            rendered = render_node_config(node=node, ips=by_node.get(node.name, []))
            before = self.configs.get(node.name)
            self.configs[node.name] = rendered
            if before is not None and before.text == rendered.text:
                continue
            self.run.deploys += 1
            old = set(before.pools.get(f"tenant-{TENANT}", ())) if before else set()
            new = set(rendered.pools.get(f"tenant-{TENANT}", ()))
            for vmta in sorted(new - old):
                self._happened("PowerMTA", f"{node.name}: into pool tenant-{TENANT}", address_from_vmta(vmta) or vmta)
            for vmta in sorted(old - new):
                self._happened("PowerMTA", f"{node.name}: out of pool tenant-{TENANT}", address_from_vmta(vmta) or vmta)

    def _happened(self, source: str, what: str, address: str = "") -> None:
        self.today.happenings.append(Happening(self.clock.now().astimezone(ZONE), source, what, address))


_IP_STATES = ippool_events.IpStateChanged.DESCRIPTOR.fields_by_name["state"].enum_type


def _state_name(number: int) -> str:
    return _IP_STATES.values_by_number[number].name.removeprefix("IP_STATE_")


def simulate(config: SimulationConfig) -> SimulationRun:
    """Runs the simulation (module docstring) over a throwaway SQLite database; the same config gives the same run."""
    started = timer.perf_counter()
    with tempfile.TemporaryDirectory(prefix="emailengine-simulation-") as tmp:
        simulation = _Simulation(config, Path(tmp))
        try:
            run = simulation.simulate()
        finally:
            simulation.pool.db.dispose()
    run.seconds = timer.perf_counter() - started
    return run
