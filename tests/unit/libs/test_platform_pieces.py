from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from libs.config import Settings
from libs.errors import InvalidArgument, NotFound, Violations
from libs.gateway import render
from libs.interceptor import is_read_method
from libs.pagination import decode_token, encode_token, page_size
from libs.rpc_errors import to_status


def test_page_tokens_round_trip_and_bad_ones_name_the_field() -> None:
    assert decode_token(encode_token({"after": "x"})) == {"after": "x"}
    assert decode_token("") is None
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token("%%%")
    with pytest.raises(InvalidArgument, match="page_size"):
        page_size(-1)
    assert page_size(0) == 50
    assert page_size(10**6) == 1000


def test_read_methods_come_from_the_http_bindings() -> None:
    import emailengine.ippool.v1.ippool_service_pb2
    import emailengine.platform.v1.platform_service_pb2  # noqa: F401

    assert is_read_method("/emailengine.ippool.v1.IpPoolService/GetIp")
    assert is_read_method("/emailengine.ippool.v1.IpPoolService/ListIps")
    assert not is_read_method("/emailengine.ippool.v1.IpPoolService/CreateIp")
    assert not is_read_method("/emailengine.ippool.v1.IpPoolService/PauseIp")
    assert is_read_method("/emailengine.platform.v1.PlatformService/ListServiceAuditEntries")
    assert not is_read_method("/no.such.Service/Method")


def test_a_post_marked_read_only_in_the_contract_is_a_read() -> None:
    import emailengine.reputation.v1.reputation_service_pb2  # noqa: F401

    assert is_read_method("/emailengine.reputation.v1.ReputationService/ValidateDomain")
    assert not is_read_method("/emailengine.reputation.v1.ReputationService/CheckIp")


def test_invalid_argument_becomes_bad_request_naming_every_field() -> None:
    v = Violations()
    v.add("address", "is required")
    v.add("tenant_id", "unknown tenant")
    with pytest.raises(InvalidArgument) as caught:
        v.raise_if_any()
    status = to_status(caught.value, "ip-pool")
    assert status.code.name == "INVALID_ARGUMENT"
    details = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    assert details.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert details.details[1].Unpack(bad_request)
    assert [f.field for f in bad_request.field_violations] == ["address", "tenant_id"]


def test_not_found_carries_the_resource() -> None:
    status = to_status(NotFound("ip", "192.0.2.1"), "ip-pool")
    details = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    info = error_details_pb2.ResourceInfo()
    assert details.details[1].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("ip", "192.0.2.1")


def test_gateway_rules_end_in_a_catch_all_requirement() -> None:
    config = render(Settings(), descriptor=__import__("pathlib").Path("gen/api_descriptor.pb"))
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f["name"] for f in hcm["http_filters"]]
    assert filters == [
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.router",
    ]
    rules = hcm["http_filters"][1]["typed_config"]["rules"]
    assert rules[-1] == {"match": {"prefix": "/"}, "requires": {"provider_name": "email_engine"}}
    assert all("requires" not in r for r in rules[:-1])  # only health is public


def test_bad_settings_exit_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from libs.config import load

    monkeypatch.setenv("EE_GATEWAY_PORT", "eighty")
    with pytest.raises(SystemExit):
        load(Settings)
    assert "EE_GATEWAY_PORT" in capsys.readouterr().err


def test_urls_in_banners_never_show_passwords() -> None:
    from libs.config import redact_url

    assert redact_url("postgresql://ee:s3cret@db:5432/ee") == "postgresql://ee:***@db:5432/ee"
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_an_error_answer_stays_small_whatever_the_request_held() -> None:
    from libs.errors import InvalidArgument, NotFound, Violations

    problems = Violations()
    for i in range(1000):
        problems.add(f"ips[{i}]", f"{'x' * 5000!r} is not an IP address")
    try:
        problems.raise_if_any()
    except InvalidArgument as error:
        assert len(error.violations) == 11 and error.violations[-1].description == "and 990 more problems from here on"
        assert len(error.message) < 5000
    assert len(NotFound("ip", "y" * 100_000).message) < 200
