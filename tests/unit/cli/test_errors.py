"""How the operator commands fail: one line, the field and its flag named, and an exit code scripts rely on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from click.testing import CliRunner

from cli.auth import Credentials, describe_token, resolve_token, sign_local_token
from cli.errors import CliError, ExitCode, exit_code_for, flag_for, one_line, status_message
from cli.gateway import Gateway
from libs.cli import main

BAD_REQUEST = {
    "@type": "type.googleapis.com/google.rpc.BadRequest",
    "field_violations": [
        {"field": "tenant.health.min_sample", "description": "must be a whole number >= 1"},
        {"field": "tenant.time_zone", "description": "'Mars/Olympus' is not an IANA time zone"},
    ],
}
FLAGS = frozenset({"--health-min-sample", "--time-zone", "--tenant-id", "ADDRESS"})


@pytest.mark.parametrize(
    ("rpc_code", "http_status", "exit_code"),
    [
        (3, 400, ExitCode.BAD_INPUT),  # INVALID_ARGUMENT
        (5, 404, ExitCode.REFUSED),  # NOT_FOUND
        (7, 403, ExitCode.REFUSED),  # PERMISSION_DENIED
        (16, 401, ExitCode.REFUSED),  # UNAUTHENTICATED
        (9, 400, ExitCode.REFUSED),  # FAILED_PRECONDITION: a preflight, a missing MailWizz binding
        (6, 409, ExitCode.REFUSED),  # ALREADY_EXISTS
        (14, 503, ExitCode.UNAVAILABLE),
        (4, 504, ExitCode.UNAVAILABLE),
        (8, 429, ExitCode.UNAVAILABLE),  # rate limited: try again later
        (13, 500, ExitCode.OTHER),
        (None, 502, ExitCode.UNAVAILABLE),  # no Status body: the HTTP status decides
        (None, 418, ExitCode.OTHER),
    ],
)
def test_exit_codes(rpc_code: int | None, http_status: int, exit_code: ExitCode) -> None:
    assert exit_code_for(rpc_code, http_status) is exit_code


def test_each_bad_field_is_named_with_the_flag_that_set_it() -> None:
    line = status_message(3, "tenant.health.min_sample: must be ...; tenant.time_zone: ...", [BAD_REQUEST], FLAGS)
    assert line == (
        "invalid tenant.health.min_sample (--health-min-sample): must be a whole number >= 1; "
        "tenant.time_zone (--time-zone): 'Mars/Olympus' is not an IANA time zone"
    )


@pytest.mark.parametrize(
    ("field", "flag"),
    [
        ("tenant_id", "--tenant-id"),
        ("address", "ADDRESS"),
        ("tenant.health.min_sample", "--health-min-sample"),
        ("contacts[3].email", ""),
        ("update_mask", ""),
    ],
)
def test_flag_for_a_field(field: str, flag: str) -> None:
    assert flag_for(field, FLAGS) == flag


def test_a_status_without_field_violations_is_its_message() -> None:
    assert status_message(9, "tenant 'x' has no MailWizz binding", []) == "tenant 'x' has no MailWizz binding"
    assert status_message(13, "", []) == "INTERNAL"
    assert one_line("Unexpected end of string.\n1\n ^") == "Unexpected end of string. 1 ^"


def _answer(status: int, body: object | None = None, text: str = "") -> httpx.Response:
    request = httpx.Request("GET", "http://127.0.0.1:8080/api/v2/ips")
    if body is not None:
        return httpx.Response(status, json=body, request=request)
    return httpx.Response(status, text=text, request=request)


def test_gateway_answers_become_one_line_errors() -> None:
    gateway = Gateway("127.0.0.1:8080", flags=FLAGS)
    bad = gateway.error_for(_answer(400, {"code": 3, "message": "m", "details": [BAD_REQUEST]}))
    assert bad.exit_code is ExitCode.BAD_INPUT and bad.message.startswith("invalid tenant.health.min_sample")
    down = gateway.error_for(_answer(503, {"code": 14, "message": "no healthy upstream"}))
    assert down.exit_code is ExitCode.UNAVAILABLE
    assert down.message == "a service behind the gateway at http://127.0.0.1:8080 is unavailable: no healthy upstream"
    proxy = gateway.error_for(_answer(502, text="<html>\n<h1>Bad Gateway</h1></html>"))
    assert proxy.exit_code is ExitCode.UNAVAILABLE
    assert proxy.message == "the gateway at http://127.0.0.1:8080 answered 502: <html>"


@pytest.fixture
def local_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from libs.auth import ensure_local_keys
    from libs.config import settings

    monkeypatch.setenv("EE_DATA_DIR", str(tmp_path))
    settings.cache_clear()
    ensure_local_keys(tmp_path / "keys" / "jwt.pem", tmp_path / "keys" / "jwks.json")
    yield tmp_path
    settings.cache_clear()


def _claims(token: str) -> dict[str, object]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {k: v for k, v in claims.items() if k not in ("iat", "nbf", "exp", "jti")}


def test_a_locally_signed_token_is_the_one_emailengine_token_prints(local_key: Path) -> None:
    for args, kwargs in (
        (["--tenant", "sos-expat"], {"admin": False, "tenant": "sos-expat"}),
        (["--admin"], {"admin": True, "tenant": ""}),
    ):
        printed = CliRunner().invoke(main, ["token", *args]).output.strip()
        assert _claims(sign_local_token(**kwargs)) == _claims(printed)
    viewer = CliRunner().invoke(main, ["token", "--tenant", "sos-expat", "--role", "viewer"]).output.strip()
    assert describe_token(viewer) == "(subject sos-expat-viewer, viewer of sos-expat)"
    assert describe_token("not-a-token") == ""


def test_the_token_given_wins_then_admin_then_the_tenant(local_key: Path) -> None:
    assert resolve_token(Credentials(token="given", admin=True, tenant="x")) == "given"
    assert (
        jwt.decode(resolve_token(Credentials(admin=True, tenant="x")), options={"verify_signature": False})["role"]
        == "admin"
    )
    with pytest.raises(CliError) as caught:
        resolve_token(Credentials())
    assert caught.value.exit_code is ExitCode.BAD_INPUT and caught.value.message.startswith("no token:")


def test_without_a_local_key_a_token_must_be_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from libs.config import settings

    monkeypatch.setenv("EE_DATA_DIR", str(tmp_path))
    settings.cache_clear()
    try:
        with pytest.raises(CliError) as caught:
            resolve_token(Credentials(tenant="sos-expat"))
    finally:
        settings.cache_clear()
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert "there is no local signing key at" in caught.value.message


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["ips", "add"], "error: Missing argument 'ADDRESS'. (see: main ips add --help)"),
        (["ips", "add", "192.0.2.10"], "error: which tenant? give --tenant-id NAME"),
        (["ips", "list", "--state", "asleep"], "error: Invalid value for '--state': 'asleep' is not one of"),
        (["ips", "frobnicate"], "error: No such command 'frobnicate'. (see: main ips --help)"),
        (["tenants", "update", "x"], "error: nothing to change: give a policy flag (see --help) or --reset FIELD"),
        (["ips", "list", "--gateway", "ftp://x", "--token", "t"], "error: --gateway 'ftp://x': give an http(s) URL"),
        (["schedules", "create", "s", "--tenant", "t", "--steps", "fifty"], "error: Invalid value for '--steps'"),
        (["tenants", "update", "x", "--health-max-bounce-rate-to-advance", "lots"], "error: Invalid value for"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(args: list[str], line: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line), result.stderr


def test_a_group_without_a_command_shows_its_help_and_exits_1() -> None:
    result = CliRunner().invoke(main, ["ips"])
    assert result.exit_code == 1 and "Commands:" in result.output and "decisions" in result.output
