"""Calls from one service to another: one factory, addresses from settings, deadlines, retries where safe, and
a service identity that carries the tenant on whose behalf the call is made.

    clients = ServiceClients(settings)
    allocation = clients.call(
        "ip-pool", IpPoolServiceStub, "AllocateVolume", request, tenant_id="sos-expat", idempotent=False
    )

* Addresses come from the `EE_*_ADDRESS` settings (a Kubernetes Service name in a cluster), else this host.
* Every call has a deadline (`EE_SERVICE_CALL_TIMEOUT_SECONDS` unless given).
* Only idempotent calls (reads; writes the callee makes idempotent, e.g. absolute totals) are retried, with
  backoff, on UNAVAILABLE and DEADLINE_EXCEEDED; a create is never blindly retried.
* The caller is a short-lived token (60 s) with role `service`, signed with the service key, which Envoy does
  not know: a service token is accepted by the services only, never at the gateway. With `tenant_id`, the
  callee treats the call like one from that tenant's operator (tenant isolation holds); without, it acts for
  the platform (every tenant).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from libs.auth import SERVICE_ISSUER, Role, ensure_local_keys, mint_token
from libs.config import Settings, is_ip_literal, split_host_port

StubT = TypeVar("StubT")

TOKEN_TTL_SECONDS = 60
_RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class ServiceTokens:
    """Mints and caches the service's tokens, one per tenant acted for, renewed well before they expire."""

    def __init__(self, settings: Settings, service: str):
        ensure_local_keys(settings.service_key_path, settings.service_jwks_path)
        self._settings = settings
        self._service = service
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def token(self, tenant_id: str) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached[0] > now:
                return cached[1]
            token = mint_token(
                self._settings.service_key_path,
                issuer=SERVICE_ISSUER,
                audience=self._settings.jwt_audience,
                subject=f"service:{self._service}",
                role=Role.SERVICE,
                tenant_id=tenant_id,
                ttl_seconds=TOKEN_TTL_SECONDS,
            )
            self._cache[tenant_id] = (now + TOKEN_TTL_SECONDS / 2, token)
            return token


class ServiceClients:
    """One channel per peer service (gRPC multiplexes calls over it); thread-safe."""

    def __init__(self, settings: Settings, service: str):
        self._settings = settings
        self._tokens = ServiceTokens(settings, service)
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def channel(self, peer: str) -> grpc.Channel:
        """A name is resolved by DNS and every address it gives is used in turn (a Kubernetes headless Service:
        calls spread over the replicas instead of sticking to the first pod; the servers' connection age makes
        clients re-resolve, so new replicas get their share)."""
        with self._lock:
            if peer not in self._channels:
                address = self._settings.grpc_address(peer)
                host, _port = split_host_port(address)
                target = address if is_ip_literal(host) else f"dns:///{address}"
                self._channels[peer] = grpc.insecure_channel(
                    target,
                    options=[
                        ("grpc.max_send_message_length", self._settings.max_request_bytes),
                        ("grpc.lb_policy_name", "round_robin"),
                    ],
                )
            return self._channels[peer]

    def call(
        self,
        peer: str,
        stub_class: Callable[[grpc.Channel], StubT],
        method: str,
        request: Message,
        *,
        tenant_id: str = "",
        idempotent: bool,
        timeout: float | None = None,
    ) -> Any:
        """`stub_class(channel).<method>(request)` as this service, for `tenant_id` (or the platform)."""
        rpc = getattr(stub_class(self.channel(peer)), method)
        deadline = timeout or self._settings.service_call_timeout_seconds

        def once() -> Any:
            metadata = (("authorization", f"Bearer {self._tokens.token(tenant_id)}"),)
            return rpc(request, metadata=metadata, timeout=deadline)

        if not idempotent:
            return once()
        retrying = Retrying(
            stop=stop_after_attempt(4),
            wait=wait_exponential(multiplier=0.2, max=3),
            retry=retry_if_exception(lambda e: isinstance(e, grpc.RpcError) and e.code() in _RETRIED_CODES),
            reraise=True,
        )
        return retrying(once)

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
