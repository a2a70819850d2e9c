"""The Telegram stand-in must be strict, or it hides bugs: its parser and answers, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.standins.telegram_bot_api import HtmlParseError, TelegramBotApiStandIn, make_token, parse_html

CHAT = -1001000000001


@pytest.fixture
def api() -> TelegramBotApiStandIn:
    stand_in = TelegramBotApiStandIn(token=make_token(123456789))
    stand_in.add_chat(CHAT, title="sos-expat alerts")
    return stand_in


def call(api: TelegramBotApiStandIn, method: str = "sendMessage", token: str | None = None, **params: Any):
    return api.handle("POST", f"/bot{token or api.token}/{method}", params)


@pytest.mark.parametrize(
    ("html", "visible"),
    [
        ("plain", "plain"),
        ("a &lt; b &amp;&amp; c &gt; d &quot;", 'a < b && c > d "'),
        ("&#128308; &#x1F534;", "🔴 🔴"),
        (
            "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>",
            "bsieunskd",
        ),
        ('<a href="https://x.example/?a=1&amp;b=2">link</a>', "link"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1"),
        ("<blockquote expandable>q</blockquote>", "q"),
        ("<B>case</B>", "case"),
    ],
)
def test_documented_html_is_accepted(html: str, visible: str) -> None:
    assert parse_html(html)[0] == visible


def test_entities_carry_utf16_offsets() -> None:
    visible, entities = parse_html("🔴 <b>x</b> <a href='https://e.example'>y</a>")
    assert visible == "🔴 x y"
    assert entities == [
        {"offset": 3, "length": 1, "type": "bold"},
        {"offset": 5, "length": 1, "type": "text_link", "url": "https://e.example"},
    ]


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x<br>y", 'Unsupported start tag "br" at byte offset 1'),
        ("<p>x</p>", 'Unsupported start tag "p"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("AT&T", 'Unescaped "&" at byte offset 2'),
        ("&nbsp;", 'Unescaped "&"'),
        ("&lt", 'Unescaped "&"'),
        ("&#xD800;", 'Unescaped "&"'),
        ("é&", 'Unescaped "&" at byte offset 2'),  # offsets are UTF-8 bytes
        ("a > b", 'Unescaped ">"'),
        ('<b class="x">y</b>', 'Unsupported attribute "class" in the tag "b"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<a>x</a>", 'Tag "a" must have a non-empty attribute "href"'),
        ("<code><b>x</b></code>", "Entities can't be nested"),
        ('<code class="language-py">x</code>', 'Attribute "class" of the tag "code"'),
        ("<b =x>y</b>", 'Empty attribute name in the tag "b"'),
        ("<blockquote open>q</blockquote>", "Expected equal sign"),
        ('<a href="x>y</a>', "Unclosed start tag"),
    ],
)
def test_malformed_html_is_rejected_with_a_telegram_like_description(html: str, error: str) -> None:
    with pytest.raises(HtmlParseError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_html(html)


def test_success_envelope(api: TelegramBotApiStandIn) -> None:
    status, answer = call(api, chat_id=CHAT, text="<b>hi</b> &amp; bye", parse_mode="HTML")
    assert status == 200 and answer["ok"] is True
    message = answer["result"]
    assert message["message_id"] == 1 and message["text"] == "hi & bye"
    assert message["chat"] == {"id": CHAT, "type": "supergroup", "title": "sos-expat alerts"}
    assert message["from"]["is_bot"] and message["entities"] == [{"offset": 0, "length": 2, "type": "bold"}]
    assert api.messages(CHAT)[0].text == "hi & bye"


@pytest.mark.parametrize(
    ("params", "code", "description"),
    [
        ({"chat_id": -5, "text": "x"}, 400, "Bad Request: chat not found"),
        ({"chat_id": "@nobody_here", "text": "x"}, 400, "Bad Request: chat not found"),
        ({"text": "x"}, 400, "Bad Request: chat_id is empty"),
        ({"chat_id": CHAT}, 400, "Bad Request: message text is empty"),
        ({"chat_id": CHAT, "text": ""}, 400, "Bad Request: message text is empty"),
        ({"chat_id": CHAT, "text": "<b> </b>", "parse_mode": "HTML"}, 400, "Bad Request: message text is empty"),
        ({"chat_id": CHAT, "text": "x" * 4097}, 400, "Bad Request: message is too long"),
        ({"chat_id": CHAT, "text": "&amp;" * 4097, "parse_mode": "HTML"}, 400, "Bad Request: message is too long"),
        ({"chat_id": CHAT, "text": "x" * 40_000}, 400, "Bad Request: text is too long"),
        (
            {"chat_id": CHAT, "text": "a < b", "parse_mode": "HTML"},
            400,
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        ),
        ({"chat_id": CHAT, "text": "x", "parse-mode": "HTML"}, 400, 'Bad Request: unknown parameter "parse-mode"'),
        ({"chat_id": CHAT, "text": "x", "parse_mode": "MarkdownV2"}, 400, "Bad Request: unsupported parse_mode"),
        (
            {"chat_id": CHAT, "text": "x", "link_preview_options": "{bad"},
            400,
            "Bad Request: can't parse link preview options JSON object",
        ),
        (
            {"chat_id": CHAT, "text": "x", "disable_notification": "maybe"},
            400,
            'Bad Request: field "disable_notification"',
        ),
        ({"chat_id": CHAT, "text": "x", "message_thread_id": 7}, 400, "Bad Request: message thread not found"),
    ],
)
def test_error_envelopes(api: TelegramBotApiStandIn, params: dict[str, Any], code: int, description: str) -> None:
    status, answer = call(api, **params)
    assert status == code
    assert answer["ok"] is False and answer["error_code"] == code
    assert answer["description"].startswith(description)
    assert set(answer) == {"ok", "error_code", "description"}
    assert api.all_messages() == []


def test_exactly_4096_visible_characters_pass(api: TelegramBotApiStandIn) -> None:
    status, _ = call(api, chat_id=CHAT, text="&lt;" * 4096, parse_mode="HTML")
    assert status == 200


def test_tokens(api: TelegramBotApiStandIn) -> None:
    assert call(api, token=make_token(987654321), chat_id=CHAT, text="x") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert call(api, token="not-a-token", chat_id=CHAT, text="x")[0] == 404
    assert call(api, method="noSuchMethod")[0] == 404
    assert call(api, method="getMe")[1]["result"]["id"] == 123456789
    assert call(api, method="SENDMESSAGE", chat_id=CHAT, text="methods are case-insensitive")[0] == 200


def test_programmed_429_then_success() -> None:
    now = [0.0]
    api = TelegramBotApiStandIn(clock=lambda: now[0])
    api.add_chat(CHAT)
    api.fail_next(2, retry_after=2)
    for _ in range(2):
        assert call(api, chat_id=CHAT, text="x") == (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 2",
                "parameters": {"retry_after": 2},
            },
        )
        now[0] += 2
    assert call(api, chat_id=CHAT, text="x")[0] == 200
    assert len(api.messages(CHAT)) == 1 and api.early_retries == 0


def test_coming_back_before_retry_after_is_rate_limited_again() -> None:
    now = [0.0]
    api = TelegramBotApiStandIn(clock=lambda: now[0])
    api.add_chat(CHAT)
    api.fail_next(1, retry_after=5)
    assert call(api, chat_id=CHAT, text="x")[0] == 429
    now[0] += 3.5
    status, answer = call(api, chat_id=CHAT, text="x")
    assert status == 429 and answer["parameters"] == {"retry_after": 2}
    assert api.early_retries == 1
    now[0] += 1.5
    assert call(api, chat_id=CHAT, text="x")[0] == 200


def test_timed_502_uses_the_injected_clock() -> None:
    now = [100.0]
    api = TelegramBotApiStandIn(clock=lambda: now[0])
    api.add_chat(CHAT)
    api.fail_for(60)
    status, answer = call(api, chat_id=CHAT, text="x")
    assert status == 502 and isinstance(answer, bytes) and b"502 Bad Gateway" in answer
    now[0] += 59.9
    assert call(api, chat_id=CHAT, text="x")[0] == 502
    now[0] += 0.2
    assert call(api, chat_id=CHAT, text="x")[0] == 200


def test_blocked_and_migrated_chats(api: TelegramBotApiStandIn) -> None:
    api.add_chat(-42, title="old group")
    api.migrate_chat(-42, -1009999999999)
    status, answer = call(api, chat_id=-42, text="x")
    assert status == 400 and answer["parameters"] == {"migrate_to_chat_id": -1009999999999}
    assert call(api, chat_id=-1009999999999, text="x")[0] == 200
    api.block_chat(CHAT)
    assert call(api, chat_id=CHAT, text="x")[1]["description"] == "Forbidden: bot was blocked by the user"


def test_per_chat_rate_limit() -> None:
    now = [0.0]
    api = TelegramBotApiStandIn(clock=lambda: now[0], per_chat_min_interval=1.0)
    api.add_chat(CHAT)
    assert call(api, chat_id=CHAT, text="1")[0] == 200
    now[0] += 0.5
    status, answer = call(api, chat_id=CHAT, text="2")
    assert status == 429 and answer["parameters"]["retry_after"] == 1
    now[0] += 0.5
    assert call(api, chat_id=CHAT, text="3")[0] == 200


def test_requests_are_recorded_without_the_token(api: TelegramBotApiStandIn) -> None:
    call(api, chat_id=CHAT, text="x")
    [request] = api.requests
    assert request.api_method == "sendmessage" and request.status == 200
    assert api.token not in repr(request)
