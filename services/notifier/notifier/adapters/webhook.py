"""Generic webhooks: a JSON body, signed so the receiver knows it is ours and fresh.

Signature scheme (documented for receivers):

    X-EmailEngine-Timestamp: <unix seconds when the request was signed>
    X-EmailEngine-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>
    X-EmailEngine-Delivery:  <delivery id, stable across retries: drop duplicates with it>

To verify: recompute the HMAC over the timestamp header, a ".", and the body bytes exactly as received
(before any JSON parsing), compare in constant time, and reject timestamps more than 5 minutes from
your clock. The timestamp is inside the signed string, so an old request cannot be replayed with a
new timestamp. Each retry is signed again with its own timestamp. `verify_signature` does all this.

Like the Telegram client, this sends once and reports; the outbox worker decides about retries.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from libs.errors import InvalidArgument
from notifier.domain.alert import Alert, require_aware
from notifier.domain.delivery import DeliveryResult, Reason, classify_webhook_answer, transport_failure
from notifier.domain.webhook_payload import webhook_body

SIGNATURE_HEADER = "X-EmailEngine-Signature"
TIMESTAMP_HEADER = "X-EmailEngine-Timestamp"
DELIVERY_HEADER = "X-EmailEngine-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = timedelta(minutes=5)
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MIN_SECRET_BYTES = 16

_SIGNATURE_PATTERN = re.compile(r"^sha256=([0-9a-f]{64})$")
_DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class WebhookSecret:
    """The shared signing key; never shown by repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if len(raw) < MIN_SECRET_BYTES:
            raise InvalidArgument("webhook.secret", f"must be at least {MIN_SECRET_BYTES} bytes")
        self._value = raw

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "WebhookSecret('<redacted>')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("WebhookSecret is not picklable")


def signing_input(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def sign(secret: WebhookSecret | bytes | str, timestamp: int, body: bytes) -> str:
    """The X-EmailEngine-Signature value for this timestamp and body."""
    key = secret.reveal() if isinstance(secret, WebhookSecret) else WebhookSecret(secret).reveal()
    return SIGNATURE_PREFIX + hmac.new(key, signing_input(timestamp, body), hashlib.sha256).hexdigest()


def verify_signature(
    secret: WebhookSecret | bytes | str,
    body: bytes,
    *,
    signature_header: str | None,
    timestamp_header: str | None,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> bool:
    """Receiver side: True only for a well-formed, matching, fresh signature."""
    require_aware(now, "now")
    if not signature_header or not timestamp_header or not timestamp_header.isdigit():
        return False
    if not _SIGNATURE_PATTERN.match(signature_header.strip()):
        return False
    timestamp = int(timestamp_header)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature_header.strip())


def safe_origin(url: str) -> str:
    """scheme://host[:port] only: webhook URLs often carry secrets in their path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: WebhookSecret = field(repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise InvalidArgument("webhook.url", "must be an http(s) URL with a host and no credentials")

    def __repr__(self) -> str:
        return f"WebhookTarget(url={safe_origin(self.url)!r}/…, secret=<redacted>)"


class WebhookSender:
    """Synchronous signed-webhook sender; redirects are not followed (see classify_webhook_answer)."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        trust_env: bool = True,
    ):
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=trust_env,
            headers={"User-Agent": "email-engine-notifier/1"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(self, target: WebhookTarget, body: bytes, *, delivery_id: str, now: datetime) -> DeliveryResult:
        """POST `body` signed at `now` (the worker's clock, so tests control it)."""
        require_aware(now, "now")
        if not _DELIVERY_ID_PATTERN.match(delivery_id):
            raise InvalidArgument("delivery_id", "must be 1-128 characters of letters, digits, '-', '_', '.', ':'")
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(target.secret, timestamp, body),
            DELIVERY_HEADER: delivery_id,
        }
        origin = safe_origin(target.url)
        try:
            response = self._http.post(target.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return transport_failure(Reason.TIMEOUT, f"{type(exc).__name__} calling {origin}")
        except httpx.HTTPError as exc:
            return transport_failure(Reason.NETWORK, f"{type(exc).__name__} calling {origin}")
        result = classify_webhook_answer(response.status_code, response.headers.get("Retry-After"))
        return DeliveryResult(
            result.outcome,
            result.reason,
            result.status_code,
            f"{result.description} from {origin}",
            retry_after=result.retry_after,
        )

    def send_alerts(
        self, target: WebhookTarget, alerts: Sequence[Alert], *, delivery_id: str, now: datetime
    ) -> DeliveryResult:
        return self.send(target, webhook_body(alerts, delivery_id=delivery_id), delivery_id=delivery_id, now=now)
