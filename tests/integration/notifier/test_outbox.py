"""The durable outbox end to end inside one process: events and API calls in, the strict Bot API stand-in
out, on SQLite and PostgreSQL, with a fake clock shared by the notifier and the stand-in (no real waiting).

Covered here: one message per chat (ten identical events still one); 429 retry_after honoured, 502 for a minute
then recovery, a crashed worker's sends taken over; escaping and splitting accepted by the strict stand-in;
storms, quiet hours, bad formatting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from libs.clock import FakeClock
from notifier.app.alerts import AlertView
from notifier.app.routes import RouteSpec
from notifier.bootstrap import Notifier
from notifier.domain.alert import Severity
from tests.integration.notifier.conftest import (
    ADMIN,
    ADMIN_CHAT,
    SOS_CHAT,
    ULIXAI_CHAT,
    NotifierFactory,
    standard_routes,
)
from tests.integration.notifier.helpers import consumer_for, listing_event, state_event
from tests.standins.telegram_bot_api import TelegramBotApiStandIn

pytestmark = pytest.mark.integration


def send(
    notifier: Notifier, *, tenant: str = "sos-expat", severity: Severity = Severity.CRITICAL, **fields: str
) -> AlertView:
    values = {"dedup_key": "", "title": "", "text": "IP 203.0.113.7 listed", "source": "test", "url": ""}
    values.update(fields)
    return notifier.alerts.send(
        ADMIN,
        tenant_id=tenant,
        severity=severity,
        labels={},
        resolved=False,
        **values,  # type: ignore[arg-type]
    )


def state_of(notifier: Notifier, alert_id: str) -> AlertView:
    return notifier.alerts.get(ADMIN, alert_id)


def run_for(notifier: Notifier, clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    """Let the delivery job run every `step` seconds of fake time."""
    end = clock.now() + timedelta(seconds=seconds)
    while clock.now() < end:
        notifier.delivery.deliver_once()
        clock.advance(timedelta(seconds=step))
    notifier.delivery.deliver_once()


def sends_to(api: TelegramBotApiStandIn, chat: int) -> list[float]:
    return [r.at for r in api.requests if r.api_method == "sendmessage" and r.params.get("chat_id") == chat]


# -- one message per chat ----------------------------------------------------------------------------


def test_a_listing_and_the_standby_it_causes_are_one_message_per_chat(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_notifier()
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    assert consumer.handle(listing_event(severity=reputation_pb.LISTING_SEVERITY_CRITICAL))
    run_for(notifier, clock, 1)
    assert telegram_api.messages(SOS_CHAT) == []  # held for its standby
    reason = "standby, will resume one step lower (50/day): listed by zen.spamhaus.org"
    assert consumer.handle(state_event("203.0.113.7", "WARMING", "STANDBY", reason=reason))
    run_for(notifier, clock, 10)
    for chat in (SOS_CHAT, ADMIN_CHAT):
        [message] = telegram_api.messages(chat)
        assert "CRITICAL" in message.text and "IP 203.0.113.7 on standby" in message.text, message.text
    alerts, _ = notifier.alerts.list(ADMIN, "sos-expat", 50, "")
    [told] = [a for a in alerts if a.state == "DELIVERED"]
    [folded] = [a for a in alerts if a.state == "SUPPRESSED"]
    assert folded.duplicate_of == told.alert_id and told.suppressed_count == 1 and not folded.deliveries


def test_a_listing_event_gives_one_message_per_chat_and_ten_identical_still_one(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_notifier()
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    assert consumer.handle(listing_event())
    notifier.delivery.deliver_once()
    assert len(telegram_api.messages(SOS_CHAT)) == 1
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1
    for _ in range(9):
        clock.advance(timedelta(seconds=30))
        assert consumer.handle(listing_event())  # distinct events (each its own id), the same alert
        run_for(notifier, clock, 1)
    assert len(telegram_api.messages(SOS_CHAT)) == 1
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1
    assert telegram_api.messages(ULIXAI_CHAT) == []
    [message] = telegram_api.messages(SOS_CHAT)
    assert "CRITICAL" in message.text and "IP 203.0.113.7 listed on zen.spamhaus.org" in message.text

    alerts, _ = notifier.alerts.list(ADMIN, "sos-expat", 50, "")
    sent = [a for a in alerts if a.state == "DELIVERED"]
    suppressed = [a for a in alerts if a.state == "SUPPRESSED"]
    assert len(sent) == 1 and len(suppressed) == 9
    assert sent[0].suppressed_count == 9 and {a.duplicate_of for a in suppressed} == {sent[0].alert_id}
    assert {d.route_id: d.state for d in sent[0].deliveries} == {"sos": "DELIVERED", "admins": "DELIVERED"}
    with notifier.unit_of_work() as uow:  # the dedup state is persisted, with its count
        window = uow.dedup.lock("sos-expat", "ip-listing:203.0.113.7:zen.spamhaus.org")
    assert window is not None and window.suppressed_count == 9 and window.alert_id == sent[0].alert_id
    assert window.state == "listed:unspecified" and window.state_at is not None


def test_the_dedup_window_reopens_and_delisting_is_its_own_alert(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier(dedup_window_seconds=600)
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    consumer.handle(listing_event())
    consumer.handle(listing_event(listed=False, reason="no longer listed"))
    run_for(notifier, clock, 1)
    clock.advance(timedelta(seconds=601))
    consumer.handle(listing_event())  # still listed after the window: a reminder
    run_for(notifier, clock, 1)
    texts = [m.text for m in telegram_api.messages(SOS_CHAT)]
    assert len(texts) == 3
    assert "INFO RESOLVED · IP 203.0.113.7 delisted from zen.spamhaus.org" in texts[1]
    assert "listed on zen.spamhaus.org" in texts[2]


def test_a_relisting_inside_the_window_is_told_again_on_a_real_database(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_notifier()  # the default one-hour window
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    for listed in (True, False, True):
        clock.advance(timedelta(minutes=10))
        assert consumer.handle(listing_event(listed=listed))
        run_for(notifier, clock, 1)
    texts = [m.text for m in telegram_api.messages(SOS_CHAT)]
    assert len(texts) == 3, texts
    assert "delisted" in texts[1] and "listed on zen.spamhaus.org" in texts[2] and "delisted" not in texts[2]
    with notifier.unit_of_work() as uow:
        window = uow.dedup.lock("sos-expat", "ip-listing:203.0.113.7:zen.spamhaus.org")
    assert window is not None and window.state == "listed:unspecified"  # what the operator last read


# -- retries -----------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured_by_every_telegram_route(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_notifier()
    standard_routes(notifier)
    alert = send(notifier)
    telegram_api.fail_next(1, status=429, retry_after=2)
    started = clock.now().timestamp()
    notifier.delivery.deliver_once()  # admins first: 429; sos then waits too (the bot is rate-limited)
    assert telegram_api.all_messages() == []
    pending = state_of(notifier, alert.alert_id)
    assert pending.state == "PENDING" and "HTTP 429 rate_limited" in pending.last_error
    run_for(notifier, clock, 1.5, step=0.25)
    assert len(telegram_api.requests) == 1  # nobody came back before retry_after
    run_for(notifier, clock, 1.5, step=0.25)
    assert len(telegram_api.messages(SOS_CHAT)) == 1 and len(telegram_api.messages(ADMIN_CHAT)) == 1
    assert telegram_api.early_retries == 0
    assert min(sends_to(telegram_api, ADMIN_CHAT)[1:]) - started >= 2
    assert min(sends_to(telegram_api, SOS_CHAT)) - started >= 2
    done = state_of(notifier, alert.alert_id)
    assert done.state == "DELIVERED" and done.delivery_time is not None
    assert (done.delivery_time - done.create_time).total_seconds() >= 2


def test_502_for_a_minute_is_retried_with_backoff_and_delivered_after_recovery(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_notifier()
    notifier.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT)))
    telegram_api.fail_for(60, status=502)
    started = clock.now().timestamp()
    alert = send(notifier)
    run_for(notifier, clock, 30)
    during = state_of(notifier, alert.alert_id)
    assert during.state == "PENDING" and during.attempts >= 4
    assert "HTTP 502 server_error" in during.last_error
    assert during.deliveries[0].next_attempt_at is not None
    run_for(notifier, clock, 40)
    done = state_of(notifier, alert.alert_id)
    assert done.state == "DELIVERED" and len(telegram_api.messages(SOS_CHAT)) == 1
    attempts = sends_to(telegram_api, SOS_CHAT)
    # Backoff 1, 2, 4, 8, 16, 32 s capped at 60: seven tries, not a hammering; seen within a minute of recovery.
    assert len(attempts) == 7
    assert 60 <= attempts[-1] - started <= 120
    assert done.attempts == 7 and done.last_error == ""


def test_a_worker_that_died_mid_send_is_taken_over_when_its_lease_expires(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    """The in-process half of "killed with undelivered alerts → delivered after restart" (the e2e test
    kills the real process): a lease left by a dead worker delays the route, never loses it."""
    crashed = make_notifier(lease_seconds=30)
    standard_routes(crashed)
    alert = send(crashed)
    assert crashed.delivery._take_lease("sos")  # took the route, then died without a word
    restarted = make_notifier(lease_seconds=30)
    restarted.delivery.deliver_once()
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1 and telegram_api.messages(SOS_CHAT) == []
    run_for(restarted, clock, 29)
    assert telegram_api.messages(SOS_CHAT) == []
    run_for(restarted, clock, 2)
    assert len(telegram_api.messages(SOS_CHAT)) == 1
    assert state_of(restarted, alert.alert_id).state == "DELIVERED"


# -- formatting and 400s -----------------------------------------------------------------------------


def test_5000_characters_with_lt_and_amp_are_escaped_split_and_accepted(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    text = ("<td> a < b && c > d; &amp; stays literal\n" * 200)[:5000]
    alert = send(notifier, title="Bounces <50% & rising", text=text)
    notifier.delivery.deliver_once()
    assert all(r.status == 200 for r in telegram_api.requests)
    for chat in (SOS_CHAT, ADMIN_CHAT):
        parts = telegram_api.messages(chat)
        assert len(parts) == 2
        assert all(len(p.text) <= 4096 for p in parts)
        assert "Bounces <50% & rising" in parts[0].text
        assert "<td> a < b && c > d; &amp; stays literal" in parts[0].text
        assert parts[0].text.endswith("(1/2)") and parts[1].text.endswith("(2/2)")
        assert "&amp;lt;" not in parts[0].raw_text and "&lt;td&gt;" in parts[0].raw_text
    assert state_of(notifier, alert.alert_id).state == "DELIVERED"


def test_a_long_message_resumes_at_the_part_that_failed(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    notifier.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT)))
    telegram_api.per_chat_min_interval = 1.0  # the second part, sent at once, gets a 429
    send(notifier, text="word " * 1200)
    notifier.delivery.deliver_once()
    assert len(telegram_api.messages(SOS_CHAT)) == 1
    run_for(notifier, clock, 2)
    parts = telegram_api.messages(SOS_CHAT)
    assert [p.text[-5:] for p in parts] == ["(1/2)", "(2/2)"]  # part 1 was not sent twice


def test_bad_formatting_falls_back_to_plain_text_once_and_is_reported_not_retried(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    notifier.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT)))
    parse_error = 'Bad Request: can\'t parse entities: Unsupported start tag "br" at byte offset 12'
    telegram_api.fail_next(1, status=400, description=parse_error)
    rescued = send(notifier, text="first")
    notifier.delivery.deliver_once()
    [message] = telegram_api.messages(SOS_CHAT)
    assert message.parse_mode is None
    assert state_of(notifier, rescued.alert_id).state == "DELIVERED"

    telegram_api.fail_next(2, status=400, description=parse_error)
    failed = send(notifier, text="second")
    run_for(notifier, clock, 30)
    requests = len(telegram_api.requests)
    run_for(notifier, clock, 120, step=10)
    assert len(telegram_api.requests) == requests  # not retried
    view = state_of(notifier, failed.alert_id)
    assert view.state == "FAILED" and view.attempts == 1
    assert "HTTP 400 bad_formatting: Bad Request: can't parse entities" in view.last_error
    assert notifier.metrics.failures.labels("telegram", "bad_formatting")._value.get() == 1


def test_a_chat_upgraded_to_a_supergroup_is_followed(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    telegram_api.add_chat(-4000001, title="old group")
    notifier.routes.create(ADMIN, RouteSpec(route_id="grp", tenant_id="sos-expat", telegram_chat_id="-4000001"))
    telegram_api.migrate_chat(-4000001, -1004000001)
    alert = send(notifier)
    notifier.delivery.deliver_once()
    assert len(telegram_api.messages(-1004000001)) == 1
    assert notifier.routes.get(ADMIN, "grp").route.target == "-1004000001"
    view = state_of(notifier, alert.alert_id)
    assert view.state == "DELIVERED" and "migrated to -1004000001" in view.deliveries[0].last_error


# -- storms and quiet hours --------------------------------------------------------------------------


def test_a_storm_is_grouped_into_one_digest_per_chat(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier(storm_threshold=4, storm_group_wait_seconds=20, min_spacing_seconds=1)
    standard_routes(notifier)
    consumer = consumer_for(notifier)
    for n in range(12):
        consumer.handle(listing_event(f"203.0.113.{n + 1}"))
    notifier.delivery.deliver_once()
    assert telegram_api.all_messages() == []  # held for group_wait
    run_for(notifier, clock, 21)
    [digest] = telegram_api.messages(SOS_CHAT)
    assert "12 alerts" in digest.text and "203.0.113.12" in digest.text
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1
    alerts, _ = notifier.alerts.list(ADMIN, "", 50, "")
    assert all(a.state == "DELIVERED" and all(d.digest for d in a.deliveries) for a in alerts)


def test_quiet_hours_defer_or_silence_info_alerts_only(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 1, 5, 22, 30, tzinfo=UTC))  # 23:30 in Paris
    notifier = make_sqlite_notifier()
    quiet = {"quiet_start": "22:00", "quiet_end": "07:00", "quiet_time_zone": "Europe/Paris"}
    notifier.routes.create(
        ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT), **quiet)
    )
    notifier.routes.create(
        ADMIN,
        RouteSpec(
            route_id="ulixai", tenant_id="ulixai", telegram_chat_id=str(ULIXAI_CHAT), quiet_mode="silent", **quiet
        ),
    )
    info = send(notifier, severity=Severity.INFO, text="IP warmed up a step")
    send(notifier, severity=Severity.CRITICAL, text="IP listed")
    send(notifier, tenant="ulixai", severity=Severity.INFO, text="ulixai info")
    run_for(notifier, clock, 5)
    assert [m.text.split("\n")[-1] for m in telegram_api.messages(SOS_CHAT)] == ["IP listed"]
    [silent] = telegram_api.messages(ULIXAI_CHAT)
    assert silent.disable_notification
    deferred = state_of(notifier, info.alert_id)
    assert deferred.state == "PENDING"
    assert deferred.deliveries[0].deliver_at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)  # 07:00 Paris
    clock.set(datetime(2026, 1, 6, 6, 0, 1, tzinfo=UTC))
    notifier.delivery.deliver_once()
    assert telegram_api.messages(SOS_CHAT)[-1].text.endswith("IP warmed up a step")


def test_min_severity_per_route(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    notifier.routes.create(
        ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT), min_severity="warning")
    )
    info = send(notifier, severity=Severity.INFO, text="routine")
    warning = send(notifier, severity=Severity.WARNING, text="attention")
    notifier.delivery.deliver_once()
    assert state_of(notifier, info.alert_id).state == "UNROUTED"
    assert state_of(notifier, warning.alert_id).state == "DELIVERED"
    assert len(telegram_api.messages(SOS_CHAT)) == 1


def test_without_a_bot_token_alerts_are_stored_as_disabled_and_never_sent(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier(telegram=False)
    standard_routes(notifier)
    alert = send(notifier)
    run_for(notifier, clock, 3)
    view = state_of(notifier, alert.alert_id)
    assert view.state == "DISABLED"
    assert {d.state for d in view.deliveries} == {"DISABLED"}
    assert "EE_TELEGRAM_BOT_TOKEN" in view.last_error
    assert telegram_api.requests == []


def test_deleting_a_route_fails_its_pending_deliveries(
    make_sqlite_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    notifier = make_sqlite_notifier()
    standard_routes(notifier)
    telegram_api.fail_for(10, status=502)
    alert = send(notifier)
    notifier.delivery.deliver_once()
    notifier.routes.delete(ADMIN, "sos")
    run_for(notifier, clock, 20)
    view = state_of(notifier, alert.alert_id)
    assert {d.route_id: d.state for d in view.deliveries} == {"sos": "FAILED", "admins": "DELIVERED"}
    assert view.state == "FAILED" and "route deleted" in view.last_error
    with notifier.unit_of_work() as uow:
        assert [r.route_id for r in uow.routes.all()] == ["admins", "ulixai"]


def test_routes_served_in_parallel_leave_every_alert_delivered(
    make_notifier: NotifierFactory, telegram_api: TelegramBotApiStandIn, clock: FakeClock
) -> None:
    """Two routes of one alert finishing at once must not leave the alert's summary at PENDING."""
    notifier = make_notifier(delivery_concurrency=8)
    standard_routes(notifier)
    for n in range(3):
        notifier.routes.create(ADMIN, RouteSpec(route_id=f"extra{n}", admin=True, telegram_chat_id=f"@extra_chat_{n}"))
        telegram_api.add_chat(-1003000000000 - n, username=f"extra_chat_{n}")
    sent = [send(notifier, text=f"alert {n}") for n in range(10)]
    run_for(notifier, clock, 3)
    assert len(telegram_api.messages(SOS_CHAT)) == 10 and len(telegram_api.messages(-1003000000002)) == 10
    assert {state_of(notifier, a.alert_id).state for a in sent} == {"DELIVERED"}
