"""Who is calling: JWT keys, token minting for local use, verification, and the tenant rules.

Envoy's jwt_authn verifies every token at the edge; each service verifies it again with the same
public keys, so a call that reaches a service port directly is held to the same rules.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from libs.errors import PermissionDenied, Unauthenticated, quoted
from libs.files import private_directory, write_private_file

ALGORITHM = "ES256"


class Role(StrEnum):
    ADMIN = "admin"  # every tenant, reads and writes
    OPERATOR = "operator"  # reads and writes within its tenant
    VIEWER = "viewer"  # reads within its tenant
    SERVICE = "service"  # another email-engine service, acting for the platform


@dataclass(frozen=True)
class Caller:
    subject: str
    role: Role
    tenant_id: str  # "" for admins and services

    @property
    def is_admin(self) -> bool:
        """Every tenant: an admin, or a service acting for the platform (not for one tenant)."""
        return self.role is Role.ADMIN or (self.role is Role.SERVICE and not self.tenant_id)

    def may_read(self, tenant_id: str) -> bool:
        return self.is_admin or tenant_id == self.tenant_id

    def require_read(self, tenant_id: str) -> None:
        if self.is_admin:
            return
        if tenant_id != self.tenant_id:
            # Never name the owner: another tenant's resources are not even to be told apart.
            raise PermissionDenied(f"this resource does not belong to tenant {quoted(self.tenant_id)}")

    def require_write(self, tenant_id: str) -> None:
        self.require_read(tenant_id)
        if self.role is Role.VIEWER:
            raise PermissionDenied("role viewer may only read")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("admin role required")

    def visible_tenant(self, requested: str) -> str:
        """The tenant a list call covers: the caller's own unless an admin asks for any."""
        if self.is_admin:
            return requested
        if requested and requested != self.tenant_id:
            raise PermissionDenied(f"tenant {quoted(self.tenant_id)} may not access tenant {quoted(requested)}")
        return self.tenant_id


# -- keys -----------------------------------------------------------------------------------------


def ensure_local_keys(private_key_path: Path, jwks_path: Path) -> bool:
    """Creates an ES256 key pair and its JWKS when no JWKS exists. Returns True when it created them.

    A configured JWKS is never replaced, even without a local private key (production: tokens come from
    the operator's own issuer). Processes started together on one host (every service and replica at once) make
    one pair between them: the first takes a lock beside the JWKS and writes the pair, the others wait for it and
    keep it. The JWKS appears whole and last, so a JWKS that exists always has its private key beside it.
    """
    if jwks_path.exists():
        return False
    private_directory(private_key_path.parent)
    private_directory(jwks_path.parent)
    with open(jwks_path.with_name(f".{jwks_path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jwks_path.exists():
            return False
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private_file(private_key_path, pem)
        write_jwks(jwks_path, [key.public_key()])
    return True


def write_jwks(jwks_path: Path, public_keys: list[Any]) -> None:
    keys = []
    for pub in public_keys:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
        jwk.update({"kid": key_id(pub), "alg": ALGORITHM, "use": "sig"})
        keys.append(jwk)
    partial = jwks_path.with_name(f".{jwks_path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"keys": keys}, indent=2))
    os.replace(partial, jwks_path)  # readers see the old file or the new one, never half of one


def key_id(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def mint_token(
    private_key_path: Path,
    *,
    issuer: str,
    audience: str,
    subject: str,
    role: Role,
    tenant_id: str = "",
    ttl_seconds: int = 3600,
) -> str:
    key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": str(role),
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if tenant_id:
        claims["tenant"] = tenant_id
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key.public_key())})


# -- verification ---------------------------------------------------------------------------------


SERVICE_ISSUER = "email-engine-services"


class TokenVerifier:
    """Verifies bearer tokens against a JWKS file (read once, as Envoy does).

    Two kinds of token reach a service: users' tokens (the operator's JWKS, the one Envoy checks too) and
    service tokens (`service_jwks_path`: a key Envoy does not know, so a service token presented at the gateway
    is refused there). A user token can never carry the `service` role, and a service token only that role.

    A token once verified is remembered until it expires (the keys are read once, so its verdict cannot change
    before then): a client sending the same token on every call pays for one signature check, not one per call.
    Only accepted tokens are remembered, at most `REMEMBERED` of them.
    """

    REMEMBERED = 10_000

    def __init__(self, jwks_path: Path, issuer: str, audience: str, service_jwks_path: Path | None = None):
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_json(jwks_path.read_text()).keys}
        self._issuer = issuer
        self._audience = audience
        self._services: TokenVerifier | None = None
        if service_jwks_path is not None and service_jwks_path.exists():
            self._services = TokenVerifier(service_jwks_path, SERVICE_ISSUER, audience)
        self._accepted: dict[str, tuple[Caller, float]] = {}

    def verify(self, authorization: str | None) -> Caller:
        if authorization:
            known = self._accepted.get(authorization)
            if known is not None and time.time() < known[1]:
                return known[0]
        if self._services is not None and _issuer_of(authorization) == SERVICE_ISSUER:
            caller, expires = self._services._verify(authorization)
            if caller.role is not Role.SERVICE:
                raise Unauthenticated("Jwt verification fails: a service token carries the service role only")
        else:
            caller, expires = self._verify(authorization)
            if caller.role is Role.SERVICE and self._issuer != SERVICE_ISSUER:
                raise Unauthenticated("Jwt verification fails: the service role is for service tokens")
        if authorization:
            if len(self._accepted) >= self.REMEMBERED:
                self._accepted.clear()
            self._accepted[authorization] = (caller, expires)
        return caller

    def _verify(self, authorization: str | None) -> tuple[Caller, float]:
        """The caller and when the token expires (seconds since the epoch)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthenticated("Jwt is missing")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            candidates = [self._keys[header["kid"]]] if header.get("kid") in self._keys else self._keys.values()
            last_error: Exception | None = None
            for jwk in candidates:
                try:
                    # Only the algorithm of the key's own type: a token signed with another (an RS256 token
                    # against an EC key, "none", HS256 with the public key as secret) is refused, not tried.
                    claims = jwt.decode(
                        token,
                        jwk.key,
                        algorithms=[jwk.algorithm_name],
                        issuer=self._issuer,
                        audience=self._audience,
                        options={"require": ["exp", "iss", "sub"]},
                    )
                    return caller_from_claims(claims), float(claims["exp"])
                except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError) as exc:
                    last_error = exc
            raise Unauthenticated("Jwt verification fails") from last_error
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Jwt is expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"Jwt verification fails: {exc}") from None
        except (ValueError, TypeError, KeyError):
            # A malformed token (bad header types, a key of the wrong kind): a refusal, never a stack trace.
            raise Unauthenticated("Jwt verification fails") from None


def _issuer_of(authorization: str | None) -> str:
    """The unverified `iss` claim, only to choose which keys verify the token."""
    if not authorization or not authorization.startswith("Bearer "):
        return ""
    try:
        claims = jwt.decode(authorization.removeprefix("Bearer ").strip(), options={"verify_signature": False})
    except Exception:
        return ""
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else ""


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    try:
        role = Role(str(claims.get("role", "")))
    except ValueError:
        raise PermissionDenied(f"unknown role {claims.get('role')!r} in token") from None
    tenant = str(claims.get("tenant", ""))
    if role in (Role.OPERATOR, Role.VIEWER) and not tenant:
        raise PermissionDenied(f"a {role} token must name its tenant")
    return Caller(subject=str(claims.get("sub", "")), role=role, tenant_id=tenant)
