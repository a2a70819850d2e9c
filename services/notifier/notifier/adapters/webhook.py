"""Generic webhooks: a JSON body, signed so the receiver knows it is ours and fresh (the platform's one scheme,
documented for receivers in `libs.webhook_signing`).

Requests go through the platform's guarded outbound client (`libs.outbound`): the name is resolved and every
address checked at connect time (loopback, private, link-local and metadata addresses and the platform's own
ports are refused unless an operator allowed the network), one deadline covers the whole call, the answer is
capped, redirects are not followed. What a delivery records of a failure names its kind only, never an
address, a host or a connection error's details: a route must not become a probe of the internal network.

Like the Telegram client, this sends once and reports; the outbox worker decides about retries.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from libs import webhook_signing as signing
from libs.errors import InvalidArgument
from libs.outbound import (
    DestinationRefused,
    GuardedClient,
    OutboundPolicy,
    OutboundTimeout,
    ResponseTooLarge,
    check_url,
)
from libs.webhook_signing import DEFAULT_TOLERANCE
from notifier.domain.alert import Alert, require_aware
from notifier.domain.delivery import (
    DeliveryResult,
    Outcome,
    Reason,
    classify_webhook_answer,
    transport_failure,
)
from notifier.domain.webhook_payload import webhook_body, webhook_secret_problem

USER_AGENT = "email-engine-notifier/1"
# A receiver's answer is not read (only its status is); more than this is a misbehaving receiver.
MAX_ANSWER_BYTES = 64 << 10

_DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class WebhookSecret:
    """The shared signing key; never shown by repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if (problem := webhook_secret_problem(raw)) is not None:
            raise InvalidArgument("webhook.secret", problem)
        self._value = raw

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "WebhookSecret('<redacted>')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("WebhookSecret is not picklable")


def _key(secret: WebhookSecret | bytes | str) -> bytes:
    return secret.reveal() if isinstance(secret, WebhookSecret) else WebhookSecret(secret).reveal()


def sign(secret: WebhookSecret | bytes | str, timestamp: int, body: bytes) -> str:
    """The X-EmailEngine-Signature value for this timestamp and body."""
    return signing.sign(_key(secret), timestamp, body)


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
    return signing.verify_signature(
        _key(secret),
        body,
        signature_header=signature_header,
        timestamp_header=timestamp_header,
        now=now,
        tolerance=tolerance,
    )


class WebhookDestinations:
    """Checks a webhook URL when a route is created: resolved once, so that a URL leading to the platform or the
    internal network is refused with a clear error naming the field. The connect-time check of each send
    (`GuardedClient`) stays the real guard: a name may resolve elsewhere later."""

    def __init__(
        self, policy: OutboundPolicy, resolve: Callable[..., list[tuple[Any, ...]]] = socket.getaddrinfo
    ) -> None:
        self._policy = policy
        self._resolve = resolve

    def refusal(self, url: str) -> str | None:
        if (problem := check_url(url)) is not None:
            return problem
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None  # not resolvable now: nothing to tell; sends are checked when they connect
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if self._policy.refusal(address, port) is not None:
                # Which kind of address is not said: the answer would map the internal network.
                return (
                    "must lead to a public address: loopback, private, link-local and metadata addresses and "
                    "the platform's own ports are refused"
                )
        return None


class WebhookSender:
    """Signed webhooks over the process's guarded client; redirects are not followed (see classify_webhook_answer)."""

    def __init__(self, client: GuardedClient, *, deadline_seconds: float):
        self._client = client
        self._deadline = min(deadline_seconds, client.policy.deadline_seconds)

    @property
    def deadline_seconds(self) -> float:
        return self._deadline

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, secret: WebhookSecret, body: bytes, *, delivery_id: str, now: datetime) -> DeliveryResult:
        """POST `body` signed at `now` (the worker's clock, so tests control it)."""
        require_aware(now, "now")
        if not _DELIVERY_ID_PATTERN.match(delivery_id):
            raise InvalidArgument("delivery_id", "must be 1-128 characters of letters, digits, '-', '_', '.', ':'")
        headers = {
            "User-Agent": USER_AGENT,
            **signing.signed_headers(secret.reveal(), body, delivery_id=delivery_id, now=now),
        }
        try:
            response = self._client.request(
                "POST",
                url,
                headers=headers,
                content=body,
                deadline_seconds=self._deadline,
                max_response_bytes=MAX_ANSWER_BYTES,
            )
        except DestinationRefused:
            return DeliveryResult(
                Outcome.PERMANENT, Reason.REFUSED, None, "the destination is not a public address: not sent"
            )
        except OutboundTimeout:
            return transport_failure(Reason.TIMEOUT, f"no complete answer within {self._deadline:g} s")
        except ResponseTooLarge:
            return transport_failure(Reason.UNEXPECTED_ANSWER, f"an answer larger than {MAX_ANSWER_BYTES} bytes")
        except Exception:  # any other failure to reach it: its details would describe the network
            return transport_failure(Reason.NETWORK, "the destination could not be reached")
        retry_after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        return classify_webhook_answer(response.status_code, retry_after, now=now)

    def send_alerts(
        self, url: str, secret: str, alerts: Sequence[Alert], *, delivery_id: str, now: datetime
    ) -> DeliveryResult:
        body = webhook_body(alerts, delivery_id=delivery_id)
        return self.send(url, WebhookSecret(secret), body, delivery_id=delivery_id, now=now)
