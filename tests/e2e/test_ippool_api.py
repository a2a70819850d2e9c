"""The ip-pool through the real Envoy as a user calls it over REST, on PostgreSQL and Redis (its own stack):
registration and listing, allocation, bad input and tenant isolation, tenant policy,
schedules, health signals, the decision history, and a reputation listing event read from the Redis stream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from libs.events import STREAM
from tests.harness.servers import Stack, wait_until

pytestmark = pytest.mark.e2e


def rest(stack: Stack, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{stack.gateway}{path}", headers=headers, timeout=10, **kwargs)


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def bad_fields(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["code"] == 3
    details = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    return [v["field"] for d in details for v in d["field_violations"]]


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    return {
        "sos": stack.token("--tenant", "sos-expat"),
        "ulixai": stack.token("--tenant", "ulixai"),
        "admin": stack.token("--admin"),
    }


def test_register_get_and_list_over_rest(stack: Stack, tokens: dict[str, str]) -> None:
    sos = tokens["sos"]
    created = ok(
        rest(
            stack,
            "POST",
            "/api/v2/ips",
            sos,
            json={"address": "192.0.2.10", "purpose": "marketing", "tenant_id": "sos-expat"},
        )
    )
    assert created["state"] == "IP_STATE_WARMING"
    assert created["warmup"]["sending_day"] == 1 and created["quota"]["daily"] == 50
    assert isinstance(created["quota"]["daily"], int) and isinstance(created["quota"]["remaining_today"], int)
    assert ok(rest(stack, "GET", "/api/v2/ips/192.0.2.10", sos)) == created
    for n in (11, 12, 13, 14):
        ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": f"192.0.2.{n}", "tenant_id": "sos-expat"}))
    ok(rest(stack, "POST", "/api/v2/ips", tokens["ulixai"], json={"address": "198.51.100.10", "tenant_id": "ulixai"}))
    ok(rest(stack, "POST", "/api/v2/ips/192.0.2.12:pause", sos, json={"reason": "maintenance"}))

    paused = ok(rest(stack, "GET", "/api/v2/ips?tenant_id=sos-expat&state=IP_STATE_PAUSED", sos))["ips"]
    assert [ip["address"] for ip in paused] == ["192.0.2.12"]
    seen, token = [], ""
    while True:
        page = ok(rest(stack, "GET", f"/api/v2/ips?tenant_id=sos-expat&page_size=2&page_token={token}", sos))
        assert len(page["ips"]) <= 2
        seen += [ip["address"] for ip in page["ips"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"]
    assert [ip["address"] for ip in ok(rest(stack, "GET", "/api/v2/ips", tokens["ulixai"]))["ips"]] == ["198.51.100.10"]
    everyone = ok(rest(stack, "GET", "/api/v2/ips?page_size=100", tokens["admin"]))["ips"]
    assert {ip["tenant_id"] for ip in everyone} == {"sos-expat", "ulixai"}
    # IPv6 in the path, percent-encoded.
    six = ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": "2001:DB8::10", "tenant_id": "sos-expat"}))
    assert six["address"] == "2001:db8::10"
    assert ok(rest(stack, "GET", "/api/v2/ips/2001%3Adb8%3A%3A10", sos))["address"] == "2001:db8::10"


def test_bad_input_and_other_tenants_over_rest(stack: Stack, tokens: dict[str, str]) -> None:
    sos, ulixai, admin = tokens["sos"], tokens["ulixai"], tokens["admin"]
    ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": "192.0.2.20", "tenant_id": "sos-expat"}))
    history_before = ok(rest(stack, "GET", "/api/v2/ips/192.0.2.20/decisions", sos))["decisions"]
    listed_before = ok(rest(stack, "GET", "/api/v2/ips?page_size=1000", admin))["ips"]

    assert bad_fields(
        rest(stack, "POST", "/api/v2/ips", sos, json={"address": "192.0.2.999", "tenant_id": "sos-expat"})
    ) == ["address"]
    loopback = rest(stack, "POST", "/api/v2/ips", sos, json={"address": "127.0.0.1", "tenant_id": "sos-expat"})
    assert bad_fields(loopback) == ["address"] and "loopback" in loopback.json()["message"]
    assert bad_fields(
        rest(stack, "POST", "/api/v2/ips", admin, json={"address": "192.0.2.21", "tenant_id": "nobody-here"})
    ) == ["tenant_id"]
    unknown_schedule = {"address": "192.0.2.21", "tenant_id": "sos-expat", "schedule_id": "no-such-schedule"}
    assert bad_fields(rest(stack, "POST", "/api/v2/ips", sos, json=unknown_schedule)) == ["schedule_id"]
    assert bad_fields(rest(stack, "POST", "/api/v2/tenants/sos-expat:allocate", sos, json={"volume": -100})) == [
        "volume"
    ]
    stats = {"stats": [{"address": "192.0.2.20", "sent": 10}, {"address": "192.0.2.20", "bounced": -1}]}
    assert bad_fields(rest(stack, "POST", "/api/v2/delivery-stats:record", sos, json=stats)) == ["stats[1].bounced"]
    again = rest(stack, "POST", "/api/v2/ips", ulixai, json={"address": "192.0.2.20", "tenant_id": "ulixai"})
    assert again.status_code == 409 and again.json()["code"] == 6

    # Another tenant's IP is not found, exactly like a missing one; a call naming another tenant is refused.
    unseen = [
        ("GET", "/api/v2/ips/192.0.2.20", None),
        ("POST", "/api/v2/ips/192.0.2.20:pause", {}),
        ("POST", "/api/v2/ips/192.0.2.20:retire", {}),
        ("GET", "/api/v2/ips/192.0.2.20/decisions", None),
        ("POST", "/api/v2/ips/192.0.2.20:recordListing", {"zone": "zen.spamhaus.org", "listed": True}),
        ("POST", "/api/v2/delivery-stats:record", {"stats": [{"address": "192.0.2.20", "sent": 10}]}),
    ]
    for method, path, body in unseen:
        reply = rest(stack, method, path, ulixai, json=body) if body is not None else rest(stack, method, path, ulixai)
        assert reply.status_code == 404, (method, path, reply.text)
        assert reply.json()["message"] == "ip '192.0.2.20' not found"
    denied = [
        ("POST", "/api/v2/ips", {"address": "192.0.2.22", "tenant_id": "sos-expat"}),
        ("POST", "/api/v2/tenants/sos-expat:allocate", {"volume": 10}),
        ("PATCH", "/api/v2/tenants/sos-expat", {"time_zone": "Europe/Paris"}),
        ("GET", "/api/v2/tenants/sos-expat/schedules", None),
    ]
    for method, path, body in denied:
        reply = rest(stack, method, path, ulixai, json=body) if body is not None else rest(stack, method, path, ulixai)
        assert reply.status_code == 403, (method, path, reply.text)
        assert reply.json()["code"] == 7
    # Nothing was half-written.
    assert ok(rest(stack, "GET", "/api/v2/ips/192.0.2.20", sos))["quota"]["used_today"] == 0
    assert ok(rest(stack, "GET", "/api/v2/ips/192.0.2.20/decisions", sos))["decisions"] == history_before
    assert ok(rest(stack, "GET", "/api/v2/ips?page_size=1000", admin))["ips"] == listed_before
    assert rest(stack, "GET", "/api/v2/ips/192.0.2.21", admin).status_code == 404
    assert ok(rest(stack, "GET", "/api/v2/tenants/sos-expat", sos))["time_zone"] == "UTC"


def test_an_admin_transfers_or_releases_a_squatted_address_over_rest(stack: Stack, tokens: dict[str, str]) -> None:
    sos, ulixai, admin = tokens["sos"], tokens["ulixai"], tokens["admin"]
    for address in ("192.0.2.70", "192.0.2.71"):
        ok(rest(stack, "POST", "/api/v2/ips", ulixai, json={"address": address, "tenant_id": "ulixai"}))
    transfer = {"tenant_id": "sos-expat", "reason": "needed by sos-expat"}
    assert rest(stack, "POST", "/api/v2/ips/192.0.2.70:transfer", ulixai, json=transfer).status_code == 403
    moved = ok(rest(stack, "POST", "/api/v2/ips/192.0.2.70:transfer", admin, json=transfer))
    assert (moved["tenant_id"], moved["state"]) == ("sos-expat", "IP_STATE_WARMING")
    assert rest(stack, "GET", "/api/v2/ips/192.0.2.70", ulixai).status_code == 404
    released = ok(rest(stack, "POST", "/api/v2/ips/192.0.2.71:release", admin, json={}))
    assert released["state"] == "IP_STATE_RETIRED" and "release_time" in released
    taken = ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": "192.0.2.71", "tenant_id": "sos-expat"}))
    assert (taken["tenant_id"], taken["state"]) == ("sos-expat", "IP_STATE_WARMING")
    actions = [d["action"] for d in ok(rest(stack, "GET", "/api/v2/ips/192.0.2.71/decisions", admin))["decisions"]]
    assert actions == ["REGISTER", "RELEASE_ADDRESS", "REGISTER"]


def test_allocation_over_rest(stack: Stack, tokens: dict[str, str]) -> None:
    sos, ulixai = tokens["sos"], tokens["ulixai"]
    for n in (30, 31, 32, 33, 34):
        ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": f"192.0.2.{n}", "tenant_id": "sos-expat"}))
    ok(rest(stack, "POST", "/api/v2/ips", ulixai, json={"address": "198.51.100.30", "tenant_id": "ulixai"}))
    ok(rest(stack, "POST", "/api/v2/ips/192.0.2.33:pause", sos, json={}))
    ok(
        rest(
            stack, "POST", "/api/v2/ips/192.0.2.34:recordListing", sos, json={"zone": "bl.spamcop.net", "listed": True}
        )
    )
    ok(
        rest(
            stack,
            "POST",
            "/api/v2/delivery-stats:record",
            sos,
            json={
                "stats": [{"address": "192.0.2.30", "provider": "PROVIDER_GROUP_GMAIL", "sent": 15, "delivered": 15}]
            },
        )
    )
    ips = ok(rest(stack, "GET", "/api/v2/ips?tenant_id=sos-expat&page_size=1000", sos))["ips"]
    room = {ip["address"]: ip["quota"] for ip in ips}
    assert room["192.0.2.30"]["remaining_today"] == 35

    body = {
        "volume": 100000,
        "volume_by_provider": [
            {"provider": "PROVIDER_GROUP_GMAIL", "volume": 45000},
            {"provider": "PROVIDER_GROUP_MICROSOFT", "volume": 25000},
            {"provider": "PROVIDER_GROUP_YAHOO", "volume": 10000},
        ],
    }
    result = ok(rest(stack, "POST", "/api/v2/tenants/sos-expat:allocate", sos, json=body))
    assert result["requested"] == 100000 and result["allocation_id"]
    given = {a["address"]: a for a in result["allocations"]}
    assert "192.0.2.30" in given and "192.0.2.33" not in given and "192.0.2.34" not in given
    assert "198.51.100.30" not in str(result)
    assert {e["address"] for e in result["excluded"]} >= {"192.0.2.33", "192.0.2.34"}
    for address, allocation in given.items():
        quota = room[address]
        assert allocation["volume"] <= quota["remaining_today"]
        caps = {p["provider"]: p["remaining_today"] for p in quota["by_provider"]}
        for part in allocation["by_provider"]:
            assert part["volume"] <= caps[part["provider"]], (address, part)
    assert result["allocated_today"] + result["remainder"] == 100000
    assert sum(d["volume"] for d in result["plan"]) + result["unplanned"] == result["remainder"]
    assert result["plan"] and result["plan"][0]["day_offset"] == 1
    # The allocation is reserved: the IP's quota shows it used.
    after = ok(rest(stack, "GET", "/api/v2/ips/192.0.2.31", sos))["quota"]
    assert after["used_today"] == given["192.0.2.31"]["volume"] and after["remaining_today"] == 0


def test_policy_schedules_signals_and_history_over_rest(stack: Stack, tokens: dict[str, str]) -> None:
    sos = tokens["sos"]
    patched = ok(
        rest(
            stack,
            "PATCH",
            "/api/v2/tenants/sos-expat?update_mask=health.max_bounce_rate_to_advance,rotation.enabled",
            sos,
            json={"health": {"max_bounce_rate_to_advance": 0.03, "min_sample": 7}, "rotation": {"enabled": True}},
        )
    )
    assert patched["health"]["max_bounce_rate_to_advance"] == 0.03 and patched["health"]["min_sample"] == 100
    assert patched["rotation"]["enabled"] is True
    cooled = ok(rest(stack, "PATCH", "/api/v2/tenants/sos-expat", sos, json={"health": {"standby_cooldown": "3600s"}}))
    assert cooled["health"]["standby_cooldown"] == "3600s"
    assert bad_fields(
        rest(stack, "PATCH", "/api/v2/tenants/sos-expat", sos, json={"provider_shares": {"gmail": 2}})
    ) == ["tenant.provider_shares.gmail"]

    schedule = {"schedule_id": "gentle", "steps": [{"daily_volume": 100, "sending_days": 3}, {"daily_volume": 800}]}
    created = ok(rest(stack, "POST", "/api/v2/tenants/sos-expat/schedules", sos, json=schedule))
    assert created["steps"] == [{"daily_volume": 100, "sending_days": 3}, {"daily_volume": 800, "sending_days": 0}]
    assert ok(rest(stack, "GET", "/api/v2/tenants/sos-expat/schedules/gentle", sos))["schedule_id"] == "gentle"
    listed = ok(rest(stack, "GET", "/api/v2/tenants/sos-expat/schedules", sos))["schedules"]
    assert [s["schedule_id"] for s in listed] == ["default", "gentle"]
    bad_steps = {"schedule_id": "broken", "steps": [{"daily_volume": 500, "sending_days": 2}, {"daily_volume": 100}]}
    assert bad_fields(rest(stack, "POST", "/api/v2/tenants/sos-expat/schedules", sos, json=bad_steps)) == [
        "schedule.steps[1].daily_volume"
    ]

    ip = ok(
        rest(
            stack,
            "POST",
            "/api/v2/ips",
            sos,
            json={"address": "192.0.2.40", "tenant_id": "sos-expat", "schedule_id": "gentle"},
        )
    )
    assert ip["quota"]["daily"] == 100 and ip["warmup"]["schedule_id"] == "gentle"
    recorded = ok(
        rest(
            stack,
            "POST",
            "/api/v2/delivery-stats:record",
            sos,
            json={
                "stats": [
                    {
                        "address": "192.0.2.40",
                        "provider": "PROVIDER_GROUP_GMAIL",
                        "sent": 10,
                        "delivered": 9,
                        "bounced": 1,
                    }
                ]
            },
        )
    )
    assert recorded == {"recorded": 1}
    assert ok(rest(stack, "GET", "/api/v2/ips/192.0.2.40", sos))["quota"]["used_today"] == 10
    standby = ok(
        rest(
            stack,
            "POST",
            "/api/v2/ips/192.0.2.40:recordListing",
            sos,
            json={"zone": "zen.spamhaus.org", "listed": True, "reason": "127.0.0.2"},
        )
    )
    assert standby["state"] == "IP_STATE_STANDBY" and standby["quota"]["daily"] == 0
    assert standby["active_listings"] == ["zen.spamhaus.org"]
    history = ok(rest(stack, "GET", "/api/v2/ips/192.0.2.40/decisions", sos))["decisions"]
    assert [(d["kind"], d["action"], d["rule"]) for d in history] == [
        ("DECISION_KIND_LIFECYCLE", "STANDBY", "LISTING"),
        ("DECISION_KIND_LIFECYCLE", "REGISTER", "ADMIN"),
    ]
    assert history[0]["state_before"] == "IP_STATE_WARMING" and history[0]["state_after"] == "IP_STATE_STANDBY"
    assert "zen.spamhaus.org" in history[0]["reason"]


def test_a_listing_event_on_the_stream_puts_the_ip_in_standby_once(stack: Stack, tokens: dict[str, str]) -> None:
    sos = tokens["sos"]
    ok(rest(stack, "POST", "/api/v2/ips", sos, json={"address": "192.0.2.50", "tenant_id": "sos-expat"}))
    envelope = event_pb2.EventEnvelope(event_id="test-listing-1", source="reputation", tenant_id="sos-expat")
    envelope.payload.Pack(
        reputation_events.IpListingChanged(
            address="192.0.2.50", tenant_id="sos-expat", listed=True, zone="b.barracudacentral.org", reason="test"
        )
    )
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    fields = {
        "type": "emailengine.reputation.v1.IpListingChanged",
        "event_id": envelope.event_id,
        "envelope": envelope.SerializeToString(),
    }
    client.xadd(STREAM, fields)
    client.xadd(STREAM, fields)  # delivered twice: applied once

    def standby() -> bool:
        return ok(rest(stack, "GET", "/api/v2/ips/192.0.2.50", sos))["state"] == "IP_STATE_STANDBY"

    wait_until(standby, 15, "listing event consumed")
    wait_until(lambda: client.xpending(STREAM, "ip-pool")["pending"] == 0, 10, "both deliveries acknowledged")
    history = ok(rest(stack, "GET", "/api/v2/ips/192.0.2.50/decisions", sos))["decisions"]
    assert [d["action"] for d in history] == ["STANDBY", "REGISTER"]
    assert history[0]["actor"] == "event:reputation"
