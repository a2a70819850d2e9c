"""Client of one tenant's MailWizz customer API (2.x `X-API-KEY`, or 1.x signed requests).

Public API:
    ApiKey(key)                                   -- 2.x credentials
    SignedKeyPair(public_key, private_key)        -- 1.x credentials (HMAC-SHA1 signed requests)
    RetryPolicy(attempts=4, first_wait=0.5, max_wait=8.0)
    MailwizzClient(base_url, credentials, http: GuardedClient, *, retry=RetryPolicy(), clock=time.time,
                   max_response_bytes=None)
        lists:        create_list(ListSpec) -> str;  find_list_by_name(name) -> MailwizzList | None;
                      get_list(uid) -> MailwizzList
        subscribers:  add_subscribers(list_uid, [SubscriberInput], *, chunk_size=200) -> BulkResult;
                      find_subscriber(list_uid, email) -> SubscriberRef | None
        templates:    create_template(name, html) -> str;  find_template_by_name(name) -> TemplateRef | None
        campaigns:    create_campaign(CampaignSpec) -> str;  find_campaign_by_name(name) -> CampaignSummary | None;
                      get_campaign(uid) -> CampaignDetails;  campaign_stats(uid) -> CampaignStats;
                      pause_campaign(uid) -> ToggleOutcome;  resume_campaign(uid) -> ToggleOutcome
        servers:      list_delivery_servers() -> list[DeliveryServerRef]
    Errors (all MailwizzError; messages name the MailWizz host and what it said, never a key):
        MailwizzAuthError (400 auth / IP / account), MailwizzBadRequest (other 400), MailwizzForbidden (403 limits),
        MailwizzNotFound (404), MailwizzConflict (409), MailwizzValidationError (422, .field_errors),
        MailwizzUnavailable (503, 5xx, connection failure), MailwizzTimeout (no answer in time: outcome unknown),
        MailwizzProtocolError (an answer that is not MailWizz's envelope, or too large),
        MailwizzDestinationRefused (the URL leads where the platform never calls: a private address not allowed),
        MailwizzBatchIncomplete (a bulk chunk came back short or different: retry with a smaller chunk)

How the use cases are meant to use it
-------------------------------------
Reads (`get_*`, `find_*`, stats, delivery servers) are retried with exponential backoff on 5xx, 503, connection
failures and timeouts. The two toggles are retried too, because every attempt re-reads the campaign's status
before toggling (`pause-unpause` is a toggle: calling it blindly twice resumes what was paused).

Creates (`create_list`, `create_template`, `create_campaign`, a bulk chunk) are NEVER retried here: a create whose
answer was lost may have happened. On MailwizzUnavailable / MailwizzTimeout the caller looks up before creating
again, with a name that identifies the object (for instance the platform's campaign id in the list and campaign
names):

    found = client.find_list_by_name(name)
    list_uid = found.uid if found else client.create_list(spec)

`add_subscribers` is safe to run again over the same contacts: a subscriber MailWizz already holds is reported in
`BulkResult.already_present`, not as a failure. It sends `chunk_size` subscribers per call (a setting: PHP's
`max_input_vars`, 1 000 on a stock install, silently drops form fields past the limit, and MailWizz keeps at most
10 000 per call) and checks every record that comes back against what was sent. A chunk that comes back short or
different raises MailwizzBatchIncomplete (with the contacts already confirmed): call again with a smaller
chunk_size; the ones already added come back as already_present.

Every request goes through the platform's one client for user-supplied URLs, `libs.outbound.GuardedClient` (a
MailWizz base URL is typed by a tenant's admin): addresses checked at connect time against the operator's
allow-list, one whole-call deadline, a cap on the answer's size. The client is injected (one per process, built
from `Settings.outbound_policy()`); this module never builds one. `max_response_bytes` raises the cap for this
client's calls (a bulk call's answer lists every record). A refused destination is MailwizzDestinationRefused,
never retried: only the operator's allow-list can change it.

Form encoding: bodies are PHP nested form fields (`campaign[template][content]=...`), built by `http_build_query`
below, a copy of PHP's function of that name. qs-codec (a maintained port of JS `qs`) exists, but its defaults
(RFC 3986 spaces, `~` left as is) differ from PHP's urlencode, and the 1.x signature is an HMAC over PHP's exact
http_build_query output, so the 20 lines that reproduce it byte for byte are kept here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from libs.outbound import (
    DestinationRefused,
    GuardedClient,
    OutboundError,
    OutboundResponse,
    OutboundTimeout,
    ResponseTooLarge,
)

MAX_BULK_PER_CALL = 10_000
DEFAULT_CHUNK_SIZE = 200
ALREADY_EXISTS = "The subscriber already exists in this list."
SENDING_STATUSES = frozenset({"sending", "processing", "pending-sending"})
_AUTH_MESSAGES = (
    "Invalid API request params",
    "Invalid API key",
    "Your IP address is not allowed",
    "Your request expired",
    "Invalid API request signature",
    "Your account must be active",
    "Your account is not allowed to use the API",
)


# --------------------------------------------------------------------------- credentials and settings


@dataclass(frozen=True)
class ApiKey:
    """A MailWizz 2.x API key, sent in `X-API-KEY`."""

    key: SecretStr

    def __repr__(self) -> str:
        return "ApiKey(key=**********)"


@dataclass(frozen=True)
class SignedKeyPair:
    """A MailWizz 1.x key pair: every request signed with HMAC-SHA1 of the private key."""

    public_key: SecretStr
    private_key: SecretStr

    def __repr__(self) -> str:
        return "SignedKeyPair(public_key=**********, private_key=**********)"


Credentials = ApiKey | SignedKeyPair


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_wait: float = 0.5
    max_wait: float = 8.0


# --------------------------------------------------------------------------- errors


class MailwizzError(Exception):
    """A failure talking to MailWizz; `status` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class MailwizzAuthError(MailwizzError):
    """MailWizz refused the credentials (it answers 400, not 401): wrong key, IP not allowed, account inactive."""


class MailwizzBadRequest(MailwizzError):
    pass


class MailwizzForbidden(MailwizzError):
    """A customer-group limit (e.g. the maximum number of campaigns)."""


class MailwizzNotFound(MailwizzError):
    pass


class MailwizzConflict(MailwizzError):
    pass


class MailwizzValidationError(MailwizzError):
    """422: `field_errors` maps a field ("general.name", "send_at", ...) to MailWizz's message."""

    def __init__(self, message: str, *, field_errors: Mapping[str, str], status: int = 422):
        super().__init__(message, status=status)
        self.field_errors = dict(field_errors)


class MailwizzUnavailable(MailwizzError):
    """503, another 5xx, or no connection: worth retrying later."""


class MailwizzTimeout(MailwizzUnavailable):
    """No answer in time: a write may or may not have happened (look up before writing again)."""


class MailwizzProtocolError(MailwizzError):
    """The answer is not MailWizz's JSON envelope (a proxy page, a truncated body...)."""


class MailwizzDestinationRefused(MailwizzError):
    """The base URL resolves to an address the platform never calls (EE_OUTBOUND_ALLOW_NETWORKS decides)."""


class MailwizzBatchIncomplete(MailwizzError):
    """A bulk chunk came back with fewer or different records than sent: resend with a smaller chunk size."""

    def __init__(self, message: str, *, sent: int, returned: int, chunk_size: int, completed: BulkResult):
        super().__init__(message)
        self.sent = sent
        self.returned = returned
        self.chunk_size = chunk_size
        self.completed = completed


_RETRYABLE = (MailwizzUnavailable,)


# --------------------------------------------------------------------------- typed inputs and results


@dataclass(frozen=True)
class ListSpec:
    name: str
    description: str
    from_name: str
    from_email: str
    reply_to: str
    subject: str = ""
    opt_in: str = "single"
    opt_out: str = "single"
    company: Mapping[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "general": {
                "name": self.name,
                "description": self.description,
                "opt_in": self.opt_in,
                "opt_out": self.opt_out,
            },
            "defaults": {
                "from_name": self.from_name,
                "from_email": self.from_email,
                "reply_to": self.reply_to,
                "subject": self.subject,
            },
        }
        if self.company:
            body["company"] = dict(self.company)
        return body


@dataclass(frozen=True)
class MailwizzList:
    uid: str
    name: str
    description: str
    from_name: str | None
    from_email: str | None


@dataclass(frozen=True)
class SubscriberInput:
    """One contact; `fields` holds the list's other tags (FNAME, LNAME, ...). Empty values are not sent."""

    email: str
    fields: Mapping[str, str] = field(default_factory=dict)
    status: str | None = None  # e.g. "confirmed" to skip MailWizz's double opt-in email

    def form(self) -> dict[str, Any]:
        item: dict[str, Any] = {"EMAIL": self.email}
        item.update({tag: value for tag, value in self.fields.items() if value != ""})
        if self.status:
            item["details"] = {"status": self.status}
        return item


@dataclass(frozen=True)
class SubscriberRef:
    uid: str
    email: str
    status: str


@dataclass(frozen=True)
class BulkResult:
    added: tuple[SubscriberRef, ...] = ()
    already_present: tuple[str, ...] = ()
    rejected: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def merged(self, other: BulkResult) -> BulkResult:
        return BulkResult(
            added=self.added + other.added,
            already_present=self.already_present + other.already_present,
            rejected={**self.rejected, **other.rejected},
        )


@dataclass(frozen=True)
class TemplateRef:
    uid: str
    name: str


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    list_uid: str
    from_name: str
    from_email: str
    reply_to: str
    subject: str
    send_at: datetime  # in the MailWizz customer's timezone, as MailWizz reads it
    to_name: str = "[EMAIL]"
    template_uid: str | None = None
    html: str | None = None  # used when no template_uid
    delivery_server_ids: Sequence[int] = ()
    status: str = "pending-sending"  # pending-sending | draft | paused
    campaign_type: str = "regular"

    def form(self) -> dict[str, Any]:
        template: dict[str, Any] = {}
        if self.template_uid:
            template["template_uid"] = self.template_uid
        elif self.html is not None:
            template["content"] = _base64(self.html)
        campaign: dict[str, Any] = {
            "name": self.name,
            "type": self.campaign_type,
            "from_name": self.from_name,
            "from_email": self.from_email,
            "subject": self.subject,
            "reply_to": self.reply_to,
            "to_name": self.to_name,
            "send_at": self.send_at.strftime("%Y-%m-%d %H:%M:%S"),
            "list_uid": self.list_uid,
            "status": self.status,
            "template": template,
        }
        if self.delivery_server_ids:
            campaign["delivery_servers"] = [int(server_id) for server_id in self.delivery_server_ids]
        return {"campaign": campaign}


@dataclass(frozen=True)
class CampaignSummary:
    uid: str
    name: str
    status: str


@dataclass(frozen=True)
class CampaignDetails:
    uid: str
    name: str
    status: str
    subject: str
    from_name: str
    from_email: str
    send_at: str
    list_uid: str


@dataclass(frozen=True)
class CampaignStats:
    status: str
    subscribers: int
    processed: int
    delivered: int
    delivery_errors: int
    bounces: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    opens: int
    unique_opens: int
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class ToggleOutcome:
    """`changed` is False when nothing had to be done (already paused, or a status that cannot be paused)."""

    status: str
    changed: bool


@dataclass(frozen=True)
class DeliveryServerRef:
    server_id: int
    name: str
    hostname: str
    type: str
    status: str


# --------------------------------------------------------------------------- PHP form encoding


# Bytes PHP's urlencode() escapes; one regex pass over the UTF-8 bytes is several times faster than quote_plus,
# which matters for bulk imports (four fields per subscriber, 100 000 subscribers).
_PHP_UNSAFE = re.compile(rb"[^A-Za-z0-9_.\-]")
_PHP_ESCAPES = {bytes([b]): b"+" if b == 0x20 else f"%{b:02X}".encode() for b in range(256)}


def _php_escape(match: re.Match[bytes]) -> bytes:
    return _PHP_ESCAPES[match.group()]


def php_urlencode(value: str) -> str:
    """PHP's urlencode(): alphanumerics and `-_.` as is, space as `+`, anything else as `%XX` (of UTF-8 bytes)."""
    return _PHP_UNSAFE.sub(_php_escape, value.encode("utf-8")).decode("ascii")


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    elif value is True or value is False:
        out.append((prefix, "1" if value else "0"))
    elif value is not None:
        out.append((prefix, str(value)))


def php_form_fields(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The flat (name, value) pairs PHP reads back into `data`: {"a": {"b": ["x"]}} -> [("a[b][0]", "x")]."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        _flatten(str(key), value, out)
    return out


def http_build_query(data: Mapping[str, Any]) -> str:
    """PHP's http_build_query($data, '', '&'): nested keys as `a%5Bb%5D`, booleans as 1/0, nulls left out."""
    return "&".join(f"{php_urlencode(name)}={php_urlencode(value)}" for name, value in php_form_fields(data))


def _ksorted(data: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(data.items(), key=lambda item: str(item[0]).encode()))


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------- the client


class MailwizzClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        http: GuardedClient,
        *,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
        max_response_bytes: int | None = None,
    ):
        self._base = base_url.rstrip("/")
        self._host = urlsplit(self._base).netloc or self._base
        self._credentials = credentials
        self._http = http
        self._retry = retry
        self._clock = clock
        self._max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        return f"MailwizzClient({self._base!r}, credentials=**********)"

    # ---- lists

    def create_list(self, spec: ListSpec) -> str:
        return str(self._create("POST", "lists", spec.form())["list_uid"])

    def get_list(self, list_uid: str) -> MailwizzList:
        return _list_from(self._read("GET", f"lists/{list_uid}")["data"]["record"])

    def find_list_by_name(self, name: str) -> MailwizzList | None:
        return next((found for found in self._pages("lists", _list_from) if found.name == name), None)

    # ---- subscribers

    def add_subscribers(
        self, list_uid: str, subscribers: Sequence[SubscriberInput], *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> BulkResult:
        if not 1 <= chunk_size <= MAX_BULK_PER_CALL:
            raise ValueError(f"chunk_size must be between 1 and {MAX_BULK_PER_CALL}, got {chunk_size}")
        result = BulkResult()
        for start in range(0, len(subscribers), chunk_size):
            chunk = subscribers[start : start + chunk_size]
            body = {"subscribers": [item.form() for item in chunk]}
            answer = self._create("POST", f"lists/{list_uid}/subscribers/bulk", body)
            records = answer.get("data", {}).get("records")
            if not isinstance(records, list):
                raise MailwizzProtocolError(f"MailWizz at {self._host}: bulk answer without data.records")
            result = result.merged(self._check_chunk(chunk, records, chunk_size, result))
        return result

    def _check_chunk(
        self, chunk: Sequence[SubscriberInput], records: list[Any], chunk_size: int, so_far: BulkResult
    ) -> BulkResult:
        confirmed = BulkResult()
        for index, sent in enumerate(chunk):
            record = records[index] if index < len(records) else None
            if not _record_matches(sent, record):
                raise MailwizzBatchIncomplete(
                    f"MailWizz at {self._host} answered {len(records)} records for {len(chunk)} subscribers sent"
                    f" (the first difference is record {index}): resend with a smaller chunk size",
                    sent=len(chunk),
                    returned=len(records),
                    chunk_size=chunk_size,
                    completed=so_far.merged(confirmed),
                )
            confirmed = confirmed.merged(_bulk_outcome(sent, record))
        if len(records) > len(chunk):
            raise MailwizzBatchIncomplete(
                f"MailWizz at {self._host} answered {len(records)} records for {len(chunk)} subscribers sent",
                sent=len(chunk),
                returned=len(records),
                chunk_size=chunk_size,
                completed=so_far.merged(confirmed),
            )
        return confirmed

    def find_subscriber(self, list_uid: str, email: str) -> SubscriberRef | None:
        try:
            data = self._read("GET", f"lists/{list_uid}/subscribers/search-by-email", {"EMAIL": email})["data"]
        except MailwizzNotFound as missing:
            if "subscriber does not exist" in missing.message:
                return None
            raise
        return SubscriberRef(uid=str(data["subscriber_uid"]), email=email, status=str(data.get("status", "")))

    # ---- templates

    def create_template(self, name: str, html: str) -> str:
        body = {"template": {"name": name, "content": _base64(html)}}
        return str(self._create("POST", "templates", body)["template_uid"])

    def find_template_by_name(self, name: str) -> TemplateRef | None:
        found = self._pages("templates", _template_from, {"filter": {"name": name}})
        return next((template for template in found if template.name == name), None)

    # ---- campaigns

    def create_campaign(self, spec: CampaignSpec) -> str:
        if not spec.template_uid and not spec.html:
            raise ValueError("a campaign needs template_uid or html")
        return str(self._create("POST", "campaigns", spec.form())["campaign_uid"])

    def find_campaign_by_name(self, name: str) -> CampaignSummary | None:
        return next((found for found in self._pages("campaigns", _campaign_summary_from) if found.name == name), None)

    def get_campaign(self, campaign_uid: str) -> CampaignDetails:
        return _campaign_from(self._read("GET", f"campaigns/{campaign_uid}")["data"]["record"])

    def campaign_stats(self, campaign_uid: str) -> CampaignStats:
        return _stats_from(self._read("GET", f"campaigns/{campaign_uid}/stats")["data"])

    def pause_campaign(self, campaign_uid: str) -> ToggleOutcome:
        """Pauses a sending, processing or pending-sending campaign; a paused one is left as it is."""
        return self._toggle_until(campaign_uid, wanted="paused", toggles_from=SENDING_STATUSES)

    def resume_campaign(self, campaign_uid: str) -> ToggleOutcome:
        """Resumes a paused campaign (MailWizz puts it back to `sending`); any other status is left as it is."""
        return self._toggle_until(campaign_uid, wanted="sending", toggles_from=frozenset({"paused"}))

    def _toggle_until(self, campaign_uid: str, *, wanted: str, toggles_from: frozenset[str]) -> ToggleOutcome:
        changed = False

        def attempt() -> ToggleOutcome:
            # Each attempt reads the status first, so a toggle whose answer was lost is never repeated blindly.
            nonlocal changed
            status = _campaign_from(self._send("GET", f"campaigns/{campaign_uid}")["data"]["record"]).status
            if status not in toggles_from:
                return ToggleOutcome(status=status, changed=changed)
            changed = True
            answer = self._send("PUT", f"campaigns/{campaign_uid}/pause-unpause")
            return ToggleOutcome(status=str(answer.get("campaign", {}).get("status", "")), changed=True)

        return self._retrying(attempt)

    # ---- delivery servers (read-only in MailWizz)

    def list_delivery_servers(self) -> list[DeliveryServerRef]:
        return list(self._pages("delivery-servers", _server_from))

    # ---- transport

    def _pages(
        self, path: str, parse: Callable[[Mapping[str, Any]], Any], query: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        page = 1
        while True:
            data = self._read("GET", path, {**(query or {}), "page": page, "per_page": 50})["data"]
            yield from (parse(record) for record in data.get("records") or [])
            next_page = data.get("next_page")
            if not next_page:
                return
            page = int(next_page)

    def _read(self, method: str, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._retrying(lambda: self._send(method, path, query=query))

    def _create(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send(method, path, body=body)

    def _retrying(self, call: Callable[[], Any]) -> Any:
        policy = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait),
            retry=retry_if_exception_type(_RETRYABLE),
            reraise=True,
            before_sleep=_no_log,
        )
        return retrying(call)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self._base}/{path}"
        query_string = http_build_query(_ksorted(query or {}))
        if query_string:
            url = f"{url}?{query_string}"
        content = http_build_query(body or {})
        headers = {"Accept": "application/json", **self._auth_headers(method, url, body or {})}
        if method in ("PUT", "DELETE"):
            headers["X-HTTP-Method-Override"] = method
        if content:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = self._http.request(
                method,
                url,
                content=content.encode() if content else None,
                headers=headers,
                max_response_bytes=self._max_response_bytes,
            )
        except OutboundTimeout:
            raise MailwizzTimeout(f"MailWizz at {self._host} did not answer {method} {path} in time") from None
        except DestinationRefused as refused:
            raise MailwizzDestinationRefused(f"MailWizz at {self._host}: {refused}") from None
        except ResponseTooLarge:
            raise MailwizzProtocolError(f"MailWizz at {self._host} answered {method} {path} with too much") from None
        except OutboundError as failure:
            raise MailwizzUnavailable(
                f"MailWizz at {self._host} could not be reached for {method} {path}: {type(failure).__name__}"
            ) from None
        return self._decode(method, path, response)

    def _auth_headers(self, method: str, url: str, body: Mapping[str, Any]) -> dict[str, str]:
        credentials = self._credentials
        if isinstance(credentials, ApiKey):
            return {"X-API-KEY": credentials.key.get_secret_value()}
        special = {
            "X-MW-PUBLIC-KEY": credentials.public_key.get_secret_value(),
            "X-MW-TIMESTAMP": str(int(self._clock())),
            "X-MW-REMOTE-ADDR": "",
        }
        separator = "&" if "?" in url else "?"
        signed = f"{method} {url}{separator}{http_build_query(_ksorted({**special, **body}))}"
        signature = hmac.new(
            credentials.private_key.get_secret_value().encode(), signed.encode(), hashlib.sha1
        ).hexdigest()
        return {**special, "X-MW-SIGNATURE": signature}

    def _decode(self, method: str, path: str, response: OutboundResponse) -> dict[str, Any]:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "status" not in payload:
            if status >= 500:
                raise MailwizzUnavailable(
                    f"MailWizz at {self._host} answered {status} to {method} {path}", status=status
                )
            raise MailwizzProtocolError(
                f"MailWizz at {self._host} answered {status} to {method} {path} without its JSON envelope",
                status=status,
            )
        if payload.get("status") == "success" and status < 400:
            return payload
        raise self._error(method, path, status, payload.get("error"))

    def _error(self, method: str, path: str, status: int, error: Any) -> MailwizzError:
        text = self._scrub(_error_text(error))
        message = f"MailWizz at {self._host} refused {method} {path} ({status}): {text}"
        if status == 422 or (isinstance(error, Mapping) and status < 500):
            return MailwizzValidationError(message, field_errors=_field_errors(error), status=status)
        if status == 400 and any(text.startswith(known) for known in _AUTH_MESSAGES):
            return MailwizzAuthError(message, status=status)
        kinds: dict[int, type[MailwizzError]] = {
            400: MailwizzBadRequest,
            401: MailwizzAuthError,
            403: MailwizzForbidden,
            404: MailwizzNotFound,
            409: MailwizzConflict,
        }
        if status >= 500:
            return MailwizzUnavailable(message, status=status)
        return kinds.get(status, MailwizzBadRequest)(message, status=status)

    def _scrub(self, text: str) -> str:
        """MailWizz never echoes a key, but a proxy or a custom extension might: blank any that slips in."""
        credentials = self._credentials
        secrets = (
            [credentials.key] if isinstance(credentials, ApiKey) else [credentials.public_key, credentials.private_key]
        )
        for secret in secrets:
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "**********")
        return text


# --------------------------------------------------------------------------- parsing helpers


def _no_log(_: RetryCallState) -> None:
    return None


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        return "; ".join(f"{name}: {message}" for name, message in _field_errors(error).items())
    return str(error) if error is not None else "no error message"


def _field_errors(error: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(error, Mapping):
        return {prefix or "_": str(error)}
    flat: dict[str, str] = {}
    for name, message in error.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        flat.update(_field_errors(message, key) if isinstance(message, Mapping) else {key: str(message)})
    return flat


def _record_matches(sent: SubscriberInput, record: Any) -> bool:
    """A returned bulk record matches when it echoes the email and every field value that was sent."""
    if not isinstance(record, Mapping) or not isinstance(record.get("data"), Mapping):
        return False
    data = record["data"]
    if str(data.get("EMAIL") or "") != sent.email:
        return False
    return all(str(data.get(tag) or "") == value for tag, value in sent.fields.items() if value != "")


def _bulk_outcome(sent: SubscriberInput, record: Mapping[str, Any]) -> BulkResult:
    errors = record.get("errors")
    if errors:
        flat = _field_errors(errors)
        if flat == {"EMAIL": ALREADY_EXISTS}:
            return BulkResult(already_present=(sent.email,))
        return BulkResult(rejected={sent.email: flat})
    uid = record["data"].get("subscriber_uid")
    if not uid:
        return BulkResult(rejected={sent.email: {"_": "MailWizz returned no subscriber_uid"}})
    return BulkResult(added=(SubscriberRef(uid=str(uid), email=sent.email, status=sent.status or ""),))


def _list_from(record: Mapping[str, Any]) -> MailwizzList:
    general = record.get("general") or {}
    defaults = record.get("defaults") or {}
    return MailwizzList(
        uid=str(general["list_uid"]),
        name=str(general.get("name") or ""),
        description=str(general.get("description") or ""),
        from_name=defaults.get("from_name"),
        from_email=defaults.get("from_email"),
    )


def _template_from(record: Mapping[str, Any]) -> TemplateRef:
    return TemplateRef(uid=str(record["template_uid"]), name=str(record.get("name") or ""))


def _campaign_summary_from(record: Mapping[str, Any]) -> CampaignSummary:
    return CampaignSummary(
        uid=str(record["campaign_uid"]), name=str(record.get("name") or ""), status=str(record.get("status") or "")
    )


def _campaign_from(record: Mapping[str, Any]) -> CampaignDetails:
    return CampaignDetails(
        uid=str(record["campaign_uid"]),
        name=str(record.get("name") or ""),
        status=str(record.get("status") or ""),
        subject=str(record.get("subject") or ""),
        from_name=str(record.get("from_name") or ""),
        from_email=str(record.get("from_email") or ""),
        send_at=str(record.get("send_at") or ""),
        list_uid=str((record.get("list") or {}).get("list_uid") or ""),
    )


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    return int(float(value)) if value not in (None, "") else 0


def _stats_from(data: Mapping[str, Any]) -> CampaignStats:
    return CampaignStats(
        status=str(data.get("campaign_status") or ""),
        subscribers=_count(data, "subscribers_count"),
        processed=_count(data, "processed_count"),
        delivered=_count(data, "delivery_success_count"),
        delivery_errors=_count(data, "delivery_error_count"),
        bounces=_count(data, "bounces_count"),
        hard_bounces=_count(data, "hard_bounces_count"),
        soft_bounces=_count(data, "soft_bounces_count"),
        complaints=_count(data, "complaints_count"),
        unsubscribes=_count(data, "unsubscribes_count"),
        opens=_count(data, "opens_count"),
        unique_opens=_count(data, "unique_opens_count"),
        clicks=_count(data, "clicks_count"),
        unique_clicks=_count(data, "unique_clicks_count"),
    )


def _server_from(record: Mapping[str, Any]) -> DeliveryServerRef:
    return DeliveryServerRef(
        server_id=int(record["server_id"]),
        name=str(record.get("name") or ""),
        hostname=str(record.get("hostname") or ""),
        type=str(record.get("type") or ""),
        status=str(record.get("status") or ""),
    )
