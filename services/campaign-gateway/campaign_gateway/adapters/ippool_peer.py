"""The campaign-gateway's view of ip-pool, over its gRPC contract: the IPs, their quotas and nodes, the tenants'
local days, volume allocation, and delivery totals going back.

Plain dataclasses out, so the use cases never see ip-pool's protos. Calls go through `libs.service_client`
(deadlines, the service identity, retries for the idempotent ones); a call made for a tenant carries it, so
ip-pool's tenant isolation holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import grpc

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from libs.errors import NotFound, Unavailable
from libs.service_client import ServiceClients

PEER = "ip-pool"
PAGE_SIZE = 500


@dataclass(frozen=True)
class PoolIp:
    """One sending IP as ip-pool sees it now (today's quota in its tenant's local day)."""

    address: str
    tenant_id: str
    purpose: str
    pool: str
    pmta_node: str
    helo_hostname: str
    state: str  # WARMING, WARM, STANDBY, PAUSED, RETIRED
    day: date | None
    daily_quota: int
    hourly_quota: int
    provider_caps: dict[str, int] = field(default_factory=dict)  # GMAIL, MICROSOFT, ..., ICLOUD, OTHER
    resting: bool = False


@dataclass(frozen=True)
class TenantDay:
    tenant_id: str
    time_zone: str
    window_start_hour: int
    window_end_hour: int


@dataclass(frozen=True)
class AllocatedIp:
    address: str
    volume: int
    by_provider: dict[str, int]


@dataclass(frozen=True)
class AllocationResult:
    allocation_id: str
    day: date | None
    requested: int
    allocations: tuple[AllocatedIp, ...]
    allocated_today: int
    remainder: int
    plan: tuple[tuple[date, int], ...]  # (tenant-local day, volume) after today
    unplanned: int
    excluded: tuple[tuple[str, str], ...]  # (address, reason)


@dataclass(frozen=True)
class DayTotals:
    """Absolute totals of one (address, tenant-local day, provider): ip-pool replaces its row with them."""

    address: str
    day: date
    provider: str  # GMAIL, MICROSOFT, ..., ICLOUD, OTHER
    sent: int
    delivered: int
    bounced: int
    complained: int
    throttled: int
    """Reputation-class deferrals (the provider slows this IP for its volume or reputation)."""
    deferred: int = 0
    """Every deferral attempt, throttled ones included: with `sent`, the attempts ip-pool rates throttling over."""


class IpPoolPeer:
    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def _call(self, method: str, request: object, *, tenant_id: str, idempotent: bool) -> object:
        try:
            return self._clients.call(
                PEER, pb_grpc.IpPoolServiceStub, method, request, tenant_id=tenant_id, idempotent=idempotent
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("ip-pool resource", str(getattr(request, "address", "") or tenant_id)) from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"ip-pool did not answer ({exc.code().name}); try again shortly") from None
            raise

    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]:
        """Every IP of a tenant (or of every tenant when empty: a platform call)."""
        return list(self._iter_ips(tenant_id=tenant_id, state=state))

    def _iter_ips(self, *, tenant_id: str, state: str) -> Iterator[PoolIp]:
        token = ""
        while True:
            request = pb.ListIpsRequest(
                tenant_id=tenant_id,
                state=pb.IpState.Value(f"IP_STATE_{state}") if state else 0,
                page_size=PAGE_SIZE,
                page_token=token,
            )
            reply: pb.ListIpsResponse = self._call("ListIps", request, tenant_id=tenant_id, idempotent=True)  # type: ignore[assignment]
            yield from (pool_ip(ip) for ip in reply.ips)
            token = reply.next_page_token
            if not token:
                return

    def get_ip(self, address: str, *, tenant_id: str = "") -> PoolIp:
        reply: pb.Ip = self._call("GetIp", pb.GetIpRequest(address=address), tenant_id=tenant_id, idempotent=True)  # type: ignore[assignment]
        return pool_ip(reply)

    def tenant_day(self, tenant_id: str) -> TenantDay:
        reply: pb.Tenant = self._call(  # type: ignore[assignment]
            "GetTenant", pb.GetTenantRequest(tenant_id=tenant_id), tenant_id=tenant_id, idempotent=True
        )
        return TenantDay(
            tenant_id=reply.tenant_id,
            time_zone=reply.time_zone or "UTC",
            window_start_hour=reply.sending_window_start_hour,
            window_end_hour=reply.sending_window_end_hour,
        )

    def allocate(
        self,
        *,
        tenant_id: str,
        volume: int,
        by_provider: dict[str, int],
        validate_only: bool,
        purpose: str = "",
        pool: str = "",
    ) -> AllocationResult:
        """Reserves (or, validate_only, computes) today's volume over the tenant's healthy IPs. Not retried: a
        reservation made twice would hold twice the quota.

        `purpose`: MARKETING, TRANSACTIONAL or COLD; empty is MARKETING for ip-pool, which never puts it on a
        transactional IP. `pool`: only that pool's IPs; empty is every pool but the tenant's cold pool."""
        request = pb.AllocateVolumeRequest(
            tenant_id=tenant_id,
            volume=volume,
            volume_by_provider=[
                pb.ProviderVolume(provider=pb.ProviderGroup.Value(f"PROVIDER_GROUP_{g}"), volume=v)
                for g, v in sorted(by_provider.items())
            ],
            validate_only=validate_only,
            purpose=pb.CampaignPurpose.Value(f"CAMPAIGN_PURPOSE_{purpose.upper()}") if purpose else 0,  # type: ignore[arg-type]
            pool=pool,
        )
        reply: pb.Allocation = self._call("AllocateVolume", request, tenant_id=tenant_id, idempotent=validate_only)  # type: ignore[assignment]
        return AllocationResult(
            allocation_id=reply.allocation_id,
            day=_day(reply.day),
            requested=reply.requested,
            allocations=tuple(AllocatedIp(a.address, a.volume, _volumes(a.by_provider)) for a in reply.allocations),
            allocated_today=reply.allocated_today,
            remainder=reply.remainder,
            plan=tuple((d, p.volume) for p in reply.plan if (d := _day(p.day)) is not None),
            unplanned=reply.unplanned,
            excluded=tuple((e.address, e.reason) for e in reply.excluded),
        )

    def record_delivery_stats(self, totals: Sequence[DayTotals]) -> int:
        """Absolute day totals (ip-pool replaces each row), so sending the same totals again is harmless and
        the call is retried on failure."""
        request = pb.RecordDeliveryStatsRequest(
            stats=[
                pb.DeliveryStats(
                    address=t.address,
                    day=t.day.isoformat(),
                    provider=pb.ProviderGroup.Value(f"PROVIDER_GROUP_{t.provider}"),
                    sent=t.sent,
                    delivered=t.delivered,
                    bounced=t.bounced,
                    complained=t.complained,
                    throttled=t.throttled,
                    deferred=t.deferred,
                )
                for t in totals
            ]
        )
        reply: pb.RecordDeliveryStatsResponse = self._call(  # type: ignore[assignment]
            "RecordDeliveryStats", request, tenant_id="", idempotent=True
        )
        return reply.recorded


def pool_ip(ip: pb.Ip) -> PoolIp:
    return PoolIp(
        address=ip.address,
        tenant_id=ip.tenant_id,
        purpose=ip.purpose,
        pool=ip.pool,
        pmta_node=ip.pmta_node,
        helo_hostname=ip.helo_hostname,
        state=pb.IpState.Name(ip.state).removeprefix("IP_STATE_"),
        day=_day(ip.quota.day),
        daily_quota=ip.quota.daily,
        hourly_quota=ip.quota.hourly,
        provider_caps={
            pb.ProviderGroup.Name(p.provider).removeprefix("PROVIDER_GROUP_"): p.cap for p in ip.quota.by_provider
        },
        resting=bool(ip.warmup.resting_until),
    )


def ip_state_name(number: int) -> str:
    """WARMING, WARM, STANDBY, PAUSED, RETIRED (or UNSPECIFIED) for ip-pool's IpState number in its events."""
    return pb.IpState.Name(number).removeprefix("IP_STATE_") if number in pb.IpState.values() else "UNSPECIFIED"


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _volumes(items: Sequence[pb.ProviderVolume]) -> dict[str, int]:
    return {pb.ProviderGroup.Name(v.provider).removeprefix("PROVIDER_GROUP_"): v.volume for v in items}
