"""The notifier's use cases over in-memory storage and scripted peers: accepting an alert (dedup, routing by
tenant and severity, quiet hours) and settling its deliveries (delivered, retried with backoff, a 429's
retry_after, given up, a storm digest). No I/O, no real waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.auth import Caller, Role
from libs.clock import FakeClock
from notifier.app.alerts import AlertView
from notifier.app.routes import RouteSpec
from notifier.domain.alert import Severity
from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from tests.unit.notifier.fakes import FakeNotifier, notifier_over_fakes

ADMIN = Caller("admin", Role.ADMIN, "")
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
SOS_CHAT, ULIXAI_CHAT, ADMIN_CHAT = "-1001000000001", "-1001000000002", "-1001000000099"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BAD_GATEWAY = DeliveryResult(Outcome.RETRYABLE, Reason.SERVER_ERROR, 502, "Bad Gateway")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def make(clock: FakeClock) -> Iterator[Any]:
    built: list[FakeNotifier] = []

    def factory(**settings: Any) -> FakeNotifier:
        notifier = notifier_over_fakes(clock, **settings)
        built.append(notifier)
        return notifier

    yield factory
    for notifier in built:
        notifier.close()


def routes(n: FakeNotifier, **sos: str) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT, **sos))
    n.app.routes.create(ADMIN, RouteSpec(route_id="ulixai", tenant_id="ulixai", telegram_chat_id=ULIXAI_CHAT))
    n.app.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id=ADMIN_CHAT))


def send(n: FakeNotifier, *, tenant: str = "sos-expat", severity: Severity = Severity.CRITICAL, **fields: str) -> Any:
    values = {"dedup_key": "", "title": "", "text": "IP 203.0.113.7 listed", "source": "test", "url": ""}
    values.update(fields)
    return n.app.alerts.send(
        ADMIN,
        tenant_id=tenant,
        severity=severity,
        labels={},
        resolved=False,
        **values,  # type: ignore[arg-type]
    )


def state(n: FakeNotifier, alert_id: str) -> AlertView:
    return n.app.alerts.get(ADMIN, alert_id)


# -- accepting ------------------------------------------------------------------------------------------


def test_a_duplicate_within_the_window_is_suppressed_and_counted_and_the_window_reopens(make: Any) -> None:
    n = make(dedup_window_seconds=600)
    routes(n)
    first = send(n, dedup_key="listed")
    again = send(n, dedup_key="listed")
    assert again.state == "SUPPRESSED" and again.duplicate_of == first.alert_id and again.deliveries == ()
    assert state(n, first.alert_id).suppressed_count == 1
    n.clock.advance(timedelta(seconds=601))
    reminder = send(n, dedup_key="listed")
    assert reminder.state == "PENDING" and reminder.duplicate_of == ""
    assert n.store.published == []  # alerts are not domain events of the notifier


def test_an_alert_goes_to_its_tenants_routes_and_the_admin_routes_at_or_above_their_minimum(make: Any) -> None:
    n = make()
    routes(n, min_severity="warning")
    critical = send(n)
    assert {d.route_id for d in critical.deliveries} == {"sos", "admins"}
    info = send(n, severity=Severity.INFO, text="warmed up a step")
    assert {d.route_id for d in info.deliveries} == {"admins"}
    theirs = send(n, tenant="ulixai", text="ulixai thing")
    assert {d.route_id for d in theirs.deliveries} == {"ulixai", "admins"}
    platform = send(n, tenant="", text="envoy down")
    assert {d.route_id for d in platform.deliveries} == {"admins"}
    n.deliver()
    assert n.telegram.texts(ULIXAI_CHAT) and len(n.telegram.texts(ADMIN_CHAT)) == 4
    assert len(n.telegram.texts(SOS_CHAT)) == 1


def test_quiet_hours_defer_or_silence_info_alerts_only(make: Any, clock: FakeClock) -> None:
    clock.set(datetime(2026, 1, 5, 22, 30, tzinfo=UTC))  # 23:30 in Paris
    n = make()
    quiet = {"quiet_start": "22:00", "quiet_end": "07:00", "quiet_time_zone": "Europe/Paris"}
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT, **quiet))
    n.app.routes.create(
        ADMIN, RouteSpec(route_id="ulx", tenant_id="ulixai", telegram_chat_id=ULIXAI_CHAT, quiet_mode="silent", **quiet)
    )
    deferred = send(n, severity=Severity.INFO, text="warmed up")
    urgent = send(n, text="listed")
    silenced = send(n, tenant="ulixai", severity=Severity.INFO, text="ulixai info")
    assert deferred.deliveries[0].deliver_at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    assert urgent.deliveries[0].deliver_at == clock.now() and silenced.deliveries[0].silent
    n.deliver()
    assert [t.splitlines()[-1] for t in n.telegram.texts(SOS_CHAT)] == ["listed"]
    assert [silent for chat, _t, silent in n.telegram.sent if chat == ULIXAI_CHAT] == [True]
    clock.set(datetime(2026, 1, 6, 6, 0, 1, tzinfo=UTC))
    n.deliver()
    assert n.telegram.texts(SOS_CHAT)[-1].endswith("warmed up")
    assert state(n, deferred.alert_id).state == "DELIVERED"


# -- settling -------------------------------------------------------------------------------------------


def test_a_delivered_message_settles_the_alert(make: Any, clock: FakeClock) -> None:
    n = make()
    routes(n)
    alert = send(n)
    assert n.deliver() == 2
    done = state(n, alert.alert_id)
    assert done.state == "DELIVERED" and done.attempts == 1 and done.delivery_time == clock.now()
    assert {d.route_id: d.state for d in done.deliveries} == {"sos": "DELIVERED", "admins": "DELIVERED"}


def test_a_server_error_is_retried_with_backoff_then_delivered(make: Any, clock: FakeClock) -> None:
    n = make()
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    n.telegram.answers = [BAD_GATEWAY, BAD_GATEWAY, BAD_GATEWAY]
    alert = send(n)
    schedule = []
    for _ in range(3):
        n.deliver()
        pending = state(n, alert.alert_id).deliveries[0]
        assert pending.state == "PENDING" and pending.last_error == "HTTP 502 server_error: Bad Gateway"
        assert pending.next_attempt_at is not None
        schedule.append((pending.next_attempt_at - clock.now()).total_seconds())
        clock.set(pending.next_attempt_at)
    assert schedule == [1.0, 2.0, 4.0]  # mid-jitter: the nominal 1, 2, 4 s
    n.deliver()
    done = state(n, alert.alert_id)
    assert done.state == "DELIVERED" and done.attempts == 4 and len(n.telegram.texts(SOS_CHAT)) == 1


def test_a_429_waits_retry_after_and_pauses_every_telegram_route(make: Any, clock: FakeClock) -> None:
    n = make()
    routes(n)
    n.telegram.answers = [DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429, retry_after=7)]
    alert = send(n)
    n.deliver()  # admins first: 429; sos then waits too (the limit is the bot's)
    assert n.telegram.sent == []
    waiting = {d.route_id: d for d in state(n, alert.alert_id).deliveries}
    assert waiting["admins"].next_attempt_at == clock.now() + timedelta(seconds=7.25)  # + half the margin
    assert waiting["admins"].last_error == "HTTP 429 rate_limited (retry_after 7 s)"
    n.run_for(7, step=0.5)
    assert n.telegram.sent == []
    n.run_for(1)
    assert state(n, alert.alert_id).state == "DELIVERED" and len(n.telegram.sent) == 2


def test_a_delivery_still_failing_at_the_give_up_time_is_failed_saying_why(make: Any) -> None:
    n = make(retry_give_up_hours=0.01, retry_max_delay_seconds=5)  # 36 s
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    n.telegram.answers = [BAD_GATEWAY] * 100
    alert = send(n)
    n.run_for(60)
    failed = state(n, alert.alert_id)
    assert failed.state == "FAILED" and "still failing after 0:00:36: server_error" in failed.last_error
    tries = failed.attempts
    n.run_for(60)
    assert state(n, alert.alert_id).attempts == tries  # never again
    assert n.app.metrics.failures.labels("telegram", "server_error")._value.get() == 1


def test_a_storm_is_held_then_sent_as_one_digest(make: Any) -> None:
    n = make(storm_threshold=3, storm_group_wait_seconds=20)
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    sent = [send(n, text=f"IP 203.0.113.{i} listed") for i in range(1, 6)]
    n.deliver()
    assert n.telegram.sent == []  # held for the group wait
    n.run_for(21)
    [digest] = n.telegram.texts(SOS_CHAT)
    assert "5 alerts" in digest and "203.0.113.5" in digest
    assert all(d.digest for a in sent for d in state(n, a.alert_id).deliveries)
