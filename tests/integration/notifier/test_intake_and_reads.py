"""Alerts in (SendAlert rules, Alertmanager payloads, events, concurrent duplicates), routes, webhooks,
and who reads what (at the use-case level; the e2e test repeats them through Envoy)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from libs.runtime import build_runtime
from libs.webhook_signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from notifier.adapters.webhook import verify_signature
from notifier.app.routes import RouteSpec
from notifier.bootstrap import DEFINITION, Notifier, periodic_jobs
from notifier.config import NotifierConfig, NotifierSettings, TelegramSettings
from notifier.domain.alert import Severity
from notifier.jobs import deliver_due
from notifier.mapping import route_to_proto
from tests.integration.notifier.conftest import (
    ADMIN,
    ADMIN_CHAT,
    SOS_CHAT,
    SOS_OPERATOR,
    ULIXAI_CHAT,
    ULIXAI_OPERATOR,
    NotifierFactory,
    standard_routes,
)
from tests.integration.notifier.helpers import (
    add_route_an_older_version_accepted,
    am_alert,
    am_payload,
    consumer_for,
    listing_event,
    state_event,
)
from tests.standins.telegram_bot_api import TelegramBotApiStandIn

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-webhook-signing-key-0123456789"


def send(notifier: Notifier, caller: Caller = ADMIN, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "tenant_id": "sos-expat",
        "severity": Severity.WARNING,
        "dedup_key": "",
        "title": "",
        "text": "something happened",
        "source": "",
        "labels": {},
        "url": "",
        "resolved": False,
    }
    values.update(fields)
    return notifier.alerts.send(caller, **values)


# -- a tenant sees only its own ----------------------------------------------------------------------


def test_a_tenant_sees_only_its_own_alerts_and_platform_alerts_are_for_admins(
    make_sqlite_notifier: NotifierFactory, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    sos = send(notifier, SOS_OPERATOR, text="sos thing")
    ulixai = send(notifier, ULIXAI_OPERATOR, tenant_id="", text="ulixai thing")  # empty: the caller's tenant
    platform = send(notifier, tenant_id="", text="envoy down")  # an admin's empty tenant: platform
    assert ulixai.alert.tenant == "ulixai" and platform.alert.tenant == "" and sos.alert.source == "api"

    seen, _ = notifier.alerts.list(SOS_OPERATOR, "", 50, "")
    assert [a.alert_id for a in seen] == [sos.alert_id]
    seen, _ = notifier.alerts.list(ULIXAI_OPERATOR, "", 50, "")
    assert [a.alert_id for a in seen] == [ulixai.alert_id]
    seen, _ = notifier.alerts.list(ADMIN, "", 50, "")
    assert {a.alert_id for a in seen} == {sos.alert_id, ulixai.alert_id, platform.alert_id}
    with pytest.raises(PermissionDenied):
        notifier.alerts.list(SOS_OPERATOR, "ulixai", 50, "")
    with pytest.raises(NotFound):
        notifier.alerts.get(SOS_OPERATOR, ulixai.alert_id)
    with pytest.raises(NotFound):
        notifier.alerts.get(SOS_OPERATOR, platform.alert_id)
    with pytest.raises(PermissionDenied):
        send(notifier, SOS_OPERATOR, tenant_id="ulixai")
    with pytest.raises(PermissionDenied):
        send(notifier, Caller("v", Role.VIEWER, "sos-expat"))

    # The tenant sees its alert's delivery to the admin chat, but not where that chat is.
    mine = notifier.alerts.get(SOS_OPERATOR, sos.alert_id)
    assert {d.route_id: d.destination for d in mine.deliveries} == {"sos": str(SOS_CHAT), "admins": ""}
    theirs = notifier.alerts.get(ADMIN, sos.alert_id)
    assert {d.route_id: d.destination for d in theirs.deliveries}["admins"] == str(ADMIN_CHAT)


def test_list_pages_newest_first(make_sqlite_notifier: NotifierFactory, clock: FakeClock) -> None:
    notifier = make_sqlite_notifier()
    ids = []
    for n in range(5):
        ids.append(send(notifier, text=f"alert {n}").alert_id)
        clock.advance(timedelta(seconds=1))
    first, token = notifier.alerts.list(ADMIN, "sos-expat", 3, "")
    second, last = notifier.alerts.list(ADMIN, "sos-expat", 3, token)
    assert [a.alert_id for a in first + second] == ids[::-1] and last == ""
    with pytest.raises(InvalidArgument):
        notifier.alerts.list(ADMIN, "", 3, "garbage!")


def test_send_alert_names_every_bad_field(make_sqlite_notifier: NotifierFactory) -> None:
    notifier = make_sqlite_notifier()
    with pytest.raises(InvalidArgument) as caught:
        send(notifier, severity=None, text="")
    assert [v.field for v in caught.value.violations] == ["severity"]
    with pytest.raises(InvalidArgument) as caught:
        send(notifier, tenant_id="Bad Tenant", text=" ", url="ftp://x")
    assert {v.field for v in caught.value.violations} == {"tenant_id", "text", "url"}


def test_without_a_dedup_key_the_same_text_is_the_same_alert(make_sqlite_notifier: NotifierFactory) -> None:
    notifier = make_sqlite_notifier()
    first = send(notifier, text="hello")
    again = send(notifier, text="hello")
    other = send(notifier, text="hello", severity=Severity.CRITICAL)
    assert again.state == "SUPPRESSED" and again.duplicate_of == first.alert_id
    assert other.state != "SUPPRESSED"
    assert notifier.alerts.get(ADMIN, first.alert_id).suppressed_count == 1


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"])
def test_concurrent_duplicates_are_accepted_once(
    db_kind: str, request: pytest.FixtureRequest, clock: FakeClock, telegram_api: TelegramBotApiStandIn
) -> None:
    db = request.getfixturevalue("sqlite_db" if db_kind == "sqlite" else "postgres_db")
    factory = NotifierFactory(db, clock, telegram_api)
    try:
        notifier = factory()
        standard_routes(notifier)
        barrier = threading.Barrier(8)
        results: list[Any] = []

        def racer() -> None:
            barrier.wait()
            results.append(send(notifier, dedup_key="same-thing", severity=Severity.CRITICAL))

        threads = [threading.Thread(target=racer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.state for r in results) == ["PENDING"] + ["SUPPRESSED"] * 7
        notifier.delivery.deliver_once()
        assert len(telegram_api.messages(SOS_CHAT)) == 1
    finally:
        factory.close()


# -- events ------------------------------------------------------------------------------------------


def test_ip_state_changes_worth_a_message(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    consumer.handle(state_event("203.0.113.9", "WARM", "STANDBY", reason="listed on zen.spamhaus.org"))
    consumer.handle(state_event("203.0.113.10", "WARMING", "WARM"))  # routine: no message
    consumer.handle(state_event("203.0.113.11", "WARM", "PAUSED", tenant="ulixai", reason="operator"))
    consumer.handle(state_event("203.0.113.12", "PAUSED", "RETIRED", tenant="ulixai"))
    consumer.handle(state_event("203.0.113.9", "STANDBY", "WARMING", reason="delisted, cool-down over"))
    with caplog.at_level(logging.WARNING):
        assert consumer.handle(listing_event(tenant="NOT A TENANT"))  # handled (dropped), not redelivered forever
    assert "event cannot make an alert" in caplog.text
    notifier.delivery.deliver_once()
    sos = [m.text.split("\n")[0] for m in telegram_api.messages(SOS_CHAT)]
    assert sos == ["🟠 WARNING · IP 203.0.113.9 on standby", "🔵 INFO · IP 203.0.113.9 back in service (warming)"]
    ulixai = [m.text.split("\n")[0] for m in telegram_api.messages(ULIXAI_CHAT)]
    assert ulixai == ["🔵 INFO · IP 203.0.113.11 paused", "🔵 INFO · IP 203.0.113.12 retired"]
    assert len(telegram_api.messages(ADMIN_CHAT)) == 4


# -- Alertmanager ------------------------------------------------------------------------------------


def test_an_alertmanager_payload_with_two_alerts_is_routed(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn
) -> None:
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    body = am_payload(
        am_alert("QuotaSyncFailing", fingerprint="1a30ba71cca2921f", severity="critical", tenant="ulixai"),
        am_alert("NotifierDown", fingerprint="2b41cb82ddb3a320", severity="warning"),
        notification_reason="new_alert",  # Alertmanager 0.32+
        routeLabels={"team": "ops"},  # 0.34+
    )
    receipt = notifier.alerts.receive_alertmanager(ADMIN, body)
    assert (len(receipt.results), receipt.accepted, receipt.suppressed) == (2, 2, 0)
    notifier.delivery.deliver_once()
    [ulixai] = telegram_api.messages(ULIXAI_CHAT)
    assert ulixai.text.startswith("🔴 CRITICAL · QuotaSyncFailing")
    assert "details < & >" in ulixai.text and "prometheus.example:9090" in ulixai.text
    admin = [m.text.split("\n")[0] for m in telegram_api.messages(ADMIN_CHAT)]
    assert sorted(admin) == ["🔴 CRITICAL · QuotaSyncFailing", "🟠 WARNING · NotifierDown"]
    assert telegram_api.messages(SOS_CHAT) == []
    platform = notifier.alerts.get(ADMIN, receipt.results[1].alert_id)
    assert platform.alert.tenant == "" and platform.alert.source == "alertmanager"

    # An HA pair sends the same notification twice: suppressed.
    again = notifier.alerts.receive_alertmanager(ADMIN, body)
    assert (again.accepted, again.suppressed) == (0, 2)
    # The resolution is a new message.
    resolved = notifier.alerts.receive_alertmanager(
        ADMIN, am_payload(am_alert("NotifierDown", status="resolved", fingerprint="2b41cb82ddb3a320"))
    )
    assert resolved.accepted == 1


def test_a_malformed_alertmanager_payload_is_refused_whole_naming_the_problem(
    make_sqlite_notifier: NotifierFactory,
) -> None:
    notifier = make_sqlite_notifier()
    good = am_alert("A", fingerprint="aa")
    bad = {**am_alert("B", fingerprint="bb"), "startsAt": "yesterday"}
    with pytest.raises(InvalidArgument) as caught:
        notifier.alerts.receive_alertmanager(ADMIN, am_payload(good, bad))
    assert "alerts[1].startsAt" in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        notifier.alerts.receive_alertmanager(ADMIN, b'{"version": "4", "alerts": [')
    assert caught.value.violations[0].field == "body"
    assert notifier.alerts.list(ADMIN, "", 50, "")[0] == []  # nothing stored


def test_a_tenant_token_may_post_alertmanager_alerts_only_for_its_tenant(make_sqlite_notifier: NotifierFactory) -> None:
    notifier = make_sqlite_notifier()
    with pytest.raises(PermissionDenied):
        notifier.alerts.receive_alertmanager(SOS_OPERATOR, am_payload(am_alert("X", fingerprint="cc")))
    receipt = notifier.alerts.receive_alertmanager(
        SOS_OPERATOR, am_payload(am_alert("X", fingerprint="cc", tenant="sos-expat"))
    )
    assert receipt.accepted == 1


# -- routes and webhooks -----------------------------------------------------------------------------


def test_routes_validate_belong_to_their_tenant_and_never_show_secrets(
    make_sqlite_notifier: NotifierFactory, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = make_sqlite_notifier()
    with caplog.at_level(logging.DEBUG):
        hook = notifier.routes.create(
            SOS_OPERATOR,
            RouteSpec(
                route_id="sos-hook",
                channel="webhook",
                webhook_url="https://hooks.example/in/abc123token?key=xyz",
                webhook_secret=SECRET,
            ),
        )
    shown = route_to_proto(hook)
    assert shown.webhook_origin == "https://hooks.example" and shown.has_webhook_secret
    assert shown.tenant_id == "sos-expat"
    assert SECRET not in str(shown) and "abc123token" not in str(shown)
    assert SECRET not in caplog.text
    with pytest.raises(AlreadyExists):
        notifier.routes.create(ADMIN, RouteSpec(route_id="sos-hook", tenant_id="sos-expat", telegram_chat_id="-100123"))
    with pytest.raises(PermissionDenied):
        notifier.routes.create(SOS_OPERATOR, RouteSpec(route_id="x", admin=True, telegram_chat_id="-100123"))
    with pytest.raises(PermissionDenied):
        notifier.routes.create(SOS_OPERATOR, RouteSpec(route_id="x", tenant_id="ulixai", telegram_chat_id="-100123"))
    with pytest.raises(InvalidArgument) as caught:
        notifier.routes.create(
            ADMIN,
            RouteSpec(
                route_id="bad id!",
                tenant_id="sos-expat",
                telegram_chat_id="not-a-chat",
                quiet_start="25:00",
                quiet_end="07:00",
            ),
        )
    assert {v.field for v in caught.value.violations} == {"route_id", "telegram_chat_id", "quiet_hours.start"}
    with pytest.raises(InvalidArgument) as caught:
        notifier.routes.create(
            ADMIN, RouteSpec(tenant_id="sos-expat", channel="webhook", webhook_url="https://x.example")
        )
    assert [v.field for v in caught.value.violations] == ["webhook_secret"]

    notifier.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id="-100999"))
    mine, _ = notifier.routes.list(SOS_OPERATOR, "", 50, "")
    assert [r.route.route_id for r in mine] == ["sos-hook"]
    everything, _ = notifier.routes.list(ADMIN, "", 50, "")
    assert [r.route.route_id for r in everything] == ["admins", "sos-hook"]
    with pytest.raises(NotFound):
        notifier.routes.get(SOS_OPERATOR, "admins")
    with pytest.raises(NotFound):
        notifier.routes.delete(ULIXAI_OPERATOR, "sos-hook")
    notifier.routes.delete(SOS_OPERATOR, "sos-hook")


class _Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-path"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    found = _Receiver([503])
    yield found
    found.server.shutdown()


def test_webhook_routes_get_a_signed_body_retried_on_5xx_even_without_telegram(
    make_sqlite_notifier: NotifierFactory, receiver: _Receiver, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier(telegram=False)
    notifier.routes.create(
        ADMIN,
        RouteSpec(route_id="hook", admin=True, channel="webhook", webhook_url=receiver.url, webhook_secret=SECRET),
    )
    notifier.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT)))
    alert = send(notifier, text="disk < 5% & falling", dedup_key="disk")
    notifier.delivery.deliver_once()  # 503
    clock.advance(timedelta(seconds=2))
    notifier.delivery.deliver_once()
    assert len(receiver.requests) == 2
    headers, body = receiver.requests[-1]
    assert verify_signature(
        SECRET,
        body,
        signature_header=headers[SIGNATURE_HEADER],
        timestamp_header=headers[TIMESTAMP_HEADER],
        now=clock.now(),
    )
    assert receiver.requests[0][1] == body and headers[DELIVERY_HEADER]  # the same delivery id on retry
    document = json.loads(body)
    assert document["alerts"][0]["text"] == "disk < 5% & falling" and document["alerts"][0]["dedup_key"] == "disk"
    view = notifier.alerts.get(ADMIN, alert.alert_id)
    assert {d.route_id: d.state for d in view.deliveries} == {"hook": "DELIVERED", "sos": "DISABLED"}
    assert view.state == "DELIVERED"
    hook = next(d for d in view.deliveries if d.route_id == "hook")
    assert hook.destination.startswith("http://127.0.0.1:") and "secret-path" not in hook.destination


# -- the RQ runner's job function --------------------------------------------------------------------


def test_the_rq_job_function_delivers_with_the_runtimes_application(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    monkeypatch.setenv("EE_TELEGRAM_BOT_TOKEN", telegram_api.token)
    monkeypatch.setenv("EE_TELEGRAM_API_BASE", telegram_api.base_url)
    monkeypatch.setenv("EE_NOTIFIER_DELIVERY_RUNNER", "rq")
    runtime = build_runtime(DEFINITION, Settings(data_dir=tmp_path), clock)
    try:
        notifier = runtime.app
        standard_routes(notifier)
        send(notifier, text="through the job")
        assert deliver_due(notifier) == 2
        assert len(telegram_api.messages(SOS_CHAT)) == 1
        jobs = periodic_jobs(NotifierConfig(NotifierSettings(), TelegramSettings()))
        assert [j.name for j in jobs] == ["notifier-deliver", "notifier-prune-dedup"] and jobs[0].func is deliver_due
        assert DEFINITION.periodic_jobs(runtime.config)[0].func is deliver_due
    finally:
        for hook in runtime.on_stop:
            hook()
        runtime.db.dispose()
    monkeypatch.setenv("EE_NOTIFIER_DELIVERY_RUNNER", "service")
    assert periodic_jobs(NotifierConfig(NotifierSettings(), TelegramSettings())) == []


def test_ended_dedup_windows_are_pruned(make_sqlite_notifier: NotifierFactory, clock: FakeClock) -> None:
    notifier = make_sqlite_notifier(dedup_window_seconds=60)
    send(notifier, dedup_key="a")
    clock.advance(timedelta(seconds=30))
    send(notifier, dedup_key="b")
    clock.advance(timedelta(seconds=40))
    assert notifier.intake.forget_ended_windows() == 1  # "a" ended; "b" can still suppress
    assert send(notifier, dedup_key="b").state == "SUPPRESSED"


def test_a_stored_route_that_cannot_be_parsed_never_makes_list_routes_internal_nor_fails_the_tenants_alerts(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn
) -> None:
    """A URL an older version accepted (`http://h:99999/x`) sits in the database: the tenant's listing, its other
    routes and its later alerts keep working; the route is shown with its problem and fails saying why."""
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    add_route_an_older_version_accepted(make_sqlite_notifier.db, secret=SECRET)
    listed, _ = notifier.routes.list(SOS_OPERATOR, "", 50, "")
    shown = {r.route_id: route_to_proto(r) for r in listed}
    assert set(shown) == {"old-hook", "sos"} and "port" in shown["old-hook"].problem
    assert shown["old-hook"].webhook_origin == "an invalid URL"
    assert route_to_proto(notifier.routes.get(ADMIN, "old-hook")).problem
    alert = send(notifier, SOS_OPERATOR, text="still heard")
    notifier.delivery.deliver_once()
    found = {d.route_id: d for d in notifier.alerts.get(SOS_OPERATOR, alert.alert_id).deliveries}
    assert found["sos"].state == "DELIVERED" and len(telegram_api.messages(SOS_CHAT)) == 1
    assert found["old-hook"].state == "FAILED" and "cannot be used" in found["old-hook"].last_error
