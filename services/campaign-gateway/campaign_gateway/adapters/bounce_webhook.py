"""Signed bounce-forwarding webhooks, sent through the guarded outbound client (user-supplied URLs).

Signed as every webhook of the platform is (`libs.webhook_signing`), so a receiver verifies alerts and bounces the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.outbound import GuardedClient, OutboundError, origin_of
from libs.webhook_signing import signed_headers


@dataclass(frozen=True)
class WebhookAnswer:
    delivered: bool
    status_code: int | None
    error: str


class BounceWebhookSender:
    def __init__(self, client: GuardedClient):
        self._client = client

    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, now: datetime) -> WebhookAnswer:
        headers = signed_headers(secret.encode("utf-8"), body, delivery_id=delivery_id, now=now)
        try:
            answer = self._client.request("POST", url, headers=headers, content=body)
        except OutboundError as exc:
            return WebhookAnswer(False, None, str(exc))
        if 200 <= answer.status_code < 300:
            return WebhookAnswer(True, answer.status_code, "")
        return WebhookAnswer(False, answer.status_code, f"HTTP {answer.status_code} from {origin_of(url)}")
