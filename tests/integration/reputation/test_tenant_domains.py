"""Each tenant's sending and tracking domains, checked by the running service (ServiceHost, gRPC, outbox, periodic
job) against a real nsd (SPF, DKIM, DMARC, MX) and a real rbldnsd (Spamhaus DBL, SURBL, URIBL): a good domain stays
quiet, a broken SPF record or a DBL listing is one DomainCheckChanged each way, a dead DNS server is UNKNOWN and
changes nothing; the list is validated and isolated per tenant."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emailengine.reputation.v1 import events_pb2
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.auth import Role
from reputation import jobs
from tests.harness.dns_servers import Nsd, Rbldnsd, silent_nameserver, txt_rdata
from tests.harness.servers import PostgresServer
from tests.integration.reputation.service import (
    ReputationService,
    rbl_env,
    rpc_error,
    running_reputation,
    start_rbldnsd,
    verdict_name,
)

pytestmark = pytest.mark.integration

SOS_IP = "192.0.2.10"
ULIXAI_IP = "192.0.2.88"
BRAND_IP = "192.0.2.40"  # tenant "brand": brand.test, its bounces at bounces.brand.test or at relay.test
SLOT = timedelta(hours=4)  # EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS's default


def dkim_key_b64() -> str:
    key = rsa.generate_private_key(65537, 2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def domain_records(domain: str, spf: str, dkim_b64: str) -> list[str]:
    return [
        f'@ TXT "{spf}"',
        f"s2048._domainkey TXT {txt_rdata(f'v=DKIM1; k=rsa; p={dkim_b64}')}",
        f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"',
        f"@ MX 10 mx.{domain}.",
        "mx A 192.0.2.25",
    ]


class Zones:
    """The nsd of this module; `flip.test`'s SPF record can be broken and fixed (nsd restarted on its port)."""

    def __init__(self) -> None:
        self.key = dkim_key_b64()
        self.nsd = Nsd()
        self.nsd.add_zone("good.test", domain_records("good.test", f"v=spf1 ip4:{SOS_IP} -all", self.key))
        brand_spf = f"v=spf1 ip4:{BRAND_IP} -all"
        self.nsd.add_zone(
            "brand.test", [*domain_records("brand.test", brand_spf, self.key), f'bounces TXT "{brand_spf}"']
        )
        self.nsd.add_zone("relay.test", [f'@ TXT "{brand_spf}"'])  # a bounce domain of another organization
        self.set_flip_spf(f"v=spf1 ip4:{ULIXAI_IP} -all")

    def set_flip_spf(self, spf: str) -> None:
        restart = self.nsd.port != 0
        if restart:
            self.nsd.stop()
        self.nsd.add_zone("flip.test", domain_records("flip.test", spf, self.key))
        if restart:
            self.nsd.start()


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def zones() -> Iterator[Zones]:
    made = Zones()
    with made.nsd:
        yield made


@pytest.fixture(scope="module")
def service(rbl: Rbldnsd, zones: Zones, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReputationService]:
    env = rbl_env(f"{rbl.nameserver},{zones.nsd.nameserver}")
    with running_reputation(tmp_path_factory.mktemp("domains"), env) as running:
        running.watch(SOS_IP, "sos-expat")
        running.watch(ULIXAI_IP, "ulixai")
        yield running


def set_domains(
    service: ReputationService,
    tenant: str,
    sending: dict[str, list[str]],
    tracking: list[str] = (),  # type: ignore[assignment]
    token: str | None = None,
) -> pb.TenantDomains:
    request = pb.SetTenantDomainsRequest(
        tenant_id=tenant,
        sending_domains=[pb.SendingDomain(domain=d, dkim_selectors=s) for d, s in sending.items()],
        tracking_domains=tracking,
    )
    return service.call("SetTenantDomains", request, token or service.token(tenant))


def check_now(service: ReputationService, tenant: str) -> pb.CheckTenantDomainsResponse:
    return service.call("CheckTenantDomains", pb.CheckTenantDomainsRequest(tenant_id=tenant), service.token(tenant))


def verdicts(reply: pb.CheckTenantDomainsResponse) -> dict[tuple[str, str, str], str]:
    return {
        (report.domain, c.check, c.subject): verdict_name(c.verdict)
        for report in [*reply.sending_domains, *reply.tracking_domains]
        for c in report.checks
    }


def run_periodic(service: ReputationService) -> int:
    service.clock.advance(SLOT)
    return jobs.check_tenant_domains(service.app)


# -- the list: validated, isolated, read back with its verdicts --------------------------------------------


def test_bad_domains_and_selectors_are_400_naming_each_field(service: ReputationService) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        set_domains(
            service,
            "sos-expat",
            {"good.test": ["s2048", "bad sel"], "bad_domain..test": [], "GOOD.test.": []},
            ["click.test", "-nope-.test", "click.test"],
        )
    code, fields = rpc_error(caught)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == [
        "sending_domains[0].dkim_selectors[1]",
        "sending_domains[1].domain",
        "sending_domains[2].domain",  # good.test again
        "tracking_domains[1]",
        "tracking_domains[2]",
    ]
    with pytest.raises(grpc.RpcError) as caught:
        set_domains(service, "Bad Tenant", {"good.test": []}, token=service.token())
    assert rpc_error(caught) == (grpc.StatusCode.INVALID_ARGUMENT, ["tenant_id"])


def test_a_tenant_sees_and_sets_only_its_own_domains_and_a_viewer_only_reads(service: ReputationService) -> None:
    set_domains(service, "sos-expat", {"good.test": ["s2048"]}, ["click.test"])
    ulixai, viewer = service.token("ulixai"), service.token("sos-expat", Role.VIEWER)
    for method, request in (
        ("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat")),
        ("SetTenantDomains", pb.SetTenantDomainsRequest(tenant_id="sos-expat")),
        ("CheckTenantDomains", pb.CheckTenantDomainsRequest(tenant_id="sos-expat")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            service.call(method, request, ulixai)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat"), viewer)
    assert [(d.domain, list(d.dkim_selectors)) for d in read.sending_domains] == [("good.test", ["s2048"])]
    assert list(read.tracking_domains) == ["click.test"] and read.HasField("update_time")
    for method, request in (
        ("SetTenantDomains", pb.SetTenantDomainsRequest(tenant_id="sos-expat")),
        ("CheckTenantDomains", pb.CheckTenantDomainsRequest(tenant_id="sos-expat")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            service.call(method, request, viewer)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    assert service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat")) == read  # admin


# -- the Return-Path domain and the tenant's check policy --------------------------------------------------------


def test_the_return_path_domain_and_the_check_policy_are_kept_and_used(service: ReputationService) -> None:
    service.watch(BRAND_IP, "brand")

    def put(return_path: str, **policy: int) -> pb.TenantDomains:
        request = pb.SetTenantDomainsRequest(
            tenant_id="brand",
            sending_domains=[
                pb.SendingDomain(domain="brand.test", dkim_selectors=["s2048"], return_path_domain=return_path)
            ],
            check_policy=pb.DomainCheckPolicy(**policy),
        )
        return service.call("SetTenantDomains", request, service.token("brand"))

    stored = put("Bounces.Brand.test")
    assert stored.sending_domains[0].return_path_domain == "bounces.brand.test"
    assert stored.check_policy == pb.DomainCheckPolicy(
        generic_ptr=pb.CHECK_VERDICT_WARN,
        foreign_ptr=pb.CHECK_VERDICT_WARN,
        single_alignment=pb.CHECK_VERDICT_WARN,
        ed25519_only=pb.CHECK_VERDICT_WARN,
    )
    found = verdicts(check_now(service, "brand"))
    assert found[("brand.test", "return_path_spf", BRAND_IP)] == "PASS"
    assert found[("brand.test", "alignment", "brand.test")] == "PASS"

    put("relay.test")  # SPF passes for it, but it is not aligned: DMARC rests on DKIM alone
    reply = check_now(service, "brand")
    assert verdicts(reply)[("brand.test", "alignment", "brand.test")] == "WARN"
    assert ("brand.test", "alignment", "brand.test", "PASS", "WARN") in service.domain_events("brand")
    accepted = put("relay.test", single_alignment=pb.CHECK_VERDICT_PASS)
    assert accepted.check_policy.single_alignment == pb.CHECK_VERDICT_PASS
    assert verdicts(check_now(service, "brand"))[("brand.test", "alignment", "brand.test")] == "PASS"
    read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="brand"), service.token("brand"))
    assert read.check_policy.single_alignment == pb.CHECK_VERDICT_PASS
    assert read.sending_domains[0].return_path_domain == "relay.test"

    with pytest.raises(grpc.RpcError) as caught:
        put("not a domain", generic_ptr=pb.CHECK_VERDICT_UNKNOWN)
    assert rpc_error(caught) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["check_policy.generic_ptr", "sending_domains[0].return_path_domain"],
    )


# -- a good domain stays quiet ------------------------------------------------------------------------------


def test_a_good_domain_passes_every_check_and_publishes_nothing(service: ReputationService) -> None:
    set_domains(service, "sos-expat", {"good.test": ["s2048"]}, ["click.test", "good.test"])
    reply = check_now(service, "sos-expat")
    assert verdicts(reply) == {
        ("good.test", "spf", SOS_IP): "PASS",  # each watched IP of the tenant
        ("good.test", "dkim", "s2048"): "PASS",
        ("good.test", "dmarc", "good.test"): "PASS",
        ("good.test", "alignment", "good.test"): "PASS",  # SPF (postmaster@good.test) and DKIM both aligned
        ("good.test", "mx", "good.test"): "PASS",
        ("good.test", "blocklist", "good.test"): "PASS",  # checked once, though also a tracking domain
        ("click.test", "blocklist", "click.test"): "PASS",
    }, reply
    assert [r.domain for r in reply.tracking_domains] == ["click.test"]
    assert reply.changes == 0 and reply.unknown == 0
    check_now(service, "sos-expat")
    assert service.domain_events("sos-expat") == []

    read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat"))
    assert [(c.domain, c.domain_role, c.result.check, c.result.subject) for c in read.checks] == [
        ("good.test", "sending", "spf", SOS_IP),
        ("good.test", "sending", "dkim", "s2048"),
        ("good.test", "sending", "dmarc", "good.test"),
        ("good.test", "sending", "alignment", "good.test"),
        ("good.test", "sending", "mx", "good.test"),
        ("good.test", "sending", "blocklist", "good.test"),
        ("click.test", "tracking", "blocklist", "click.test"),
    ]
    assert read.verdict == pb.CHECK_VERDICT_PASS and read.HasField("check_time")
    assert all(c.result.reason and c.HasField("check_time") and not c.unknown_reason for c in read.checks)

    # A selector taken away is no longer checked, and what was believed about it is forgotten.
    set_domains(service, "sos-expat", {"good.test": []}, ["click.test"])
    read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat"))
    assert [c.result.check for c in read.checks] == ["spf", "dmarc", "alignment", "mx", "blocklist", "blocklist"]
    assert not read.HasField("check_time")  # set since the last check: the next tick checks it


# -- a broken SPF record, found by the periodic job: one event each way -------------------------------------


def test_a_broken_spf_record_is_one_event_and_its_repair_one_more(service: ReputationService, zones: Zones) -> None:
    set_domains(service, "ulixai", {"flip.test": ["s2048"]})
    assert run_periodic(service) >= 1  # this slot's check of every tenant's domains
    assert jobs.check_tenant_domains(service.app) == 0  # the same slot again: claimed already, nothing to do
    assert service.domain_events("ulixai") == []

    zones.set_flip_spf("v=spf1 ip4:203.0.113.0/24 -all")
    try:
        for _ in range(2):  # the next slot's check sees it; the one after changes nothing
            assert run_periodic(service) >= 1
        # SPF fails for the IP, and with it DMARC now rests on DKIM alone (the tenant's policy: a warning).
        assert service.domain_events("ulixai") == [
            ("flip.test", "spf", ULIXAI_IP, "PASS", "FAIL"),
            ("flip.test", "alignment", "flip.test", "PASS", "WARN"),
        ]
        (event, alignment) = [e for e in service.outbox(events_pb2.DomainCheckChanged) if e.tenant_id == "ulixai"]
        assert "only through DKIM" in alignment.reason and f"SPF gives fail for {ULIXAI_IP}" in alignment.reason
        assert event.domain_role == "sending" and ULIXAI_IP in event.reason and list(event.listed_on) == []
        assert list(event.records) == ["v=spf1 ip4:203.0.113.0/24 -all"] and event.HasField("observed_at")
        read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="ulixai"))
        assert read.verdict == pb.CHECK_VERDICT_FAIL
    finally:
        zones.set_flip_spf(f"v=spf1 ip4:{ULIXAI_IP} -all")
    run_periodic(service)
    assert service.domain_events("ulixai")[2:] == [
        ("flip.test", "spf", ULIXAI_IP, "FAIL", "PASS"),
        ("flip.test", "alignment", "flip.test", "WARN", "PASS"),
    ]


def test_domains_set_between_slots_are_checked_at_the_next_tick(service: ReputationService) -> None:
    while jobs.check_tenant_domains(service.app):  # this slot's work done
        pass
    set_domains(service, "newcomer", {"good.test": ["s2048", "missing"]})
    service.clock.advance(timedelta(minutes=1))
    assert jobs.check_tenant_domains(service.app) == 1  # the slot is taken, but the new list is checked now
    assert jobs.check_tenant_domains(service.app) == 0
    read = service.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="newcomer"))
    found = {(c.result.check, c.result.subject): verdict_name(c.result.verdict) for c in read.checks}
    # No watched IP: no SPF check. A selector not published: a first verdict that is not PASS is news.
    assert found == {
        ("dkim", "s2048"): "PASS",
        ("dkim", "missing"): "FAIL",
        ("dmarc", "good.test"): "PASS",
        ("alignment", "good.test"): "PASS",  # through DKIM (s2048); SPF not evaluated without an IP
        ("mx", "good.test"): "PASS",
        ("blocklist", "good.test"): "PASS",
    }
    assert service.domain_events("newcomer") == [("good.test", "dkim", "missing", "UNSPECIFIED", "FAIL")]


# -- a domain on Spamhaus DBL: a distinct, clear event --------------------------------------------------------


def test_a_tracking_domain_listed_on_dbl_is_one_event_and_its_removal_one_more(
    service: ReputationService, rbl: Rbldnsd
) -> None:
    set_domains(service, "tracker", {}, ["links.example"])
    assert verdicts(check_now(service, "tracker")) == {("links.example", "blocklist", "links.example"): "PASS"}

    rbl.add_entry("dbl_live", "links.example :127.0.1.2:Spam domain, see https://check.spamhaus.org/$")
    try:
        listed = check_now(service, "tracker")
        (report,) = listed.tracking_domains
        assert report.verdict == pb.CHECK_VERDICT_FAIL and listed.changes == 1
        assert "dbl.spamhaus.org" in report.checks[0].reason and report.checks[0].details["spamhaus-dbl"] == "listed"
        assert check_now(service, "tracker").changes == 0  # still listed: nothing new
        assert service.domain_events("tracker") == [("links.example", "blocklist", "links.example", "PASS", "FAIL")]
        (event,) = [e for e in service.outbox(events_pb2.DomainCheckChanged) if e.tenant_id == "tracker"]
        assert list(event.listed_on) == ["dbl.spamhaus.org"] and event.domain_role == "tracking"
        assert "Spamhaus DBL: spam domain" in event.reason and "check.spamhaus.org/links.example" in event.reason
    finally:
        rbl.remove_entry("dbl_live", "links.example")
    assert check_now(service, "tracker").changes == 1
    assert service.domain_events("tracker")[1:] == [("links.example", "blocklist", "links.example", "FAIL", "PASS")]


# -- a dead DNS server: UNKNOWN, the verdicts stand, nothing published ---------------------------------------


def test_a_dead_dns_server_gives_unknown_and_no_event(rbl: Rbldnsd, zones: Zones, tmp_path: Path) -> None:
    with running_reputation(tmp_path, rbl_env(f"{rbl.nameserver},{zones.nsd.nameserver}")) as svc:
        svc.watch(SOS_IP, "sos-expat")
        set_domains(svc, "sos-expat", {"good.test": ["s2048", "missing"]}, ["click.test"])
        assert check_now(svc, "sos-expat").changes == 1  # the missing selector
        before = svc.domain_events("sos-expat")
    with silent_nameserver() as dead, running_reputation(tmp_path, rbl_env(dead, EE_DNS_TIMEOUT="0.5")) as svc:
        started = time.monotonic()
        reply = check_now(svc, "sos-expat")
        elapsed = time.monotonic() - started
        assert elapsed < 8.0, f"CheckTenantDomains took {elapsed:.1f}s with a 0.5 s DNS timeout"
        assert set(verdicts(reply).values()) == {"UNKNOWN"} and reply.unknown == len(verdicts(reply)) == 8
        assert reply.changes == 0 and svc.domain_events("sos-expat") == before
        read = svc.call("GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id="sos-expat"))
        believed = {(c.result.check, c.result.subject): verdict_name(c.result.verdict) for c in read.checks}
        assert believed[("spf", SOS_IP)] == "PASS" and believed[("dkim", "missing")] == "FAIL"
        assert all(c.unknown_reason and c.HasField("unknown_time") for c in read.checks)
        assert read.verdict == pb.CHECK_VERDICT_FAIL


# -- replicas on PostgreSQL: each slot checked once, each change published once ---------------------------------


def test_replicas_check_each_slot_once_and_publish_each_change_once(
    rbl: Rbldnsd, zones: Zones, tmp_path: Path, postgres: PostgresServer
) -> None:
    database = f"repdom_{tmp_path.name[-20:]}".lower().replace("-", "_")
    postgres.create_database(database)
    url = postgres.url_for(database)
    env = rbl_env(f"{rbl.nameserver},{zones.nsd.nameserver}")
    with (
        running_reputation(tmp_path / "a", env, database_url=url) as one,
        running_reputation(tmp_path / "b", env, database_url=url, clock=one.clock) as two,
    ):
        one.watch(SOS_IP, "sos-expat")
        set_domains(one, "sos-expat", {"good.test": ["s2048", "missing"]}, ["spammy.example"])
        errors: list[BaseException] = []

        def check(svc: ReputationService) -> None:
            try:
                check_now(svc, "sos-expat")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(svc,)) for svc in (one, two) * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(one.domain_events("sos-expat")) == [
            ("good.test", "dkim", "missing", "UNSPECIFIED", "FAIL"),
            ("spammy.example", "blocklist", "spammy.example", "UNSPECIFIED", "FAIL"),
        ]

        one.clock.advance(SLOT)
        results: list[object] = []
        barrier = threading.Barrier(2)

        def periodic(svc: ReputationService, owner: str) -> None:
            barrier.wait()
            results.append(svc.host.runtime.app.tenant_domains.periodic(owner))

        runners = [threading.Thread(target=periodic, args=(s, n)) for s, n in ((one, "a"), (two, "b"))]
        for t in runners:
            t.start()
        for t in runners:
            t.join()
        assert sorted(len(r) if r else 0 for r in results) == [0, 1]  # type: ignore[arg-type]
        assert len(one.domain_events("sos-expat")) == 2
