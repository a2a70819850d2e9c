"""The peers the delivery use cases talk to, as small protocols: ip-pool, the PowerMTA nodes, webhooks, jobs.

The real ones are in `adapters/` (`ippool_peer`, `pmta_gateway`, `bounce_webhook`) and `bootstrap.py` (jobs);
the use-case tests pass fakes. What travels through them is plain data (the adapters' dataclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from campaign_gateway.adapters.bounce_webhook import WebhookAnswer
from campaign_gateway.adapters.ippool_peer import DayTotals as PoolDayTotals
from campaign_gateway.adapters.ippool_peer import PoolIp, TenantDay
from campaign_gateway.adapters.pmta_node import AccountingPull, CommandResult, DeployResult, RemoteFileCursor
from campaign_gateway.domain.pmta_nodes import NodeSpec


class IpPool(Protocol):
    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]: ...

    def tenant_day(self, tenant_id: str) -> TenantDay: ...

    def record_delivery_stats(self, totals: Sequence[PoolDayTotals]) -> int: ...


class NodeGateway(Protocol):
    @property
    def configured(self) -> bool:
        """False without an SSH client key: nodes are planned against their last deploy, never contacted."""
        ...

    def read_config(self, spec: NodeSpec) -> str | None: ...

    def deploy(self, spec: NodeSpec, text: str, *, force: bool) -> DeployResult: ...

    def pause(self, spec: NodeSpec, vmta: str) -> CommandResult: ...

    def resume(self, spec: NodeSpec, vmta: str) -> CommandResult: ...

    def pull(self, spec: NodeSpec, cursor: RemoteFileCursor | None, *, max_bytes: int) -> AccountingPull: ...


class Webhooks(Protocol):
    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, now: datetime) -> WebhookAnswer: ...


class Scheduler(Protocol):
    """Work handed to the job runner (a worker, or the in-process pool), never done inside the caller's transaction."""

    def deploy_node(self, name: str, trigger: str) -> None: ...

    def deploy_ip_node(self, address: str, trigger: str) -> None:
        """Deploy the node the IP lives on (found in ip-pool by the job)."""
        ...

    def apply_ip_state(self, address: str, state: str) -> None: ...

    def ingest_node(self, name: str) -> None: ...
