"""How every webhook the platform sends is signed (alerts from the notifier, bounces from the campaign gateway), so
a receiver verifies them all the same way:

    X-EmailEngine-Timestamp: <unix seconds when the request was signed>
    X-EmailEngine-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>
    X-EmailEngine-Delivery:  <delivery id, stable across retries: drop duplicates with it>

To verify: recompute the HMAC over the timestamp header, a ".", and the body bytes exactly as received (before any
JSON parsing), compare in constant time, and reject timestamps more than 5 minutes from your clock. The timestamp is
inside the signed string, so an old request cannot be replayed with a new timestamp. Each retry is signed again with
its own timestamp. `verify_signature` does all this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta

SIGNATURE_HEADER = "X-EmailEngine-Signature"
TIMESTAMP_HEADER = "X-EmailEngine-Timestamp"
DELIVERY_HEADER = "X-EmailEngine-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = timedelta(minutes=5)

_SIGNATURE_PATTERN = re.compile(r"^sha256=([0-9a-f]{64})$")


def signing_input(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The X-EmailEngine-Signature value for this timestamp and body."""
    return SIGNATURE_PREFIX + hmac.new(key, signing_input(timestamp, body), hashlib.sha256).hexdigest()


def signed_headers(key: bytes, body: bytes, *, delivery_id: str, now: datetime) -> dict[str, str]:
    """The headers of one signed JSON delivery, signed at `now`."""
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }


def verify_signature(
    key: bytes,
    body: bytes,
    *,
    signature_header: str | None,
    timestamp_header: str | None,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> bool:
    """Receiver side: True only for a well-formed, matching, fresh signature."""
    if not signature_header or not timestamp_header or not timestamp_header.isdigit():
        return False
    if not _SIGNATURE_PATTERN.match(signature_header.strip()):
        return False
    timestamp = int(timestamp_header)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    return hmac.compare_digest(sign(key, timestamp, body), signature_header.strip())
