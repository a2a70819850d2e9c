"""A strict stand-in for the Telegram Bot API (`getMe`, `sendMessage`), served over loopback HTTP.

It answers as core.telegram.org/bots/api documents (see /work/shared/reference/telegram-and-alertmanager.md):
`{"ok":true,"result":…}` or `{"ok":false,"error_code":N,"description":"…"[,"parameters":{…}]}` with the
HTTP status equal to `error_code`. It is deliberately *stricter* than the real server where the
documentation states a rule the real server may tolerate, because a lenient stand-in hides bugs:

- HTML parse mode: every `<`, `>` and `&` that is not a tag or an entity must be escaped (the documented
  rule; the real server lets a bare `&` or `>` through); only the documented tags and attributes are
  accepted; entities must end with `;`; no tags inside `<code>`/`<pre>` except `<pre><code>`.
- Unknown sendMessage parameters are rejected (`reject_unknown_params`), so a typo such as `parse-mode`
  cannot silently send plain text.
- Length is counted after entity parsing, in code points as the reference says, without trimming.

Descriptions copied from the reference or TDLib are used where known; the few invented ones
(unescaped `&`/`>`, unknown parameter, bad booleans, bad content type) say "(stand-in)" so nobody takes
them for Telegram's wording.

Failure modes for tests: `fail_next` (e.g. 429 with retry_after), `fail_for` (e.g. 502 for a duration,
by an injectable monotonic clock), `drop_next` (connection closed without an answer), `delay_next`
(slow answers, for timeouts), `block_chat` (403), `migrate_chat` (400 + migrate_to_chat_id) and an
optional per-chat rate limit. Every delivered message is recorded per chat; every request is logged
with the token removed.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEXT_LIMIT = 4096
RAW_TEXT_LIMIT_BYTES = 32 * 1024

SEND_MESSAGE_PARAMS = frozenset(
    {
        "chat_id",
        "text",
        "parse_mode",
        "entities",
        "link_preview_options",
        "disable_web_page_preview",
        "disable_notification",
        "protect_content",
        "message_thread_id",
        "reply_parameters",
        "reply_to_message_id",
        "allow_sending_without_reply",
        "reply_markup",
        "business_connection_id",
        "message_effect_id",
        "allow_paid_broadcast",
    }
)
LINK_PREVIEW_FIELDS = {
    "is_disabled": bool,
    "url": str,
    "prefer_small_media": bool,
    "prefer_large_media": bool,
    "show_above_text": bool,
}
# tag -> (entity type, allowed attributes)
HTML_TAGS: Mapping[str, tuple[str, frozenset[str]]] = {
    "b": ("bold", frozenset()),
    "strong": ("bold", frozenset()),
    "i": ("italic", frozenset()),
    "em": ("italic", frozenset()),
    "u": ("underline", frozenset()),
    "ins": ("underline", frozenset()),
    "s": ("strikethrough", frozenset()),
    "strike": ("strikethrough", frozenset()),
    "del": ("strikethrough", frozenset()),
    "tg-spoiler": ("spoiler", frozenset()),
    "span": ("spoiler", frozenset({"class"})),
    "a": ("text_link", frozenset({"href"})),
    "code": ("code", frozenset({"class"})),
    "pre": ("pre", frozenset()),
    "blockquote": ("blockquote", frozenset({"expandable"})),
    "tg-emoji": ("custom_emoji", frozenset({"emoji-id"})),
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)


def make_token(bot_id: int | None = None) -> str:
    """A token shaped like BotFather's: `<bot id>:<35 url-safe characters>`."""
    bot_id = bot_id or secrets.randbelow(9 * 10**9) + 10**9
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return f"{bot_id}:" + "".join(secrets.choice(alphabet) for _ in range(35))


class ApiError(Exception):
    """An error answer: HTTP status == error_code, as the Bot API does."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class HtmlParseError(Exception):
    pass


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


# -- HTML parse mode --------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, index: int) -> tuple[str, int] | None:
    """`&…;` at `index` → (character, characters consumed), or None when it is no valid entity."""
    end = text.find(";", index + 1, index + 12)
    if end == -1:
        return None
    body = text[index + 1 : end]
    if body in NAMED_ENTITIES:
        return NAMED_ENTITIES[body], end - index + 1
    code: int | None = None
    if body.startswith(("#x", "#X")) and 2 < len(body) <= 8:
        try:
            code = int(body[2:], 16)
        except ValueError:
            return None
    elif body.startswith("#") and body[1:].isdigit() and 1 < len(body) <= 8:
        code = int(body[1:])
    if code is None or not (0 < code <= 0x10FFFF) or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), end - index + 1


@dataclass
class _OpenTag:
    name: str
    offset: int  # UTF-16 offset in the parsed text
    attributes: dict[str, str]
    byte_offset: int


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram HTML → (visible text, entities with UTF-16 offsets). Raises HtmlParseError(description)."""
    out: list[str] = []
    out_utf16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_entity(text, i)
            if decoded is None:
                raise HtmlParseError(f'Unescaped "&" at byte offset {_byte_offset(text, i)}: write &amp; (stand-in)')
            out.append(decoded[0])
            out_utf16 += _utf16_len(decoded[0])
            i += decoded[1]
            continue
        if char == ">":
            raise HtmlParseError(f'Unescaped ">" at byte offset {_byte_offset(text, i)}: write &gt; (stand-in)')
        if char != "<":
            out.append(char)
            out_utf16 += _utf16_len(char)
            i += 1
            continue
        begin = i
        if i + 1 < n and text[i + 1] == "/":
            i = _close_tag(text, i, stack, entities, out_utf16)
            continue
        tag_end = i + 1
        while tag_end < n and not text[tag_end].isspace() and text[tag_end] != ">":
            tag_end += 1
        if tag_end >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        name = text[i + 1 : tag_end].lower()
        if name not in HTML_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}')
        attributes, i = _read_attributes(text, tag_end, name, begin)
        _check_start_tag(name, attributes, stack, _byte_offset(text, begin))
        stack.append(_OpenTag(name, out_utf16, attributes, _byte_offset(text, begin)))
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _read_attributes(text: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Attributes from `i` to the closing `>`; returns them and the index after `>`."""
    n = len(text)
    attributes: dict[str, str] = {}
    offset = _byte_offset(text, begin)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {offset}")
        if text[i] == ">":
            return attributes, i + 1
        name_start = i
        while i < n and not text[i].isspace() and text[i] not in "=>":
            i += 1
        name = text[name_start:i].lower()
        if not name:
            raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {offset}')
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {offset}")
            if text[i] in "\"'":
                quote = text[i]
                close = text.find(quote, i + 1)
                if close == -1:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {offset}")
                raw_value = text[i + 1 : close]
                i = close + 1
            else:
                value_start = i
                while i < n and not text[i].isspace() and text[i] != ">":
                    i += 1
                raw_value = text[value_start:i]
            value = _decode_attribute(raw_value, offset)
        elif name == "expandable" and tag == "blockquote":
            value = ""
        else:
            raise HtmlParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" at byte offset {offset}'
            )
        if name not in HTML_TAGS[tag][1]:
            raise HtmlParseError(
                f'Unsupported attribute "{name}" in the tag "{tag}" at byte offset {offset} (stand-in)'
            )
        attributes[name] = value


def _decode_attribute(raw: str, offset: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "&":
            decoded = _decode_entity(raw, i)
            if decoded is None:
                raise HtmlParseError(f'Unescaped "&" in an attribute of the tag at byte offset {offset} (stand-in)')
            out.append(decoded[0])
            i += decoded[1]
        elif raw[i] in "<>":
            raise HtmlParseError(f'Unescaped "{raw[i]}" in an attribute of the tag at byte offset {offset} (stand-in)')
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _check_start_tag(name: str, attributes: dict[str, str], stack: list[_OpenTag], offset: int) -> None:
    parent = stack[-1].name if stack else None
    if parent == "code" or (parent == "pre" and name != "code"):
        raise HtmlParseError(f'Entities can\'t be nested inside the tag "{parent}" at byte offset {offset} (stand-in)')
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    if name == "a" and not attributes.get("href"):
        raise HtmlParseError(f'Tag "a" must have a non-empty attribute "href" at byte offset {offset} (stand-in)')
    if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
        raise HtmlParseError(f'Tag "tg-emoji" must have a numeric "emoji-id" at byte offset {offset}')
    if (
        name == "code"
        and "class" in attributes
        and (parent != "pre" or not attributes["class"].startswith("language-"))
    ):
        raise HtmlParseError(
            f'Attribute "class" of the tag "code" must be "language-…" inside "pre" at byte offset {offset} (stand-in)'
        )


def _close_tag(text: str, i: int, stack: list[_OpenTag], entities: list[dict[str, Any]], out_utf16: int) -> int:
    n = len(text)
    begin = i
    offset = _byte_offset(text, begin)
    if not stack:
        raise HtmlParseError(f"Unexpected end tag at byte offset {offset}")
    i += 2
    name_start = i
    while i < n and (text[i].isalnum() or text[i] in "_-"):
        i += 1
    name = text[name_start:i].lower()
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != ">":
        raise HtmlParseError(f"Unclosed end tag at byte offset {offset}")
    expected = stack[-1].name
    if name != expected:
        raise HtmlParseError(f'Unmatched end tag at byte offset {offset}, expected "</{expected}>", found "</{name}>"')
    opened = stack.pop()
    length = out_utf16 - opened.offset
    if length > 0:
        entity_type, _ = HTML_TAGS[opened.name]
        entity: dict[str, Any] = {"offset": opened.offset, "length": length, "type": entity_type}
        if opened.name == "a":
            entity["url"] = opened.attributes["href"]
        elif opened.name == "tg-emoji":
            entity["custom_emoji_id"] = opened.attributes["emoji-id"]
        elif opened.name == "blockquote" and "expandable" in opened.attributes:
            entity["type"] = "expandable_blockquote"
        elif opened.name == "code" and stack and stack[-1].name == "pre":
            # <pre><code class="language-x"> is one pre entity with a language.
            language = opened.attributes.get("class", "").removeprefix("language-")
            entity = {"offset": opened.offset, "length": length, "type": "pre"}
            if language:
                entity["language"] = language
            stack[-1].attributes["__merged__"] = "1"
        if not (opened.name == "pre" and "__merged__" in opened.attributes):
            entities.append(entity)
    return i + 1


# -- state ------------------------------------------------------------------------------------------


@dataclass
class Chat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    blocked_description: str | None = None
    migrated_to: int | None = None
    next_message_id: int = 1
    last_message_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            data["first_name"] = self.title or "User"
        elif self.title:
            data["title"] = self.title
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass(frozen=True)
class DeliveredMessage:
    message_id: int
    chat_id: int
    text: str  # after entity parsing: what a person sees
    entities: tuple[dict[str, Any], ...]
    raw_text: str
    parse_mode: str | None
    disable_notification: bool
    link_preview_disabled: bool
    message_thread_id: int | None
    date: int


@dataclass(frozen=True)
class RecordedRequest:
    http_method: str
    api_method: str
    params: Mapping[str, Any]
    status: int
    answer: Mapping[str, Any] | None
    at: float


@dataclass
class _Fault:
    status: int
    retry_after: int | None = None
    description: str | None = None
    json_body: bool = True
    drop: bool = False
    delay: float = 0.0


@dataclass
class _TimedFault:
    until: float
    fault: _Fault


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class TelegramBotApiStandIn:
    """The stand-in's state and behaviour; `start()` serves it on 127.0.0.1 and a free port."""

    token: str = field(default_factory=make_token, repr=False)
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    reject_unknown_params: bool = True
    per_chat_min_interval: float | None = None  # emulate Telegram's ~1 msg/s per chat with 429s
    early_retries: int = 0  # calls that came back before the retry_after they were given

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._chats: dict[int, Chat] = {}
        self._messages: dict[int, list[DeliveredMessage]] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._timed: list[_TimedFault] = []
        self._rate_limited_until: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration -------------------------------------------------------------------------

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def add_chat(
        self,
        chat_id: int,
        *,
        type: str | None = None,
        title: str | None = None,
        username: str | None = None,
        is_forum: bool = False,
    ) -> Chat:
        inferred = "private" if chat_id > 0 else ("supergroup" if str(chat_id).startswith("-100") else "group")
        chat = Chat(chat_id, type or inferred, title, username, is_forum)
        with self._lock:
            self._chats[chat_id] = chat
            self._messages.setdefault(chat_id, [])
        return chat

    def block_chat(self, chat_id: int, description: str = "Forbidden: bot was blocked by the user") -> None:
        with self._lock:
            self._chats[chat_id].blocked_description = description

    def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup: the old id answers 400 with `migrate_to_chat_id`."""
        with self._lock:
            old = self._chats[old_chat_id]
            old.migrated_to = new_chat_id
            if new_chat_id not in self._chats:
                self.add_chat(new_chat_id, type="supergroup", title=old.title)

    def fail_next(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        json_body: bool = True,
    ) -> None:
        """The next `count` API calls answer `status` (429 gets `parameters.retry_after`, default 1)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(status, retry_after, description, json_body))

    def fail_for(self, seconds: float, *, status: int = 502, json_body: bool | None = None) -> None:
        """Every call answers `status` for `seconds` of `clock` time (502: an nginx HTML page by default)."""
        json_body = status != 502 if json_body is None else json_body
        with self._lock:
            self._timed.append(_TimedFault(self.clock() + seconds, _Fault(status, json_body=json_body)))

    def drop_next(self, count: int) -> None:
        """The next `count` calls get their connection closed without any answer."""
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(0, drop=True))

    def delay_next(self, count: int, seconds: float) -> None:
        """The next `count` calls are answered normally but only after `seconds` (real time)."""
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(0, delay=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._timed.clear()

    # -- observation ---------------------------------------------------------------------------

    def messages(self, chat_id: int) -> list[DeliveredMessage]:
        with self._lock:
            return list(self._messages.get(chat_id, []))

    def all_messages(self) -> list[DeliveredMessage]:
        with self._lock:
            return [m for chat in self._messages.values() for m in chat]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # -- serving -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TelegramBotApiStandIn:
        if self._server is not None:
            return self
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="telegram-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TelegramBotApiStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the API -------------------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            now = self.clock()
            self._timed = [t for t in self._timed if t.until > now]
            if self._faults:
                return self._faults.popleft()
            if self._timed:
                return self._timed[0].fault
            return None

    def handle(self, http_method: str, path: str, params: Mapping[str, Any] | None) -> tuple[int, Any]:
        """(status, answer) for one request; answer is a JSON-able dict, raw bytes, or None (drop)."""
        api_method = "?"
        try:
            api_method = self._authorize(path)
            if params is None:
                raise _bad_request("unsupported Content-Type or malformed body (stand-in)")
            self._enforce_retry_after()
            fault = self._next_fault()
            if fault is not None:
                if fault.drop:
                    return self._record(http_method, api_method, params, 0, None)
                if fault.delay:
                    time.sleep(fault.delay)
                else:
                    return self._record(http_method, api_method, params, fault.status, self._fault_answer(fault))
            if api_method == "getme":
                result: Any = {
                    "id": self.bot_id,
                    "is_bot": True,
                    "first_name": "Stand-in Bot",
                    "username": "standin_alerts_bot",
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                }
            elif api_method == "sendmessage":
                result = self._send_message(params)
            else:
                raise ApiError(404, "Not Found")
            return self._record(http_method, api_method, params, 200, {"ok": True, "result": result})
        except ApiError as error:
            answer: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
            if error.parameters:
                answer["parameters"] = error.parameters
            return self._record(http_method, api_method, params or {}, error.code, answer)

    def _enforce_retry_after(self) -> None:
        """A client that comes back before the `retry_after` it was given is rate-limited again."""
        with self._lock:
            if self._rate_limited_until is None:
                return
            remaining = self._rate_limited_until - self.clock()
            if remaining <= 0:
                self._rate_limited_until = None
                return
            self.early_retries += 1
            wait = max(1, math.ceil(remaining))
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

    def _record(
        self, http_method: str, api_method: str, params: Mapping[str, Any], status: int, answer: Any
    ) -> tuple[int, Any]:
        logged = answer if isinstance(answer, dict) else None
        with self._lock:
            self._requests.append(RecordedRequest(http_method, api_method, dict(params), status, logged, self.clock()))
        return status, answer

    def _authorize(self, path: str) -> str:
        parts = path.split("/")
        # "", "bot<token>", "<method>"
        if len(parts) != 3 or not parts[1].startswith("bot") or not parts[2].isalpha():
            raise ApiError(404, "Not Found")
        token = parts[1][3:]
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ApiError(404, "Not Found")
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            raise ApiError(401, "Unauthorized")
        return parts[2].lower()

    def _fault_answer(self, fault: _Fault) -> Any:
        if not fault.json_body:
            if fault.status == 502:
                return NGINX_502
            return f"{fault.status} {_DEFAULT_DESCRIPTIONS.get(fault.status, 'Error')}".encode()
        if fault.status == 429:
            assert fault.retry_after is not None
            with self._lock:
                self._rate_limited_until = self.clock() + fault.retry_after
            return {
                "ok": False,
                "error_code": 429,
                "description": fault.description or f"Too Many Requests: retry after {fault.retry_after}",
                "parameters": {"retry_after": fault.retry_after},
            }
        return {
            "ok": False,
            "error_code": fault.status,
            "description": fault.description or _DEFAULT_DESCRIPTIONS.get(fault.status, "Error"),
        }

    def _send_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.reject_unknown_params:
            unknown = sorted(set(params) - SEND_MESSAGE_PARAMS)
            if unknown:
                raise _bad_request(f'unknown parameter "{unknown[0]}" (stand-in)')
        chat = self._resolve_chat(params.get("chat_id"))
        text = params.get("text")
        if text is None or text == "":
            raise _bad_request("message text is empty")
        if not isinstance(text, str):
            raise _bad_request('field "text" must be of type String')
        if len(text.encode("utf-8")) > RAW_TEXT_LIMIT_BYTES:
            raise _bad_request("text is too long")
        parse_mode = _optional_str(params, "parse_mode")
        disable_notification = _optional_bool(params, "disable_notification")
        _optional_bool(params, "protect_content")
        legacy_no_preview = _optional_bool(params, "disable_web_page_preview")
        link_preview = _link_preview_options(params.get("link_preview_options"))
        thread_id = _optional_int(params, "message_thread_id")

        if parse_mode:
            if parse_mode.lower() != "html":
                raise _bad_request(f"unsupported parse_mode {parse_mode!r} (the stand-in implements HTML only)")
            if params.get("entities") is not None:
                raise _bad_request("can't use entities together with parse_mode (stand-in)")
            try:
                visible, entities = parse_html(text)
            except HtmlParseError as exc:
                raise _bad_request(f"can't parse entities: {exc}") from None
        else:
            visible, entities = text, []
        if not visible.strip():
            raise _bad_request("message text is empty")
        if len(visible) > TEXT_LIMIT:
            raise _bad_request("message is too long")

        with self._lock:
            if chat.blocked_description:
                raise ApiError(403, chat.blocked_description)
            if chat.migrated_to is not None:
                raise ApiError(
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    {"migrate_to_chat_id": chat.migrated_to},
                )
            if thread_id is not None and (not chat.is_forum or thread_id <= 0):
                raise _bad_request("message thread not found")
            now = self.clock()
            if (
                self.per_chat_min_interval is not None
                and chat.last_message_at is not None
                and now - chat.last_message_at < self.per_chat_min_interval
            ):
                wait = math.ceil(self.per_chat_min_interval - (now - chat.last_message_at))
                raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            chat.last_message_at = now
            message_id = chat.next_message_id
            chat.next_message_id += 1
            date = int(self.wall_clock())
            preview_disabled = bool(link_preview.get("is_disabled")) if link_preview else legacy_no_preview
            self._messages[chat.id].append(
                DeliveredMessage(
                    message_id=message_id,
                    chat_id=chat.id,
                    text=visible,
                    entities=tuple(entities),
                    raw_text=text,
                    parse_mode=parse_mode or None,
                    disable_notification=disable_notification,
                    link_preview_disabled=preview_disabled,
                    message_thread_id=thread_id,
                    date=date,
                )
            )
        message: dict[str, Any] = {"message_id": message_id, "date": date, "chat": chat.as_json(), "text": visible}
        if chat.type == "channel":
            message["sender_chat"] = chat.as_json()
        else:
            message["from"] = {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Stand-in Bot",
                "username": "standin_alerts_bot",
            }
        if entities:
            message["entities"] = entities
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if link_preview:
            message["link_preview_options"] = link_preview
        return message

    def _resolve_chat(self, raw: Any) -> Chat:
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        with self._lock:
            if isinstance(raw, bool):
                raise _bad_request("chat not found")
            if isinstance(raw, int) or (isinstance(raw, str) and raw.lstrip("-").isdigit()):
                chat = self._chats.get(int(raw))
            elif isinstance(raw, str) and raw.startswith("@"):
                wanted = raw[1:].lower()
                chat = next((c for c in self._chats.values() if (c.username or "").lower() == wanted), None)
            else:
                chat = None
            if chat is None:
                raise _bad_request("chat not found")
            return chat


def _optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad_request(f'field "{name}" must be of type String')
    return value


def _optional_bool(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _bad_request(f'field "{name}" must be of type Boolean (stand-in)')


def _optional_int(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise _bad_request(f'field "{name}" must be of type Integer')


def _link_preview_options(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, str):  # form bodies carry JSON-serialized objects
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        raise _bad_request("can't parse link preview options JSON object")
    for key, value in raw.items():
        expected = LINK_PREVIEW_FIELDS.get(key)
        if expected is not None and not isinstance(value, expected):
            raise _bad_request(f'field "{key}" of link_preview_options has a wrong type (stand-in)')
    return dict(raw)


# -- HTTP -------------------------------------------------------------------------------------------


def _params_from_request(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any] | None:
    """Query string, then the body (JSON, urlencoded or multipart); None when the body cannot be read."""
    params: dict[str, Any] = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
    if not body:
        return params
    content_type = handler.headers.get("Content-Type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(decoded, dict):
            return None
        params.update(decoded)
    elif media_type == "application/x-www-form-urlencoded":
        try:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (ValueError, UnicodeDecodeError):
            return None
    elif media_type == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
        if not message.is_multipart():
            return None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not name or payload is None:
                return None
            params[str(name)] = payload.decode("utf-8")
    else:
        return None
    return params


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is still reported."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _make_handler(stand_in: TelegramBotApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
        server_version = "nginx/1.18.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the default would print request paths, and the path holds the token."""

        def _serve(self, http_method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            params = _params_from_request(self, body)
            status, answer = stand_in.handle(http_method, path, params)
            if answer is None:  # drop: close without a byte
                self.close_connection = True
                return
            if isinstance(answer, bytes):
                payload, content_type = answer, "text/html"
            else:
                payload = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                content_type = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


@contextmanager
def running_stand_in(**options: Any) -> Iterator[TelegramBotApiStandIn]:
    """`with running_stand_in() as api:` — started on a free loopback port, stopped afterwards."""
    stand_in = TelegramBotApiStandIn(**options).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
