"""The periodic scan over in-memory fakes: each IP at its own moment of its tenant's interval, once per interval
whichever replica ticks; a tenant's own interval (who may shorten it); a zone whose daily query budget cannot
afford the intervals asked less often, and saying so. No socket, no database."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from emailengine.ippool.v1 import events_pb2 as ippool_events
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import InvalidArgument, PermissionDenied, Unavailable
from reputation.app.scan_settings import ScanSettingsUseCases
from reputation.app.scanning import IpScans
from reputation.app.watchlist import Watchlist
from reputation.app.zones import ZoneUseCases
from reputation.config import DnsEnvSettings, ReputationConfig, ReputationSettings, ZoneBudgetSetting, build_config
from tests.unit.reputation.fakes import FakeReputation, fake_reputation
from tests.unit.reputation.test_scan_use_cases import deliver

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TICK = timedelta(minutes=1)
FOUR_HOURS = timedelta(hours=4)
FIVE_MINUTES = timedelta(minutes=5)
ADMIN = Caller("admin", Role.ADMIN, "")
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
SOS_VIEWER = Caller("sos-viewer", Role.VIEWER, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")


def config(**own: object) -> ReputationConfig:
    return build_config(ReputationSettings(**own), DnsEnvSettings(nameservers="127.0.0.1:53"))  # type: ignore[arg-type]


def world(
    cfg: ReputationConfig | None = None, registry: CollectorRegistry | None = None, **ips_per_tenant: int
) -> FakeReputation:
    rep = fake_reputation(cfg or config(), FakeClock(T0), registry)
    watchlist = Watchlist(rep.context)
    for tenant, count in ips_per_tenant.items():
        for i in range(count):
            address = f"10.{len(tenant)}.{i // 256}.{i % 256}"
            deliver(rep, watchlist, ippool_events.IpRegistered(address=address, tenant_id=tenant.replace("_", "-")))
    return rep


def scanned_by_tick(replicas: list[IpScans], rep: FakeReputation, ticks: int) -> list[list[tuple[str, str]]]:
    """Every replica's periodic job at each tick, then a minute on: (address, trigger) scanned at each tick."""
    out = []
    for _ in range(ticks):
        tick: list[tuple[str, str]] = []
        for i, replica in enumerate(replicas):
            run = replica.periodic(f"replica-{i}")
            if run is not None:
                tick += [(r.address, trigger_of(rep, r.address)) for r in run.recorded]
        out.append(tick)
        rep.clock.advance(TICK)
    return out


def trigger_of(rep: FakeReputation, address: str) -> str:
    with rep.context.unit_of_work() as uow:
        return uow.scans.latest(address, 1)[0].trigger


# -- spread over the interval, once per IP and interval ------------------------------------------------------


def test_ips_are_scanned_at_once_when_new_then_spread_over_the_interval_once_each_whatever_the_replicas() -> None:
    rep = world(sos_expat=120)
    replicas = [IpScans(rep.context), IpScans(rep.context), IpScans(rep.context)]
    ticks = scanned_by_tick(replicas, rep, 2 * 240 + 1)
    assert len(ticks[0]) == 120 and {t for _a, t in ticks[0]} == {"first"}
    later = ticks[1:]
    per_ip = Counter(address for tick in later for address, _t in tick)
    assert set(per_ip.values()) == {2}  # once in each of the next two intervals, by exactly one replica
    assert {t for tick in later for _a, t in tick} == {"periodic"}
    assert max(len(tick) for tick in later) <= 6  # 120 IPs over 240 minutes: about one every two minutes


def test_a_tenants_own_interval_scans_its_ips_that_often_and_the_others_keep_the_default() -> None:
    rep = world(sos_expat=10, ulixai=10)
    ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=FIVE_MINUTES)
    ticks = scanned_by_tick([IpScans(rep.context)], rep, 1 + 60)
    per_ip = Counter(address for tick in ticks[1:] for address, _t in tick)
    sos = {a: n for a, n in per_ip.items() if a.startswith("10.9.")}
    ulixai = {a: n for a, n in per_ip.items() if a.startswith("10.6.")}
    assert set(sos.values()) == {12} and len(sos) == 10  # every 5 minutes for an hour
    assert sum(ulixai.values()) <= 10 and set(ulixai.values()) <= {1}  # at most once in the hour (4 h)


def test_a_shortened_interval_applies_from_the_next_tick_not_after_the_old_one() -> None:
    rep = world(sos_expat=30)
    scans = IpScans(rep.context)
    scans.periodic("a")  # first scans: next moments up to 4 h away
    ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=FIVE_MINUTES)
    ticks = scanned_by_tick([scans], rep, 6)
    assert {address for tick in ticks for address, _t in tick} == {f"10.9.0.{i}" for i in range(30)}


def test_a_scan_that_failed_is_taken_again_when_its_claim_runs_out_not_a_whole_interval_later() -> None:
    rep = world(sos_expat=3)
    scans = IpScans(rep.context)
    real_scan = rep.dns.scan

    def down(groups: object) -> object:
        raise Unavailable("DNS: cannot reach the nameservers")

    rep.dns.scan = down  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        scans.periodic("a")
    rep.dns.scan = real_scan  # type: ignore[method-assign]
    rep.clock.advance(timedelta(minutes=5))
    assert scans.periodic("b") is None  # still claimed by the run that failed
    rep.clock.advance(timedelta(minutes=5))
    run = scans.periodic("b")
    assert run is not None and len(run.recorded) == 3


# -- who may choose the interval ---------------------------------------------------------------------------


def test_operators_lengthen_or_reset_admins_shorten_viewers_and_other_tenants_only_read() -> None:
    rep = world(sos_expat=1)
    settings = ScanSettingsUseCases(rep.context)
    view = settings.get(SOS_VIEWER, "sos-expat")
    assert (view.interval, view.effective, view.updated_at) == (None, FOUR_HOURS, None)
    assert len(view.zones) == 9 and {z.interval for z in view.zones} == {FOUR_HOURS}
    longer = settings.update(SOS, "sos-expat", interval=timedelta(hours=12))
    assert (longer.interval, longer.effective, longer.updated_at) == (timedelta(hours=12), timedelta(hours=12), T0)
    with pytest.raises(PermissionDenied, match="only an admin"):
        settings.update(SOS, "sos-expat", interval=FIVE_MINUTES)
    with pytest.raises(PermissionDenied):
        settings.update(SOS_VIEWER, "sos-expat", interval=timedelta(hours=12))
    with pytest.raises(PermissionDenied):
        settings.update(ULIXAI, "sos-expat", interval=timedelta(hours=12))
    with pytest.raises(PermissionDenied):
        settings.get(ULIXAI, "sos-expat")
    assert settings.update(ADMIN, "sos-expat", interval=timedelta(minutes=1)).effective == timedelta(minutes=1)
    reset = settings.update(SOS, "sos-expat", interval=None)
    assert (reset.interval, reset.effective) == (None, FOUR_HOURS)


@pytest.mark.parametrize(
    ("interval", "fields", "field"),
    [
        (timedelta(seconds=30), ("scan_interval",), "settings.scan_interval"),
        (timedelta(days=8), ("scan_interval",), "settings.scan_interval"),
        (timedelta(hours=5), ("effective_scan_interval",), "update_mask"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    interval: timedelta, fields: tuple[str, ...], field: str
) -> None:
    rep = world()
    with pytest.raises(InvalidArgument) as caught:
        ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=interval, fields=fields)
    assert caught.value.violations[0].field == field
    with pytest.raises(InvalidArgument) as bad_tenant:
        ScanSettingsUseCases(rep.context).update(ADMIN, "Not A Tenant", interval=None)
    assert bad_tenant.value.violations[0].field == "settings.tenant_id"
    assert rep.store.commits == 0


# -- zone query budgets --------------------------------------------------------------------------------------


def budgeted() -> ReputationConfig:
    """Spamhaus ZEN with a budget of 10 000 queries a day (9 000 planned), the others as the catalogue says."""
    return config(zone_budgets={"spamhaus-zen": ZoneBudgetSetting(max_queries_per_day=10_000)})


def test_a_zone_the_budget_cannot_afford_is_asked_at_every_nth_scan_and_the_ip_keeps_its_other_zones() -> None:
    rep = world(budgeted(), sos_expat=100)
    ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=FIVE_MINUTES)
    scans = IpScans(rep.context)
    scans.periodic("a")  # first scans ask every zone
    rep.dns.queries.clear()
    scanned_by_tick([scans], rep, 61)  # an hour, both ends: 12 scans of each IP
    # 100 IPs every 5 minutes want 28 800 queries a day of each zone; ZEN may have 9 000: 1 scan in 4.
    assert rep.dns.queries["spamcop"] == 1200
    assert 250 <= rep.dns.queries["spamhaus-zen"] <= 350  # about 1200 / 4: each IP at its own offset
    view = ScanSettingsUseCases(rep.context).get(SOS, "sos-expat")
    zen = next(z for z in view.zones if z.zone_key == "spamhaus-zen")
    assert (zen.interval, zen.budget_limited) == (timedelta(minutes=20), True)
    assert all(z.interval == FIVE_MINUTES and not z.budget_limited for z in view.zones if z is not zen)
    zones = {z.zone.key: z for z in ZoneUseCases(rep.context).list()}
    plan = zones["spamhaus-zen"].budget
    assert plan is not None and (plan.daily_budget, plan.wanted, plan.planned, plan.limited) == (
        10_000,
        28_800,
        7_200,
        True,
    )
    mailspike = zones["mailspike"].budget  # the catalogue's 100 000 a day affords 28 800
    assert mailspike is not None and (mailspike.daily_budget, mailspike.limited) == (100_000, False)
    assert zones["spamcop"].budget is not None and zones["spamcop"].budget.daily_budget is None
    assert zones["spamhaus-dbl"].budget is None  # a domain list: not in the periodic IP scans


def test_a_limited_zone_is_a_metric_and_one_warning_until_the_plan_changes(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    rep = world(budgeted(), registry, sos_expat=100)
    ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=FIVE_MINUTES)
    scans = IpScans(rep.context)
    with caplog.at_level(logging.WARNING, logger="reputation.app.scanning"):
        scanned_by_tick([scans], rep, 3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].zone == "spamhaus-zen"  # type: ignore[attr-defined]
    assert warnings[0].every_nth_scan == {"sos-expat": 4}  # type: ignore[attr-defined]

    def gauge(name: str, zone: str) -> float | None:
        return registry.get_sample_value(name, {"zone": zone})

    assert gauge("emailengine_reputation_zone_budget_limited", "spamhaus-zen") == 1
    assert gauge("emailengine_reputation_zone_budget_limited", "spamcop") == 0
    assert gauge("emailengine_reputation_zone_daily_query_budget", "spamhaus-zen") == 10_000
    assert gauge("emailengine_reputation_zone_wanted_daily_queries", "spamhaus-zen") == 28_800
    assert gauge("emailengine_reputation_zone_planned_daily_queries", "spamhaus-zen") == 7_200
    ScanSettingsUseCases(rep.context).update(ADMIN, "sos-expat", interval=None)
    with caplog.at_level(logging.INFO, logger="reputation.app.scanning"):
        scans.periodic("a")
    assert "affords every tenant's scan interval again" in caplog.text
    assert gauge("emailengine_reputation_zone_budget_limited", "spamhaus-zen") == 0


def test_a_daily_budget_on_a_domain_list_is_refused_naming_the_variable() -> None:
    with pytest.raises(InvalidArgument) as caught:
        config(zone_budgets={"spamhaus-dbl": ZoneBudgetSetting(max_queries_per_day=1000)})
    assert caught.value.violations[0].field == "EE_REPUTATION_ZONE_BUDGETS"
    assert "lists domains" in caught.value.violations[0].description
    free = config(zone_budgets={"spamhaus-zen": ZoneBudgetSetting(max_queries_per_day=0)})  # e.g. a paid DQS key
    assert "spamhaus-zen" not in free.daily_budgets and free.daily_budgets["mailspike"] == 100_000
