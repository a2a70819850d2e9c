"""Classification of Bot API and webhook answers: status + parameters decide, description picks sub-cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from notifier.domain.delivery import (
    Outcome,
    Reason,
    classify_bot_api_answer,
    classify_webhook_answer,
    parse_retry_after_header,
)


def error(code: int, description: str, **parameters: object) -> bytes:
    body: dict[str, object] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json.dumps(body).encode()


def test_ok_with_message_id() -> None:
    result = classify_bot_api_answer(200, b'{"ok":true,"result":{"message_id":42,"date":1,"chat":{"id":1}}}')
    assert result.delivered and result.message_id == 42 and not result.should_retry


def test_ok_for_a_method_without_a_message() -> None:
    assert classify_bot_api_answer(200, b'{"ok":true,"result":{"id":1}}', expect_message=False).delivered


def test_429_honours_parameters_retry_after() -> None:
    result = classify_bot_api_answer(429, error(429, "Too Many Requests: retry after 7", retry_after=7))
    assert (result.outcome, result.reason, result.retry_after) == (Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 7.0)


def test_429_falls_back_to_the_description() -> None:
    assert classify_bot_api_answer(429, error(429, "Too Many Requests: retry after 3")).retry_after == 3.0
    assert classify_bot_api_answer(429, error(429, "Too Many Requests")).retry_after is None


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ('Bad Request: can\'t parse entities: Unsupported start tag "br" at byte offset 12', Reason.BAD_FORMATTING),
        ("Bad Request: message is too long", Reason.TOO_LONG),
        ("Bad Request: text is too long", Reason.TOO_LONG),
        ("Bad Request: message text is empty", Reason.EMPTY_TEXT),
        ("Bad Request: chat not found", Reason.CHAT_NOT_FOUND),
        ("Bad Request: message thread not found", Reason.BAD_REQUEST),
    ],
)
def test_400s_are_permanent_with_a_reason(description: str, reason: Reason) -> None:
    result = classify_bot_api_answer(400, error(400, description))
    assert (result.outcome, result.reason, result.description) == (Outcome.PERMANENT, reason, description)
    assert not result.should_retry


def test_group_migration_carries_the_new_chat_id() -> None:
    body = error(400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1001234567890)
    result = classify_bot_api_answer(400, body)
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, Reason.CHAT_MIGRATED)
    assert result.migrate_to_chat_id == -1001234567890


@pytest.mark.parametrize(
    ("code", "description", "reason"),
    [
        (401, "Unauthorized", Reason.UNAUTHORIZED),
        (403, "Forbidden: bot was blocked by the user", Reason.FORBIDDEN),
        (403, "Forbidden: bot was kicked from the supergroup chat", Reason.FORBIDDEN),
        (404, "Not Found", Reason.NOT_FOUND),
        (409, "Conflict: terminated by other getUpdates request", Reason.REJECTED),
    ],
)
def test_other_4xx_are_permanent(code: int, description: str, reason: Reason) -> None:
    result = classify_bot_api_answer(code, error(code, description))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, reason)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, error(500, "Internal Server Error")),
        (502, b"<html><head><title>502 Bad Gateway</title></head></html>"),
        (504, b""),
        (503, None),
    ],
)
def test_5xx_are_retryable_whatever_the_body(status: int, body: bytes | None) -> None:
    result = classify_bot_api_answer(status, body)
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.SERVER_ERROR)
    assert result.should_retry


def test_the_envelope_error_code_wins_over_a_200_status() -> None:
    assert classify_bot_api_answer(200, error(429, "Too Many Requests", retry_after=2)).retry_after == 2.0


def test_a_2xx_without_envelope_is_retried_not_assumed_delivered() -> None:
    result = classify_bot_api_answer(200, b"<html>captive portal</html>")
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.UNEXPECTED_ANSWER)


def test_a_proxy_4xx_without_envelope_is_permanent() -> None:
    result = classify_bot_api_answer(407, b"Proxy Authentication Required")
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, Reason.REJECTED)


def test_408_is_retryable() -> None:
    assert classify_bot_api_answer(408, b"").outcome is Outcome.RETRYABLE


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (301, Outcome.PERMANENT),
        (400, Outcome.PERMANENT),
        (410, Outcome.PERMANENT),
        (408, Outcome.RETRYABLE),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.RETRYABLE),
        (503, Outcome.RETRYABLE),
    ],
)
def test_webhook_answers(status: int, outcome: Outcome) -> None:
    assert classify_webhook_answer(status).outcome is outcome


def test_webhook_retry_after_header() -> None:
    assert classify_webhook_answer(429, "5").retry_after == 5.0
    assert classify_webhook_answer(429, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None
    assert parse_retry_after_header("-1") is None
    assert parse_retry_after_header(None) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("inf", float("inf")),  # kept as asked: the retry policy bounds it by the give-up time
        ("1e12", 1e12),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 251635075199.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now (the backoff still spaces retries)
        ("Thu, 01 Jan 2026 00:00:10 GMT", 10.0),
    ],
)
def test_a_webhook_retry_after_of_any_form_is_read_without_overflowing(header: str, seconds: float | None) -> None:
    assert parse_retry_after_header(header, now=datetime(2026, 1, 1, tzinfo=UTC)) == seconds


@pytest.mark.parametrize("raw", [b"Infinity", b"1e999", b"NaN", b"-5", b'"7"', b"1e12"])
def test_a_telegram_retry_after_of_any_value_is_read_without_overflowing(raw: bytes) -> None:
    body = b'{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":' + raw + b"}}"
    result = classify_bot_api_answer(429, body)
    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after is None or result.retry_after >= 0
