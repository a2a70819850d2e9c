"""Telegram messages in HTML parse mode: escaped, within 4 096 characters, never a broken tag.

Text is built as styled spans of *visible* text and only turned into HTML at the end, so a split
or a cut happens in visible text and each part re-opens and closes its own tags: no tag and no
`&amp;` can be cut in half. Only our own tags (b, i, code, pre) are ever emitted; everything a
producer wrote is escaped. Lengths are counted in UTF-16 code units, which is never less than the
code points the Bot API counts, so a part that fits here fits there.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity, cut_text

TELEGRAM_TEXT_LIMIT = 4096
DEFAULT_MAX_PARTS = 4
_PART_MARKER_RESERVE = 12  # "\n(99/99)" and a margin
_HIDDEN_LABELS = frozenset({"alertname", "severity", "tenant", "tenant_id"})

SEVERITY_ICON = {Severity.CRITICAL: "🔴", Severity.WARNING: "🟠", Severity.INFO: "🔵"}
RESOLVED_ICON = "✅"


class Style(StrEnum):
    PLAIN = "plain"
    BOLD = "b"
    ITALIC = "i"
    CODE = "code"
    PRE = "pre"


def escape_html(text: str) -> str:
    """The Bot API's HTML mode needs exactly these three; `&` first so escapes are not re-escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def telegram_length(text: str) -> int:
    """Visible length as Telegram may count it: UTF-16 code units (>= code points)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Span:
    text: str
    style: Style = Style.PLAIN

    def to_html(self) -> str:
        if self.style is Style.PLAIN:
            return escape_html(self.text)
        tag = self.style.value
        return f"<{tag}>{escape_html(self.text)}</{tag}>"


@dataclass(frozen=True)
class RichText:
    """A message as a flat list of styled spans (no nesting: nothing to unbalance)."""

    spans: tuple[Span, ...]

    @classmethod
    def of(cls, *spans: Span | str) -> RichText:
        as_spans = (s if isinstance(s, Span) else Span(s) for s in spans)
        return cls(tuple(s for s in as_spans if s.text))

    def __add__(self, other: RichText) -> RichText:
        return RichText(self.spans + other.spans)

    def to_html(self) -> str:
        return "".join(span.to_html() for span in self.spans)

    def to_plain(self) -> str:
        return "".join(span.text for span in self.spans)

    @property
    def visible_length(self) -> int:
        return telegram_length(self.to_plain())


@dataclass(frozen=True)
class MessagePart:
    """One sendMessage: `html` with parse_mode=HTML, or `plain` without parse_mode as a fallback."""

    html: str
    plain: str
    index: int
    total: int
    truncated: bool = False

    @property
    def visible_length(self) -> int:
        return telegram_length(self.plain)


def split_message(
    rich: RichText, *, limit: int = TELEGRAM_TEXT_LIMIT, max_parts: int = DEFAULT_MAX_PARTS
) -> list[MessagePart]:
    """Split at line, then word, then character boundaries into at most `max_parts` parts of at most
    `limit` visible characters each; what does not fit in `max_parts` is cut with a visible marker."""
    if limit < 64 or max_parts < 1:
        raise ValueError("limit must be >= 64 and max_parts >= 1")
    plain = rich.to_plain()
    start, end = _strip_range(plain, 0, len(plain))
    if start == end:
        raise ValueError("message has no visible text")
    if telegram_length(plain[start:end]) <= limit:
        spans = _slice_spans(rich.spans, start, end)
        return [_part(spans, 1, 1, truncated=False)]

    units = _utf16_prefix(plain)
    budget = limit - _PART_MARKER_RESERVE
    ranges: list[tuple[int, int]] = []
    truncated_after: int | None = None
    pos = start
    while pos < end:
        pos, _ = _strip_range(plain, pos, end)
        if pos >= end:
            break
        if units[end] - units[pos] <= budget:
            ranges.append((pos, end))
            break
        if len(ranges) == max_parts - 1:
            marker_room = len(_cut_marker(end - pos))
            cut = _best_break(plain, units, pos, end, budget - marker_room)
            ranges.append((pos, cut))
            truncated_after = cut
            break
        cut = _best_break(plain, units, pos, end, budget)
        ranges.append((pos, cut))
        pos = cut

    total = len(ranges)
    parts: list[MessagePart] = []
    for number, (a, b) in enumerate(ranges, start=1):
        a, b = _strip_range(plain, a, b)
        spans = _slice_spans(rich.spans, a, b)
        is_cut = truncated_after is not None and number == total
        if is_cut:
            spans.append(Span(_cut_marker(end - b), Style.ITALIC))
        if total > 1:
            spans.append(Span(f"\n({number}/{total})", Style.ITALIC))
        parts.append(_part(spans, number, total, truncated=is_cut))
    return parts


def _cut_marker(omitted: int) -> str:
    return f"\n… [truncated: {omitted} more characters]"


def _part(spans: list[Span], index: int, total: int, *, truncated: bool) -> MessagePart:
    rich = RichText(tuple(spans))
    return MessagePart(html=rich.to_html(), plain=rich.to_plain(), index=index, total=total, truncated=truncated)


def _utf16_prefix(text: str) -> list[int]:
    prefix = [0]
    for char in text:
        prefix.append(prefix[-1] + (2 if ord(char) > 0xFFFF else 1))
    return prefix


def _strip_range(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _joins_previous(char: str) -> bool:
    """Characters that belong to the previous one on screen (accents, ZWJ sequences, variation selectors)."""
    return bool(unicodedata.combining(char)) or char in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"


def _best_break(text: str, units: list[int], start: int, end: int, budget: int) -> int:
    """The largest cut <= budget units after `start`, preferring a newline, then a space, in the second half."""
    hard = start
    low, high = start, end
    while low < high:  # largest index with units[index] - units[start] <= budget
        mid = (low + high + 1) // 2
        if units[mid] - units[start] <= budget:
            low = mid
        else:
            high = mid - 1
    hard = low
    floor = start + max(1, (hard - start) // 2)
    newline = text.rfind("\n", floor, hard + 1)
    if newline > start:
        return newline
    for index in range(hard, floor - 1, -1):
        if index < end and text[index].isspace():
            return index
    cut = hard
    while cut > start + 1 and cut < end and (_joins_previous(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    return max(cut, start + 1)


def _slice_spans(spans: Sequence[Span], start: int, end: int) -> list[Span]:
    sliced: list[Span] = []
    offset = 0
    for span in spans:
        span_start, span_end = offset, offset + len(span.text)
        offset = span_end
        a, b = max(span_start, start), min(span_end, end)
        if a < b:
            sliced.append(Span(span.text[a - span_start : b - span_start], span.style))
    return sliced


# -- rendering -------------------------------------------------------------------------------------

_DIGEST_LINE_LIMIT = 300


def _headline(alert: Alert) -> list[Span]:
    icon = RESOLVED_ICON if alert.resolved else SEVERITY_ICON[alert.severity]
    status = " RESOLVED" if alert.resolved else ""
    return [
        Span(f"{icon} "),
        Span(f"{alert.severity.name}{status}", Style.BOLD),
        Span(" · "),
        Span(alert.title, Style.BOLD),
    ]


def _tenant_name(tenant: str) -> str:
    return "platform" if tenant == PLATFORM_TENANT else tenant


def render_alert(alert: Alert) -> RichText:
    """One alert: headline, where it comes from, the producer's text, its labels and link."""
    spans = _headline(alert)
    spans += [
        Span("\ntenant "),
        Span(_tenant_name(alert.tenant), Style.CODE),
        Span(" · source "),
        Span(alert.source, Style.CODE),
    ]
    if alert.text:
        spans.append(Span(f"\n\n{alert.text}"))
    shown = [(k, v) for k, v in sorted(alert.labels.items()) if k not in _HIDDEN_LABELS]
    if shown:
        spans.append(Span("\n"))
        for key, value in shown:
            spans += [Span("\n"), Span(key, Style.ITALIC), Span(f": {value}")]
    if alert.url:
        spans.append(Span(f"\n\n{alert.url}"))
    return RichText(tuple(s for s in spans if s.text))


def render_digest(alerts: Sequence[Alert]) -> RichText:
    """A storm as one message: counts first, then one line per alert, most severe first."""
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    tenants = sorted({a.tenant for a in alerts})
    counts = {s: sum(1 for a in alerts if a.severity is s) for s in Severity}
    resolved = sum(1 for a in alerts if a.resolved)
    summary = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    if resolved:
        summary += f" ({resolved} resolved)"
    worst = max(a.severity for a in alerts)
    spans = [Span(f"{SEVERITY_ICON[worst]} "), Span(f"{len(alerts)} alerts", Style.BOLD)]
    if len(tenants) == 1:
        spans += [Span(" for "), Span(_tenant_name(tenants[0]), Style.CODE)]
    spans.append(Span(f" · {summary}\n"))
    ordered = sorted(alerts, key=lambda a: (-a.severity, a.resolved, a.occurred_at))
    for alert in ordered:
        icon = RESOLVED_ICON if alert.resolved else SEVERITY_ICON[alert.severity]
        spans.append(Span(f"\n{icon} "))
        if len(tenants) > 1:
            spans += [Span(_tenant_name(alert.tenant), Style.CODE), Span(" ")]
        spans.append(Span(cut_text(alert.title, 120), Style.BOLD))
        first_line = alert.text.split("\n", 1)[0].strip() if alert.text else ""
        if first_line:
            spans.append(Span(" — " + cut_text(first_line, _DIGEST_LINE_LIMIT)))
    return RichText(tuple(s for s in spans if s.text))


def render_alert_parts(
    alerts: Sequence[Alert] | Alert, *, limit: int = TELEGRAM_TEXT_LIMIT, max_parts: int = DEFAULT_MAX_PARTS
) -> list[MessagePart]:
    """What to send for one alert, or for a storm batch (a digest when it holds more than one)."""
    batch: Sequence[Alert] = [alerts] if isinstance(alerts, Alert) else alerts
    rich = render_alert(batch[0]) if len(batch) == 1 else render_digest(batch)
    return split_message(rich, limit=limit, max_parts=max_parts)


def plain_parts(parts: Iterable[MessagePart]) -> list[str]:
    """The no-parse-mode fallback texts, for a 400 "can't parse entities" that should never happen."""
    return [part.plain for part in parts]
