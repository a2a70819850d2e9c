"""A strict stand-in for the MailWizz 2.x customer API, on loopback, for the campaign-gateway tests.

It answers as MailWizz 2.1.13 does (the controllers under `apps/api/controllers/`, the filter
`apps/api/components/web/filters/RequestAccessFilter.php` and the models' validation rules):

- bodies and query strings are read the way PHP reads them (`tests.standins.php_input`), including PHP's
  `max_input_vars` cap (1 000 on a stock php.ini): pairs past it are silently dropped;
- the envelope is `{"status":"success","data":...}`; creates answer 201 with the uid at the top level;
  errors are `{"status":"error","error": "msg" | {field: msg}}`;
- auth failures are 400 ("Invalid API request params. ...", "Invalid API key. ..."), never 401; an offline API is
  503 "Service Unavailable."; validation is 422; an unknown route is 404 "Page not found.";
- 2.x reads one key from `X-API-KEY` (falling back to `X-MW-PUBLIC-KEY`) with no signature; a customer set up
  with `auth="v1"` instead stands for a 1.x install: public key, timestamp (900 s timeframe) and the HMAC-SHA1
  signature over the canonical string, checked exactly as 1.x's RequestAccessFilter does;
- pagination clamps `per_page` to 10..50; `count` is a string and `total_pages` a float, as Yii's count() and
  PHP's ceil() return them, and all the numbers are null when there is nothing;
- `lists/{uid}/subscribers/bulk` keeps only the first 10 000 subscribers and still answers 201;
- `campaigns/{uid}/pause-unpause` is the real toggle.

Deliberately stricter than MailWizz in one place: template `content` (and campaign `template[content]`) that is
not valid base64 is refused with 422. PHP's lenient base64_decode would store garbage instead; refusing makes a
client that forgot to encode fail loudly in the tests rather than send garbage in production.

Several customers (one per tenant) can share one stand-in; each sees only its own lists, templates, campaigns
and delivery servers. A customer's delivery servers are the stand-in's own (`add_delivery_server`) or, with
`servers_from`, read from a real `delivery_server` table each time, as MailWizz reads its MySQL (see
`delivery_servers_from_table`). A campaign keeps only the selected servers MailWizz would (Customer::
getAvailableDeliveryServers): the customer's own, `active` or `in-use`, used for all or for campaigns; any other
id is dropped without a word. Tests drive faults with `fail_next`, `delay_next`, `max_input_vars` and `offline`, and
read `calls` (requests per endpoint) and `created` (objects per customer and kind).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.harness.servers import free_port
from tests.standins.php_input import PhpArray, http_build_query, parse_php_input, php_ksort

BULK_LIMIT = 10_000
REQUEST_TIMEFRAME_SECONDS = 900
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UID_ALPHABET = string.ascii_lowercase + string.digits

PAUSABLE = ("sending", "processing", "pending-sending")
CAMPAIGN_CREATE_STATUSES = ("pending-sending", "draft", "paused")


class ApiError(Exception):
    """An error answer: `error` is a message or a {field: message} map, as MailWizz renders them."""

    def __init__(self, status: int, error: str | dict[str, Any]):
        super().__init__(str(error))
        self.status = status
        self.error = error


def _uid() -> str:
    return "".join(secrets.choice(_UID_ALPHABET) for _ in range(13))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _valid_email(value: Any) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value))


def _text(value: Any) -> str:
    """What `(string)` gives for a scalar form value; arrays become "Array" as in PHP."""
    if isinstance(value, dict):
        return "Array"
    return "" if value is None else str(value)


def _php_empty(value: Any) -> bool:
    return value is None or value == "" or value == "0" or value == {} or value == 0


# --------------------------------------------------------------------------- state


@dataclass
class DeliveryServer:
    server_id: int
    name: str
    hostname: str
    type: str = "smtp-pmta"
    status: str = "active"
    use_for: str = "all"

    def record(self) -> dict[str, Any]:
        # getAttributes() on an ActiveRecord read from MySQL: integers come back as strings.
        return {
            "server_id": str(self.server_id),
            "type": self.type,
            "name": self.name,
            "hostname": self.hostname,
            "status": self.status,
        }


@dataclass
class Subscriber:
    uid: str
    email: str
    fields: dict[str, str]
    status: str
    source: str = "api"
    ip_address: str = ""
    date_added: str = field(default_factory=_now)


@dataclass
class MailList:
    uid: str
    general: dict[str, str]
    defaults: dict[str, str]
    company: dict[str, Any]
    opt_in: str
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    field_tags: tuple[str, ...] = ("EMAIL", "FNAME", "LNAME")
    required_tags: tuple[str, ...] = ("EMAIL",)
    status: str = "active"

    def record(self) -> dict[str, Any]:
        return {
            "general": {
                "list_uid": self.uid,
                "name": self.general.get("name", ""),
                "display_name": self.general.get("display_name") or self.general.get("name", ""),
                "description": self.general.get("description", ""),
            },
            "defaults": {k: self.defaults.get(k) for k in ("from_email", "from_name", "reply_to", "subject")},
            "notifications": {"subscribe": "no", "unsubscribe": "no", "subscribe_to": "", "unsubscribe_to": ""},
            "company": self.company,
        }


@dataclass
class Template:
    uid: str
    name: str
    content: str


@dataclass
class Campaign:
    uid: str
    attributes: dict[str, Any]
    list_uid: str
    content: str
    delivery_servers: list[int]
    status: str
    date_added: str = field(default_factory=_now)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Customer:
    """One MailWizz customer (one tenant). `auth` is "v2" (X-API-KEY) or "v1" (signed requests)."""

    customer_id: int
    name: str
    api_key: str = ""
    public_key: str = ""
    private_key: str = ""
    auth: str = "v2"
    active: bool = True
    has_company: bool = True
    can_select_delivery_servers: bool = True
    max_lists: int = -1
    max_campaigns: int = -1
    lists: dict[str, MailList] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    servers: dict[int, DeliveryServer] = field(default_factory=dict)
    servers_from: Callable[[Customer], dict[int, DeliveryServer]] | None = None

    def delivery_servers(self) -> dict[int, DeliveryServer]:
        return self.servers_from(self) if self.servers_from is not None else self.servers


@dataclass
class _Fault:
    remaining: int
    path: str | None
    status: int = 0
    seconds: float = 0.0

    def applies(self, path: str) -> bool:
        return self.remaining > 0 and (self.path is None or self.path == path)


@dataclass
class Request:
    method: str
    path: str
    query: PhpArray
    body: PhpArray
    headers: dict[str, str]
    host: str
    customer: Customer | None = None


Handler = Callable[["MailwizzApiStandIn", Request, dict[str, str]], tuple[int, dict[str, Any]]]
_COUNTRIES = {"France": 73, "United States": 223, "Germany": 81, "Romania": 175}


# --------------------------------------------------------------------------- pagination


def _page_args(query: PhpArray) -> tuple[int, int]:
    def as_int(value: Any, default: int) -> int:
        try:
            return int(str(value).strip() or default)
        except ValueError:
            return 0

    per_page = min(max(as_int(query.get("per_page", 10), 10), 10), 50)
    page = max(as_int(query.get("page", 1), 1), 1)
    return page, per_page


def _paginate(records: list[dict[str, Any]], query: PhpArray) -> dict[str, Any]:
    data: dict[str, Any] = {
        "count": None,
        "total_pages": None,
        "current_page": None,
        "next_page": None,
        "prev_page": None,
        "records": [],
    }
    if not records:
        return data
    page, per_page = _page_args(query)
    total_pages = float(math.ceil(len(records) / per_page))
    data.update(
        count=str(len(records)),
        total_pages=total_pages,
        current_page=page,
        next_page=page + 1 if page < total_pages else None,
        prev_page=page - 1 if page > 1 else None,
        records=records[(page - 1) * per_page : page * per_page],
    )
    return data


# --------------------------------------------------------------------------- validation helpers


def _required(attrs: PhpArray, labels: dict[str, str], errors: dict[str, str]) -> None:
    for name, label in labels.items():
        if _text(attrs.get(name)).strip() == "" and name not in errors:
            errors[name] = f"{label} cannot be blank."


def _length(attrs: PhpArray, name: str, label: str, errors: dict[str, str], *, low: int = 0, high: int) -> None:
    value = _text(attrs.get(name))
    if name in errors or value == "":
        return
    if len(value) < low:
        errors[name] = f"{label} is too short (minimum is {low} characters)."
    elif len(value) > high:
        errors[name] = f"{label} is too long (maximum is {high} characters)."


def _email_rule(attrs: PhpArray, name: str, label: str, errors: dict[str, str]) -> None:
    value = _text(attrs.get(name))
    if name not in errors and value and not _valid_email(value):
        errors[name] = f"{label} is not a valid email address."


def _strict_base64(value: str) -> str | None:
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _as_array(value: Any) -> PhpArray:
    """`(array)$value`: an array stays, a scalar becomes a one-item list, null becomes empty."""
    if isinstance(value, dict):
        return value
    return {} if value is None else {0: value}


# --------------------------------------------------------------------------- the server


class MailwizzApiStandIn:
    """Real HTTP on 127.0.0.1, threaded; `start()`/`stop()` from the test, `url` is the API base URL."""

    def __init__(self, *, max_input_vars: int | None = 1000, clock: Callable[[], float] = time.time):
        self.port = free_port()
        self.max_input_vars = max_input_vars
        self.offline = False
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.created: Counter[tuple[str, str]] = Counter()
        self.dropped_input_vars = 0
        self._customers: list[Customer] = []
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._next_server_id = 1

    # ---- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> MailwizzApiStandIn:
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                standin._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mailwizz-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    # ---- set-up from tests

    def add_customer(self, name: str, **options: Any) -> Customer:
        with self._lock:
            customer = Customer(customer_id=len(self._customers) + 1, name=name, **options)
            self._customers.append(customer)
            return customer

    def add_delivery_server(self, customer: Customer, *, name: str, hostname: str, status: str = "active") -> int:
        with self._lock:
            server_id = self._next_server_id
            self._next_server_id += 1
            customer.servers[server_id] = DeliveryServer(server_id, name, hostname, status=status)
            return server_id

    def set_campaign_status(self, customer: Customer, campaign_uid: str, status: str) -> None:
        """What MailWizz's cron does on its own (pending-sending -> processing -> sending -> sent)."""
        with self._lock:
            customer.campaigns[campaign_uid].status = status

    def fail_next(self, count: int, *, status: int = 500, path: str | None = None) -> None:
        """Answer `status` (500 or 503) to the next `count` calls, or only to those on `path` (e.g. "/lists")."""
        with self._lock:
            self._faults.append(_Fault(count, path, status=status))

    def clear_faults(self) -> None:
        """Forget the faults and delays not used yet (the outage is over)."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def delay_next(self, count: int, seconds: float, *, path: str | None = None) -> None:
        """Hold the next `count` answers for `seconds` (the work is still done, as on a slow real server)."""
        with self._lock:
            self._delays.append(_Fault(count, path, seconds=seconds))

    # ---- request handling

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        split = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw_body = http.rfile.read(length).decode("utf-8", "replace") if length else ""
        query, _ = parse_php_input(split.query, max_input_vars=self.max_input_vars)
        body, dropped = parse_php_input(raw_body, max_input_vars=self.max_input_vars)
        method = (http.headers.get("X-HTTP-Method-Override") or http.command).upper()
        request = Request(
            method=method,
            path=split.path,
            query=query,
            body=body,
            headers={k.lower(): v for k, v in http.headers.items()},
            host=http.headers.get("Host", f"127.0.0.1:{self.port}"),
        )
        with self._lock:
            self.dropped_input_vars += dropped
        status, payload = self._respond(request)
        delay = self._take(self._delays, request.path.removeprefix("/api"))
        if delay is not None:
            time.sleep(delay.seconds)
        encoded = json.dumps(payload, separators=(",", ":")).encode()
        try:
            http.send_response(status)
            http.send_header("Content-Type", "application/json; charset=utf-8")
            http.send_header("Content-Length", str(len(encoded)))
            http.end_headers()
            http.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); the work above is done, as on a real server

    def _take(self, faults: list[_Fault], path: str) -> _Fault | None:
        with self._lock:
            for fault in faults:
                if fault.applies(path):
                    fault.remaining -= 1
                    return fault
        return None

    def _respond(self, request: Request) -> tuple[int, dict[str, Any]]:
        path = request.path
        if not path.startswith("/api/") and path != "/api":
            return 404, {"status": "error", "error": "Page not found."}
        route_path = path.removeprefix("/api").rstrip("/") or "/"
        endpoint, handler, params = _route(request.method, route_path)
        with self._lock:
            self.calls[endpoint] += 1
        injected = self._take(self._faults, route_path)
        if injected is not None:
            message = "Service Unavailable." if injected.status == 503 else "Internal Server Error."
            return injected.status, {"status": "error", "error": message}
        if self.offline:
            return 503, {"status": "error", "error": "Service Unavailable."}
        if handler is None:
            return 404, {"status": "error", "error": "Page not found."}
        try:
            with self._lock:
                request.customer = self._authenticate(request)
                return handler(self, request, params)
        except ApiError as error:
            return error.status, {"status": "error", "error": error.error}

    # ---- auth (RequestAccessFilter)

    def _authenticate(self, request: Request) -> Customer:
        api_key = request.headers.get("x-api-key") or request.headers.get("x-mw-public-key", "")
        if not api_key:
            raise ApiError(400, "Invalid API request params. Please refer to the documentation.")
        customer = next((c for c in self._customers if c.auth == "v2" and c.api_key == api_key), None)
        if customer is None:
            customer = self._authenticate_signed(request)
        if not customer.active:
            raise ApiError(400, "Your account must be active in order to use the API.")
        return customer

    def _authenticate_signed(self, request: Request) -> Customer:
        public_key = request.headers.get("x-mw-public-key", "")
        timestamp = request.headers.get("x-mw-timestamp", "")
        signature = request.headers.get("x-mw-signature", "")
        customer = next((c for c in self._customers if c.auth == "v1" and c.public_key == public_key), None)
        if customer is None:
            raise ApiError(400, "Invalid API key. Please refer to the documentation.")
        if not public_key or not timestamp or not signature:
            raise ApiError(400, "Invalid API request params. Please refer to the documentation.")
        try:
            sent_at = int(float(timestamp))
        except ValueError:
            sent_at = 0
        if sent_at + REQUEST_TIMEFRAME_SECONDS < int(self.clock()):
            raise ApiError(400, "Your request expired. Please refer to the documentation.")
        expected = hmac.new(
            customer.private_key.encode(), v1_signature_string(request).encode(), hashlib.sha1
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ApiError(400, "Invalid API request signature. Please refer to the documentation.")
        return customer

    # ---- lists

    def list_index(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        lists = reversed(_visible_lists(request.customer))  # ORDER BY list_id DESC
        return 200, {"status": "success", "data": _paginate([rec.record() for _, rec in lists], request.query)}

    def list_view(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        mail_list = _load_list(request.customer, params["list_uid"], "The list does not exist.")
        return 200, {"status": "success", "data": {"record": mail_list.record()}}

    def list_create(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        customer = _customer(request)
        if customer.max_lists > -1 and len(customer.lists) >= customer.max_lists:
            raise ApiError(422, "You have reached the maximum number of allowed lists.")
        general = _as_array(request.body.get("general"))
        defaults = _as_array(request.body.get("defaults"))
        company = _as_array(request.body.get("company"))
        _validate_list_general(general)
        _validate_list_defaults(defaults)
        company_record = _validate_list_company(customer, company)
        mail_list = MailList(
            uid=_uid(),
            general={k: _text(v) for k, v in general.items()},
            defaults={k: _text(v) for k, v in defaults.items()},
            company=company_record,
            opt_in=_text(general.get("opt_in")) or "double",
        )
        customer.lists[mail_list.uid] = mail_list
        self.created[(customer.name, "list")] += 1
        return 201, {"status": "success", "list_uid": mail_list.uid}

    def list_delete(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        mail_list = _load_list(request.customer, params["list_uid"], "The list does not exist.")
        mail_list.status = "pending-delete"
        return 200, {"status": "success"}

    # ---- subscribers

    def subscriber_index(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        mail_list = _load_list(request.customer, params["list_uid"], "The subscribers list does not exist.")
        wanted = _text(request.query.get("status"))
        subscribers = [s for s in mail_list.subscribers.values() if not wanted or s.status == wanted]
        records = [_subscriber_record(mail_list, s) for s in reversed(subscribers)]
        return 200, {"status": "success", "data": _paginate(records, request.query)}

    def subscriber_create(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        email = _text(request.body.get("EMAIL"))
        if not email:
            raise ApiError(422, "Please provide the subscriber email address.")
        if not _valid_email(email):
            raise ApiError(422, "Please provide a valid email address.")
        mail_list = _load_list(request.customer, params["list_uid"], "The subscribers list does not exist.")
        existing = mail_list.subscribers.get(email)
        if existing is not None and existing.status != "unsubscribed":
            raise ApiError(409, "The subscriber already exists in this list.")
        errors = {
            tag: f"The field {tag} is required by the list but it has not been provided!"
            for tag in mail_list.required_tags
            if _php_empty(request.body.get(tag))
        }
        if errors:
            raise ApiError(422, errors)
        subscriber = _save_subscriber(mail_list, email, request.body, _as_array(request.body.get("details")))
        self.created[(_customer(request).name, "subscriber")] += 1
        record = {
            "subscriber_uid": subscriber.uid,
            "email": subscriber.email,
            "ip_address": subscriber.ip_address,
            "source": subscriber.source,
            "date_added": subscriber.date_added,
        }
        return 201, {"status": "success", "data": {"record": record}}

    def subscriber_bulk(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        mail_list = _load_list(request.customer, params["list_uid"], "The subscribers list does not exist.")
        subscribers = request.body.get("subscribers")
        if _php_empty(subscribers) or not isinstance(subscribers, dict):
            raise ApiError(422, "Please provide the subscribers list.")
        items = list(subscribers.values())[:BULK_LIMIT]  # array_slice($subscribers, 0, 10000)
        records = [self._bulk_item(request, mail_list, item) for item in items]
        return 201, {"status": "success", "data": {"records": records}}

    def _bulk_item(self, request: Request, mail_list: MailList, item: Any) -> dict[str, Any]:
        item = _as_array(item)
        email = item.get("EMAIL")
        if _php_empty(email) or not _valid_email(email):
            data = {k: v for k, v in item.items() if k != "details"}
            return {"data": data, "errors": {"EMAIL": "Please provide a valid email address."}}
        data: dict[str, Any] = {tag: item.get(tag) for tag in mail_list.field_tags}
        errors = {
            tag: f"The field {tag} is required by the list but it has not been provided!"
            for tag in mail_list.required_tags
            if _php_empty(item.get(tag))
        }
        if errors:
            return {"data": data, "errors": errors}
        existing = mail_list.subscribers.get(_text(email))
        if existing is not None and existing.status != "unsubscribed":
            return {"data": data, "errors": {"EMAIL": "The subscriber already exists in this list."}}
        subscriber = _save_subscriber(mail_list, _text(email), item, _as_array(item.get("details")))
        self.created[(_customer(request).name, "subscriber")] += 1
        data["subscriber_uid"] = subscriber.uid
        return {"data": data}

    def subscriber_search(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        email = _text(request.query.get("EMAIL"))
        if not email:
            raise ApiError(422, "Please provide the subscriber email address.")
        if not _valid_email(email):
            raise ApiError(422, "Please provide a valid email address.")
        mail_list = _load_list(request.customer, params["list_uid"], "The subscribers list does not exist.")
        subscriber = mail_list.subscribers.get(email)
        if subscriber is None:
            raise ApiError(404, "The subscriber does not exist in this list.")
        data = {"subscriber_uid": subscriber.uid, "status": subscriber.status, "date_added": subscriber.date_added}
        return 200, {"status": "success", "data": data}

    # ---- templates

    def template_index(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        wanted = _text(_as_array(request.query.get("filter")).get("name")).lower()
        templates = [t for t in _customer(request).templates.values() if wanted in t.name.lower()]
        records = [{"template_uid": t.uid, "name": t.name, "screenshot": None} for t in reversed(templates)]
        return 200, {"status": "success", "data": _paginate(records, request.query)}

    def template_view(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        template = _customer(request).templates.get(params["template_uid"])
        if template is None:
            raise ApiError(404, "The template does not exist.")
        record = {"name": template.name, "content": template.content, "screenshot": None}
        return 200, {"status": "success", "data": {"record": record}}

    def template_create(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        attrs = _as_array(request.body.get("template"))
        errors: dict[str, str] = {}
        _required(attrs, {"name": "Name", "content": "Content"}, errors)
        _length(attrs, "name", "Name", errors, high=255)
        content = ""
        if "content" not in errors:
            decoded = _strict_base64(_text(attrs.get("content")))
            if decoded is None:
                errors["content"] = "Content is not valid base64."
            elif not decoded.strip():
                errors["content"] = "Content cannot be blank."
            else:
                content = decoded
        if errors:
            raise ApiError(422, errors)
        customer = _customer(request)
        template = Template(uid=_uid(), name=_text(attrs.get("name")), content=content)
        customer.templates[template.uid] = template
        self.created[(customer.name, "template")] += 1
        return 201, {"status": "success", "template_uid": template.uid}

    # ---- campaigns

    def campaign_index(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        campaigns = [c for c in _customer(request).campaigns.values() if c.status != "pending-delete"]
        records = [
            {
                "campaign_uid": c.uid,
                "type": _text(c.attributes.get("type")) or "regular",
                "name": _text(c.attributes.get("name")),
                "status": c.status,
                "group": [],
            }
            for c in reversed(campaigns)
        ]
        return 200, {"status": "success", "data": _paginate(records, request.query)}

    def campaign_view(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        customer = _customer(request)
        campaign = _load_campaign(customer, params["campaign_uid"])
        mail_list = customer.lists[campaign.list_uid]
        record = {key: _text(campaign.attributes.get(key)) for key in _CAMPAIGN_VIEW_FIELDS}
        record.update(
            campaign_uid=campaign.uid,
            type=_text(campaign.attributes.get("type")) or "regular",
            status=campaign.status,
            date_added=campaign.date_added,
            send_at=_text(campaign.attributes.get("send_at")),
            list={
                "list_uid": mail_list.uid,
                "name": mail_list.general.get("name", ""),
                "subscribers_count": sum(1 for s in mail_list.subscribers.values() if s.status == "confirmed"),
            },
            segment=[],
            group=[],
        )
        return 200, {"status": "success", "data": {"record": record}}

    def campaign_create(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        customer = _customer(request)
        if customer.max_campaigns > -1 and len(customer.campaigns) >= customer.max_campaigns:
            raise ApiError(403, "You have reached the maximum number of allowed campaigns.")
        attrs = _as_array(request.body.get("campaign"))
        _validate_campaign(attrs)
        list_uid = _text(attrs.get("list_uid"))
        if not list_uid:
            raise ApiError(422, "Please provide a list for this campaign.")
        if list_uid not in dict(_visible_lists(customer)):
            raise ApiError(422, "Provided list does not exist.")
        content = _campaign_content(customer, _as_array(attrs.get("template")))
        campaign = Campaign(
            uid=_uid(),
            attributes=dict(attrs),
            list_uid=list_uid,
            content=content,
            delivery_servers=_selected_servers(customer, attrs),
            status=_text(attrs.get("status")) if attrs.get("status") in CAMPAIGN_CREATE_STATUSES else "pending-sending",
        )
        customer.campaigns[campaign.uid] = campaign
        self.created[(customer.name, "campaign")] += 1
        return 201, {"status": "success", "campaign_uid": campaign.uid}

    def campaign_pause_unpause(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        campaign = _load_campaign(_customer(request), params["campaign_uid"])
        if campaign.status == "paused":
            campaign.status = "sending"
        elif campaign.status in PAUSABLE:
            campaign.status = "paused"
        return 200, {"status": "success", "campaign": {"status": campaign.status}}

    def campaign_stats(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        campaign = _load_campaign(_customer(request), params["campaign_uid"])
        data: dict[str, Any] = {"campaign_status": campaign.status}
        for name in _STAT_NAMES:
            data[f"{name}_count"] = campaign.stats.get(f"{name}_count", 0)
            if name != "subscribers" and name != "processed":
                data[f"{name}_rate"] = float(campaign.stats.get(f"{name}_rate", 0.0))
        return 200, {"status": "success", "data": data}

    # ---- delivery servers (read-only in MailWizz)

    def server_index(self, request: Request, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        servers = sorted(_customer(request).delivery_servers().values(), key=lambda s: s.name)
        return 200, {"status": "success", "data": _paginate([s.record() for s in servers], request.query)}

    def server_view(self, request: Request, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        server = _customer(request).delivery_servers().get(int(params["server_id"]))
        if server is None:
            raise ApiError(404, "The server does not exist.")
        return 200, {"status": "success", "data": {"record": server.record()}}


def delivery_servers_from_table(engine: Any, prefix: str = "mw_") -> Callable[[Customer], dict[int, DeliveryServer]]:
    """A `servers_from` reading the customer's rows of a real MailWizz `delivery_server` table (SQLAlchemy engine)."""
    from sqlalchemy import text

    def read(customer: Customer) -> dict[int, DeliveryServer]:
        query = text(
            f"SELECT server_id, name, hostname, type, status, use_for FROM `{prefix}delivery_server` "
            "WHERE customer_id = :customer"
        )
        with engine.connect() as connection:
            rows = connection.execute(query, {"customer": customer.customer_id}).all()
        return {
            int(row.server_id): DeliveryServer(
                int(row.server_id), row.name or "", row.hostname, row.type, row.status, row.use_for
            )
            for row in rows
        }

    return read


# --------------------------------------------------------------------------- routing (apps/api/config/main.php)

_UID = r"(?P<{}>[a-z0-9]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = [
    (m, re.compile(f"^{p}$"), name, h)
    for m, p, name, h in [
        ("GET", "/lists", "lists.index", MailwizzApiStandIn.list_index),
        ("POST", "/lists", "lists.create", MailwizzApiStandIn.list_create),
        ("GET", "/lists/" + _UID.format("list_uid"), "lists.view", MailwizzApiStandIn.list_view),
        ("DELETE", "/lists/" + _UID.format("list_uid"), "lists.delete", MailwizzApiStandIn.list_delete),
        (
            "GET",
            "/lists/" + _UID.format("list_uid") + "/subscribers",
            "subscribers.index",
            MailwizzApiStandIn.subscriber_index,
        ),
        (
            "POST",
            "/lists/" + _UID.format("list_uid") + "/subscribers",
            "subscribers.create",
            MailwizzApiStandIn.subscriber_create,
        ),
        (
            "POST",
            "/lists/" + _UID.format("list_uid") + "/subscribers/bulk",
            "subscribers.bulk",
            MailwizzApiStandIn.subscriber_bulk,
        ),
        (
            "GET",
            "/lists/" + _UID.format("list_uid") + "/subscribers/search-by-email",
            "subscribers.search_by_email",
            MailwizzApiStandIn.subscriber_search,
        ),
        ("GET", "/templates", "templates.index", MailwizzApiStandIn.template_index),
        ("POST", "/templates", "templates.create", MailwizzApiStandIn.template_create),
        ("GET", "/templates/" + _UID.format("template_uid"), "templates.view", MailwizzApiStandIn.template_view),
        ("GET", "/campaigns", "campaigns.index", MailwizzApiStandIn.campaign_index),
        ("POST", "/campaigns", "campaigns.create", MailwizzApiStandIn.campaign_create),
        ("GET", "/campaigns/" + _UID.format("campaign_uid"), "campaigns.view", MailwizzApiStandIn.campaign_view),
        (
            "PUT",
            "/campaigns/" + _UID.format("campaign_uid") + "/pause-unpause",
            "campaigns.pause_unpause",
            MailwizzApiStandIn.campaign_pause_unpause,
        ),
        (
            "GET",
            "/campaigns/" + _UID.format("campaign_uid") + "/stats",
            "campaigns.stats",
            MailwizzApiStandIn.campaign_stats,
        ),
        ("GET", "/delivery-servers", "delivery_servers.index", MailwizzApiStandIn.server_index),
        ("GET", r"/delivery-servers/(?P<server_id>\d+)", "delivery_servers.view", MailwizzApiStandIn.server_view),
    ]
]


def _route(method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
    for route_method, pattern, name, handler in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return name, handler, match.groupdict()
    return f"unrouted {method} {path}", None, {}


def v1_signature_string(request: Request) -> str:
    """1.x RequestAccessFilter: METHOD + ' ' + absolute URL (GET params ksorted) + '?'|'&' + ksorted params."""
    url = f"http://{request.host}{request.path}"
    if request.query:
        url += "?" + http_build_query(php_ksort(request.query))
    separator = "&" if "?" in url else "?"
    params: PhpArray = {
        "X-MW-PUBLIC-KEY": request.headers.get("x-mw-public-key", ""),
        "X-MW-TIMESTAMP": request.headers.get("x-mw-timestamp", ""),
        "X-MW-REMOTE-ADDR": request.headers.get("x-mw-remote-addr", ""),
    }
    params.update(request.body)
    return f"{request.method} {url}{separator}{http_build_query(php_ksort(params))}"


# --------------------------------------------------------------------------- model rules


_CAMPAIGN_LABELS = {
    "name": "Name",
    "from_name": "From name",
    "from_email": "From email",
    "subject": "Subject",
    "reply_to": "Reply to",
    "to_name": "To name",
    "send_at": "Send at",
}
_CAMPAIGN_VIEW_FIELDS = ("name", "from_name", "from_email", "to_name", "reply_to", "subject")
_STAT_NAMES = (
    "subscribers",
    "processed",
    "delivery_success",
    "delivery_error",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "unsubscribes",
    "complaints",
    "bounces",
    "hard_bounces",
    "soft_bounces",
    "internal_bounces",
)
_TAG = re.compile(r"^\[[A-Z0-9_]+\]$")


def _validate_campaign(attrs: PhpArray) -> None:
    """CampaignsController::_setValidationRules, all rules run and the first error per field kept."""
    errors: dict[str, str] = {}
    _required(attrs, _CAMPAIGN_LABELS, errors)
    for name in ("name", "to_name", "subject"):
        _length(attrs, name, _CAMPAIGN_LABELS[name], errors, high=255)
    for name in ("from_name", "reply_to", "from_email"):
        _length(attrs, name, _CAMPAIGN_LABELS[name], errors, high=100)
    for name in ("reply_to", "from_email"):
        value = _text(attrs.get(name))
        if name not in errors and not _TAG.match(value) and not _valid_email(value):
            errors[name] = f"{_CAMPAIGN_LABELS[name]} is not a valid email address."
    send_at = _text(attrs.get("send_at"))
    if "send_at" not in errors:
        try:
            datetime.strptime(send_at, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            errors["send_at"] = "The format of Send at is invalid."
    if errors:
        raise ApiError(422, errors)


def _campaign_content(customer: Customer, template: PhpArray) -> str:
    template_uid = _text(template.get("template_uid"))
    if template_uid:
        found = customer.templates.get(template_uid)
        if found is None:
            raise ApiError(422, "Provided template does not exist.")
        return found.content
    raw = _text(template.get("content"))
    if raw:
        decoded = _strict_base64(raw)
        if decoded is None:
            raise ApiError(422, {"content": "Content is not valid base64."})
        if decoded:
            return decoded
    if not _php_empty(template.get("archive")):
        raise ApiError(422, "Your archive does not seem to be a valid zip file.")
    raise ApiError(422, "Please provide a template for your campaign.")


def _selected_servers(customer: Customer, attrs: PhpArray) -> list[int]:
    """Honoured only when the customer group may select servers; ids of servers that are not available to the
    customer (not its own, not active or in-use, not used for campaigns) are dropped silently."""
    if "delivery_servers" not in attrs or not customer.can_select_delivery_servers:
        return []
    raw = attrs["delivery_servers"]
    values = list(raw.values()) if isinstance(raw, dict) else _text(raw).split(",")
    ids = []
    for value in values:
        try:
            ids.append(int(_text(value).strip()))
        except ValueError:
            ids.append(0)
    available = {
        server_id
        for server_id, server in customer.delivery_servers().items()
        if server.status in ("active", "in-use") and server.use_for in ("all", "campaigns")
    }
    return [server_id for server_id in ids if server_id in available]


def _validate_list_general(general: PhpArray) -> None:
    errors: dict[str, str] = {}
    _required(general, {"name": "Name", "description": "Description"}, errors)
    _length(general, "name", "Name", errors, low=2, high=255)
    _length(general, "display_name", "Display name", errors, low=2, high=255)
    _length(general, "description", "Description", errors, low=2, high=255)
    for name, label in (("opt_in", "Opt in"), ("opt_out", "Opt out")):
        value = _text(general.get(name))
        if value and value not in ("single", "double") and name not in errors:
            errors[name] = f"{label} is not in the list."
    if errors:
        raise ApiError(422, {"general": errors})


def _validate_list_defaults(defaults: PhpArray) -> None:
    errors: dict[str, str] = {}
    _required(defaults, {"from_name": "From name", "reply_to": "Reply to", "from_email": "From email"}, errors)
    _length(defaults, "from_name", "From name", errors, low=2, high=255)
    _length(defaults, "reply_to", "Reply to", errors, low=5, high=100)
    _length(defaults, "from_email", "From email", errors, low=5, high=100)
    _email_rule(defaults, "reply_to", "Reply to", errors)
    _email_rule(defaults, "from_email", "From email", errors)
    _length(defaults, "subject", "Subject", errors, high=255)
    if errors:
        raise ApiError(422, {"defaults": errors})


def _validate_list_company(customer: Customer, company: PhpArray) -> dict[str, Any]:
    """ListCompany rules; the customer's own company (when set) fills what the request leaves out."""
    merged: dict[str, Any] = (
        {"name": customer.name, "country_id": 73, "address_1": "1 rue du Test", "city": "Paris", "zip_code": "75001"}
        if customer.has_company
        else {}
    )
    given = dict(company)
    country = given.pop("country", None)
    if country is not None and _php_empty(given.get("country_id")) and _text(country) in _COUNTRIES:
        given["country_id"] = _COUNTRIES[_text(country)]
    merged.update({k: v for k, v in given.items() if k != "zone"})
    errors: dict[str, str] = {}
    labels = {"name": "Name", "country_id": "Country", "address_1": "Address 1", "city": "City", "zip_code": "Zip code"}
    _required(merged, labels, errors)
    _length(merged, "name", "Name", errors, high=100)
    _length(merged, "zip_code", "Zip code", errors, high=10)
    if "country_id" not in errors and _text(merged.get("country_id")) not in {str(v) for v in _COUNTRIES.values()}:
        errors["country_id"] = "Country is invalid."
    if errors:
        raise ApiError(422, {"company": errors})
    return {k: _text(v) for k, v in merged.items()}


# --------------------------------------------------------------------------- small lookups


def _customer(request: Request) -> Customer:
    assert request.customer is not None
    return request.customer


def _visible_lists(customer: Customer | None) -> list[tuple[str, MailList]]:
    assert customer is not None
    return [(uid, rec) for uid, rec in customer.lists.items() if rec.status not in ("pending-delete", "archived")]


def _load_list(customer: Customer | None, list_uid: str, missing: str) -> MailList:
    found = dict(_visible_lists(customer)).get(list_uid)
    if found is None:
        raise ApiError(404, missing)
    return found


def _load_campaign(customer: Customer, campaign_uid: str) -> Campaign:
    campaign = customer.campaigns.get(campaign_uid)
    if campaign is None or campaign.status == "pending-delete":
        raise ApiError(404, "The campaign does not exist.")
    return campaign


def _save_subscriber(mail_list: MailList, email: str, values: PhpArray, details: PhpArray) -> Subscriber:
    status = "confirmed" if mail_list.opt_in == "single" else "unconfirmed"
    wanted = _text(details.get("status"))
    if wanted in ("confirmed", "unconfirmed", "unsubscribed", "unapproved", "blacklisted"):
        status = wanted
    fields = {tag: _text(values.get(tag))[:255] for tag in mail_list.field_tags if tag != "EMAIL"}
    subscriber = Subscriber(uid=_uid(), email=email, fields=fields, status=status)
    mail_list.subscribers[email] = subscriber
    return subscriber


def _subscriber_record(mail_list: MailList, subscriber: Subscriber) -> dict[str, Any]:
    record: dict[str, Any] = {"subscriber_uid": subscriber.uid, "EMAIL": subscriber.email}
    record.update(subscriber.fields)
    record.update(
        status=subscriber.status,
        source=subscriber.source,
        ip_address=subscriber.ip_address,
        date_added=subscriber.date_added,
    )
    return record
