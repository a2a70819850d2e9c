"""The Bot API client against the strict stand-in over loopback: answers classified, text accepted."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import httpx
import pytest

from libs.clock import FakeClock
from notifier.adapters.telegram import TelegramBotClient
from notifier.domain.alert import Alert
from notifier.domain.dedup import DedupLedger
from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from notifier.domain.retry import RetryAction, RetryPolicy, decide_retry
from notifier.domain.routing import Channel, Route, RoutingTable
from notifier.domain.telegram_text import MessagePart, render_alert_parts
from tests.integration.notifier.conftest import ADMIN_CHAT, SOS_CHAT, ULIXAI_CHAT
from tests.standins.telegram_bot_api import TelegramBotApiStandIn, make_token

pytestmark = pytest.mark.integration


def listing_alert(clock: FakeClock, **overrides: object) -> Alert:
    fields: dict[str, object] = {
        "tenant": "sos-expat",
        "severity": "critical",
        "dedup_key": "ip-listed:203.0.113.7:zen.spamhaus.org",
        "title": "IP 203.0.113.7 listed on zen.spamhaus.org",
        "text": "Moved to standby & its volume moved to 2 healthy IPs (<10% each).",
        "source": "reputation",
        "occurred_at": clock.now(),
        "labels": {"ip": "203.0.113.7"},
    }
    fields.update(overrides)
    return Alert.create(**fields)  # type: ignore[arg-type]


ROUTES = RoutingTable(
    [
        Route("sos", Channel.TELEGRAM, str(SOS_CHAT), tenant="sos-expat"),
        Route("ulixai", Channel.TELEGRAM, str(ULIXAI_CHAT), tenant="ulixai"),
        Route("admin", Channel.TELEGRAM, str(ADMIN_CHAT)),
    ]
)


def test_one_listing_event_gives_one_message_per_chat_even_sent_ten_times(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    """Acceptance 1, with the domain pieces composed as the delivery job will compose them."""
    ledger = DedupLedger()
    for _ in range(10):
        alert = listing_alert(clock)
        if ledger.observe(alert.tenant, alert.dedup_key, clock.now()).accepted:
            for delivery in ROUTES.route(alert, clock.now()):
                result = telegram_client.send_parts(delivery.route.target, render_alert_parts(alert))
                assert result.complete
        clock.advance(timedelta(seconds=5))
    assert len(telegram_api.messages(SOS_CHAT)) == 1
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1
    assert telegram_api.messages(ULIXAI_CHAT) == []
    assert ledger.suppressed_count("sos-expat", "ip-listed:203.0.113.7:zen.spamhaus.org") == 9
    [message] = telegram_api.messages(SOS_CHAT)
    assert "Moved to standby & its volume moved to 2 healthy IPs (<10% each)." in message.text
    assert message.parse_mode == "HTML" and message.link_preview_disabled
    assert {"type": "bold", "offset": 3, "length": 8} in message.entities  # "CRITICAL"


def test_5000_characters_with_lt_and_amp_are_accepted(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    """Acceptance 4: escaped, split, never rejected by the (strict) Bot API."""
    text = ("<td> a < b && c > d; &amp; is literal here " * 120)[:5000]
    parts = render_alert_parts(listing_alert(clock, text=text))
    result = telegram_client.send_parts(SOS_CHAT, parts)
    assert result.complete and result.sent == len(parts) == 2 and not result.fell_back_to_plain
    messages = telegram_api.messages(SOS_CHAT)
    assert [m.message_id for m in messages] == list(result.message_ids)
    shown = " ".join(" ".join(m.text.rsplit("\n", 1)[0].split()) for m in messages)
    assert " ".join(text.split()) in shown
    assert all(len(m.text) <= 4096 for m in messages)


def test_5000_characters_cut_to_one_message(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    parts = render_alert_parts(listing_alert(clock, text="&<" * 2500), max_parts=1)
    assert telegram_client.send_parts(SOS_CHAT, parts).complete
    [message] = telegram_api.messages(SOS_CHAT)
    assert "more characters]" in message.text.splitlines()[-1]


def test_429_retry_after_is_classified_and_honoured(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    """Acceptance 2 (429 with retry_after: 2 → delivered after at least 2 s), on the shared fake clock."""
    telegram_api.fail_next(1, retry_after=2)
    first_attempt_at = clock.now()
    result = telegram_client.send_message(SOS_CHAT, "<b>hello</b>")
    assert (result.outcome, result.reason, result.retry_after) == (Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 2.0)
    decision = decide_retry(result, attempt=1, first_attempt_at=first_attempt_at, now=clock.now(), random_unit=0.0)
    assert decision.action is RetryAction.RETRY and decision.retry_at == first_attempt_at + timedelta(seconds=2)

    clock.advance(timedelta(seconds=1))  # a client that ignored retry_after is caught by the stand-in
    early = telegram_client.send_message(SOS_CHAT, "<b>hello</b>")
    assert early.outcome is Outcome.RATE_LIMITED and early.retry_after == 1.0
    clock.set(decision.retry_at)
    assert telegram_client.send_message(SOS_CHAT, "<b>hello</b>").delivered
    [message] = telegram_api.messages(SOS_CHAT)
    assert message.date - int(first_attempt_at.timestamp()) >= 2


def test_502_for_a_minute_is_retried_until_delivered(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    """Acceptance 2 (502 for a minute → delivered after it recovers): the outbox loop in miniature."""
    telegram_api.fail_for(60)  # nginx HTML 502 pages, not Bot API JSON
    first_attempt_at = clock.now()
    policy = RetryPolicy()
    attempt = 0
    results: list[DeliveryResult] = []
    while True:
        attempt += 1
        result = telegram_client.send_message(SOS_CHAT, "IP listed")
        results.append(result)
        decision = decide_retry(
            result, attempt=attempt, first_attempt_at=first_attempt_at, now=clock.now(), random_unit=0.5, policy=policy
        )
        if decision.action is not RetryAction.RETRY:
            break
        assert decision.retry_at is not None
        clock.set(decision.retry_at)
    assert decision.action is RetryAction.DONE
    assert all(r.reason is Reason.SERVER_ERROR for r in results[:-1]) and results[-1].delivered
    delivered_at = clock.now() - first_attempt_at
    assert timedelta(seconds=60) <= delivered_at <= timedelta(seconds=60) + policy.max_delay * 1.2
    assert 6 <= attempt <= 9
    assert len(telegram_api.messages(SOS_CHAT)) == 1


def test_5xx_with_a_json_envelope_is_retryable(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient
) -> None:
    telegram_api.fail_next(1, status=500)
    result = telegram_client.send_message(SOS_CHAT, "x")
    assert (result.outcome, result.status_code, result.description) == (Outcome.RETRYABLE, 500, "Internal Server Error")


def test_a_dropped_connection_is_a_retryable_network_failure(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient
) -> None:
    telegram_api.drop_next(1)
    result = telegram_client.send_message(SOS_CHAT, "x")
    assert (result.outcome, result.reason, result.status_code) == (Outcome.RETRYABLE, Reason.NETWORK, None)
    assert telegram_api.token not in result.description


def test_a_slow_answer_is_a_retryable_timeout(telegram_api: TelegramBotApiStandIn) -> None:
    telegram_api.delay_next(1, 0.4)
    with TelegramBotClient(telegram_api.token, api_base=telegram_api.base_url, timeout=0.1, trust_env=False) as client:
        result = client.send_message(SOS_CHAT, "x")
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.TIMEOUT)
    assert telegram_api.token not in result.description


def test_nobody_listening_is_a_retryable_network_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = make_token()
    with TelegramBotClient(token, api_base=f"http://127.0.0.1:{port}", timeout=1.0, trust_env=False) as client:
        result = client.send_message(SOS_CHAT, "x")
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.NETWORK)
    assert token not in result.description and token.split(":")[1] not in result.description


def test_permanent_answers(telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient) -> None:
    bad_html = telegram_client.send_message(SOS_CHAT, "a < b")
    assert (bad_html.outcome, bad_html.reason) == (Outcome.PERMANENT, Reason.BAD_FORMATTING)
    assert bad_html.description.startswith("Bad Request: can't parse entities: Unsupported start tag")
    too_long = telegram_client.send_message(SOS_CHAT, "x" * 4097, parse_mode=None)
    assert too_long.reason is Reason.TOO_LONG
    assert telegram_client.send_message(-1009999, "x").reason is Reason.CHAT_NOT_FOUND
    telegram_api.block_chat(ULIXAI_CHAT)
    blocked = telegram_client.send_message(ULIXAI_CHAT, "x")
    assert (blocked.outcome, blocked.reason, blocked.status_code) == (Outcome.PERMANENT, Reason.FORBIDDEN, 403)
    assert telegram_api.all_messages() == []


def test_a_migrated_group_reports_its_new_id(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient
) -> None:
    telegram_api.add_chat(-4242, title="old group")
    telegram_api.migrate_chat(-4242, -1004242424242)
    result = telegram_client.send_message(-4242, "x")
    assert (result.reason, result.migrate_to_chat_id) == (Reason.CHAT_MIGRATED, -1004242424242)
    assert telegram_client.send_message(result.migrate_to_chat_id, "x").delivered


def test_channel_usernames_work(telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient) -> None:
    assert telegram_client.send_message("@ee_admins", "x").delivered
    assert len(telegram_api.messages(ADMIN_CHAT)) == 1


def test_wrong_token_and_wrong_base_url(telegram_api: TelegramBotApiStandIn) -> None:
    other_token = make_token()
    with TelegramBotClient(other_token, api_base=telegram_api.base_url, trust_env=False) as client:
        result = client.send_message(SOS_CHAT, "x")
        assert (result.outcome, result.reason, result.description) == (
            Outcome.PERMANENT,
            Reason.UNAUTHORIZED,
            "Unauthorized",
        )
        assert client.get_me().reason is Reason.UNAUTHORIZED
    with TelegramBotClient(telegram_api.token, api_base=telegram_api.base_url + "/v2", trust_env=False) as client:
        assert client.send_message(SOS_CHAT, "x").reason is Reason.NOT_FOUND


def test_get_me_checks_the_token(telegram_client: TelegramBotClient) -> None:
    assert telegram_client.get_me().delivered


def test_silent_delivery(telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient) -> None:
    [part] = render_alert_parts(
        Alert.create(
            tenant="sos-expat",
            severity="info",
            dedup_key="k",
            title="Warmup advanced",
            source="ip-pool",
            occurred_at=FakeClock().now(),
        )
    )
    assert telegram_client.send_parts(SOS_CHAT, [part], silent=True).complete
    assert telegram_api.messages(SOS_CHAT)[0].disable_notification


def test_parts_resume_where_they_stopped(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, clock: FakeClock
) -> None:
    parts = render_alert_parts(listing_alert(clock, text="word " * 2500))
    assert len(parts) == 4
    delivered_first = telegram_client.send_parts(SOS_CHAT, parts[:1])
    assert delivered_first.sent == 1
    telegram_api.fail_next(1, status=502)
    stopped = telegram_client.send_parts(SOS_CHAT, parts, already_sent=1)
    assert (stopped.sent, stopped.last.reason, stopped.complete) == (1, Reason.SERVER_ERROR, False)
    resumed = telegram_client.send_parts(SOS_CHAT, parts, already_sent=stopped.sent)
    assert resumed.complete and resumed.sent == 4
    assert [m.text.rsplit("\n", 1)[1] for m in telegram_api.messages(SOS_CHAT)] == ["(1/4)", "(2/4)", "(3/4)", "(4/4)"]


def test_bad_formatting_falls_back_to_plain_text_once(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient
) -> None:
    broken = MessagePart(html="<b>unclosed", plain="<b>unclosed", index=1, total=1)
    result = telegram_client.send_parts(SOS_CHAT, [broken])
    assert result.complete and result.fell_back_to_plain
    [message] = telegram_api.messages(SOS_CHAT)
    assert message.parse_mode is None and message.text == "<b>unclosed"
    no_fallback = telegram_client.send_parts(SOS_CHAT, [broken], plain_fallback=False)
    assert no_fallback.last.reason is Reason.BAD_FORMATTING and no_fallback.sent == 0


def test_the_token_never_reaches_the_logs(
    telegram_api: TelegramBotApiStandIn, telegram_client: TelegramBotClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        telegram_client.send_message(SOS_CHAT, "x")
        telegram_api.drop_next(1)
        telegram_client.send_message(SOS_CHAT, "x")
    assert "sendMessage" in caplog.text  # httpx did log the request line…
    assert telegram_api.token not in caplog.text  # …without the token
    assert telegram_api.token.split(":")[1] not in caplog.text
    assert "<redacted>" in caplog.text


def test_the_stand_in_accepts_form_query_and_multipart_bodies(telegram_api: TelegramBotApiStandIn) -> None:
    url = f"{telegram_api.base_url}/bot{telegram_api.token}/sendMessage"
    with httpx.Client(trust_env=False) as http:
        form = http.post(
            url,
            data={
                "chat_id": str(SOS_CHAT),
                "text": "<i>form</i> &amp;",
                "parse_mode": "HTML",
                "link_preview_options": '{"is_disabled": true}',
                "disable_notification": "true",
            },
        )
        query = http.get(url, params={"chat_id": str(SOS_CHAT), "text": "query"})
        multipart = http.post(url, files={"chat_id": (None, str(SOS_CHAT)), "text": (None, "multipart")})
        not_json = http.post(url, content=b"{oops", headers={"Content-Type": "application/json"})
    assert form.status_code == 200 and form.json()["result"]["text"] == "form &"
    assert query.status_code == 200 and multipart.status_code == 200
    assert not_json.status_code == 400 and not_json.json()["ok"] is False
    form_message = telegram_api.messages(SOS_CHAT)[0]
    assert form_message.link_preview_disabled and form_message.disable_notification
    assert [m.text for m in telegram_api.messages(SOS_CHAT)] == ["form &", "query", "multipart"]
