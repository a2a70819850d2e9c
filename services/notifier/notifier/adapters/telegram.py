"""Telegram Bot API client: one sendMessage per call, answer classified, token never shown.

The token is part of the request path (`/bot<token>/sendMessage`), so it would leak through any URL
that gets logged or put in an error: this module keeps it in a `BotToken` whose repr hides it,
redacts it from every error text it returns, and filters it out of httpx's own request log.
It does not sleep or retry: the outbox worker owns timing (RetryPolicy), this only reports.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

import httpx

from libs.errors import InvalidArgument
from notifier.domain.delivery import (
    DeliveryResult,
    PartsResult,
    Reason,
    classify_bot_api_answer,
    transport_failure,
)
from notifier.domain.routing import parse_chat_id
from notifier.domain.telegram_text import MessagePart

DEFAULT_API_BASE = "https://api.telegram.org"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
REDACTED = "<redacted>"

TOKEN_PATTERN = re.compile(r"^(\d{1,20}):([A-Za-z0-9_-]{30,64})$")
_MAX_RESPONSE_BYTES = 1 << 20


class _RedactSecretsFilter(logging.Filter):
    """Rewrites log records that mention a registered secret (httpx logs every request URL at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, secret: str) -> None:
        with self._lock:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_LOG_FILTER = _RedactSecretsFilter()
for _logger_name in ("httpx", "httpcore"):
    logging.getLogger(_logger_name).addFilter(_LOG_FILTER)


class BotToken:
    """The bot token as a secret: `repr`/`str` show the bot id only; `reveal()` is the one way out."""

    __slots__ = ("_bot_id", "_value")

    def __init__(self, value: str):
        match = TOKEN_PATTERN.match(value.strip())
        if not match:
            # Never echo the value: a token pasted with a typo is still mostly a secret.
            raise InvalidArgument("telegram.bot_token", "must look like <bot id>:<secret> as BotFather issues it")
        self._value = value.strip()
        self._bot_id = match.group(1)
        _LOG_FILTER.register(self._value)

    @property
    def bot_id(self) -> int:
        return int(self._bot_id)

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        return text.replace(self._value, REDACTED).replace(self._value.split(":", 1)[1], REDACTED)

    def __repr__(self) -> str:
        return f"BotToken('{self._bot_id}:{REDACTED}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BotToken) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("BotToken is not picklable: pass it through configuration, not job arguments")


def normalize_api_base(api_base: str) -> str:
    base = api_base.strip().rstrip("/")
    if not re.match(r"^https?://[^\s/?#]+(?:/[^\s?#]*)?$", base):
        raise InvalidArgument("telegram.api_base", "must be an http(s) URL without query or fragment")
    return base


class TelegramBotClient:
    """Synchronous Bot API client (the delivery job is an RQ job). Thread-safe like httpx.Client."""

    def __init__(
        self,
        token: BotToken | str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        trust_env: bool = True,
    ):
        self._token = token if isinstance(token, BotToken) else BotToken(token)
        self.api_base = normalize_api_base(api_base)
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=trust_env,
            headers={"User-Agent": "email-engine-notifier/1"},
        )

    def __repr__(self) -> str:
        return f"TelegramBotClient(api_base={self.api_base!r}, token={self._token!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TelegramBotClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _method_url(self, method: str) -> str:
        return f"{self.api_base}/bot{self._token.reveal()}/{method}"

    def _call(self, method: str, payload: Mapping[str, object]) -> DeliveryResult:
        try:
            response = self._http.post(self._method_url(method), json=payload)
            body = response.content[:_MAX_RESPONSE_BYTES]
        except httpx.TimeoutException:
            return transport_failure(Reason.TIMEOUT, "no answer from the Bot API in time")
        except httpx.HTTPError:  # connection refused/reset, protocol errors: their details describe our network
            return transport_failure(Reason.NETWORK, "the Bot API could not be reached")
        result = classify_bot_api_answer(response.status_code, body)
        return _with_description(result, self._token.redact(result.description))

    def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        parse_mode: str | None = "HTML",
        disable_notification: bool = False,
        message_thread_id: int | None = None,
    ) -> DeliveryResult:
        """One sendMessage, link previews off (alerts carry URLs that should not unfurl)."""
        try:
            chat = parse_chat_id(chat_id)
        except ValueError as exc:
            raise InvalidArgument("chat_id", str(exc)) from None
        payload: dict[str, object] = {
            "chat_id": chat,
            "text": text,
            "link_preview_options": {"is_disabled": True},
        }
        if parse_mode is not None:
            payload["parse_mode"] = parse_mode
        if disable_notification:
            payload["disable_notification"] = True
        if message_thread_id is not None:
            payload["message_thread_id"] = message_thread_id
        return self._call("sendMessage", payload)

    def send_part(self, chat_id: int | str, part: MessagePart, *, silent: bool = False) -> DeliveryResult:
        return self.send_message(chat_id, part.html, parse_mode="HTML", disable_notification=silent)

    def send_parts(
        self,
        chat_id: int | str,
        parts: Sequence[MessagePart],
        *,
        already_sent: int = 0,
        silent: bool = False,
        plain_fallback: bool = True,
    ) -> PartsResult:
        """Send parts `already_sent`… in order, stopping at the first failure so a retry resumes there
        and parts already in the chat are not sent twice. A 400 "can't parse entities" is resent once
        as plain text (when `plain_fallback`) and reported through `fell_back_to_plain`."""
        if not parts:
            raise ValueError("nothing to send")
        if not 0 <= already_sent < len(parts):
            raise ValueError("already_sent must be in [0, len(parts))")
        message_ids: list[int] = []
        fell_back = False
        last: DeliveryResult | None = None
        sent = already_sent
        for part in parts[already_sent:]:
            last = self.send_part(chat_id, part, silent=silent)
            if last.reason is Reason.BAD_FORMATTING and plain_fallback:
                fell_back = True
                last = self.send_message(chat_id, part.plain, parse_mode=None, disable_notification=silent)
            if not last.delivered:
                break
            sent += 1
            if last.message_id is not None:
                message_ids.append(last.message_id)
        assert last is not None
        return PartsResult(sent=sent, last=last, message_ids=tuple(message_ids), fell_back_to_plain=fell_back)

    def get_me(self) -> DeliveryResult:
        """Cheap token check for readiness probes: DELIVERED means the token works."""
        try:
            response = self._http.get(self._method_url("getMe"))
        except httpx.TimeoutException:
            return transport_failure(Reason.TIMEOUT, "no answer from the Bot API in time")
        except httpx.HTTPError:
            return transport_failure(Reason.NETWORK, "the Bot API could not be reached")
        result = classify_bot_api_answer(
            response.status_code, response.content[:_MAX_RESPONSE_BYTES], expect_message=False
        )
        return _with_description(result, self._token.redact(result.description))


def _with_description(result: DeliveryResult, description: str) -> DeliveryResult:
    return DeliveryResult(
        result.outcome,
        result.reason,
        result.status_code,
        description,
        retry_after=result.retry_after,
        message_id=result.message_id,
        migrate_to_chat_id=result.migrate_to_chat_id,
    )
