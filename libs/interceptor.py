"""One interceptor for every service: who is calling, may they, what went wrong, and the audit log.

Order inside a call: authenticate (verify the bearer token) → authorise the kind of call (a viewer may
not write) → run the handler → map errors to google.rpc.Status → record writes in the audit log.
Tenant rules that need the resource (is this IP the caller's?) are checked by the use cases with
`current_caller()`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import grpc
import sqlalchemy.exc
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from emailengine.platform.v1 import annotations_pb2 as platform_annotations_pb2
from libs import audit
from libs.auth import Caller, Role, TokenVerifier
from libs.db import Database
from libs.errors import Aborted, PermissionDenied, ServiceError, Unauthenticated, Unavailable, Violations
from libs.rpc_errors import internal_status, to_status

log = logging.getLogger(__name__)

# Methods anyone may call without a token (Envoy's jwt_authn rules list the same).
PUBLIC_METHODS = frozenset(
    {
        "/emailengine.platform.v1.PlatformService/GetHealth",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    }
)

PLATFORM_PREFIX = "/emailengine.platform.v1.PlatformService/"

# Fields that name the resource a call acts on, most specific first, and the collection each belongs to.
_RESOURCE_FIELDS = (
    ("address", "ips"),
    ("campaign_id", "campaigns"),
    ("alert_id", "alerts"),
    ("route_id", "alert-routes"),
    ("domain", "domains"),
    ("tenant_id", "tenants"),
    ("tenant", "tenants"),
)

_caller: ContextVar[Caller | None] = ContextVar("caller", default=None)
_authorization: ContextVar[str] = ContextVar("authorization", default="")


def current_caller() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated("Jwt is missing")
    return caller


def current_authorization() -> str:
    """The caller's own bearer header, to forward on calls made on their behalf."""
    return _authorization.get()


@lru_cache(maxsize=512)
def is_read_method(full_method: str) -> bool:
    """From the contract: a GET binding or `read_only` makes a read; without a binding, only Get/List read."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        return False
    options = descriptor.GetOptions()
    if options.Extensions[platform_annotations_pb2.read_only]:
        return True
    rule = options.Extensions[annotations_pb2.http]
    if rule.WhichOneof("pattern"):
        return rule.WhichOneof("pattern") == "get"
    return method.startswith(("Get", "List"))


class PlatformInterceptor(grpc.ServerInterceptor):
    """Wraps every method handler, unary or streaming, in the same authentication, authorisation, error
    mapping and audit."""

    def __init__(self, service: str, verifier: TokenVerifier, db: Database | None):
        self._service = service
        self._verifier = verifier
        self._db = db

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        if handler is None or details.method in PUBLIC_METHODS:
            return handler
        method = details.method
        metadata = dict(details.invocation_metadata or ())
        for kind, wrap in _HANDLER_KINDS.items():
            inner = getattr(handler, kind)
            if inner is None:
                continue
            if kind.endswith("_stream"):

                def call(request: Any, context: grpc.ServicerContext, inner: Callable = inner) -> Any:
                    with self._serving(method, metadata, request, context):
                        yield from inner(request, context)

            else:

                def call(request: Any, context: grpc.ServicerContext, inner: Callable = inner) -> Any:
                    with self._serving(method, metadata, request, context):
                        return inner(request, context)

            return wrap(
                call, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
            )
        return handler

    @contextmanager
    def _serving(
        self, method: str, metadata: dict[str, Any], request: Any, context: grpc.ServicerContext
    ) -> Iterator[None]:
        """Around one call: who is calling and may they, the handler, its errors as google.rpc.Status, the audit."""
        is_write = not is_read_method(method)
        note = audit.begin_note(
            service=self._service,
            method=method,
            resource=_resource_of(request),
            tenant_id=_field(request, "tenant_id") or _field(request, "tenant"),
            is_write=is_write,
        )
        outcome, message = "OK", ""
        try:
            caller = self._verifier.verify(metadata.get("authorization"))
            note.actor, note.actor_role = caller.subject, str(caller.role)
            note.tenant_id = note.tenant_id or caller.tenant_id
            _caller.set(caller)
            _authorization.set(metadata.get("authorization", ""))
            if is_write and caller.role is Role.VIEWER:
                raise PermissionDenied("role viewer may only read")
            reject_nul_characters(request)
            try:
                yield
            except sqlalchemy.exc.IntegrityError as exc:
                # Two writers raced for the same row (e.g. two first PUTs of a tenant setting).
                raise Aborted("a concurrent change conflicted with this one; try again") from exc
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
                if (
                    exc.connection_invalidated
                    or isinstance(exc, sqlalchemy.exc.InterfaceError)
                    or _is_connect_error(exc)
                ):
                    raise Unavailable("the database is not reachable; try again shortly") from exc
                raise
        except ServiceError as exc:
            # PlatformService answers from whichever process Envoy picks: its errors carry one domain.
            domain = "platform" if method.startswith(PLATFORM_PREFIX) else self._service
            status = to_status(exc, domain)
            outcome, message = status.code.name, exc.message
            context.abort_with_status(status)
        except Exception as exc:
            if context.code() not in (None, grpc.StatusCode.OK):  # the handler aborted on purpose
                outcome, message = context.code().name, str(context.details() or "")
                raise
            reference = uuid.uuid4().hex[:12]
            log.exception("unhandled error", extra={"method": method, "reference": reference})
            outcome, message = "INTERNAL", f"reference {reference}"
            context.abort_with_status(internal_status(reference))
            raise AssertionError("unreachable") from exc
        finally:
            if self._db is not None:
                try:
                    audit.write_outcome(self._db, note, outcome, message)
                except Exception:
                    log.exception("audit entry not recorded", extra={"method": method})
            audit.end_note()
            _caller.set(None)
            _authorization.set("")


_HANDLER_KINDS: dict[str, Callable[..., grpc.RpcMethodHandler]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def reject_nul_characters(request: Any) -> None:
    """No text of this API may hold a NUL character (PostgreSQL refuses it in text, logs and terminals cut at
    it); it is refused up front with the field named, whatever the method."""
    if not isinstance(request, Message):
        return
    problems = Violations()
    _find_nul(request, "", problems)
    problems.raise_if_any()


def _find_nul(message: Message, prefix: str, problems: Violations) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            items = value.items() if isinstance(value, Mapping) else enumerate(value) if field.is_repeated else None
            if items is None:
                if "\x00" in value:
                    problems.add(path, "must not contain a NUL character")
                continue
            for key, item in items:
                if "\x00" in str(key) or "\x00" in item:
                    problems.add(f"{path}[{key}]", "must not contain a NUL character")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(item, Message):
                        _find_nul(item, f"{path}[{key}].", problems)
                    elif "\x00" in str(key) or "\x00" in str(item):
                        problems.add(f"{path}[{key}]", "must not contain a NUL character")
            elif field.is_repeated:
                for index, item in enumerate(value):
                    _find_nul(item, f"{path}[{index}].", problems)
            else:
                _find_nul(value, f"{path}.", problems)


# SQLSTATEs of a server that cannot serve a session now: connection exceptions (class 08), a shutdown or a crash
# cutting sessions (57P01, 57P02), starting up, shutting down or recovering (57P03), too many connections (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _is_connect_error(exc: sqlalchemy.exc.DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    text = str(exc).lower()
    return any(
        words in text
        for words in (
            # psycopg's words for any session it could not open: refused, or the server's "FATAL: the database
            # system is starting up" / "shutting down", which come without a SQLSTATE.
            "connection failed",
            "connection refused",
            "could not connect",
            "server closed",
            "timeout",
            "database is locked",
        )
    )


def _field(request: Any, name: str) -> str:
    try:
        value = getattr(request, name)
    except AttributeError:
        return ""
    return value if isinstance(value, str) else ""


def _resource_of(request: Any) -> str:
    """`<collection>/<id>` of the resource the request names, as the REST paths name it."""
    for name, collection in _RESOURCE_FIELDS:
        value = _field(request, name)
        if value:
            return f"{collection}/{value}"
    return ""
