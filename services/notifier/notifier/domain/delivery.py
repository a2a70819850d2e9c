"""What an answer from Telegram or a webhook means for the outbox: done, wait, retry, or give up.

The HTTP status and `parameters` decide (the Bot API says its `error_code` equals the HTTP status,
"subject to change"); `description` only picks the sub-case, so a reworded message cannot turn a
permanent failure into an endless retry.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RATE_LIMITED = "rate_limited"  # retry after `retry_after` seconds, not before
    RETRYABLE = "retryable"  # 5xx, timeout, network: back off and try again
    PERMANENT = "permanent"  # retrying the same request cannot help; report it


class Reason(StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NETWORK = "network"
    UNEXPECTED_ANSWER = "unexpected_answer"
    BAD_FORMATTING = "bad_formatting"  # 400 can't parse entities: resend as plain text, or report
    TOO_LONG = "too_long"
    EMPTY_TEXT = "empty_text"
    CHAT_NOT_FOUND = "chat_not_found"
    CHAT_MIGRATED = "chat_migrated"  # resend once to `migrate_to_chat_id` and report the config change
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"  # token invalid or revoked: alarm
    FORBIDDEN = "forbidden"  # bot blocked, kicked, not a member: permanent for that chat
    NOT_FOUND = "not_found"  # malformed token or wrong base URL: configuration error
    REJECTED = "rejected"  # any other 4xx
    REFUSED = "refused"  # the destination is one the platform never calls (loopback, private, metadata, ...)


@dataclass(frozen=True)
class DeliveryResult:
    """The classified answer to one send. `description` never contains a secret (adapters redact it)."""

    outcome: Outcome
    reason: Reason
    status_code: int | None = None
    description: str = ""
    retry_after: float | None = None
    message_id: int | None = None
    migrate_to_chat_id: int | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED

    @property
    def should_retry(self) -> bool:
        return self.outcome in (Outcome.RATE_LIMITED, Outcome.RETRYABLE)


@dataclass(frozen=True)
class PartsResult:
    """Outcome of sending a message's parts in order: `sent` parts are done, resume from there."""

    sent: int
    last: DeliveryResult
    message_ids: tuple[int, ...] = ()
    fell_back_to_plain: bool = False

    @property
    def complete(self) -> bool:
        return self.last.delivered


_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?)", re.IGNORECASE)
_MAX_DESCRIPTION = 500


def _seconds(value: object) -> float | None:
    """A peer's wait in seconds: a non-negative number (infinity kept: the retry policy bounds it), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return None if math.isnan(seconds) or seconds < 0 else seconds


def _decode_json_object(body: bytes | str | None) -> dict[str, object] | None:
    if body is None:
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def classify_bot_api_answer(
    status_code: int, body: bytes | str | None, *, expect_message: bool = True
) -> DeliveryResult:
    """Classify one Bot API HTTP answer (status + raw body). Non-JSON bodies (a proxy's 502 page) are fine.

    `expect_message`: the call returns a Message (sendMessage), whose `message_id` is reported.
    """
    envelope = _decode_json_object(body)
    description = ""
    parameters: dict[str, object] = {}
    error_code = status_code
    if envelope is not None:
        description = str(envelope.get("description", ""))[:_MAX_DESCRIPTION]
        raw_parameters = envelope.get("parameters")
        if isinstance(raw_parameters, dict):
            parameters = raw_parameters
        if envelope.get("ok") is True and 200 <= status_code < 300:
            if not expect_message:
                return DeliveryResult(Outcome.DELIVERED, Reason.OK, status_code)
            result = envelope.get("result")
            message_id = result.get("message_id") if isinstance(result, dict) else None
            if not isinstance(message_id, int) or isinstance(message_id, bool):
                # Telegram said ok but we cannot prove it: at-least-once would resend; say so instead.
                return DeliveryResult(Outcome.DELIVERED, Reason.OK, status_code, "ok without message_id")
            return DeliveryResult(Outcome.DELIVERED, Reason.OK, status_code, message_id=message_id)
        code = envelope.get("error_code")
        if isinstance(code, int) and not isinstance(code, bool) and envelope.get("ok") is False:
            error_code = code
    elif 200 <= status_code < 300:
        return DeliveryResult(Outcome.RETRYABLE, Reason.UNEXPECTED_ANSWER, status_code, "2xx without a JSON envelope")
    else:
        description = f"HTTP {status_code} without a Bot API envelope"

    def result(
        outcome: Outcome, reason: Reason, *, retry_after: float | None = None, migrate_to_chat_id: int | None = None
    ) -> DeliveryResult:
        return DeliveryResult(
            outcome, reason, status_code, description, retry_after=retry_after, migrate_to_chat_id=migrate_to_chat_id
        )

    if error_code == 429:
        retry_after = _seconds(parameters.get("retry_after"))
        if retry_after is None and (match := _RETRY_AFTER_TEXT.search(description)):
            retry_after = float(match.group(1))
        return result(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, retry_after=retry_after)
    if error_code >= 500 or status_code >= 500:
        return result(Outcome.RETRYABLE, Reason.SERVER_ERROR)
    if error_code == 400:
        migrate_to = parameters.get("migrate_to_chat_id")
        if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
            return result(Outcome.PERMANENT, Reason.CHAT_MIGRATED, migrate_to_chat_id=migrate_to)
        lowered = description.lower()
        for needle, reason in (
            ("can't parse entities", Reason.BAD_FORMATTING),
            ("message is too long", Reason.TOO_LONG),
            ("text is too long", Reason.TOO_LONG),
            ("message text is empty", Reason.EMPTY_TEXT),
            ("chat not found", Reason.CHAT_NOT_FOUND),
        ):
            if needle in lowered:
                return result(Outcome.PERMANENT, reason)
        return result(Outcome.PERMANENT, Reason.BAD_REQUEST)
    if error_code == 401:
        return result(Outcome.PERMANENT, Reason.UNAUTHORIZED)
    if error_code == 403:
        return result(Outcome.PERMANENT, Reason.FORBIDDEN)
    if error_code == 404:
        return result(Outcome.PERMANENT, Reason.NOT_FOUND)
    if error_code == 408:
        return result(Outcome.RETRYABLE, Reason.TIMEOUT)
    if envelope is None or envelope.get("ok") is not False:
        # Neither success nor a Bot API error: a proxy or something else answered.
        if 400 <= status_code < 500:
            return result(Outcome.PERMANENT, Reason.REJECTED)
        return result(Outcome.RETRYABLE, Reason.UNEXPECTED_ANSWER)
    return result(Outcome.PERMANENT, Reason.REJECTED)


def parse_retry_after_header(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: a number, or an HTTP date counted from `now` (a date in the past is 0).

    None for what cannot be read (the retry policy's own backoff applies) and for a date without `now`.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return _seconds(float(text))
    except ValueError:
        pass
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
        when = when.replace(tzinfo=now.tzinfo)
    return max(0.0, (when - now).total_seconds())


def classify_webhook_answer(
    status_code: int, retry_after_header: str | None = None, *, now: datetime | None = None
) -> DeliveryResult:
    """Like Alertmanager's own sender: 2xx delivered; 408/429/5xx retried; other statuses permanent.

    Redirects count as permanent: the signed request is not replayed to a place nobody configured.
    """
    if 200 <= status_code < 300:
        return DeliveryResult(Outcome.DELIVERED, Reason.OK, status_code)
    if status_code == 429:
        return DeliveryResult(
            Outcome.RATE_LIMITED,
            Reason.RATE_LIMITED,
            status_code,
            "429 Too Many Requests",
            retry_after=parse_retry_after_header(retry_after_header, now=now),
        )
    if status_code == 408:
        return DeliveryResult(Outcome.RETRYABLE, Reason.TIMEOUT, status_code, "408 Request Timeout")
    if status_code >= 500:
        return DeliveryResult(Outcome.RETRYABLE, Reason.SERVER_ERROR, status_code, f"HTTP {status_code}")
    reason = {401: Reason.UNAUTHORIZED, 403: Reason.FORBIDDEN, 404: Reason.NOT_FOUND}.get(
        status_code, Reason.BAD_REQUEST if status_code == 400 else Reason.REJECTED
    )
    return DeliveryResult(Outcome.PERMANENT, reason, status_code, f"HTTP {status_code}")


def transport_failure(reason: Reason, description: str) -> DeliveryResult:
    """A send that got no HTTP answer: retryable (it may have arrived: delivery is at least once)."""
    return DeliveryResult(Outcome.RETRYABLE, reason, None, description[:_MAX_DESCRIPTION])
