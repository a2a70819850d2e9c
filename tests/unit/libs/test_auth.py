from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from libs.auth import Caller, Role, TokenVerifier, ensure_local_keys, mint_token
from libs.errors import PermissionDenied, Unauthenticated


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, jwks = tmp_path / "jwt.pem", tmp_path / "jwks.json"
    assert ensure_local_keys(private, jwks) is True
    assert ensure_local_keys(private, jwks) is False  # kept, not replaced
    return private, jwks


def _token(private: Path, **kwargs: object) -> str:
    defaults: dict[str, object] = {
        "issuer": "ee",
        "audience": "ee",
        "subject": "s",
        "role": Role.OPERATOR,
        "tenant_id": "sos-expat",
    }
    defaults.update(kwargs)
    return mint_token(private, **defaults)  # type: ignore[arg-type]


def test_a_minted_token_verifies_to_its_caller(keys: tuple[Path, Path]) -> None:
    private, jwks = keys
    caller = TokenVerifier(jwks, "ee", "ee").verify("Bearer " + _token(private))
    assert caller == Caller(subject="s", role=Role.OPERATOR, tenant_id="sos-expat")


@pytest.mark.parametrize(
    ("header", "message"),
    [(None, "Jwt is missing"), ("Basic abc", "Jwt is missing"), ("Bearer not.a.jwt", "Jwt verification fails")],
)
def test_missing_or_garbage_tokens_are_unauthenticated(
    keys: tuple[Path, Path], header: str | None, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message):
        TokenVerifier(keys[1], "ee", "ee").verify(header)


def test_expired_token_and_foreign_key_are_refused(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, jwks = keys
    verifier = TokenVerifier(jwks, "ee", "ee")
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify("Bearer " + _token(private, ttl_seconds=-60))
    other_private, other_jwks = tmp_path / "o.pem", tmp_path / "o.json"
    ensure_local_keys(other_private, other_jwks)
    with pytest.raises(Unauthenticated):
        verifier.verify("Bearer " + _token(other_private))


def test_wrong_audience_is_refused(keys: tuple[Path, Path]) -> None:
    private, jwks = keys
    with pytest.raises(Unauthenticated):
        TokenVerifier(jwks, "ee", "ee").verify("Bearer " + _token(private, audience="other"))


def test_a_tenant_token_must_name_its_tenant(keys: tuple[Path, Path]) -> None:
    private, jwks = keys
    token = jwt.encode(
        {"iss": "ee", "aud": "ee", "sub": "x", "role": "operator", "exp": int(time.time()) + 60},
        private.read_text(),
        algorithm="ES256",
    )
    with pytest.raises(PermissionDenied, match="must name its tenant"):
        TokenVerifier(jwks, "ee", "ee").verify("Bearer " + token)


def test_tenant_rules() -> None:
    operator = Caller("op", Role.OPERATOR, "sos-expat")
    viewer = Caller("v", Role.VIEWER, "sos-expat")
    admin = Caller("a", Role.ADMIN, "")
    operator.require_write("sos-expat")
    viewer.require_read("sos-expat")
    admin.require_write("ulixai")
    with pytest.raises(PermissionDenied):
        operator.require_read("ulixai")
    with pytest.raises(PermissionDenied):
        viewer.require_write("sos-expat")
    with pytest.raises(PermissionDenied):
        operator.require_admin()
    assert operator.visible_tenant("") == "sos-expat"
    assert admin.visible_tenant("") == ""
    with pytest.raises(PermissionDenied):
        operator.visible_tenant("ulixai")


def test_an_rs256_token_sent_straight_to_a_service_is_refused_without_a_stack_trace(tmp_path: Path) -> None:
    """A token signed with RS256 (with or without our key id) is an UNAUTHENTICATED answer, never an error."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    private, jwks = tmp_path / "k.pem", tmp_path / "jwks.json"
    ensure_local_keys(private, jwks)
    verifier = TokenVerifier(jwks, "ee", "ee")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ours = json.loads(jwks.read_text())["keys"][0]["kid"]
    claims = {"iss": "ee", "aud": "ee", "sub": "x", "role": "admin", "exp": int(time.time()) + 60}
    for headers in ({}, {"kid": ours}):
        token = jwt.encode(claims, rsa_key, algorithm="RS256", headers=headers)
        with pytest.raises(Unauthenticated):
            verifier.verify(f"Bearer {token}")
    for garbage in ("a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJraWQiOjF9.e30.x"):
        with pytest.raises(Unauthenticated):
            verifier.verify(f"Bearer {garbage}")


def test_the_signing_key_is_never_readable_by_others(tmp_path: Path) -> None:
    private, jwks = tmp_path / "keys" / "jwt.pem", tmp_path / "keys" / "jwks.json"
    ensure_local_keys(private, jwks)
    assert private.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o077 == 0


def _service_keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    private, jwks = tmp_path / "k.pem", tmp_path / "jwks.json"
    ensure_local_keys(private, jwks)
    service_private, service_jwks = tmp_path / "service.pem", tmp_path / "service-jwks.json"
    ensure_local_keys(service_private, service_jwks)
    return jwks, service_private, service_jwks


def test_a_service_token_carries_the_tenant_it_acts_for(tmp_path: Path) -> None:
    from libs.auth import SERVICE_ISSUER

    jwks, service_private, service_jwks = _service_keys(tmp_path)
    verifier = TokenVerifier(jwks, "ee", "ee", service_jwks_path=service_jwks)
    token = mint_token(
        service_private,
        issuer=SERVICE_ISSUER,
        audience="ee",
        subject="service:campaign-gateway",
        role=Role.SERVICE,
        tenant_id="sos-expat",
        ttl_seconds=60,
    )
    caller = verifier.verify(f"Bearer {token}")
    assert (caller.role, caller.tenant_id, caller.is_admin) == (Role.SERVICE, "sos-expat", False)
    assert caller.may_read("sos-expat") and not caller.may_read("ulixai")
    platform = mint_token(
        service_private, issuer=SERVICE_ISSUER, audience="ee", subject="service:ip-pool", role=Role.SERVICE
    )
    assert verifier.verify(f"Bearer {platform}").is_admin


def test_the_service_role_is_refused_on_a_users_key_and_a_service_key_outside_the_services(tmp_path: Path) -> None:
    from libs.auth import SERVICE_ISSUER

    jwks, service_private, _service_jwks = _service_keys(tmp_path)
    user_key = tmp_path / "k.pem"
    forged = mint_token(user_key, issuer="ee", audience="ee", subject="me", role=Role.SERVICE)
    gateway = TokenVerifier(jwks, "ee", "ee")  # what Envoy knows: the users' keys only
    with pytest.raises(Unauthenticated):
        gateway.verify(f"Bearer {forged}")
    service_token = mint_token(
        service_private, issuer=SERVICE_ISSUER, audience="ee", subject="service:x", role=Role.SERVICE
    )
    with pytest.raises(Unauthenticated):
        gateway.verify(f"Bearer {service_token}")
    admin_on_service_key = mint_token(
        service_private, issuer=SERVICE_ISSUER, audience="ee", subject="x", role=Role.ADMIN
    )
    services = TokenVerifier(jwks, "ee", "ee", service_jwks_path=tmp_path / "service-jwks.json")
    with pytest.raises(Unauthenticated):
        services.verify(f"Bearer {admin_on_service_key}")


def test_a_verified_token_is_remembered_until_it_expires_and_never_a_refused_one(
    keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, jwks = keys
    verifier = TokenVerifier(jwks, "ee", "ee")
    header = "Bearer " + _token(private, ttl_seconds=1)
    caller = verifier.verify(header)
    checks: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: checks.append("decode") or real_decode(*a, **k))
    assert verifier.verify(header) == caller
    assert checks == []  # the signature is not checked again
    time.sleep(2.1)  # past its expiry: checked again, and refused
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(header)
    with pytest.raises(Unauthenticated):
        verifier.verify("Bearer not.a.jwt")
    with pytest.raises(Unauthenticated):
        verifier.verify("Bearer not.a.jwt")  # a refusal is never remembered as an answer


def _make_keys(private: Path, jwks: Path, barrier: Any, results: Any) -> None:
    barrier.wait()  # all at the same instant
    results.put(ensure_local_keys(private, jwks))


def test_processes_started_together_make_one_key_pair_between_them(tmp_path: Path) -> None:
    """Every service and replica started at once on one host: one pair, and the JWKS names the key beside it."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    private, jwks = tmp_path / "keys" / "service.pem", tmp_path / "keys" / "service-jwks.json"
    barrier, results = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_make_keys, args=(private, jwks, barrier, results)) for _ in range(6)]
    for process in processes:
        process.start()
    made = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(10)
    assert made.count(True) == 1
    token = _token(private, issuer="ee", audience="ee")
    assert TokenVerifier(jwks, "ee", "ee").verify("Bearer " + token).tenant_id == "sos-expat"
