"""How answers are shown: tables and field lists a person reads (rich), or the API's JSON untouched (`--json`).

Readable means: enum values without their type prefix (`IP_STATE_WARMING` is "warming"), times in the
operator's time zone with the zone's name on every one (`2026-01-05 10:00:00 CET`; `TZ=UTC` for UTC), durations
in hours and days, rates as percentages. User data is never read as rich markup (a MailWizz tag such as
"[FNAME]" is shown as written).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.gateway import Reply

DASH = "-"
PIPED_WIDTH = 10_000

# Enum values (without prefix) worth a colour on a terminal; plain text elsewhere.
_STYLES = {
    "WARMING": "green",
    "WARM": "green",
    "SERVING": "green",
    "PASS": "green",
    "NOT_LISTED": "green",
    "DELIVERED": "green",
    "SENDING": "green",
    "SENT": "green",
    "HEALTHY": "green",
    "STANDBY": "red",
    "LISTED": "red",
    "FAIL": "red",
    "FAILED": "red",
    "NOT_SERVING": "red",
    "UNHEALTHY": "red",
    "CRITICAL": "red",
    "PAUSED": "yellow",
    "WARN": "yellow",
    "WARNING": "yellow",
    "UNKNOWN": "yellow",
    "PENDING": "yellow",
    "DEGRADED": "yellow",
    "UNREACHABLE": "yellow",
    "ERROR": "yellow",
    "RETIRED": "dim",
    "SUPPRESSED": "dim",
    "SKIPPED": "dim",
}


@cache
def enum_prefixes() -> tuple[str, ...]:
    """Every enum's value prefix in the API (`IP_STATE_`), longest first: buf style names each enum's values
    `<ENUM>_...` with `<ENUM>_UNSPECIFIED = 0`."""
    from emailengine.campaign.v1 import campaign_service_pb2
    from emailengine.ippool.v1 import ippool_service_pb2
    from emailengine.notifier.v1 import notifier_service_pb2
    from emailengine.reputation.v1 import reputation_service_pb2

    prefixes = set()
    for module in (ippool_service_pb2, reputation_service_pb2, campaign_service_pb2, notifier_service_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            zero = enum.values_by_number[0].name
            if zero.endswith("_UNSPECIFIED"):
                prefixes.add(zero.removesuffix("UNSPECIFIED"))
    return tuple(sorted(prefixes, key=len, reverse=True))


def enum_name(value: Any) -> str:
    """`IP_STATE_WARMING` -> `WARMING` (a value of no known enum is returned as it is)."""
    text = "" if value is None else str(value)
    for prefix in enum_prefixes():
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def enum_text(value: Any) -> str:
    """`IP_STATE_WARMING` -> "warming", `LISTING_STATUS_NOT_LISTED` -> "not listed"; unspecified -> "-"."""
    name = enum_name(value)
    if not name or name == "UNSPECIFIED":
        return DASH
    return name.lower().replace("_", " ")


def styled_enum(value: Any) -> Text:
    name = enum_name(value)
    return Text(enum_text(value), style=_STYLES.get(name, ""))


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp as the JSON mapping of google.protobuf.Timestamp writes it (up to 9 decimals)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value or "")
    if not match:
        return None
    fraction = (match.group(2) or "")[:7]  # a dot and at most 6 digits: what datetime keeps
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}{fraction}{zone}")


def when(value: Any, *, seconds: bool = True) -> str:
    """A timestamp in the operator's time zone, its zone named: `2026-01-05 10:00:00 CET`; "-" when unset."""
    parsed = parse_time(str(value)) if value else None
    if parsed is None:
        return DASH if not value else str(value)
    local = parsed.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def duration(value: Any) -> str:
    """google.protobuf.Duration's JSON ("86400s") as "24h", "90m", "45s"."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)s", str(value or ""))
    if not match:
        return DASH if not value else str(value)
    total = float(match.group(1))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size and total % size == 0:
            count = int(total // size)
            if unit == "d" and count < 7:  # "2d" reads fine, but "1d" of a cool-down is better said "24h"
                return f"{count * 24}h"
            return f"{count}{unit}"
    return f"{total:g}s"


def percent(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.4g}%"


def number(value: Any) -> str:
    if value is None or value == "":
        return DASH
    try:
        return f"{int(value):,}".replace(",", " ")
    except (TypeError, ValueError):
        return str(value)


def text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def path(data: Any, dotted: str) -> Any:
    """`data["a"]["b"]` for "a.b", None when any part is missing."""
    current = data
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


@dataclass(frozen=True)
class Col:
    """A table column: its header and how a row's cell is made (a dotted path, or a function of the row)."""

    header: str
    value: str | Callable[[dict[str, Any]], Any]
    fmt: Callable[[Any], str | Text] = text
    right: bool = False

    def cell(self, row: dict[str, Any]) -> Text:
        raw = path(row, self.value) if isinstance(self.value, str) else self.value(row)
        shown = self.fmt(raw)
        return shown if isinstance(shown, Text) else Text(shown)


def _console(stream: Any) -> Console:
    tty = stream.isatty()
    # Piped into a file or grep: each row on one line, however long (a table is only as wide as its cells).
    width = None if tty else PIPED_WIDTH
    return Console(file=stream, width=width, highlight=False, markup=False, emoji=False)


class Output:
    """Where a command writes: stdout for answers, stderr for progress and notes (so `--json` pipes cleanly)."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.out = _console(sys.stdout)
        self.err = _console(sys.stderr)

    def print(self, renderable: Any) -> None:
        """To stdout; piped, without the spaces rich pads the last column with."""
        if self.out.is_terminal:
            self.out.print(renderable)
            return
        with self.out.capture() as captured:
            self.out.print(renderable)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
        sys.stdout.flush()

    def raw(self, reply: Reply) -> None:
        """The API's JSON exactly as it came."""
        sys.stdout.write(reply.text if reply.text.endswith("\n") else reply.text + "\n")
        sys.stdout.flush()

    def table(
        self,
        columns: Sequence[Col],
        rows: Iterable[dict[str, Any]],
        *,
        title: str = "",
        empty: str = "nothing to show",
    ) -> None:
        rows = list(rows)
        if title:
            self.print(Text(title, style="bold"))
        if not rows:
            self.print(Text(f"  ({empty})", style="dim"))
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column.header, justify="right" if column.right else "left", overflow="fold")
        for row in rows:
            table.add_row(*(column.cell(row) for column in columns))
        self.print(table)

    def fields(self, pairs: Sequence[tuple[str, Any]], *, title: str = "") -> None:
        """A label: value list; values may be str or Text; pairs whose value is None are left out."""
        if title:
            self.print(Text(title, style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in pairs:
            if value is None:
                continue
            grid.add_row(Text(label), value if isinstance(value, Text) else Text(str(value)))
        self.print(grid)

    def line(self, message: str = "", style: str = "") -> None:
        self.print(Text(message, style=style))

    def note(self, message: str) -> None:
        """A hint on stderr (never mixed into the answer)."""
        self.err.print(Text(message, style="dim"))

    def working(self, message: str) -> AbstractContextManager[Any]:
        """A spinner on stderr while one long call runs (nothing when stderr is not a terminal)."""
        return self.err.status(message) if self.err.is_terminal else nullcontext()

    def more(self, data: dict[str, Any]) -> None:
        """Where the next page starts, when there is one."""
        token = data.get("next_page_token")
        if token:
            self.note(f"more: the same command with --page-token {token}")
