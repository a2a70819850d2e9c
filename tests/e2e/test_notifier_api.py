"""The notifier as deployed: its own process on PostgreSQL and Redis, behind the real Envoy, sending to the
strict Telegram Bot API stand-in over loopback; events arrive on the Redis stream as other services write them.

End to end: one listing event → one message in the tenant's chat and one in the admin chat, ten identical →
still one each; 429 retry_after 2 → delivered after >= 2 s, 502 then recovery, the process SIGKILLed with
undelivered alerts → delivered after restart; an Alertmanager payload with two alerts → routed messages,
malformed → 400 naming the problem; `<`, `&` and 5 000 characters accepted; a tenant's token sees only its
alerts and can neither reach inside the platform nor aim the bot at a chat not allowed for it.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
import redis

from emailengine.notifier.v1 import notifier_service_pb2 as pb
from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from libs.events import STREAM
from tests.harness.servers import PostgresServer, RedisServer, Stack, production_stack, wait_until
from tests.integration.notifier.helpers import am_alert, am_payload, listing_event
from tests.standins.telegram_bot_api import TelegramBotApiStandIn

pytestmark = pytest.mark.e2e

SOS_CHAT = -1002000000001
ULIXAI_CHAT = -1002000000002
ADMIN_CHAT = -1002000000099
SECRET = "e2e-webhook-secret-do-not-leak-0123456789"


@pytest.fixture(scope="module")
def bot_api() -> Iterator[TelegramBotApiStandIn]:
    api = TelegramBotApiStandIn()
    api.add_chat(SOS_CHAT, title="sos-expat alerts")
    api.add_chat(ULIXAI_CHAT, title="ulixai alerts")
    api.add_chat(ADMIN_CHAT, title="admins")
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    redis_server: RedisServer,
    bot_api: TelegramBotApiStandIn,
) -> Iterator[Stack]:
    extra = {
        "EE_TELEGRAM_BOT_TOKEN": bot_api.token,
        "EE_TELEGRAM_API_BASE": bot_api.base_url,
        "EE_NOTIFIER_DELIVERY_POLL_SECONDS": "0.2",
        "EE_NOTIFIER_RETRY_MAX_DELAY_SECONDS": "1",  # the code's default is 60; same backoff, shorter cap
        "EE_NOTIFIER_LEASE_SECONDS": "3",
        "EE_NOTIFIER_MIN_SPACING_SECONDS": "0",
        "EE_NOTIFIER_STORM_THRESHOLD": "1000",
    }
    with production_stack(tmp_path_factory.mktemp("notifier-stack"), postgres, redis_server, extra) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    return {
        "admin": stack.token("--admin"),
        "sos": stack.token("--tenant", "sos-expat"),
        "sos-viewer": stack.token("--tenant", "sos-expat", "--role", "viewer"),
        "ulixai": stack.token("--tenant", "ulixai"),
    }


def rest(stack: Stack, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{stack.gateway}{path}", headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def routes(stack: Stack, tokens: dict[str, str]) -> None:
    # The shared bot sends to a tenant's chats only once an admin allowed them for that tenant.
    for tenant, chat in (("sos-expat", SOS_CHAT), ("ulixai", ULIXAI_CHAT)):
        allowed = rest(
            stack,
            "PATCH",
            f"/api/v2/alert-settings/{tenant}",
            tokens["admin"],
            json={"allowed_telegram_chat_ids": [str(chat)]},
        )
        assert allowed.status_code == 200, allowed.text
    for token, body in (
        (tokens["sos"], {"route_id": "sos", "channel": "ROUTE_CHANNEL_TELEGRAM", "telegram_chat_id": str(SOS_CHAT)}),
        (tokens["ulixai"], {"route_id": "ulixai", "telegram_chat_id": str(ULIXAI_CHAT)}),
        (
            tokens["admin"],
            {
                "route_id": "admins",
                "admin": True,
                "telegram_chat_id": str(ADMIN_CHAT),
                "min_severity": "ALERT_SEVERITY_WARNING",
            },
        ),
    ):
        created = rest(stack, "POST", "/api/v2/alert-routes", token, json=body)
        assert created.status_code == 200, created.text


def with_marker(api: TelegramBotApiStandIn, chat: int, marker: str) -> list[Any]:
    return [m for m in api.messages(chat) if marker in m.text]


def send_alert(stack: Stack, token: str, **body: Any) -> dict[str, Any]:
    reply = rest(stack, "POST", "/api/v2/alerts", token, json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def alert_state(stack: Stack, token: str, alert_id: str) -> dict[str, Any]:
    reply = rest(stack, "GET", f"/api/v2/alerts/{alert_id}", token)
    assert reply.status_code == 200, reply.text
    return reply.json()


def wait_delivered(stack: Stack, token: str, alert_id: str) -> dict[str, Any]:
    """The chat may hold the message a moment before the outcome is committed: wait for the record."""
    found: dict[str, Any] = {}

    def delivered() -> bool:
        found.update(alert_state(stack, token, alert_id))
        return found["delivery_state"] == "DELIVERY_STATE_DELIVERED"

    wait_until(delivered, 5, f"alert {alert_id} recorded as delivered")
    return found


# -- routes --------------------------------------------------------------------------------------------


def test_routes_over_rest_never_return_or_log_their_secret(stack: Stack, tokens: dict[str, str]) -> None:
    created = rest(
        stack,
        "POST",
        "/api/v2/alert-routes",
        tokens["sos"],
        json={
            "route_id": "sos-hook",
            "channel": "ROUTE_CHANNEL_WEBHOOK",
            "webhook_url": "https://hooks.example/in/path-token-123",
            "webhook_secret": SECRET,
            "min_severity": "ALERT_SEVERITY_CRITICAL",
        },
    )
    assert created.status_code == 200, created.text
    route = created.json()
    assert route["tenant_id"] == "sos-expat" and route["has_webhook_secret"] is True
    assert route["webhook_origin"] == "https://hooks.example"
    listed = rest(stack, "GET", "/api/v2/alert-routes", tokens["sos"]).json()["routes"]
    assert sorted(r["route_id"] for r in listed) == ["sos", "sos-hook"]
    everything = rest(stack, "GET", "/api/v2/alert-routes", tokens["admin"]).text
    for text in (created.text, everything, (stack.data_dir / "notifier.log").read_text()):
        assert SECRET not in text and "path-token-123" not in text
    assert rest(stack, "GET", "/api/v2/alert-routes/admins", tokens["sos"]).status_code == 404
    bad = rest(stack, "POST", "/api/v2/alert-routes", tokens["sos"], json={"route_id": "x", "admin": True})
    assert bad.status_code == 403
    invalid = rest(stack, "POST", "/api/v2/alert-routes", tokens["sos"], json={"telegram_chat_id": "nope"})
    assert invalid.status_code == 400 and "telegram_chat_id" in invalid.json()["message"]
    assert rest(stack, "DELETE", "/api/v2/alert-routes/sos-hook", tokens["sos"]).status_code == 200


# -- one message per chat ------------------------------------------------------------------------------


def test_a_listing_event_gives_one_message_per_chat_and_ten_identical_still_one(
    stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn, redis_server: RedisServer
) -> None:
    address = "198.51.100.17"
    client = redis.Redis.from_url(redis_server.url)
    for _ in range(10):  # as reputation's outbox relay writes them: ten events, each its own id
        client.xadd(
            STREAM,
            {
                "type": "emailengine.reputation.v1.IpListingChanged",
                "event_id": str(uuid.uuid4()),
                "envelope": listing_event(address),
            },
        )

    def all_seen() -> bool:
        alerts = rest(stack, "GET", "/api/v2/alerts?tenant_id=sos-expat&page_size=100", tokens["admin"]).json()
        return sum(1 for a in alerts["alerts"] if address in a["title"]) == 10

    wait_until(all_seen, 15, "ten events handled")
    wait_until(lambda: len(with_marker(bot_api, ADMIN_CHAT, address)) >= 1, 10, "admin message")
    wait_until(lambda: len(with_marker(bot_api, SOS_CHAT, address)) >= 1, 10, "tenant message")
    time.sleep(1)  # room for a duplicate to show up, if there were one
    assert len(with_marker(bot_api, SOS_CHAT, address)) == 1
    assert len(with_marker(bot_api, ADMIN_CHAT, address)) == 1
    assert with_marker(bot_api, ULIXAI_CHAT, address) == []
    mine = [
        a
        for a in rest(stack, "GET", "/api/v2/alerts?page_size=100", tokens["sos"]).json()["alerts"]
        if address in a["title"]
    ]
    states = sorted(a["delivery_state"] for a in mine)
    assert states == ["DELIVERY_STATE_DELIVERED"] + ["DELIVERY_STATE_SUPPRESSED"] * 9
    [sent] = [a for a in mine if a["delivery_state"] == "DELIVERY_STATE_DELIVERED"]
    assert sent["severity"] == "ALERT_SEVERITY_CRITICAL" and sent["suppressed_count"] == 9
    assert {d["route_id"]: d["state"] for d in sent["deliveries"]} == {
        "sos": "DELIVERY_STATE_DELIVERED",
        "admins": "DELIVERY_STATE_DELIVERED",
    }
    assert {d["route_id"]: d["destination"] for d in sent["deliveries"]}["admins"] == ""  # not the tenant's to see


# -- retries and restarts ------------------------------------------------------------------------------


def test_429_retry_after_2_is_honoured(stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn) -> None:
    marker = f"rate-{uuid.uuid4().hex[:8]}"
    bot_api.fail_next(1, status=429, retry_after=2)
    early_before = bot_api.early_retries
    started = time.monotonic()
    alert = send_alert(stack, tokens["ulixai"], severity="ALERT_SEVERITY_INFO", text=f"quota synced {marker}")
    wait_until(lambda: with_marker(bot_api, ULIXAI_CHAT, marker), 10, "delivered after the 429")
    elapsed = time.monotonic() - started
    assert elapsed >= 2
    assert bot_api.early_retries == early_before  # nothing came back before retry_after
    assert wait_delivered(stack, tokens["ulixai"], alert["alert_id"])["attempts"] == 2


def test_killed_with_undelivered_alerts_delivers_after_restart(
    stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn
) -> None:
    """Telegram answers 502 (an nginx page) while the notifier process is SIGKILLed; after the restart and
    Telegram's recovery the alert reaches both chats, from the outbox in PostgreSQL."""
    marker = f"kill-{uuid.uuid4().hex[:8]}"
    bot_api.fail_for(600, status=502)
    tried = len(bot_api.requests)
    alert = send_alert(stack, tokens["sos"], severity="ALERT_SEVERITY_CRITICAL", text=f"IP listed {marker}")
    wait_until(lambda: len(bot_api.requests) >= tried + 2, 10, "attempts answered 502")
    wait_until(lambda: "HTTP 502" in alert_state(stack, tokens["sos"], alert["alert_id"])["last_error"], 5, "502 seen")
    assert alert_state(stack, tokens["sos"], alert["alert_id"])["delivery_state"] == "DELIVERY_STATE_PENDING"

    proc = stack.procs["notifier"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bot_api.clear_faults()  # Telegram recovers while the notifier is down
    assert with_marker(bot_api, SOS_CHAT, marker) == []
    stack.start_service("notifier")
    wait_until(lambda: with_marker(bot_api, SOS_CHAT, marker), 20, "tenant chat after restart")
    wait_until(lambda: with_marker(bot_api, ADMIN_CHAT, marker), 20, "admin chat after restart")
    wait_until(lambda: rest(stack, "GET", "/api/v2/alerts", tokens["sos"]).status_code == 200, 15, "API back")
    wait_delivered(stack, tokens["sos"], alert["alert_id"])
    assert len(with_marker(bot_api, SOS_CHAT, marker)) == 1 and len(with_marker(bot_api, ADMIN_CHAT, marker)) == 1


def test_502_then_recovery(stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn) -> None:
    marker = f"gw-{uuid.uuid4().hex[:8]}"
    bot_api.fail_for(3, status=502)
    started = time.monotonic()
    alert = send_alert(stack, tokens["ulixai"], severity="ALERT_SEVERITY_INFO", text=f"bounce rate {marker}")
    wait_until(lambda: with_marker(bot_api, ULIXAI_CHAT, marker), 15, "delivered after recovery")
    assert time.monotonic() - started >= 3
    assert wait_delivered(stack, tokens["ulixai"], alert["alert_id"])["attempts"] >= 3


# -- Alertmanager --------------------------------------------------------------------------------------


def test_alertmanager_payload_with_two_alerts_is_routed(
    stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn
) -> None:
    marker = uuid.uuid4().hex[:12]
    body = am_payload(
        am_alert(f"QuotaSync{marker}", fingerprint="1a30ba71cca2921f", severity="critical", tenant="ulixai"),
        am_alert(f"NotifierBacklog{marker}", fingerprint="2b41cb82ddb3a320", severity="warning"),
        notification_reason="new_alert",  # Alertmanager 0.32+ adds fields: ignored, not refused
    )
    reply = rest(
        stack,
        "POST",
        "/api/v2/alertmanager",
        tokens["admin"],
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 200, reply.text
    receipt = reply.json()
    assert (receipt["received"], receipt["accepted"], receipt["suppressed"]) == (2, 2, 0)
    wait_until(lambda: len(with_marker(bot_api, ADMIN_CHAT, marker)) == 2, 10, "both in the admin chat")
    wait_until(lambda: with_marker(bot_api, ULIXAI_CHAT, marker), 10, "the tenant's in its chat")
    assert [m.text.split("\n")[0] for m in with_marker(bot_api, ULIXAI_CHAT, marker)] == [
        f"🔴 CRITICAL · QuotaSync{marker}"
    ]
    assert with_marker(bot_api, SOS_CHAT, marker) == []
    platform = alert_state(stack, tokens["admin"], receipt["alert_ids"][1])
    assert platform["tenant_id"] == "" and platform["source"] == "alertmanager"
    assert rest(stack, "GET", f"/api/v2/alerts/{receipt['alert_ids'][1]}", tokens["ulixai"]).status_code == 404


def test_malformed_alertmanager_payload_is_400_naming_the_problem(stack: Stack, tokens: dict[str, str]) -> None:
    bad = am_payload(am_alert("A", fingerprint="aa"), {**am_alert("B", fingerprint="bb"), "startsAt": "yesterday"})
    reply = rest(
        stack,
        "POST",
        "/api/v2/alertmanager",
        tokens["admin"],
        content=bad,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    error = reply.json()
    assert error["code"] == 3 and "alerts[1].startsAt" in error["message"]
    [violations] = [d for d in error["details"] if d["@type"].endswith("BadRequest")]
    assert violations["field_violations"][0]["field"] == "alerts[1].startsAt"
    not_json = rest(
        stack,
        "POST",
        "/api/v2/alertmanager",
        tokens["admin"],
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    viewer = rest(stack, "POST", "/api/v2/alertmanager", tokens["sos-viewer"], content=bad)
    assert viewer.status_code == 403
    anonymous = rest(stack, "POST", "/api/v2/alertmanager", None, content=bad)
    assert anonymous.status_code == 401


# -- long texts with markup ----------------------------------------------------------------------------


def test_5000_characters_with_lt_and_amp_reach_the_chat(
    stack: Stack, tokens: dict[str, str], bot_api: TelegramBotApiStandIn
) -> None:
    marker = f"long-{uuid.uuid4().hex[:8]}"
    text = (f"{marker} <td> a < b && c > d; &amp; literal\n" * 200)[:5000]
    rejected_before = sum(1 for r in bot_api.requests if r.status == 400)
    alert = send_alert(stack, tokens["sos"], severity="ALERT_SEVERITY_INFO", title="Bounces <50% & rising", text=text)
    wait_until(lambda: len(with_marker(bot_api, SOS_CHAT, marker)) == 2, 10, "two parts")
    parts = with_marker(bot_api, SOS_CHAT, marker)
    assert "Bounces <50% & rising" in parts[0].text and "a < b && c > d; &amp; literal" in parts[0].text
    assert parts[0].text.endswith("(1/2)") and parts[1].text.endswith("(2/2)")
    assert sum(1 for r in bot_api.requests if r.status == 400) == rejected_before
    wait_delivered(stack, tokens["sos"], alert["alert_id"])


# -- who sees what -------------------------------------------------------------------------------------


def test_a_tenant_token_sees_only_its_own_alerts(stack: Stack, tokens: dict[str, str]) -> None:
    sos = send_alert(stack, tokens["sos"], severity="ALERT_SEVERITY_WARNING", text="sos only")
    ulixai = send_alert(stack, tokens["ulixai"], severity="ALERT_SEVERITY_WARNING", text="ulixai only")
    platform = send_alert(stack, tokens["admin"], severity="ALERT_SEVERITY_WARNING", text="gateway slow")
    assert platform["tenant_id"] == ""

    seen = rest(stack, "GET", "/api/v2/alerts?page_size=1000", tokens["sos"]).json()["alerts"]
    assert seen and {a["tenant_id"] for a in seen} == {"sos-expat"}
    ids = {a["alert_id"] for a in seen}
    assert sos["alert_id"] in ids and ulixai["alert_id"] not in ids and platform["alert_id"] not in ids
    assert rest(stack, "GET", "/api/v2/alerts?tenant_id=ulixai", tokens["sos"]).status_code == 403
    assert rest(stack, "GET", f"/api/v2/alerts/{ulixai['alert_id']}", tokens["sos"]).status_code == 404
    assert rest(stack, "GET", f"/api/v2/alerts/{platform['alert_id']}", tokens["sos"]).status_code == 404
    everything = rest(stack, "GET", "/api/v2/alerts?page_size=1000", tokens["admin"]).json()["alerts"]
    assert {sos["alert_id"], ulixai["alert_id"], platform["alert_id"]} <= {a["alert_id"] for a in everything}

    over_grpc = pb_grpc.NotifierServiceStub(grpc.insecure_channel(stack.grpc_target)).ListAlerts(
        pb.ListAlertsRequest(page_size=1000), metadata=(("authorization", f"Bearer {tokens['ulixai']}"),), timeout=5
    )
    assert {a.tenant_id for a in over_grpc.alerts} == {"ulixai"}


# -- what a tenant's token cannot do -------------------------------------------------------------------


def test_webhook_routes_into_the_platform_or_the_internal_network_are_a_400_naming_the_field(
    stack: Stack, tokens: dict[str, str]
) -> None:
    admin_port = stack.env.get("EE_ENVOY_ADMIN_PORT", "9901")
    for url in (
        f"http://127.0.0.1:{admin_port}/quitquitquit",
        "http://127.0.0.1:9901/quitquitquit",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://0x7f000001/hook",
        f"http://localhost:{admin_port}/quitquitquit",
        "http://h:99999/x",
    ):
        reply = rest(
            stack,
            "POST",
            "/api/v2/alert-routes",
            tokens["sos"],
            json={"channel": "ROUTE_CHANNEL_WEBHOOK", "webhook_url": url, "webhook_secret": SECRET},
        )
        assert reply.status_code == 400, (url, reply.text)
        [violations] = [d for d in reply.json()["details"] if d["@type"].endswith("BadRequest")]
        assert [v["field"] for v in violations["field_violations"]] == ["webhook_url"]
    assert rest(stack, "GET", "/api/v2/health").status_code == 200  # the product keeps serving
    assert all(proc.poll() is None for proc in stack.procs.values())


def test_a_tenant_operator_cannot_aim_the_shared_bot_at_a_chat_an_admin_did_not_allow(
    stack: Stack, tokens: dict[str, str]
) -> None:
    for chat in (ADMIN_CHAT, ULIXAI_CHAT):
        reply = rest(stack, "POST", "/api/v2/alert-routes", tokens["sos"], json={"telegram_chat_id": str(chat)})
        assert reply.status_code == 403 and "telegram_chat_id" in reply.json()["message"]
    settings = rest(stack, "GET", "/api/v2/alert-settings/sos-expat", tokens["sos"]).json()
    assert settings["allowed_telegram_chat_ids"] == [str(SOS_CHAT)]
    denied = rest(
        stack,
        "PATCH",
        "/api/v2/alert-settings/sos-expat",
        tokens["sos"],
        json={"allowed_telegram_chat_ids": [str(ADMIN_CHAT)]},
    )
    assert denied.status_code == 403


def test_another_tenants_route_and_alert_ids_answer_like_missing_ones(stack: Stack, tokens: dict[str, str]) -> None:
    theirs = send_alert(stack, tokens["ulixai"], severity="ALERT_SEVERITY_INFO", text="ulixai private")["alert_id"]
    for existing, missing in (
        ("/api/v2/alert-routes/ulixai", "/api/v2/alert-routes/no-such-route"),
        (f"/api/v2/alerts/{theirs}", "/api/v2/alerts/00000000-0000-4000-8000-000000000000"),
    ):
        found, absent = rest(stack, "GET", existing, tokens["sos"]), rest(stack, "GET", missing, tokens["sos"])
        assert found.status_code == absent.status_code == 404
        assert found.json()["code"] == absent.json()["code"]
        assert found.json()["message"].split("'")[0] == absent.json()["message"].split("'")[0]
    assert rest(stack, "DELETE", "/api/v2/alert-routes/ulixai", tokens["sos"]).status_code == 404


def test_deeply_nested_json_to_the_alertmanager_receiver_is_a_400(stack: Stack, tokens: dict[str, str]) -> None:
    reply = rest(
        stack,
        "POST",
        "/api/v2/alertmanager",
        tokens["admin"],
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["message"]
