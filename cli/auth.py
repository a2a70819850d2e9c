"""Which token a command sends: `--token` / `EE_TOKEN`, or one signed here with the local key.

`--admin` or a tenant (`--tenant`, or the tenant the command names) signs a token exactly as `emailengine token`
does (same issuer, audience, subject and lifetime), but only when the local signing key exists: a deployment
whose tokens come from its own issuer has no such key, and then a token must be given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cli.errors import CliError, ExitCode

NO_TOKEN = "no token: give --token or EE_TOKEN, or --tenant NAME / --admin to sign one with the local key"


@dataclass(frozen=True)
class Credentials:
    token: str = ""
    admin: bool = False
    tenant: str = ""


def sign_local_token(*, admin: bool, tenant: str, ttl_seconds: int = 3600) -> str:
    """A token signed with the local key, as `emailengine token --admin` or `--tenant NAME` prints it."""
    from libs.auth import Role, mint_token
    from libs.config import settings

    try:
        s = settings()
    except SystemExit:  # a bad EE_* setting: its line is already on stderr
        raise CliError("the local settings are invalid (see above)", ExitCode.BAD_INPUT) from None
    if not s.private_key_path.exists():
        raise CliError(
            f"{NO_TOKEN} (there is no local signing key at {s.private_key_path}: this deployment's tokens come from "
            "its own issuer)",
            ExitCode.BAD_INPUT,
        )
    return mint_token(
        s.private_key_path,
        issuer=s.jwt_issuer,
        audience=s.jwt_audience,
        subject="admin" if admin else f"{tenant}-operator",
        role=Role.ADMIN if admin else Role.OPERATOR,
        tenant_id="" if admin else tenant,
        ttl_seconds=ttl_seconds,
    )


def resolve_token(credentials: Credentials) -> str:
    if credentials.token:
        return credentials.token
    if credentials.admin or credentials.tenant:
        return sign_local_token(admin=credentials.admin, tenant=credentials.tenant)
    raise CliError(NO_TOKEN, ExitCode.BAD_INPUT)


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, unverified: only to say whose token was refused."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def describe_token(token: str) -> str:
    """`(subject sos-expat-viewer, viewer of sos-expat)`, or "" for a token that cannot be read."""
    claims = claims_of(token)
    if not claims:
        return ""
    role = str(claims.get("role", "?"))
    tenant = str(claims.get("tenant", ""))
    whose = f"{role} of {tenant}" if tenant else role
    return f"(subject {claims.get('sub', '?')}, {whose})"


def tenant_of(token: str) -> str:
    return str(claims_of(token).get("tenant", "")) if token else ""
