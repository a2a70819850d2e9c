"""The reputation service running for real (ServiceHost, gRPC, interceptor, outbox, periodic job) against a real
rbldnsd: every kind of verdict through the API, listed/delisted events exactly once, zone health, tenant zones
and isolation, bad input and a dead DNS server."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import duration_pb2, field_mask_pb2, json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from emailengine.reputation.v1 import events_pb2
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.auth import Role
from reputation import jobs
from reputation.adapters.tables import ip_listings, scan_results
from tests.harness.dns_servers import Rbldnsd, silent_nameserver
from tests.harness.servers import PostgresServer
from tests.integration.reputation.service import (
    CLEAN_IP,
    CLEAN_V6,
    DEAD,
    LISTED_IP,
    LISTED_V6,
    MAILSPIKE_L4_IP,
    RESOLVER_ERROR_IP,
    WHITELISTED_IP,
    WORLD,
    ZONE_NAMES,
    ReputationService,
    rbl_env,
    rpc_error,
    running_reputation,
    start_rbldnsd,
    statuses,
)

pytestmark = pytest.mark.integration

NINE = [
    "spamhaus-zen",
    "spamcop",
    "barracuda",
    "psbl",
    "mailspike",
    "spamrats",
    "uceprotect-1",
    "manitu",
    "junkemailfilter",
]


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def service(rbl: Rbldnsd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReputationService]:
    with running_reputation(tmp_path_factory.mktemp("reputation"), rbl_env(rbl.nameserver)) as running:
        for address in (LISTED_IP, CLEAN_IP, RESOLVER_ERROR_IP, WHITELISTED_IP, MAILSPIKE_L4_IP, LISTED_V6, CLEAN_V6):
            running.watch(address, "sos-expat")
        yield running


# -- every kind of verdict through the service -------------------------------------------------------


def test_a_listed_ip_gets_each_lists_meaning_txt_reason_and_one_event_per_zone(service: ReputationService) -> None:
    reply = service.check(LISTED_IP)
    assert [z.zone_key for z in reply.latest.zones] == NINE
    assert statuses(reply) == {k: ("LISTED" if k in ("spamhaus-zen", "spamcop") else "NOT_LISTED") for k in NINE}
    zen = reply.latest.zones[0]
    # The public name, never the name queried (a DQS key or a mirror would leak otherwise).
    assert zen.zone == "zen.spamhaus.org" and ZONE_NAMES["spamhaus-zen"] not in str(reply)
    assert list(zen.answers) == ["127.0.0.4"] and "XBL" in zen.meaning
    assert zen.reason == f"Listed in XBL, see https://check.spamhaus.org/query/ip/{LISTED_IP}"
    assert zen.listing_severity == pb.LISTING_SEVERITY_CRITICAL and zen.severity == pb.SEVERITY_CRITICAL
    assert reply.latest.listed and reply.latest.complete and reply.latest.trigger == "check"
    assert reply.listed and {z.zone_key for z in reply.current_listings} == {"spamhaus-zen", "spamcop"}
    assert reply.tenant_id == "sos-expat" and reply.watched

    first = service.listing_events(LISTED_IP)
    assert sorted(first) == [(True, "spamcop"), (True, "spamhaus-zen")]
    service.check(LISTED_IP)  # still listed: nothing new
    assert service.listing_events(LISTED_IP) == first
    event = next(e for e in service.outbox(events_pb2.IpListingChanged) if e.zone_key == "spamhaus-zen")
    assert event.zone == "zen.spamhaus.org" and event.tenant_id == "sos-expat" and list(event.codes) == ["127.0.0.4"]
    assert "XBL" in event.meaning and event.txt_reason.startswith("Listed in XBL") and "XBL" in event.reason
    assert event.severity == pb.LISTING_SEVERITY_CRITICAL and event.delist_url


def test_clean_whitelisted_error_code_and_list_specific_codes(service: ReputationService) -> None:
    clean = service.check(CLEAN_IP)
    assert set(statuses(clean).values()) == {"NOT_LISTED"} and clean.latest.complete and not clean.latest.listed

    karma = service.check(WHITELISTED_IP)
    assert statuses(karma)["junkemailfilter"] == "WHITELISTED" and not karma.latest.listed

    error = service.check(RESOLVER_ERROR_IP)
    zen = error.latest.zones[0]
    assert zen.status == pb.LISTING_STATUS_ERROR and "127.255.255.254" in zen.detail
    assert "public/open resolver" in zen.detail
    assert not error.latest.listed and not error.latest.complete and not error.listed

    l4 = service.check(MAILSPIKE_L4_IP)
    spike = next(z for z in l4.latest.zones if z.zone_key == "mailspike")
    assert spike.status == pb.LISTING_STATUS_LISTED and "L4" in spike.meaning
    assert spike.listing_severity == pb.LISTING_SEVERITY_HIGH
    for address in (CLEAN_IP, WHITELISTED_IP, RESOLVER_ERROR_IP):
        assert service.listing_events(address) == []


def test_ipv6_is_asked_only_of_the_lists_that_list_ipv6(service: ReputationService) -> None:
    listed = service.check(LISTED_V6)
    assert statuses(listed) == {"spamhaus-zen": "LISTED"}
    assert "CSS" in listed.latest.zones[0].meaning and listed.latest.zones[0].reason == f"CSS listing of {LISTED_V6}"
    assert service.listing_events(LISTED_V6) == [(True, "spamhaus-zen")]
    assert statuses(service.check(CLEAN_V6)) == {"spamhaus-zen": "NOT_LISTED"}


def test_history_newest_first(service: ReputationService) -> None:
    for _ in range(3):
        service.clock.advance(timedelta(minutes=1))
        service.check(CLEAN_IP)
    reply = service.call("GetIpReputation", pb.GetIpReputationRequest(address=CLEAN_IP, history_size=2))
    times = [reply.latest.scan_time.ToDatetime()] + [h.scan_time.ToDatetime() for h in reply.history]
    assert len(reply.history) == 2 and times == sorted(times, reverse=True)
    assert reply.latest.scan_time.ToDatetime() == service.clock.now().replace(tzinfo=None)


# -- a live change, reported once each way by the periodic job ----------------------------------------


def test_live_listing_gives_one_listed_then_one_delisted_event(service: ReputationService, rbl: Rbldnsd) -> None:
    address = "192.0.2.77"
    service.watch(address, "sos-expat")
    assert jobs.scan_watched_ips(service.app) > 0  # this slot's periodic scan
    assert jobs.scan_watched_ips(service.app) == 0  # the same slot again: claimed already, nothing scanned
    assert service.listing_events(address) == []

    rbl.add_entry("zen_live", f"{address} :127.0.0.2:Listed in SBL, see $")
    for _ in range(2):  # the next slot's scan sees it; the one after changes nothing
        service.clock.advance(timedelta(hours=4))
        assert jobs.scan_watched_ips(service.app) > 0
    service.check(address)
    assert service.listing_events(address) == [(True, "spamhaus-zen")]
    reply = service.call("GetIpReputation", pb.GetIpReputationRequest(address=address))
    assert reply.listed and reply.latest.trigger == "check" and reply.history[0].trigger == "periodic"

    rbl.remove_entry("zen_live", address)
    for _ in range(2):
        service.clock.advance(timedelta(hours=4))
        jobs.scan_watched_ips(service.app)
    service.check(address)
    assert service.listing_events(address) == [(True, "spamhaus-zen"), (False, "spamhaus-zen")]
    delisted = service.outbox(events_pb2.IpListingChanged)[-1]
    assert delisted.address == address and not delisted.listed and "SBL" in delisted.meaning
    assert not service.call("GetIpReputation", pb.GetIpReputationRequest(address=address)).listed


def test_a_newly_watched_ip_is_scanned_at_the_next_tick_not_the_next_slot(service: ReputationService) -> None:
    service.watch("192.0.2.78", "sos-expat")
    jobs.scan_watched_ips(service.app)  # this slot's scan
    service.watch("192.0.2.79", "sos-expat")
    service.clock.advance(timedelta(minutes=1))
    assert jobs.scan_watched_ips(service.app) == 1  # the slot is taken, but the new IP is scanned now
    reply = service.call("GetIpReputation", pb.GetIpReputationRequest(address="192.0.2.79"))
    assert reply.latest.trigger == "first"
    assert jobs.scan_watched_ips(service.app) == 0


def test_retired_ips_are_not_scanned_and_a_tenant_scan_covers_its_own_ips(service: ReputationService) -> None:
    service.watch("192.0.2.90", "ulixai")
    service.watch("192.0.2.91", "ulixai")
    service.retire("192.0.2.91", "ulixai")
    reply = service.call("ScanTenant", pb.ScanTenantRequest(tenant_id="ulixai"))
    assert [ip.address for ip in reply.ips] == ["192.0.2.90"] and reply.scanned == 1 and reply.listed == 0
    with pytest.raises(grpc.RpcError) as caught:
        service.check("192.0.2.91")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    retired = service.call("GetIpReputation", pb.GetIpReputationRequest(address="192.0.2.91"))
    assert not retired.watched


# -- tenants: zone choice and isolation --------------------------------------------------------------


def test_tenant_zone_choice_and_a_dropped_zone_delists(service: ReputationService) -> None:
    address = "192.0.2.10"  # listed on ZEN and SpamCop (first test)
    service.check(address)
    token = service.token("sos-expat")
    with pytest.raises(grpc.RpcError) as caught:
        service.call(
            "SetTenantZones",
            pb.SetTenantZonesRequest(tenant_id="sos-expat", ip_zones=["spamcop", "nope.example.org", "spamhaus-dbl"]),
            token,
        )
    code, fields = rpc_error(caught)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["ip_zones[1]", "ip_zones[2]"]

    chosen = service.call(
        "SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat", ip_zones=["zen.spamhaus.org", "psbl"]), token
    )
    assert list(chosen.ip_zones) == ["spamhaus-zen", "psbl"] and not chosen.default_ip_zones
    assert chosen.default_domain_zones and list(chosen.domain_zones) == ["spamhaus-dbl", "surbl", "uribl"]
    # SpamCop is no longer checked for this tenant: its listing ends, published once.
    assert service.listing_events(address)[-1] == (False, "spamcop")
    reply = service.check(address)
    assert list(statuses(reply)) == ["spamhaus-zen", "psbl"]
    assert {z.zone_key for z in reply.current_listings} == {"spamhaus-zen"}
    assert service.call("GetTenantZones", pb.GetTenantZonesRequest(tenant_id="sos-expat"), token) == chosen

    reset = service.call("SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat"), token)
    assert reset.default_ip_zones and list(reset.ip_zones) == NINE
    service.check(address)
    assert service.listing_events(address)[-1] == (True, "spamcop")


def test_tenant_isolation_and_unknown_ips(service: ReputationService) -> None:
    ulixai = service.token("ulixai")
    viewer = service.token("sos-expat", Role.VIEWER)
    for method, request in (
        ("ScanTenant", pb.ScanTenantRequest(tenant_id="sos-expat")),
        ("GetTenantZones", pb.GetTenantZonesRequest(tenant_id="sos-expat")),
        ("SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat", ip_zones=["psbl"])),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            service.call(method, request, ulixai)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    assert service.call("GetIpReputation", pb.GetIpReputationRequest(address=CLEAN_IP), viewer).address == CLEAN_IP
    with pytest.raises(grpc.RpcError) as caught:
        service.check(CLEAN_IP, viewer)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def refusal(service: ReputationService, method: str, request: Any, token: str, address: str) -> tuple[Any, ...]:
    """What a refused call shows, with the address asked about taken out."""
    with pytest.raises(grpc.RpcError) as caught:
        service.call(method, request, token)
    status = rpc_status.from_call(caught.value)
    assert status is not None
    return (
        caught.value.code(),
        status.message.replace(address, "<address>"),
        [json.dumps(json_format.MessageToDict(d)).replace(address, "<address>") for d in status.details],
    )


@pytest.mark.parametrize("method", ["CheckIp", "GetIpReputation"])
def test_another_tenants_ip_reads_exactly_like_an_unknown_one(service: ReputationService, method: str) -> None:
    ulixai = service.token("ulixai")
    request = {"CheckIp": pb.CheckIpRequest, "GetIpReputation": pb.GetIpReputationRequest}[method]
    foreign = refusal(service, method, request(address=CLEAN_IP), ulixai, CLEAN_IP)
    unknown = refusal(service, method, request(address="198.51.100.1"), ulixai, "198.51.100.1")
    assert foreign[0] == grpc.StatusCode.NOT_FOUND
    assert foreign == unknown


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("CheckIp", pb.CheckIpRequest(address="192.0.2.300"), "address"),
        ("GetIpReputation", pb.GetIpReputationRequest(address="not-an-ip"), "address"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="bad_domain..test"), "domain"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", ips=["192.0.2.1", "1.2.3"]), "ips[1]"),
        (
            "ValidateDomain",
            pb.ValidateDomainRequest(domain="good.test", dkim_selectors=["s1", "bad sel"]),
            "dkim_selectors[1]",
        ),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", helo_hostname="-bad-"), "helo_hostname"),
        ("SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat", domain_zones=["psbl"]), "domain_zones[0]"),
        ("ScanTenant", pb.ScanTenantRequest(tenant_id="Bad Tenant"), "tenant_id"),
    ],
)
def test_bad_input_names_the_field(service: ReputationService, method: str, request_: object, field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        service.call(method, request_)
    code, fields = rpc_error(caught)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == [field]


def test_list_zones_shows_the_catalogue_and_its_health(service: ReputationService) -> None:
    zones = service.call("ListZones", pb.ListZonesRequest(), service.token("ulixai", Role.VIEWER)).zones
    assert [z.key for z in zones] == [*NINE, "spamhaus-dbl", "surbl", "uribl"]
    zen = zones[0]
    assert zen.zone == "zen.spamhaus.org" and zen.kind == "ip" and zen.supports_ipv6 and zen.default
    codes = {c.address: c for c in zen.codes}
    assert codes["127.0.0.4"].kind == "block" and codes["127.0.0.4"].severity == pb.LISTING_SEVERITY_CRITICAL
    assert codes["127.255.255.254"].kind == "error" and "127.255.255.0/24" in codes
    karma = next(z for z in zones if z.key == "junkemailfilter")
    assert {c.address: c.kind for c in karma.codes}["127.0.0.1"] == "allow"
    assert all(z.healthy and z.health == pb.ZONE_HEALTH_STATUS_HEALTHY for z in zones[:9])  # scanned above
    assert zones[9].health == pb.ZONE_HEALTH_STATUS_UNCHECKED and zones[9].health_detail == "not checked yet"
    assert service.outbox(events_pb2.ZoneHealthChanged) == []  # healthy from the start: nothing to say


HUGE = "x" * 2_000_000  # the services accept 4 MiB requests
LONG_DOMAIN = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".test"


def garbage_cases() -> list[tuple[str, Any, str]]:
    """(method, request, the field the answer must name first): out-of-range numbers, huge strings, huge lists of
    bad items, for every reputation RPC that takes input."""
    bad_ips = [f"not-an-ip-{i}" for i in range(256)]
    bad_domains = [pb.SendingDomain(domain=f"bad_{i}", dkim_selectors=["bad sel"] * 32) for i in range(100)]
    return [
        ("CheckIp", pb.CheckIpRequest(address=HUGE), "address"),
        ("GetIpReputation", pb.GetIpReputationRequest(address=HUGE), "address"),
        ("GetIpReputation", pb.GetIpReputationRequest(address=CLEAN_IP, history_size=-1), "history_size"),
        ("GetIpReputation", pb.GetIpReputationRequest(address=CLEAN_IP, history_size=-(2**31)), "history_size"),
        ("ScanTenant", pb.ScanTenantRequest(tenant_id=HUGE), "tenant_id"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain=HUGE), "domain"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", ips=bad_ips), "ips[0]"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", ips=[HUGE]), "ips[0]"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", ips=["192.0.2.1"] * 100_000), "ips"),
        (
            "ValidateDomain",
            pb.ValidateDomainRequest(domain="good.test", dkim_selectors=["a b"] * 10_000),
            "dkim_selectors",
        ),
        (
            "ValidateDomain",
            pb.ValidateDomainRequest(domain="good.test", tracking_domains=["-x-"] * 10_000),
            "tracking_domains",
        ),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", helo_hostname=HUGE), "helo_hostname"),
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", tenant_id=HUGE), "tenant_id"),
        ("GetTenantZones", pb.GetTenantZonesRequest(tenant_id=HUGE), "tenant_id"),
        ("SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat", ip_zones=["x"] * 500_000), "ip_zones"),
        (
            "SetTenantZones",
            pb.SetTenantZonesRequest(tenant_id="sos-expat", ip_zones=[f"z{i}.example" for i in range(60)]),
            "ip_zones[0]",
        ),
        ("SetTenantZones", pb.SetTenantZonesRequest(tenant_id="sos-expat", domain_zones=[HUGE]), "domain_zones[0]"),
        ("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id=HUGE), "tenant_id"),
        (
            "SetTenantDomains",
            pb.SetTenantDomainsRequest(tenant_id="sos-expat", sending_domains=bad_domains),
            "sending_domains[0].domain",
        ),
        (
            "SetTenantDomains",
            pb.SetTenantDomainsRequest(tenant_id="sos-expat", tracking_domains=[HUGE]),
            "tracking_domains[0]",
        ),
        (
            "SetTenantDomains",
            pb.SetTenantDomainsRequest(tenant_id="sos-expat", tracking_domains=["-x-"] * 100_000),
            "tracking_domains",
        ),
        ("CheckTenantDomains", pb.CheckTenantDomainsRequest(tenant_id=HUGE), "tenant_id"),
    ]


@pytest.mark.parametrize(
    ("method", "request_", "field"), garbage_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_garbage_and_out_of_range_input_is_invalid_argument_naming_the_field(
    service: ReputationService, method: str, request_: Any, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        service.call(method, request_, timeout=60)
    code, fields = rpc_error(caught)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()[:200]
    assert fields[0] == field and len(fields) <= 11
    assert len(caught.value.details()) < 4000  # the answer does not grow with the input


def test_a_huge_tenant_id_is_invalid_argument_for_an_operator_too(service: ReputationService) -> None:
    operator = service.token("ulixai")
    for method, request in (
        ("ValidateDomain", pb.ValidateDomainRequest(domain="good.test", tenant_id=HUGE)),
        ("ScanTenant", pb.ScanTenantRequest(tenant_id=HUGE)),
        ("SetTenantDomains", pb.SetTenantDomainsRequest(tenant_id=HUGE)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            service.call(method, request, operator)
        assert rpc_error(caught) == (grpc.StatusCode.INVALID_ARGUMENT, ["tenant_id"]), method


def test_a_domain_check_of_names_too_long_for_dns_ends_unknown_not_in_an_error(service: ReputationService) -> None:
    reply = service.call(
        "ValidateDomain",
        pb.ValidateDomainRequest(domain=LONG_DOMAIN, dkim_selectors=["s" * 60 + "." + "t" * 60], ips=[CLEAN_IP]),
    )
    dkim = next(c for c in reply.checks if c.check == "dkim")
    assert dkim.verdict == pb.CHECK_VERDICT_UNKNOWN


# -- broken zones: listing the world, dead -----------------------------------------------------------


def test_zones_that_list_the_world_or_died_are_unhealthy_ignored_and_alerted(rbl: Rbldnsd, tmp_path: Path) -> None:
    names = {**ZONE_NAMES, "spamcop": WORLD, "psbl": DEAD}
    with running_reputation(tmp_path, rbl_env(rbl.nameserver, EE_REPUTATION_ZONE_NAMES=json.dumps(names))) as svc:
        svc.watch(CLEAN_IP)
        reply = svc.check(CLEAN_IP)
        spamcop, psbl = (next(z for z in reply.latest.zones if z.zone_key == k) for k in ("spamcop", "psbl"))
        assert spamcop.status == pb.LISTING_STATUS_SKIPPED and "listing the world" in spamcop.detail
        assert psbl.status == pb.LISTING_STATUS_SKIPPED and "does not list its test point" in psbl.detail
        assert not reply.latest.listed and not reply.latest.complete and svc.listing_events(CLEAN_IP) == []
        changed = {e.zone_key: e for e in svc.outbox(events_pb2.ZoneHealthChanged)}
        assert set(changed) == {"spamcop", "psbl"}
        assert changed["spamcop"].status == pb.ZONE_HEALTH_STATUS_UNHEALTHY and not changed["spamcop"].healthy
        assert changed["spamcop"].zone == "bl.spamcop.net" and "listing the world" in changed["spamcop"].reason
        svc.check(CLEAN_IP)
        assert len(svc.outbox(events_pb2.ZoneHealthChanged)) == 2  # once per change, not per scan
        zones = {z.key: z for z in svc.call("ListZones", pb.ListZonesRequest()).zones}
        assert not zones["spamcop"].healthy and "listing the world" in zones["spamcop"].health_detail
        assert zones["spamhaus-zen"].healthy


# -- a dead DNS server -------------------------------------------------------------------------------


def test_a_dead_dns_server_gives_unknown_with_the_reason_in_bounded_time_and_changes_nothing(
    rbl: Rbldnsd, tmp_path: Path
) -> None:
    with running_reputation(tmp_path, rbl_env(rbl.nameserver)) as svc:
        svc.watch(LISTED_IP)
        svc.check(LISTED_IP)
        before = svc.listing_events(LISTED_IP)
        assert len(before) == 2
    with silent_nameserver() as dead, running_reputation(tmp_path, rbl_env(dead, EE_DNS_TIMEOUT="0.5")) as svc:
        started = time.monotonic()
        reply = svc.check(LISTED_IP)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"CheckIp took {elapsed:.1f}s with a 0.5 s DNS timeout"
        assert set(statuses(reply).values()) == {"UNKNOWN"}
        assert all("no answer" in z.detail for z in reply.latest.zones), reply.latest.zones[0].detail
        assert not reply.latest.complete and not reply.latest.listed
        assert reply.listed, "a scan without answers must not delist"
        assert svc.listing_events(LISTED_IP) == before
        unreachable = svc.outbox(events_pb2.ZoneHealthChanged)
        assert len(unreachable) == 9 and {e.status for e in unreachable} == {pb.ZONE_HEALTH_STATUS_UNREACHABLE}

        started = time.monotonic()
        report = svc.call(
            "ValidateDomain",
            pb.ValidateDomainRequest(domain="good.test", ips=[LISTED_IP], dkim_selectors=["s1"]),
        )
        elapsed = time.monotonic() - started
        assert elapsed < 8.0, f"ValidateDomain took {elapsed:.1f}s with a 0.5 s DNS timeout"
        assert {c.verdict for c in report.checks} == {pb.CHECK_VERDICT_UNKNOWN}, report
        assert report.verdict == pb.CHECK_VERDICT_UNKNOWN
        assert [c.check for c in report.checks] == ["spf", "dkim", "dmarc", "alignment", "ptr", "mx", "blocklist"]


# -- replicas on PostgreSQL: each change once, each slot once ------------------------------------------


def test_concurrent_scans_and_replicas_publish_each_change_once(
    rbl: Rbldnsd, tmp_path: Path, postgres: PostgresServer
) -> None:
    database = f"rep_{tmp_path.name[-20:]}".lower().replace("-", "_")
    postgres.create_database(database)
    url = postgres.url_for(database)
    env = rbl_env(rbl.nameserver)
    with (
        running_reputation(tmp_path / "a", env, database_url=url) as one,
        running_reputation(tmp_path / "b", env, database_url=url, clock=one.clock) as two,
    ):
        one.watch(LISTED_IP)
        one.watch(CLEAN_IP)
        errors: list[BaseException] = []

        def check(svc: ReputationService) -> None:
            try:
                svc.check(LISTED_IP)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(svc,)) for svc in (one, two) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(one.listing_events(LISTED_IP)) == [(True, "spamcop"), (True, "spamhaus-zen")]

        # Two replicas' periodic jobs in the same slot: one has the slot; the other at most first-scans an IP
        # never scanned before (CLEAN_IP) that the first left to it. Each IP is scanned once.
        results = []
        barrier = threading.Barrier(2)

        def periodic(svc: ReputationService, owner: str) -> None:
            barrier.wait()
            results.append(svc.host.runtime.app.ips.periodic(owner))

        runners = [threading.Thread(target=periodic, args=(s, n)) for s, n in ((one, "a"), (two, "b"))]
        for t in runners:
            t.start()
        for t in runners:
            t.join()
        assert sorted(len(r.recorded) if r else 0 for r in results) in ([0, 2], [1, 1])
        with one.db.transaction() as session:
            assert session.execute(sa.select(sa.func.count()).select_from(scan_results)).scalar_one() == 8 + 2
            assert session.execute(sa.select(sa.func.count()).select_from(ip_listings)).scalar_one() == 2


def tick_together(replicas: list[ReputationService]) -> list[int]:
    """Each replica's periodic scan at the same moment (threads past a barrier): the IPs each one scanned."""
    barrier = threading.Barrier(len(replicas))
    counts: list[int] = []
    errors: list[BaseException] = []

    def tick(svc: ReputationService, owner: str) -> None:
        barrier.wait()
        try:
            run = svc.app.ips.periodic(owner)
            counts.append(len(run.recorded) if run else 0)
        except BaseException as exc:
            errors.append(exc)

    runners = [threading.Thread(target=tick, args=(svc, f"replica-{i}")) for i, svc in enumerate(replicas)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert errors == []
    return counts


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_replicas_spread_the_scans_and_scan_each_ip_once_per_interval(
    database: str, rbl: Rbldnsd, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two replicas tick together, every minute for three intervals of 5 minutes: each IP is scanned at once when
    new, then exactly once per interval, by one replica or the other, a few IPs a tick."""
    if database == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"spread_{tmp_path.name[-20:]}".lower().replace("-", "_")
        postgres.create_database(name)
        url = postgres.url_for(name)
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = rbl_env(rbl.nameserver)
    addresses = [f"192.0.2.{120 + i}" for i in range(12)]
    with (
        running_reputation(tmp_path / "a", env, database_url=url) as one,
        running_reputation(tmp_path / "b", env, database_url=url, clock=one.clock) as two,
    ):
        for address in addresses:
            one.watch(address, "spread")
        settings = pb.TenantScanSettings(tenant_id="spread", scan_interval=duration_pb2.Duration(seconds=300))
        one.call("UpdateTenantScanSettings", pb.UpdateTenantScanSettingsRequest(settings=settings))
        per_tick: list[int] = []
        for _ in range(1 + 15):
            per_tick.append(sum(tick_together([one, two])))
            one.clock.advance(timedelta(minutes=1))
        with one.db.transaction() as session:
            rows = session.execute(sa.select(scan_results.c.address, scan_results.c.result)).all()
    triggers = Counter((row.address, pb.ScanResult.FromString(row.result).trigger) for row in rows)
    assert triggers == Counter({(a, "first"): 1 for a in addresses} | {(a, "periodic"): 3 for a in addresses})
    assert per_tick[0] == 12 and sum(per_tick[1:]) == 36
    assert max(per_tick[1:]) < 12  # spread: never the whole tenant in one tick


def test_scan_settings_and_zone_budgets_through_the_api(service: ReputationService) -> None:
    operator, admin = service.token("ulixai"), service.token()
    got = service.call("GetTenantScanSettings", pb.GetTenantScanSettingsRequest(tenant_id="ulixai"), operator)
    assert got.default_scan_interval and got.effective_scan_interval.seconds == 14400
    assert not got.HasField("scan_interval") and len(got.zone_intervals) == 9
    five = pb.TenantScanSettings(tenant_id="ulixai", scan_interval=duration_pb2.Duration(seconds=300))
    with pytest.raises(grpc.RpcError) as denied:
        service.call("UpdateTenantScanSettings", pb.UpdateTenantScanSettingsRequest(settings=five), operator)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and "only an admin" in denied.value.details()
    updated = service.call("UpdateTenantScanSettings", pb.UpdateTenantScanSettingsRequest(settings=five), admin)
    assert updated.scan_interval.seconds == 300 and not updated.default_scan_interval
    assert {z.scan_interval.seconds for z in updated.zone_intervals} == {300}
    for bad, field in (
        (duration_pb2.Duration(seconds=59), "settings.scan_interval"),
        (duration_pb2.Duration(seconds=90, nanos=5), "settings.scan_interval"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            request = pb.UpdateTenantScanSettingsRequest(
                settings=pb.TenantScanSettings(tenant_id="ulixai", scan_interval=bad)
            )
            service.call("UpdateTenantScanSettings", request, admin)
        assert rpc_error(caught) == (grpc.StatusCode.INVALID_ARGUMENT, [field])
    masked = pb.UpdateTenantScanSettingsRequest(
        settings=pb.TenantScanSettings(tenant_id="ulixai"),
        update_mask=field_mask_pb2.FieldMask(paths=["zone_intervals"]),
    )
    with pytest.raises(grpc.RpcError) as caught:
        service.call("UpdateTenantScanSettings", masked, admin)
    assert rpc_error(caught) == (grpc.StatusCode.INVALID_ARGUMENT, ["update_mask"])
    reset = pb.UpdateTenantScanSettingsRequest(settings=pb.TenantScanSettings(tenant_id="ulixai"))
    assert service.call("UpdateTenantScanSettings", reset, operator).default_scan_interval
    with pytest.raises(grpc.RpcError) as foreign:
        service.call("GetTenantScanSettings", pb.GetTenantScanSettingsRequest(tenant_id="sos-expat"), operator)
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    zones = {z.key: z for z in service.call("ListZones", pb.ListZonesRequest(), operator).zones}
    assert zones["spamhaus-zen"].daily_query_budget == 100_000 and zones["mailspike"].daily_query_budget == 100_000
    assert zones["spamcop"].daily_query_budget == 0 and not zones["spamhaus-zen"].budget_limited
    wanted = zones["spamhaus-zen"].wanted_daily_queries
    assert wanted >= 6 * 7 and wanted % 6 == 0  # the IPs watched so far, each scanned six times a day (4 h)


def test_no_rate_limit_on_the_calls_that_cost_dns_queries_is_now_a_429_per_tenant(rbl: Rbldnsd, tmp_path: Path) -> None:
    """A tenant checking in a loop gets RESOURCE_EXHAUSTED with a retry delay; another tenant is not slowed."""
    env = rbl_env(
        rbl.nameserver,
        EE_REPUTATION_CHECKS_PER_MINUTE="6",
        EE_REPUTATION_CHECKS_BURST="2",
        EE_REPUTATION_TENANT_SCANS_PER_HOUR="1",
        EE_REPUTATION_TENANT_SCANS_BURST="1",
    )
    with running_reputation(tmp_path, env) as svc:
        svc.watch(CLEAN_IP)
        svc.watch(WHITELISTED_IP, tenant="ulixai")
        sos = svc.token("sos-expat")
        svc.check(CLEAN_IP, sos)
        svc.check(CLEAN_IP, sos)
        with pytest.raises(grpc.RpcError) as limited:
            svc.check(CLEAN_IP, sos)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "CheckIp" in (limited.value.details() or "")
        status = rpc_status.from_call(limited.value)
        assert status is not None and any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
        svc.check(WHITELISTED_IP, svc.token("ulixai"))  # the other tenant's allowance is untouched
        svc.call("ScanTenant", pb.ScanTenantRequest(tenant_id="sos-expat"), sos)
        with pytest.raises(grpc.RpcError) as scans:
            svc.call("ScanTenant", pb.ScanTenantRequest(tenant_id="sos-expat"), sos)
        assert scans.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
