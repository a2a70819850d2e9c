"""Reputation through the real stack (four services on PostgreSQL and Redis behind Envoy) with a real rbldnsd and
nsd as its DNS: REST as a user calls it, a live listing reported once each way, the periodic scan
run by a real RQ worker once per interval, tenant zones, scan intervals and isolation, bad input and a dead DNS
server.

The stack's EE_DNS_NAMESERVERS is "rbldnsd,nsd": each answers REFUSED outside its own zones and the client
then asks the next. EE_REPUTATION_ZONE_NAMES points every catalogue zone at `<key>.rbl.test` on the rbldnsd.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rq import Queue

from emailengine.platform.v1 import event_pb2
from libs import events
from libs.config import REPO_ROOT
from libs.jobs import job_path, run_job
from reputation.jobs import scan_watched_ips
from tests.harness.dns_servers import LOOPBACK, Nsd, Rbldnsd, txt_rdata
from tests.harness.servers import PostgresServer, RedisServer, Stack, production_stack, wait_until
from tests.integration.reputation.service import (
    CLEAN_IP,
    LISTED_IP,
    LISTED_V6,
    RESOLVER_ERROR_IP,
    WHITELISTED_IP,
    ZONE_NAMES,
    start_rbldnsd,
)

pytestmark = pytest.mark.e2e

GOOD_IP = "192.0.2.10"  # also LISTED_IP on the blocklists: the domain checks do not care
GENERIC_IP = "192.0.2.13"  # its PTR is a hosting default carrying its digits (forward-confirmed)
GENERIC_PTR = "static.192.0.2.13.clients.example-hosting.test"
LIVE_IP = "192.0.2.77"
RELIST_IP = "192.0.2.91"  # listed with a LOW code, then on Spamhaus SBL, delisted and listed again
ULIXAI_IP = "192.0.2.88"
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


def rest(stack: Stack, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers: dict[str, str] = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{stack.gateway}{path}", headers=headers, timeout=30, **kwargs)


def bad_fields(reply: httpx.Response) -> list[str]:
    """The field names of the google.rpc.BadRequest detail of a REST error body."""
    fields: list[str] = []
    for detail in reply.json().get("details", []):
        for violation in detail.get("field_violations", detail.get("fieldViolations", [])):
            fields.append(violation["field"])
    return fields


def zone_statuses(body: dict[str, Any]) -> dict[str, str]:
    return {z["zone_key"]: z["status"].removeprefix("LISTING_STATUS_") for z in body["latest"]["zones"]}


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    try:
        yield server
    finally:
        server.cleanup()


def dkim_key_b64() -> str:
    key = rsa.generate_private_key(65537, 2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def nsd() -> Iterator[Nsd]:
    server = Nsd()
    server.add_zone(
        "good.test",
        [
            f'@ TXT "v=spf1 ip4:{GOOD_IP} -all"',
            f"s2048._domainkey TXT {txt_rdata(f'v=DKIM1; k=rsa; p={dkim_key_b64()}')}",
            '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"',
            "@ MX 10 mx.good.test.",
            "mx A 192.0.2.25",
            f"mail A {GOOD_IP}",
        ],
    )
    server.add_zone(
        "broken.test",
        [
            '@ TXT "v=spf1 ip4:203.0.113.0/24 -all"',
            'revoked._domainkey TXT "v=DKIM1; k=rsa; p="',
            '_dmarc TXT "v=DMARC1; p=maybe"',
            "@ MX 0 .",
        ],
    )
    brand_spf = f"v=spf1 ip4:{GOOD_IP} ip4:{GENERIC_IP} -all"
    server.add_zone(
        "brand.test",
        [
            f'@ TXT "{brand_spf}"',
            f'bounces TXT "{brand_spf}"',  # MailWizz's bounce domain: a subdomain, aligned
            f"s2048._domainkey TXT {txt_rdata(f'v=DKIM1; k=rsa; p={dkim_key_b64()}')}",
            '_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@brand.test"',
            "@ MX 10 mx.good.test.",
        ],
    )
    server.add_zone("esp-bounce.test", [f'@ TXT "{brand_spf}"'])  # a bounce domain of another organization
    server.add_zone("example-hosting.test", [f"static.192.0.2.13.clients A {GENERIC_IP}"])
    server.add_zone("2.0.192.in-addr.arpa", ["10 PTR mail.good.test.", f"13 PTR {GENERIC_PTR}."])
    with server:
        yield server


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    redis_server: RedisServer,
    rbl: Rbldnsd,
    nsd: Nsd,
) -> Iterator[Stack]:
    extra = {
        "EE_DNS_NAMESERVERS": f"{rbl.nameserver},{nsd.nameserver}",
        "EE_DNS_TIMEOUT": "1",
        "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
        # One slot a week: the two periodic runs of the worker test always fall in the same slot.
        "EE_REPUTATION_SCAN_INTERVAL_SECONDS": str(7 * 86400),
    }
    with production_stack(tmp_path_factory.mktemp("repstack"), postgres, redis_server, extra) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    return {
        "sos": stack.token("--tenant", "sos-expat"),
        "ulixai": stack.token("--tenant", "ulixai"),
        "admin": stack.token("--admin"),
    }


@pytest.fixture(scope="module")
def watched(stack: Stack, tokens: dict[str, str]) -> list[str]:
    """IPs registered in ip-pool; reputation learns them from its IpRegistered events."""
    ips = [LISTED_IP, CLEAN_IP, RESOLVER_ERROR_IP, WHITELISTED_IP, LISTED_V6, LIVE_IP]
    for address in ips:
        made = rest(stack, "POST", "/api/v2/ips", tokens["sos"], json={"address": address, "tenant_id": "sos-expat"})
        assert made.status_code == 200, made.text
    made = rest(stack, "POST", "/api/v2/ips", tokens["ulixai"], json={"address": ULIXAI_IP, "tenant_id": "ulixai"})
    assert made.status_code == 200, made.text
    for address in [*ips, ULIXAI_IP]:
        wait_until(
            lambda a=address: rest(stack, "GET", f"/api/v2/reputation/ips/{a}", tokens["admin"]).status_code == 200,
            15,
            f"reputation watching {address}",
        )
    return ips


def outbox(stack: Stack, event_type: str) -> list[Any]:
    url = stack.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT envelope FROM reputation.event_outbox WHERE event_type = :t ORDER BY seq"),
                {"t": event_type},
            ).all()
    finally:
        engine.dispose()
    return [events.unpack(event_pb2.EventEnvelope.FromString(r.envelope)) for r in rows]


def listing_events(stack: Stack, address: str) -> list[tuple[bool, str]]:
    found = outbox(stack, "emailengine.reputation.v1.IpListingChanged")
    return [(e.listed, e.zone_key) for e in found if e.address == address]


# -- every kind of verdict over REST -------------------------------------------------------------------


def test_check_reports_every_verdict_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    sos = tokens["sos"]
    listed = rest(stack, "POST", f"/api/v2/reputation/ips/{LISTED_IP}:check", sos, json={})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert zone_statuses(body) == {k: "LISTED" if k in ("spamhaus-zen", "spamcop") else "NOT_LISTED" for k in NINE}
    zen = body["latest"]["zones"][0]
    assert zen["zone"] == "zen.spamhaus.org" and zen["answers"] == ["127.0.0.4"] and "XBL" in zen["meaning"]
    assert zen["reason"].startswith("Listed in XBL") and zen["listing_severity"] == "LISTING_SEVERITY_CRITICAL"
    assert body["listed"] is True and body["latest"]["complete"] is True and body["tenant_id"] == "sos-expat"

    clean = rest(stack, "POST", f"/api/v2/reputation/ips/{CLEAN_IP}:check", sos, json={}).json()
    assert set(zone_statuses(clean).values()) == {"NOT_LISTED"} and clean["listed"] is False
    white = rest(stack, "POST", f"/api/v2/reputation/ips/{WHITELISTED_IP}:check", sos, json={}).json()
    assert zone_statuses(white)["junkemailfilter"] == "WHITELISTED"
    error = rest(stack, "POST", f"/api/v2/reputation/ips/{RESOLVER_ERROR_IP}:check", sos, json={}).json()
    assert (
        zone_statuses(error)["spamhaus-zen"] == "ERROR"
        and "public/open resolver" in error["latest"]["zones"][0]["detail"]
    )
    # IPv6 in the path: percent-encoded colons (the last ':' of the path starts the custom verb).
    v6 = rest(stack, "POST", "/api/v2/reputation/ips/2001%3Adb8%3A%3A10:check", sos, json={})
    assert v6.status_code == 200, v6.text
    assert zone_statuses(v6.json()) == {"spamhaus-zen": "LISTED"} and v6.json()["address"] == LISTED_V6

    read = rest(stack, "GET", f"/api/v2/reputation/ips/{LISTED_IP}", sos).json()
    assert read["latest"] == body["latest"] and {z["zone_key"] for z in read["current_listings"]} == {
        "spamhaus-zen",
        "spamcop",
    }
    assert sorted(listing_events(stack, LISTED_IP)) == [(True, "spamcop"), (True, "spamhaus-zen")]


def test_zone_catalogue_with_health_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    zones = rest(stack, "GET", "/api/v2/reputation/zones", tokens["ulixai"]).json()["zones"]
    assert [z["key"] for z in zones] == [*NINE, "spamhaus-dbl", "surbl", "uribl"]
    assert all(z["health"] == "ZONE_HEALTH_STATUS_HEALTHY" and z["healthy"] for z in zones[:9])
    zen = zones[0]
    assert zen["zone"] == "zen.spamhaus.org" and zen["name"] == "Spamhaus ZEN" and zen["delist_url"]
    assert any(c["address"] == "127.255.255.254" and c["kind"] == "error" for c in zen["codes"])


# -- a live listing, once each way ----------------------------------------------------------------------


def test_a_live_listing_is_one_listed_event_and_its_removal_one_delisted_event(
    stack: Stack, tokens: dict[str, str], watched: list[str], rbl: Rbldnsd
) -> None:
    sos = tokens["sos"]
    check = f"/api/v2/reputation/ips/{LIVE_IP}:check"
    assert rest(stack, "POST", check, sos, json={}).json()["listed"] is False
    assert listing_events(stack, LIVE_IP) == []

    rbl.add_entry("zen_live", f"{LIVE_IP} :127.0.0.2:Listed in SBL, see $")
    assert rest(stack, "POST", check, sos, json={}).json()["listed"] is True
    scanned = rest(stack, "POST", "/api/v2/reputation/tenants/sos-expat:scan", sos, json={})
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["scanned"] == len(watched)
    rest(stack, "POST", check, sos, json={})
    assert listing_events(stack, LIVE_IP) == [(True, "spamhaus-zen")]
    (event,) = [e for e in outbox(stack, "emailengine.reputation.v1.IpListingChanged") if e.address == LIVE_IP]
    assert event.zone == "zen.spamhaus.org" and event.tenant_id == "sos-expat" and "SBL" in event.reason

    rbl.remove_entry("zen_live", LIVE_IP)
    assert rest(stack, "POST", check, sos, json={}).json()["listed"] is False
    rest(stack, "POST", "/api/v2/reputation/tenants/sos-expat:scan", sos, json={})
    rest(stack, "POST", check, sos, json={})
    assert listing_events(stack, LIVE_IP) == [(True, "spamhaus-zen"), (False, "spamhaus-zen")]
    history = rest(stack, "GET", f"/api/v2/reputation/ips/{LIVE_IP}?history_size=10", sos).json()
    assert [h["listed"] for h in history["history"]][:5] == [False, False, True, True, True]


def test_the_periodic_scan_runs_in_an_rq_worker_once_per_slot(
    stack: Stack, tokens: dict[str, str], watched: list[str], redis_server: RedisServer
) -> None:
    queue = Queue("reputation", connection=redis.Redis.from_url(redis_server.url))
    queue.empty()  # jobs another test's scheduler left on the shared test Redis are not this stack's
    # As the scheduler enqueues it: the job function by name, run with the worker's application.
    first = queue.enqueue(run_job, "reputation", job_path(scan_watched_ips))
    second = queue.enqueue(run_job, "reputation", job_path(scan_watched_ips))
    worker = subprocess.run(
        [sys.executable, "-m", "libs.cli", "worker", "reputation", "--burst"],
        env=stack.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert first.return_value() == len(watched) + 1 and second.return_value() == 0  # + the ulixai IP
    latest = rest(stack, "GET", f"/api/v2/reputation/ips/{CLEAN_IP}", tokens["sos"]).json()["latest"]
    assert latest["trigger"] == "periodic"
    ulixai = rest(stack, "GET", f"/api/v2/reputation/ips/{ULIXAI_IP}", tokens["ulixai"]).json()
    assert ulixai["latest"]["trigger"] == "first"  # every tenant's IPs; this one's first scan


def test_a_tenants_scan_interval_and_the_zones_daily_budgets_over_rest(
    stack: Stack, tokens: dict[str, str], watched: list[str]
) -> None:
    path = "/api/v2/reputation/tenants/ulixai/scan-settings"
    got = rest(stack, "GET", path, tokens["ulixai"])
    assert got.status_code == 200, got.text
    assert got.json()["effective_scan_interval"] == f"{7 * 86400}s" and got.json()["default_scan_interval"] is True
    five = {"scan_interval": "300s"}
    denied = rest(stack, "PATCH", path, tokens["ulixai"], json=five)
    assert denied.status_code == 403 and "only an admin" in denied.json()["message"]
    updated = rest(stack, "PATCH", path, tokens["admin"], json=five)
    assert updated.status_code == 200, updated.text
    assert updated.json()["scan_interval"] == "300s" and {
        z["scan_interval"] for z in updated.json()["zone_intervals"]
    } == {"300s"}
    short = rest(stack, "PATCH", path, tokens["admin"], json={"scan_interval": "30s"})
    assert short.status_code == 400 and bad_fields(short) == ["settings.scan_interval"]
    back = rest(stack, "PATCH", f"{path}?update_mask=scan_interval", tokens["ulixai"], json={})
    assert back.status_code == 200 and back.json()["default_scan_interval"] is True
    assert rest(stack, "GET", "/api/v2/reputation/tenants/sos-expat/scan-settings", tokens["ulixai"]).status_code == 403
    zones = {z["key"]: z for z in rest(stack, "GET", "/api/v2/reputation/zones", tokens["ulixai"]).json()["zones"]}
    assert (
        zones["spamhaus-zen"]["daily_query_budget"] == "100000" and zones["mailspike"]["daily_query_budget"] == "100000"
    )
    assert zones["spamhaus-zen"].get("budget_limited", False) is False


# -- tenants: zone choice and isolation ------------------------------------------------------------------


def test_tenant_zone_choice_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    path = "/api/v2/reputation/tenants/ulixai/zones"
    wrong = rest(stack, "PUT", path, tokens["ulixai"], json={"ip_zones": ["spamcop", "bl.nowhere.example"]})
    assert wrong.status_code == 400 and bad_fields(wrong) == ["ip_zones[1]"]
    chosen = rest(stack, "PUT", path, tokens["ulixai"], json={"ip_zones": ["zen.spamhaus.org", "spamcop"]})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["ip_zones"] == ["spamhaus-zen", "spamcop"] and chosen.json()["default_ip_zones"] is False
    assert rest(stack, "GET", path, tokens["ulixai"]).json() == chosen.json()
    reply = rest(stack, "POST", f"/api/v2/reputation/ips/{ULIXAI_IP}:check", tokens["ulixai"], json={}).json()
    assert list(zone_statuses(reply)) == ["spamhaus-zen", "spamcop"]
    assert rest(stack, "PUT", path, tokens["sos"], json={"ip_zones": ["psbl"]}).status_code == 403


def test_tenant_isolation_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    ulixai = tokens["ulixai"]
    # Another tenant's IP is answered exactly like an unknown one (same status, same body but the address).
    for method, suffix, body in (("POST", ":check", {}), ("GET", "", None)):
        foreign = rest(stack, method, f"/api/v2/reputation/ips/{LISTED_IP}{suffix}", ulixai, json=body)
        unknown = rest(stack, method, f"/api/v2/reputation/ips/198.51.100.1{suffix}", ulixai, json=body)
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.text.replace(LISTED_IP, "?") == unknown.text.replace("198.51.100.1", "?")
    assert rest(stack, "POST", "/api/v2/reputation/tenants/sos-expat:scan", ulixai, json={}).status_code == 403
    assert rest(stack, "GET", f"/api/v2/reputation/ips/{LISTED_IP}").status_code == 401


# -- over REST: domain checks, bad input ------------------------------------------------------------------


def test_validate_domain_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    good = rest(
        stack,
        "POST",
        "/api/v2/domains/good.test:validate",
        tokens["sos"],
        json={
            "ips": [GOOD_IP],
            "dkim_selectors": ["s2048"],
            "helo_hostname": "mail.good.test",
            "tracking_domains": ["spammy.example"],
        },
    )
    assert good.status_code == 200, good.text
    checks = {(c["check"], c["subject"]): c for c in good.json()["checks"]}
    assert list(checks) == [
        ("spf", GOOD_IP),
        ("dkim", "s2048"),
        ("dmarc", "good.test"),
        ("alignment", "good.test"),
        ("ptr", GOOD_IP),
        ("mx", "good.test"),
        ("blocklist", "good.test"),
        ("blocklist", "spammy.example"),
    ]
    verdicts = {k: c["verdict"].removeprefix("CHECK_VERDICT_") for k, c in checks.items()}
    assert verdicts == {**{k: "PASS" for k in checks}, ("blocklist", "spammy.example"): "FAIL"}, good.json()
    assert checks[("spf", GOOD_IP)]["records"] == [f"v=spf1 ip4:{GOOD_IP} -all"]
    assert "dbl.spamhaus.org" in checks[("blocklist", "spammy.example")]["reason"]
    assert good.json()["verdict"] == "CHECK_VERDICT_FAIL"

    broken = rest(
        stack,
        "POST",
        "/api/v2/domains/broken.test:validate",
        tokens["sos"],
        json={"ips": [GOOD_IP], "dkim_selectors": ["revoked"]},
    ).json()
    verdicts = {c["check"]: c["verdict"] for c in broken["checks"]}
    assert verdicts["spf"] == verdicts["dkim"] == verdicts["dmarc"] == verdicts["mx"] == "CHECK_VERDICT_FAIL"
    assert all(c["reason"] for c in broken["checks"])


def test_validate_domain_reports_return_path_spf_alignment_and_a_generic_ptr_over_rest(
    stack: Stack, tokens: dict[str, str], watched: list[str]
) -> None:
    def validate(**body: Any) -> dict[str, Any]:
        reply = rest(stack, "POST", "/api/v2/domains/brand.test:validate", tokens["sos"], json=body)
        assert reply.status_code == 200, reply.text
        return {(c["check"], c["subject"]): c for c in reply.json()["checks"]}

    common = {"ips": [GOOD_IP, GENERIC_IP], "dkim_selectors": ["s2048"], "helo_hostname": "mail.good.test"}
    checks = validate(**common, return_path_domain="bounces.brand.test")
    assert [key for key in checks if key[0] in ("spf", "return_path_spf", "alignment", "ptr")] == [
        ("spf", GOOD_IP),
        ("spf", GENERIC_IP),
        ("return_path_spf", GOOD_IP),
        ("return_path_spf", GENERIC_IP),
        ("alignment", "brand.test"),
        ("ptr", GOOD_IP),
        ("ptr", GENERIC_IP),
    ]
    verdict = {key: c["verdict"].removeprefix("CHECK_VERDICT_") for key, c in checks.items()}
    return_path = checks[("return_path_spf", GOOD_IP)]
    assert verdict[("return_path_spf", GOOD_IP)] == "PASS" and return_path["details"]["domain"] == "bounces.brand.test"
    assert return_path["reason"].startswith(f"Return-Path bounces.brand.test: {GOOD_IP} is authorised by the SPF")
    alignment = checks[("alignment", "brand.test")]
    assert verdict[("alignment", "brand.test")] == "PASS", alignment
    assert alignment["reason"].startswith("DMARC passes for mail From brand.test through SPF and DKIM")
    generic = checks[("ptr", GENERIC_IP)]
    assert verdict[("ptr", GENERIC_IP)] == "WARN" and verdict[("ptr", GOOD_IP)] == "PASS"
    assert f"{GENERIC_PTR} looks generic (it carries the digits of {GENERIC_IP})" in generic["reason"]
    assert "GMX, Web.de and T-Online refuse generic reverse DNS" in generic["reason"]
    assert generic["details"]["confirmed"] == GENERIC_PTR  # FCrDNS itself passes

    foreign = validate(**common, return_path_domain="esp-bounce.test")
    alignment = foreign[("alignment", "brand.test")]
    assert alignment["verdict"] == "CHECK_VERDICT_WARN" and alignment["details"]["spf_aligned"] == "false"
    assert "only through DKIM" in alignment["reason"] and "esp-bounce.test is not aligned" in alignment["reason"]
    assert foreign[("return_path_spf", GOOD_IP)]["verdict"] == "CHECK_VERDICT_PASS"  # SPF passes, not for DMARC

    # The tenant's own Return-Path domain and check policy apply when the request names none.
    put = rest(
        stack,
        "PUT",
        "/api/v2/reputation/tenants/sos-expat/domains",
        tokens["sos"],
        json={
            "sending_domains": [
                {"domain": "brand.test", "dkim_selectors": ["s2048"], "return_path_domain": "esp-bounce.test"}
            ],
            "check_policy": {"single_alignment": "CHECK_VERDICT_PASS", "generic_ptr": "CHECK_VERDICT_FAIL"},
        },
    )
    assert put.status_code == 200, put.text
    assert put.json()["check_policy"]["generic_ptr"] == "CHECK_VERDICT_FAIL"
    configured = validate(**common)
    assert configured[("return_path_spf", GOOD_IP)]["details"]["domain"] == "esp-bounce.test"
    assert configured[("alignment", "brand.test")]["verdict"] == "CHECK_VERDICT_PASS"
    assert configured[("ptr", GENERIC_IP)]["verdict"] == "CHECK_VERDICT_FAIL"
    wrong = rest(
        stack, "POST", "/api/v2/domains/brand.test:validate", tokens["sos"], json={"return_path_domain": "not a domain"}
    )
    assert wrong.status_code == 400 and bad_fields(wrong) == ["return_path_domain"]
    rest(stack, "PUT", "/api/v2/reputation/tenants/sos-expat/domains", tokens["sos"], json={})  # as it was


# -- listings as the tenant's chat hears them: as loud as the listing, each change told ---------------------------


def test_a_low_listing_warns_an_sbl_listing_is_critical_and_a_relisting_inside_the_hour_alerts_again(
    stack: Stack, tokens: dict[str, str], watched: list[str], rbl: Rbldnsd
) -> None:
    sos = tokens["sos"]
    made = rest(stack, "POST", "/api/v2/ips", sos, json={"address": RELIST_IP, "tenant_id": "sos-expat"})
    assert made.status_code == 200, made.text
    path = f"/api/v2/reputation/ips/{RELIST_IP}"
    wait_until(lambda: rest(stack, "GET", path, sos).status_code == 200, 15, "reputation watching the IP")

    def listing_alerts() -> list[tuple[str, str]]:
        alerts = rest(stack, "GET", "/api/v2/alerts?page_size=100", sos).json().get("alerts", [])
        mine = [a for a in alerts if a.get("labels", {}).get("ip") == RELIST_IP and "zone" in a.get("labels", {})]
        return [(a["title"], a["severity"]) for a in reversed(mine)]  # listed newest first

    def check_and_wait(count: int) -> list[tuple[str, str]]:
        assert rest(stack, "POST", f"{path}:check", sos, json={}).status_code == 200
        wait_until(lambda: len(listing_alerts()) >= count, 15, f"{count} listing alerts")
        return listing_alerts()

    rbl.add_entry("mailspike_live", f"{RELIST_IP} :127.0.0.14:")  # Mailspike L1: LOW
    low = check_and_wait(1)
    assert low == [(f"IP {RELIST_IP} listed on bl.mailspike.net (low)", "ALERT_SEVERITY_WARNING")]
    rbl.add_entry("zen_live", f"{RELIST_IP} :127.0.0.2:Listed in SBL")
    sbl = check_and_wait(2)
    assert sbl[1] == (f"IP {RELIST_IP} listed on zen.spamhaus.org (critical)", "ALERT_SEVERITY_CRITICAL")
    rbl.remove_entry("zen_live", RELIST_IP)
    delisted = check_and_wait(3)
    assert delisted[2] == (
        f"IP {RELIST_IP} delisted from zen.spamhaus.org, still listed on bl.mailspike.net",
        "ALERT_SEVERITY_INFO",
    )
    rbl.add_entry("zen_live", f"{RELIST_IP} :127.0.0.2:Listed in SBL")  # minutes later: within the hour
    again = check_and_wait(4)
    assert again[3] == (f"IP {RELIST_IP} listed on zen.spamhaus.org (critical)", "ALERT_SEVERITY_CRITICAL")
    events = outbox(stack, "emailengine.reputation.v1.IpListingChanged")
    mine = [(e.listed, e.zone_key, e.severity) for e in events if e.address == RELIST_IP]
    assert [(listed, key) for listed, key, _ in mine] == [
        (True, "mailspike"),
        (True, "spamhaus-zen"),
        (False, "spamhaus-zen"),
        (True, "spamhaus-zen"),
    ]
    rbl.remove_entry("zen_live", RELIST_IP)
    rbl.remove_entry("mailspike_live", RELIST_IP)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v2/reputation/ips/192.0.2.300:check", {}, "address"),
        ("GET", "/api/v2/reputation/ips/not-an-ip", None, "address"),
        ("POST", "/api/v2/domains/bad_domain.test:validate", {}, "domain"),
        ("POST", "/api/v2/domains/good.test:validate", {"ips": ["192.0.2.1", "1.2.3"]}, "ips[1]"),
        ("POST", "/api/v2/domains/good.test:validate", {"dkim_selectors": ["s1; drop"]}, "dkim_selectors[0]"),
        ("PUT", "/api/v2/reputation/tenants/sos-expat/zones", {"ip_zones": ["nope.example"]}, "ip_zones[0]"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    stack: Stack, tokens: dict[str, str], method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    reply = rest(stack, method, path, tokens["sos"], json=body)
    assert reply.status_code == 400, reply.text
    assert bad_fields(reply) == [field], reply.json()


# -- a tenant's domains: set, checked now, each non-passing first verdict published and alerted ----------------


def test_tenant_domains_over_rest(stack: Stack, tokens: dict[str, str], watched: list[str]) -> None:
    path = "/api/v2/reputation/tenants/ulixai/domains"
    wrong = rest(
        stack, "PUT", path, tokens["ulixai"], json={"sending_domains": [{"domain": "good.test"}, {"domain": "bad_x"}]}
    )
    assert wrong.status_code == 400 and bad_fields(wrong) == ["sending_domains[1].domain"], wrong.text
    assert rest(stack, "PUT", path, tokens["sos"], json={"tracking_domains": ["a.test"]}).status_code == 403
    body = {
        "sending_domains": [{"domain": "good.test", "dkim_selectors": ["s2048"]}],
        "tracking_domains": ["spammy.example"],
    }
    put = rest(stack, "PUT", path, tokens["ulixai"], json=body)
    assert put.status_code == 200, put.text
    assert put.json()["sending_domains"] == [{**body["sending_domains"][0], "return_path_domain": ""}]
    assert put.json()["tracking_domains"] == ["spammy.example"]

    checked = rest(stack, "POST", f"{path}:check", tokens["ulixai"], json={})
    assert checked.status_code == 200, checked.text
    found = {
        (c["check"], c["subject"]): c["verdict"].removeprefix("CHECK_VERDICT_")
        for report in [*checked.json()["sending_domains"], *checked.json()["tracking_domains"]]
        for c in report["checks"]
    }
    # good.test's SPF allows 192.0.2.10, not ulixai's IP; spammy.example is on Spamhaus DBL.
    assert found == {
        ("spf", ULIXAI_IP): "FAIL",
        ("dkim", "s2048"): "PASS",
        ("dmarc", "good.test"): "PASS",
        ("alignment", "good.test"): "WARN",  # DMARC passes through DKIM alone: SPF fails for ulixai's IP
        ("mx", "good.test"): "PASS",
        ("blocklist", "good.test"): "PASS",
        ("blocklist", "spammy.example"): "FAIL",
    }, checked.json()
    assert checked.json()["changes"] == 3
    read = rest(stack, "GET", path, tokens["ulixai"]).json()
    assert read["verdict"] == "CHECK_VERDICT_FAIL" and len(read["checks"]) == 7
    changed = [
        (e.check, e.subject, list(e.listed_on))
        for e in outbox(stack, "emailengine.reputation.v1.DomainCheckChanged")
        if e.tenant_id == "ulixai"
    ]
    assert changed == [
        ("spf", ULIXAI_IP, []),
        ("alignment", "good.test", []),
        ("blocklist", "spammy.example", ["dbl.spamhaus.org"]),
    ]
    # The notifier turns them into the tenant's alerts.
    titles = {
        f"SPF of good.test for {ULIXAI_IP} fails": "ALERT_SEVERITY_CRITICAL",
        "Tracking domain spammy.example listed on dbl.spamhaus.org": "ALERT_SEVERITY_CRITICAL",
        "DMARC alignment of good.test needs attention": "ALERT_SEVERITY_WARNING",
    }

    def alerted() -> bool:
        alerts = rest(stack, "GET", "/api/v2/alerts", tokens["ulixai"]).json().get("alerts", [])
        return {a["title"]: a["severity"] for a in alerts if a["title"] in titles} == titles

    wait_until(alerted, 15, "domain check alerts")


# -- a DNS server that stops answering (last: it breaks the module's rbldnsd) ------------------------------------


def test_a_dead_dns_server_gives_unknown_results_without_hanging(
    stack: Stack, tokens: dict[str, str], watched: list[str], rbl: Rbldnsd
) -> None:
    before = listing_events(stack, LISTED_IP)
    port = rbl.port
    rbl.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes the queries, never answers
        silent.bind((LOOPBACK, port))
        started = time.monotonic()
        reply = rest(stack, "POST", f"/api/v2/reputation/ips/{LISTED_IP}:check", tokens["sos"], json={})
        elapsed = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert set(zone_statuses(body).values()) == {"UNKNOWN"}
        assert all("no answer" in z["detail"] for z in body["latest"]["zones"]), body["latest"]["zones"][0]
        assert body["latest"]["complete"] is False and body["listed"] is True  # the belief stands
        assert elapsed < 5, f"CheckIp took {elapsed:.1f}s with a 1 s DNS timeout"
        assert listing_events(stack, LISTED_IP) == before
        zones = rest(stack, "GET", "/api/v2/reputation/zones", tokens["sos"]).json()["zones"]
        assert {z["health"] for z in zones[:9]} == {"ZONE_HEALTH_STATUS_UNREACHABLE"}
        changed = outbox(stack, "emailengine.reputation.v1.ZoneHealthChanged")
        assert {e.zone_key for e in changed} >= set(NINE)
