"""The interceptor's mapping of failures to gRPC statuses, without a network."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy.exc

from libs.auth import Role, TokenVerifier, ensure_local_keys, mint_token
from libs.errors import InvalidArgument
from libs.interceptor import PlatformInterceptor
from tests.fakes import Aborted, FakeGrpcContext

METHOD = "/emailengine.ippool.v1.IpPoolService/CreateIp"


@pytest.fixture()
def call(tmp_path: Path) -> Any:
    import emailengine.ippool.v1.ippool_service_pb2  # noqa: F401  (registers the method descriptors)

    private, jwks = tmp_path / "k.pem", tmp_path / "jwks.json"
    ensure_local_keys(private, jwks)
    token = mint_token(private, issuer="ee", audience="ee", subject="s", role=Role.ADMIN)
    interceptor = PlatformInterceptor("ip-pool", TokenVerifier(jwks, "ee", "ee"), db=None)

    def run(handler: Any) -> grpc.StatusCode | None:
        context = FakeGrpcContext()
        metadata = {"authorization": f"Bearer {token}"}
        with contextlib.suppress(Aborted), interceptor._serving(METHOD, metadata, object(), context):  # type: ignore[arg-type]
            handler(object(), context)
        return context.status.code if context.status else None

    return run


def raiser(exc: Exception) -> Any:
    def handler(_request: object, _context: object) -> None:
        raise exc

    return handler


def test_domain_errors_keep_their_code(call: Any) -> None:
    assert call(raiser(InvalidArgument("address", "bad"))) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_lost_race_on_a_unique_row_is_aborted_not_internal(call: Any) -> None:
    error = sqlalchemy.exc.IntegrityError("INSERT …", {}, Exception("duplicate key value"))
    assert call(raiser(error)) == grpc.StatusCode.ABORTED


def test_an_unreachable_database_is_unavailable(call: Any) -> None:
    error = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert call(raiser(error)) == grpc.StatusCode.UNAVAILABLE


def test_anything_else_is_internal_with_a_reference(call: Any) -> None:
    assert call(raiser(RuntimeError("boom"))) == grpc.StatusCode.INTERNAL


def test_a_nul_character_in_any_text_field_is_refused_with_the_field_named() -> None:
    from emailengine.notifier.v1 import notifier_service_pb2 as notifier_pb
    from libs.interceptor import reject_nul_characters

    reject_nul_characters(notifier_pb.SendAlertRequest(tenant_id="sos-expat", text="fine"))
    request = notifier_pb.SendAlertRequest(tenant_id="sos\x00expat", labels={"zone": "a\x00"})
    with pytest.raises(InvalidArgument) as refused:
        reject_nul_characters(request)
    assert {v.field for v in refused.value.violations} == {"tenant_id", "labels[zone]"}


def test_streaming_rpc_handlers_skip_the_platform_interceptor_no_more(tmp_path: Path) -> None:
    """A client-streaming or server-streaming handler is wrapped like a unary one: no token, no call."""
    private, jwks = tmp_path / "k.pem", tmp_path / "jwks.json"
    ensure_local_keys(private, jwks)
    interceptor = PlatformInterceptor("campaign-gateway", TokenVerifier(jwks, "ee", "ee"), db=None)
    reached: list[str] = []

    def upload(requests: Any, _context: Any) -> str:
        reached.extend(requests)
        return "done"

    def watch(_request: Any, _context: Any) -> Any:
        reached.append("watch")
        yield "event"

    handlers = {
        "stream_unary": grpc.stream_unary_rpc_method_handler(upload),
        "unary_stream": grpc.unary_stream_rpc_method_handler(watch),
    }
    for kind, handler in handlers.items():
        details = type(
            "Details", (), {"method": f"/emailengine.campaign.v1.CampaignService/{kind}", "invocation_metadata": ()}
        )
        wrapped = interceptor.intercept_service(lambda _d, handler=handler: handler, details())
        behaviour = getattr(wrapped, kind)
        context = FakeGrpcContext()
        with contextlib.suppress(Aborted):
            result = behaviour(iter(["a", "b"]) if kind == "stream_unary" else object(), context)
            if kind == "unary_stream":
                list(result)
        assert context.status is not None and context.status.code == grpc.StatusCode.UNAUTHENTICATED, kind
    assert reached == []
