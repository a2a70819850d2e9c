"""Signed bounce-forwarding webhooks, sent through the guarded outbound client (user-supplied URLs).

The signature is the notifier's scheme, header for header, so a receiver verifies both the same way:

    X-EmailEngine-Timestamp: <unix seconds when the request was signed>
    X-EmailEngine-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>
    X-EmailEngine-Delivery:  <delivery id, stable across retries: drop duplicates with it>

The signer is repeated here (a few lines) rather than imported from the notifier: services share no code but
`libs/`, and moving it there is the platform's call.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from libs.outbound import GuardedClient, OutboundError, origin_of

SIGNATURE_HEADER = "X-EmailEngine-Signature"
TIMESTAMP_HEADER = "X-EmailEngine-Timestamp"
DELIVERY_HEADER = "X-EmailEngine-Delivery"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True)
class WebhookAnswer:
    delivered: bool
    status_code: int | None
    error: str


class BounceWebhookSender:
    def __init__(self, client: GuardedClient):
        self._client = client

    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, now: datetime) -> WebhookAnswer:
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: delivery_id,
        }
        try:
            answer = self._client.request("POST", url, headers=headers, content=body)
        except OutboundError as exc:
            return WebhookAnswer(False, None, str(exc))
        if 200 <= answer.status_code < 300:
            return WebhookAnswer(True, answer.status_code, "")
        return WebhookAnswer(False, answer.status_code, f"HTTP {answer.status_code} from {origin_of(url)}")
