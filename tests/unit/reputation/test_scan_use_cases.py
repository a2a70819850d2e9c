"""The IP use cases over in-memory fakes: the watchlist learnt from ip-pool's events, recording a scan (each
listing change published once, a scan without a verdict never changing what is believed), the periodic scan once
per slot, and tenants' zone choices. No socket, no database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2
from libs.auth import Caller, Role
from libs.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from reputation.app.scanning import IpScans
from reputation.app.watchlist import Watchlist
from reputation.app.zones import ZoneUseCases
from reputation.config import DnsEnvSettings, ReputationConfig, ReputationSettings, build_config
from reputation.domain.dnsbl import DnsOutcome, HealthStatus, ListingStatus, ZoneHealth
from tests.unit.reputation.fakes import FakeReputation, FakeReputationUnitOfWork, fake_reputation

SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
SOS_VIEWER = Caller("sos-viewer", Role.VIEWER, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")
ADMIN = Caller("admin", Role.ADMIN, "")
IP = "192.0.2.10"
XBL = "127.0.0.4"  # a Spamhaus ZEN answer: listed in the XBL


@pytest.fixture(scope="module")
def config() -> ReputationConfig:
    return build_config(ReputationSettings(), DnsEnvSettings(nameservers="127.0.0.1:53"))


@pytest.fixture
def rep(config: ReputationConfig) -> FakeReputation:
    return fake_reputation(config)


@pytest.fixture
def watchlist(rep: FakeReputation) -> Watchlist:
    return Watchlist(rep.context)


@pytest.fixture
def ips(rep: FakeReputation, watchlist: Watchlist) -> IpScans:
    deliver(rep, watchlist, ippool_events.IpRegistered(address=IP, tenant_id="sos-expat", helo_hostname="mta1.sos"))
    return IpScans(rep.context)


def deliver(rep: FakeReputation, watchlist: Watchlist, event: object) -> None:
    """As the event consumer does: the handler in a unit of work it opened, then commit."""
    envelope = event_pb2.EventEnvelope(event_id="e", source="ip-pool")
    handler = (
        watchlist.on_ip_registered if isinstance(event, ippool_events.IpRegistered) else watchlist.on_ip_state_changed
    )
    with FakeReputationUnitOfWork(rep.store) as uow:
        handler(uow, envelope, event)  # type: ignore[arg-type]
        uow.commit()


def listing_events(rep: FakeReputation) -> list[tuple[bool, str]]:
    return [(e.listed, e.zone_key) for _t, e in rep.store.published if isinstance(e, events_pb2.IpListingChanged)]


# -- the watchlist --------------------------------------------------------------------------------------------


def test_ip_registered_watches_the_ip_for_its_tenant(rep: FakeReputation, ips: IpScans, watchlist: Watchlist) -> None:
    reply = ips.get(SOS, IP)
    assert (reply.address, reply.tenant_id, reply.watched, reply.latest) == (IP, "sos-expat", True, None)
    deliver(rep, watchlist, ippool_events.IpRegistered(address="::ffff:192.0.2.11", tenant_id="ulixai"))
    assert ips.get(ADMIN, "192.0.2.11").tenant_id == "ulixai"  # canonical form
    deliver(rep, watchlist, ippool_events.IpRegistered(address="not an ip", tenant_id="ulixai"))  # ignored, logged
    assert set(rep.store.tables["monitored_ips"]) == {IP, "192.0.2.11"}


def test_a_retired_ip_is_no_longer_scanned_and_a_new_registration_brings_it_back(
    rep: FakeReputation, ips: IpScans, watchlist: Watchlist
) -> None:
    warming = ippool_events.IpStateChanged(address=IP, tenant_id="sos-expat", state=2)
    deliver(rep, watchlist, warming)  # any state but RETIRED changes nothing here
    assert ips.get(SOS, IP).watched
    retired = ippool_events.IpStateChanged(address=IP, tenant_id="sos-expat", state="IP_STATE_RETIRED")
    deliver(rep, watchlist, retired)
    assert not ips.get(SOS, IP).watched
    with pytest.raises(FailedPrecondition):
        ips.check(SOS, IP)
    assert ips.scan_tenant(SOS, "sos-expat").scanned == 0 and rep.dns.scans == 0
    deliver(rep, watchlist, ippool_events.IpRegistered(address=IP, tenant_id="sos-expat"))
    assert ips.get(SOS, IP).watched and ips.scan_tenant(SOS, "").scanned == 1


# -- recording a scan ------------------------------------------------------------------------------------------


def test_a_listing_is_published_once_and_the_same_answer_again_publishes_nothing(
    rep: FakeReputation, ips: IpScans
) -> None:
    rep.dns.answer("spamhaus-zen", IP, XBL)
    rep.dns.answer("spamcop", IP, "127.0.0.2")
    first = ips.check(SOS, IP)
    assert first.listed and first.latest is not None and first.latest.trigger == "check"
    assert {z.zone_key for z in first.current_listings} == {"spamhaus-zen", "spamcop"}
    assert sorted(listing_events(rep)) == [(True, "spamcop"), (True, "spamhaus-zen")]
    rep.clock.advance(timedelta(minutes=5))
    ips.check(SOS, IP)
    assert len(listing_events(rep)) == 2
    zen = next(e for _t, e in rep.store.published if getattr(e, "zone_key", "") == "spamhaus-zen")
    assert zen.zone == "zen.spamhaus.org" and list(zen.codes) == [XBL] and zen.tenant_id == "sos-expat"


@pytest.mark.parametrize("outcome", [DnsOutcome.TIMEOUT, DnsOutcome.SERVFAIL, DnsOutcome.REFUSED])
def test_no_answer_never_delists_a_known_listing(rep: FakeReputation, ips: IpScans, outcome: DnsOutcome) -> None:
    rep.dns.answer("spamhaus-zen", IP, XBL)
    ips.check(SOS, IP)
    rep.dns.fail("spamhaus-zen", IP, outcome)
    rep.clock.advance(timedelta(minutes=5))
    reply = ips.check(SOS, IP)
    assert reply.latest is not None
    assert next(z for z in reply.latest.zones if z.zone_key == "spamhaus-zen").status is ListingStatus.UNKNOWN
    assert reply.listed and [z.zone_key for z in reply.current_listings] == ["spamhaus-zen"]
    assert listing_events(rep) == [(True, "spamhaus-zen")]


def test_an_error_code_or_an_unhealthy_zone_never_flips_a_known_listing(rep: FakeReputation, ips: IpScans) -> None:
    rep.dns.answer("spamhaus-zen", IP, XBL)
    ips.check(SOS, IP)
    rep.dns.answer("spamhaus-zen", IP, "127.255.255.254")  # "your resolver is refused": no verdict
    rep.clock.advance(timedelta(minutes=5))
    error = ips.check(SOS, IP)
    assert error.latest is not None and error.latest.zones[0].status is ListingStatus.ZONE_ERROR
    rep.dns.answer("spamhaus-zen", IP)
    rep.dns.health["spamhaus-zen"] = ZoneHealth("spamhaus-zen", "zen.spamhaus.org", False, "listing the world")
    rep.clock.advance(timedelta(minutes=5))
    skipped = ips.check(SOS, IP)
    assert skipped.latest is not None and skipped.latest.zones[0].status is ListingStatus.SKIPPED
    assert skipped.listed and listing_events(rep) == [(True, "spamhaus-zen")]
    health = [e for _t, e in rep.store.published if isinstance(e, events_pb2.ZoneHealthChanged)]
    assert [(e.zone_key, e.healthy) for e in health] == [("spamhaus-zen", False)]


def test_a_delisting_is_published_once(rep: FakeReputation, ips: IpScans) -> None:
    rep.dns.answer("spamhaus-zen", IP, XBL)
    ips.check(SOS, IP)
    rep.dns.answer("spamhaus-zen", IP)  # NXDOMAIN: no longer listed
    for _ in range(2):
        rep.clock.advance(timedelta(minutes=5))
        reply = ips.check(SOS, IP)
    assert not reply.listed and reply.current_listings == ()
    assert listing_events(rep) == [(True, "spamhaus-zen"), (False, "spamhaus-zen")]
    delisted = [e for _t, e in rep.store.published if isinstance(e, events_pb2.IpListingChanged)][-1]
    assert delisted.reason.startswith("no longer listed; was:") and "XBL" in delisted.meaning


def test_history_is_newest_first_and_sized_by_the_caller(rep: FakeReputation, ips: IpScans) -> None:
    for _ in range(4):
        ips.check(SOS, IP)
        rep.clock.advance(timedelta(minutes=1))
    reply = ips.get(SOS_VIEWER, IP, history_size=2)
    assert reply.latest is not None and len(reply.history) == 2
    times = [reply.latest.scan_time] + [h.scan_time for h in reply.history]
    assert times == sorted(times, reverse=True)


# -- the periodic scan -----------------------------------------------------------------------------------------


def test_the_periodic_scan_runs_once_per_slot_and_a_new_ip_waits_only_a_tick(
    rep: FakeReputation, ips: IpScans, watchlist: Watchlist
) -> None:
    run = ips.periodic("replica-a")
    assert run is not None and [r.address for r in run.recorded] == [IP]
    assert ips.periodic("replica-b") is None  # the slot is taken and nothing is new
    deliver(rep, watchlist, ippool_events.IpRegistered(address="192.0.2.12", tenant_id="ulixai"))
    rep.clock.advance(timedelta(minutes=1))
    first = ips.periodic("replica-b")
    assert first is not None and [(r.address, r.scan is not None) for r in first.recorded] == [("192.0.2.12", True)]
    assert ips.get(ULIXAI, "192.0.2.12").latest.trigger == "first"  # type: ignore[union-attr]
    assert ips.periodic("replica-a") is None
    rep.clock.advance(timedelta(hours=4))
    assert len(ips.periodic("replica-b").recorded) == 2  # type: ignore[union-attr]


# -- who may do what -------------------------------------------------------------------------------------------


def test_a_viewer_reads_but_does_not_scan_and_an_unknown_ip_is_not_found(ips: IpScans) -> None:
    assert ips.get(SOS_VIEWER, IP).address == IP
    with pytest.raises(PermissionDenied):
        ips.check(SOS_VIEWER, IP)
    with pytest.raises(NotFound):
        ips.get(SOS, "198.51.100.1")
    with pytest.raises(InvalidArgument) as caught:
        ips.get(SOS, "not-an-ip")
    assert caught.value.violations[0].field == "address"


def test_another_tenants_ip_reads_exactly_like_an_unknown_one(ips: IpScans) -> None:
    for call in (ips.get, ips.check):
        with pytest.raises(NotFound) as foreign:
            call(ULIXAI, IP)
        with pytest.raises(NotFound) as unknown:
            call(ULIXAI, "198.51.100.1")
        assert str(foreign.value).replace(IP, "?") == str(unknown.value).replace("198.51.100.1", "?")
        assert foreign.value.resource_type == unknown.value.resource_type == "ip"


# -- tenants' zone choices -------------------------------------------------------------------------------------


def test_a_zone_choice_names_every_bad_entry_and_stores_nothing(rep: FakeReputation) -> None:
    zones = ZoneUseCases(rep.context)
    with pytest.raises(InvalidArgument) as caught:
        zones.set_for_tenant(SOS, "sos-expat", ["spamcop", "bl.nowhere.example", "spamhaus-dbl", "bad name"], ["psbl"])
    assert [v.field for v in caught.value.violations] == [
        "ip_zones[1]",
        "ip_zones[2]",
        "ip_zones[3]",
        "domain_zones[0]",
    ]
    assert rep.store.commits == 0
    with pytest.raises(PermissionDenied):
        zones.set_for_tenant(ULIXAI, "sos-expat", ["psbl"], [])
    with pytest.raises(InvalidArgument):
        zones.get_for_tenant(SOS, "Sos Expat")


def test_a_zone_dropped_from_the_choice_ends_its_listings_once_and_defaults_come_back(
    rep: FakeReputation, ips: IpScans
) -> None:
    zones = ZoneUseCases(rep.context)
    rep.dns.answer("spamhaus-zen", IP, XBL)
    rep.dns.answer("spamcop", IP, "127.0.0.2")
    ips.check(SOS, IP)
    chosen = zones.set_for_tenant(SOS, "", ["zen.spamhaus.org", "PSBL", "spamhaus-zen"], [])
    assert [z.key for z in chosen.ip_zones] == ["spamhaus-zen", "psbl"] and not chosen.default_ip
    assert chosen.default_domain and chosen.updated_at == rep.clock.now()
    assert listing_events(rep)[-1] == (False, "spamcop")
    assert zones.get_for_tenant(SOS, "sos-expat") == chosen
    reply = ips.check(SOS, IP)
    assert [z.zone_key for z in reply.latest.zones] == ["spamhaus-zen", "psbl"]  # type: ignore[union-attr]
    reset = zones.set_for_tenant(SOS, "sos-expat", [], [])
    assert reset.default_ip and len(reset.ip_zones) == 9 and reset.updated_at is None
    ips.check(SOS, IP)
    assert listing_events(rep)[-1] == (True, "spamcop")


def test_list_zones_shows_each_zones_last_health(rep: FakeReputation, ips: IpScans) -> None:
    zones = ZoneUseCases(rep.context)
    before = {z.zone.key: z.health.status for z in zones.list()}
    assert set(before.values()) == {HealthStatus.UNCHECKED} and len(before) == 12
    ips.check(SOS, IP)
    after = {z.zone.key: z for z in zones.list()}
    assert after["spamcop"].health.status is HealthStatus.HEALTHY and after["spamcop"].default
    assert after["spamhaus-dbl"].health.status is HealthStatus.UNCHECKED
    assert not [e for _t, e in rep.store.published if isinstance(e, events_pb2.ZoneHealthChanged)]
