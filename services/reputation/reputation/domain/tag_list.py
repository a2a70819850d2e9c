"""Tag lists: the `name=value; name=value` syntax of DKIM key records (RFC 6376 §3.2), which DMARC policy
records reuse (RFC 7489 §6.4). The one place such a list is split; each record type judges its own tags."""

from __future__ import annotations

from typing import Literal


class TagListError(ValueError):
    """The text is not a tag list."""


def parse_tag_list(text: str, *, duplicates: Literal["reject", "keep_first"] = "reject") -> dict[str, str]:
    """The tags in the order written: names lower-cased, values without surrounding white space.

    Empty parts (`a=1;;b=2;`) are allowed. A part without `=` is an error, and so is a repeated name unless
    `duplicates="keep_first"` (receivers of DMARC records take the first).
    """
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise TagListError(f"malformed tag {part[:40]!r} (expected name=value)")
        name, value = (piece.strip() for piece in part.split("=", 1))
        name = name.lower()
        if name in tags:
            if duplicates == "reject":
                raise TagListError(f"tag {name}= appears twice")
            continue
        tags[name] = value
    return tags
