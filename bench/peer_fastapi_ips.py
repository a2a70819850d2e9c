"""The peer of the gateway's `GET /api/v2/ips/{address}` for the benchmark: a plain FastAPI endpoint under uvicorn.

Benchmark only (never a product dependency): the same read as ip-pool's GetIp -- the same bearer token checked
against the same JWKS, the same use case (`IpUseCases.get`: the IP, its tenant's local day, today's quota) on the
same database, the same JSON -- served by FastAPI straight over HTTP/1.1, with no Envoy and no gRPC in between.
What Envoy + gRPC cost is the gap between this figure and the gateway's.

It reads the stack's environment (EE_DATA_DIR, DATABASE_URL, ...) like a service does:

    python -m uvicorn peer_fastapi_ips:app --app-dir bench --host 127.0.0.1 --port PORT
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException
from google.protobuf import json_format

from ippool.adapters import tables
from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.ips import IpUseCases
from ippool.mapping import ip_to_proto
from libs.auth import TokenVerifier
from libs.change_counter import ChangeCounter
from libs.clock import SystemClock
from libs.config import settings
from libs.db import connect
from libs.errors import ServiceError

SERVICE = "ip-pool"

_settings = settings()
_db = connect(_settings, SERVICE)
_clock = SystemClock()
_verifier = TokenVerifier(
    _settings.jwks_path, _settings.jwt_issuer, _settings.jwt_audience, service_jwks_path=_settings.service_jwks_path
)


def _unit_of_work(*, read_only: bool = False) -> SqlIpPoolUnitOfWork:
    return SqlIpPoolUnitOfWork(_db, source=SERVICE, clock=_clock, read_only=read_only)


# The same use case as ip-pool's, with the same cache (kept exact by the same count of writes).
_ips = IpUseCases(_unit_of_work, _clock, changes=ChangeCounter(_db, tables.changes).current)
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/api/v2/ips/{address}")
def get_ip(address: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """A plain (threaded) endpoint, as the use case blocks on the database."""
    try:
        caller = _verifier.verify(authorization)
        found = _ips.get(caller, address)
    except ServiceError as exc:
        raise HTTPException(status_code=_STATUS.get(exc.reason, 400), detail=exc.message) from None
    return json_format.MessageToDict(ip_to_proto(found))


_STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}
