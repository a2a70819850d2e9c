"""Where a page of a list call ended, read back from the opaque token this service handed out (AIP-158).

A token is the caller's to return, not to build: anything this service could not have written (another
shape, a key that no row can have, a number out of range) is InvalidArgument naming `page_token`, never a
query that the database refuses.
"""

from __future__ import annotations

from libs.errors import InvalidArgument
from libs.pagination import decode_token, encode_token

MAX_KEY_LENGTH = 253  # the longest key a listed row has (a schedule id, tenant id or address is shorter)
MAX_ROW_ID = 2**63 - 1


def _not_ours() -> InvalidArgument:
    return InvalidArgument("page_token", "is not a token this API returned")


def after_key(token: str) -> str | None:
    """The key the previous page ended at; None for the first page."""
    position = decode_token(token)
    if not position:
        return None
    key = position.get("after", "")
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise _not_ours()
    return key


def before_id(token: str) -> int | None:
    """The row id the previous (newest-first) page ended at; None for the first page."""
    position = decode_token(token)
    if not position:
        return None
    row_id = position.get("before")
    if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 < row_id <= MAX_ROW_ID:
        raise _not_ours()
    return row_id


def token_after(key: str) -> str:
    return encode_token({"after": key})


def token_before(row_id: int) -> str:
    return encode_token({"before": row_id})
