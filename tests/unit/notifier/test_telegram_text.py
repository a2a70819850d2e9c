"""Telegram HTML rendering: escaped, each part within 4 096 visible characters, never a broken tag.

The stand-in's strict HTML parser (tests/standins) is the oracle: every part must parse there, and
what it shows must be what we meant.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest

from notifier.domain.alert import PLATFORM_TENANT
from notifier.domain.telegram_text import (
    TELEGRAM_TEXT_LIMIT,
    MessagePart,
    RichText,
    Span,
    Style,
    escape_html,
    render_alert,
    render_alert_parts,
    render_digest,
    split_message,
    telegram_length,
)
from tests.standins.telegram_bot_api import parse_html
from tests.unit.notifier.conftest import T0, make_alert

PART_SUFFIX = re.compile(r"\n\(\d+/\d+\)$")


def assert_acceptable(part: MessagePart, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """What the Bot API would check: parses, not empty, not too long. Returns the visible text."""
    visible, _ = parse_html(part.html)
    assert visible == part.plain
    assert visible.strip()
    assert len(visible) <= limit and telegram_length(visible) <= limit
    return visible


def content_of(parts: list[MessagePart]) -> str:
    """The visible text without part numbers, whitespace-normalized (splits happen at whitespace)."""
    return " ".join(" ".join(PART_SUFFIX.sub("", p.plain).split()) for p in parts)


def test_escape_html_only_touches_the_three_characters() -> None:
    assert escape_html("a < b && c > d \"q\" 's'") == "a &lt; b &amp;&amp; c &gt; d \"q\" 's'"
    assert escape_html("&lt;") == "&amp;lt;"  # producer text that looks like an entity stays literal


def test_producer_html_is_shown_not_interpreted() -> None:
    alert = make_alert(title="<b>bold?</b>", text="<script>x</script> & &amp; <br>", labels={"k": "<i>"})
    [part] = render_alert_parts(alert)
    visible = assert_acceptable(part)
    assert "<b>bold?</b>" in visible and "<script>x</script> & &amp; <br>" in visible
    assert "k: <i>" in visible
    tags = set(re.findall(r"</?([a-z-]+)", part.html))
    assert tags <= {"b", "i", "code", "pre"}


def test_a_single_alert_message() -> None:
    alert = make_alert(url="https://grafana.example/d/ip?var=1&x=2")
    [part] = render_alert_parts(alert)
    visible = assert_acceptable(part)
    assert visible.startswith("🔴 CRITICAL · IP 203.0.113.7 listed on zen.spamhaus.org\ntenant sos-expat")
    assert "ip: 203.0.113.7" in visible and "https://grafana.example/d/ip?var=1&x=2" in visible
    assert "&amp;x=2" in part.html
    assert (part.index, part.total, part.truncated) == (1, 1, False)


def test_resolved_and_platform_alerts() -> None:
    [part] = render_alert_parts(make_alert(resolved=True, tenant=PLATFORM_TENANT, severity="warning"))
    visible = assert_acceptable(part)
    assert visible.startswith("✅ WARNING RESOLVED") and "tenant platform" in visible


def test_acceptance_5000_characters_with_lt_and_amp_are_split_and_accepted() -> None:
    """What a producer may send: markup characters and a text longer than one message."""
    text = ("if a < b && c > d then <alert> & co; " * 140)[:5000]
    assert len(text) == 5000
    alert = make_alert(text=text)
    parts = render_alert_parts(alert)
    assert len(parts) == 2
    for part in parts:
        assert_acceptable(part)
        assert part.html.count("<b>") == part.html.count("</b>")
    assert " ".join(text.split()) in content_of(parts)
    assert [(p.index, p.total) for p in parts] == [(1, 2), (2, 2)]
    assert parts[0].plain.endswith("\n(1/2)")


def test_acceptance_5000_characters_cut_with_a_marker_when_one_part_is_allowed() -> None:
    text = ("<&>" * 2000)[:5000]
    [part] = render_alert_parts(make_alert(text=text), max_parts=1)
    visible = assert_acceptable(part)
    assert part.truncated and part.total == 1
    match = re.search(r"\n… \[truncated: (\d+) more characters\]$", visible)
    assert match
    shown = visible[: match.start()]
    full = render_alert(make_alert(text=text)).to_plain()
    assert full.startswith(shown)
    assert int(match.group(1)) == len(full) - len(shown)


def test_a_word_longer_than_a_message_is_cut_between_characters_not_inside_an_escape() -> None:
    rich = RichText.of(Span("&<>" * 3000, Style.CODE))
    parts = split_message(rich)
    assert len(parts) == 3
    for part in parts:
        assert_acceptable(part)
        assert part.html.startswith("<code>")
    assert "".join(PART_SUFFIX.sub("", p.plain) for p in parts) == "&<>" * 3000


def test_styles_are_closed_and_reopened_across_parts() -> None:
    rich = RichText.of(Span("head "), Span("word " * 1500, Style.BOLD), Span("tail"))
    parts = split_message(rich)
    assert len(parts) == 2
    assert parts[1].html.startswith("<b>")
    for part in parts:
        _, entities = parse_html(part.html)
        assert any(e["type"] == "bold" for e in entities)


def test_lines_are_preferred_over_words_as_split_points() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(200)]
    parts = split_message(RichText.of("\n".join(lines)))
    for part in parts:
        body = PART_SUFFIX.sub("", part.plain)
        assert body.split("\n")[-1] in lines and body.split("\n")[0] in lines


def test_astral_characters_count_double_like_utf16() -> None:
    parts = split_message(RichText.of("🔴" * 5000))
    assert len(parts) == 3
    for part in parts:
        assert telegram_length(part.plain) <= TELEGRAM_TEXT_LIMIT
        assert_acceptable(part)


def test_grapheme_sequences_are_not_cut_in_the_middle() -> None:
    family = "👨\u200d👩\u200d👧"
    parts = split_message(RichText.of(family * 2000), limit=100)
    for part in parts:
        body = PART_SUFFIX.sub("", part.plain)
        assert not body.startswith("\u200d") and not body.endswith("\u200d")
    accents = "e\u0301" * 500
    for part in split_message(RichText.of(accents), limit=100):
        assert not PART_SUFFIX.sub("", part.plain).startswith("\u0301")


def test_random_texts_always_give_acceptable_parts() -> None:
    rng = random.Random(20260105)
    alphabet = [*"ab <>&;#x\n\t", "&amp;", "&lt;", "🔴", "e\u0301", "\u200d", "日本"]
    for _ in range(150):
        limit = rng.choice([64, 100, 500, 4096])
        spans = [
            Span("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 800))), rng.choice(list(Style)))
            for _ in range(rng.randint(1, 12))
        ]
        rich = RichText(tuple(s for s in spans if s.text))
        if not rich.to_plain().strip():
            continue
        parts = split_message(rich, limit=limit, max_parts=rng.randint(1, 6))
        for part in parts:
            assert_acceptable(part, limit)


def test_digest_lists_alerts_most_severe_first() -> None:
    alerts = [
        make_alert(severity="info", title="Warmup advanced", dedup_key="a", occurred_at=T0),
        make_alert(severity="critical", title="IP <1> listed", dedup_key="b", occurred_at=T0 + timedelta(seconds=1)),
        make_alert(severity="warning", title="SPF & DKIM broken", dedup_key="c", text="first line\nsecond"),
    ]
    [part] = render_alert_parts(alerts)
    visible = assert_acceptable(part)
    lines = visible.split("\n")
    assert lines[0] == "🔴 3 alerts for sos-expat · 1 critical, 1 warning, 1 info"
    assert lines[2].startswith("🔴 IP <1> listed") and lines[3] == "🟠 SPF & DKIM broken — first line"
    assert lines[4].startswith("🔵 Warmup advanced")


def test_a_digest_over_several_tenants_names_each() -> None:
    alerts = [make_alert(tenant="sos-expat", dedup_key="a"), make_alert(tenant="ulixai", dedup_key="b")]
    visible = assert_acceptable(render_alert_parts(alerts)[0])
    assert "for " not in visible.split("\n")[0]
    assert "🔴 sos-expat IP" in visible and "🔴 ulixai IP" in visible


def test_a_digest_of_fifty_long_alerts_is_split() -> None:
    alerts = [make_alert(dedup_key=str(i), text="x < y & " * 200) for i in range(50)]
    parts = render_alert_parts(alerts)
    assert len(parts) > 1
    for part in parts:
        assert_acceptable(part)


def test_split_message_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        split_message(RichText.of("   \n "))
    with pytest.raises(ValueError):
        split_message(RichText.of("x"), limit=10)
    with pytest.raises(ValueError):
        render_digest([])
