"""Opaque page tokens (AIP-158): the caller gets them back, never builds them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from libs.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
        if not isinstance(position, dict):
            raise ValueError
        return position
    except ValueError:
        raise InvalidArgument("page_token", "is not a token this API returned") from None


@dataclass(frozen=True)
class TimePosition:
    """Where a newest-first page ended: the last item's time and id (keyset pagination)."""

    time: datetime
    id: str

    def encode(self) -> str:
        return encode_token({"t": self.time.isoformat(), "i": self.id})

    @classmethod
    def decode(cls, token: str) -> TimePosition | None:
        """None for the first page; InvalidArgument for anything this API did not hand out."""
        position = decode_token(token)
        if position is None:
            return None
        try:
            when = datetime.fromisoformat(position["t"])
            item_id = position["i"]
            if not isinstance(item_id, str) or when.tzinfo is None:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument("page_token", "is not a token this API returned") from None
        return cls(when, item_id)
