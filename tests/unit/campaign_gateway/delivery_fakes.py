"""In-memory storage and peers of the delivery use cases: node, deploy, lease, accounting and bounce repositories
(bound with the others by `campaign_fakes.FakeCampaignUnitOfWork`), PowerMTA nodes and the job scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from campaign_gateway.adapters.pmta_node import CommandResult, DeployResult, NodeCommandFailed, NodeUnreachable
from campaign_gateway.app.delivery_views import (
    BounceRouteRecord,
    ClaimedDelivery,
    DeliveryCounts,
    Deployment,
    NewDelivery,
)
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec


class _Repo:
    def __init__(self, tables: dict[str, Any], name: str, default: Any):
        self.rows = tables.setdefault(name, default)


class FakeNodes(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "nodes", {})

    def add(self, node: NodeRecord, *, token_sha256: str) -> None:
        self.rows[node.spec.name] = (node, token_sha256)

    def get(self, name: str) -> NodeRecord | None:
        found = self.rows.get(name)
        return found[0] if found else None

    def list(self, *, limit: int, after: str) -> list[NodeRecord]:
        return [self.rows[name][0] for name in sorted(self.rows) if name > after][:limit]

    def update_spec(self, spec: NodeSpec, *, now: datetime) -> None:
        node, token = self.rows[spec.name]
        self.rows[spec.name] = (replace(node, spec=spec, update_time=now), token)

    def token_sha256(self, name: str) -> str | None:
        found = self.rows.get(name)
        return found[1] if found else None

    def set_token(self, name: str, token_sha256: str, *, now: datetime) -> None:
        self.rows[name] = (self.rows[name][0], token_sha256)

    def delete(self, name: str) -> bool:
        return self.rows.pop(name, None) is not None

    def record_deploy(self, name: str, *, deployed_sha256: str, deployed_text: str, consecutive_failures: int) -> None:
        node, token = self.rows[name]
        self.rows[name] = (
            replace(
                node,
                deployed_sha256=deployed_sha256,
                deployed_text=deployed_text,
                consecutive_failures=consecutive_failures,
            ),
            token,
        )

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None:
        node = self.get(node_name)
        return (node.spec.smtp_host, node.spec.smtp_port) if node else None


class FakeDeployments(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "deployments", [])

    def add(self, deployment: Deployment) -> None:
        self.rows.append(deployment)

    def latest(self, node: str) -> Deployment | None:
        mine = [d for d in self.rows if d.node == node]
        return mine[-1] if mine else None

    def list(self, node: str, *, limit: int, after: Any) -> list[Deployment]:
        return [d for d in reversed(self.rows) if d.node == node][:limit]


class FakeLeases(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "node_leases", {})

    def acquire(self, node: str, purpose: str, owner: str, *, now: datetime, until: datetime) -> bool:
        held = self.rows.get((node, purpose))
        if held is not None and held[0] != owner and held[1] >= now:
            return False
        self.rows[(node, purpose)] = (owner, until)
        return True

    def release(self, node: str, purpose: str, owner: str) -> None:
        if self.rows.get((node, purpose), ("",))[0] == owner:
            del self.rows[(node, purpose)]


class FakeQueueHolds(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "queue_holds", {})

    def held(self, node: str) -> dict[str, str]:
        return {vmta: address for (n, vmta), (address, _) in self.rows.items() if n == node}

    def hold(self, node: str, vmta: str, address: str, *, now: datetime) -> None:
        self.rows.setdefault((node, vmta), (address, now))

    def release(self, node: str, vmta: str) -> None:
        self.rows.pop((node, vmta), None)


class FakeRoutes(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "routes", {})

    def add(self, route: BounceRouteRecord) -> None:
        self.rows[route.route_id] = route

    def get(self, route_id: str) -> BounceRouteRecord | None:
        return self.rows.get(route_id)

    def for_tenant(self, tenant_id: str) -> list[BounceRouteRecord]:
        return [r for r in self.rows.values() if r.tenant_id == tenant_id]

    def delete(self, route_id: str) -> bool:
        return self.rows.pop(route_id, None) is not None


@dataclass
class _Row:
    new: NewDelivery
    state: str = "PENDING"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    owner: str = ""
    until: datetime | None = None
    error: str = ""


class FakeDeliveries(_Repo):
    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "deliveries", {})

    def add_many(self, deliveries: list[NewDelivery]) -> int:
        added = 0
        for d in deliveries:
            if d.delivery_id not in self.rows:
                self.rows[d.delivery_id] = _Row(d, next_attempt_at=d.created_at)
                added += 1
        return added

    def due(self, *, now: datetime, limit: int) -> list[str]:
        return [
            key
            for key, row in self.rows.items()
            if row.state == "PENDING" and row.next_attempt_at <= now and (row.until is None or row.until < now)
        ][:limit]

    def claim(self, delivery_id: str, owner: str, *, now: datetime, until: datetime) -> ClaimedDelivery | None:
        row = self.rows[delivery_id]
        if row.state != "PENDING" or (row.until is not None and row.until >= now):
            return None
        row.owner, row.until, row.attempts = owner, until, row.attempts + 1
        d = row.new
        return ClaimedDelivery(d.delivery_id, d.route_id, d.tenant_id, d.body, row.attempts, d.created_at)

    def settle(
        self, delivery_id: str, owner: str, *, delivered: bool, now: datetime, next_attempt_at: Any, error: str
    ) -> None:
        row = self.rows[delivery_id]
        row.owner, row.until, row.error = "", None, error
        if delivered:
            row.state = "DELIVERED"
        elif next_attempt_at is None:
            row.state = "FAILED"
        else:
            row.next_attempt_at = next_attempt_at

    def give_up_route(self, route_id: str, reason: str) -> int:
        rows = [r for r in self.rows.values() if r.new.route_id == route_id and r.state == "PENDING"]
        for r in rows:
            r.state, r.error = "FAILED", reason
        return len(rows)

    def counts(self, route_id: str) -> DeliveryCounts:
        mine = [r for r in self.rows.values() if r.new.route_id == route_id]
        return DeliveryCounts(
            delivered=sum(r.state == "DELIVERED" for r in mine),
            pending=sum(r.state == "PENDING" for r in mine),
            failed=sum(r.state == "FAILED" for r in mine),
        )


class FakeAccountingState(_Repo):
    """Only what a node's view reads (the accounting pipeline itself is tested on the real databases)."""

    def __init__(self, tables: dict[str, Any]):
        super().__init__(tables, "accounting", {})

    def cursor(self, node: str) -> Any:
        return self.rows.get(node)

    def pending(self, node: str) -> list[Any]:
        return []

    def recent_problems(self, node: str, *, limit: int) -> list[Any]:
        return []


@dataclass
class FakeNodeGateway:
    """A node's file and queues in memory; `refuse` makes the node unreachable, `fail_reload` its next reload."""

    files: dict[str, str] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    fail_reload: set[str] = field(default_factory=set)
    configured: bool = True

    def _reach(self, spec: NodeSpec) -> None:
        if spec.name in self.refuse:
            raise NodeUnreachable(spec.name, "cannot connect to 127.0.0.1:22: ConnectionRefusedError")

    def read_config(self, spec: NodeSpec) -> str | None:
        self._reach(spec)
        return self.files.get(spec.name)

    def deploy(self, spec: NodeSpec, text: str, *, force: bool) -> DeployResult:
        self._reach(spec)
        self.calls.append(("deploy", spec.name))
        if self.files.get(spec.name) == text and not force:
            return DeployResult(spec.name, applied=True, changed=False, reload=None)
        if spec.name in self.fail_reload:
            self.fail_reload.discard(spec.name)
            reload = CommandResult(spec.name, "pmta reload", 1, "Error in line 3 of /etc/pmta/config: bad", "")
            return DeployResult(spec.name, applied=False, changed=True, reload=reload, restored=True)
        self.files[spec.name] = text
        return DeployResult(
            spec.name, True, True, CommandResult(spec.name, "pmta reload", 0, "Configuration reloaded.", "")
        )

    def pause(self, spec: NodeSpec, vmta: str) -> CommandResult:
        self._reach(spec)
        self.calls.append(("pause", vmta))
        if vmta not in self.files.get(spec.name, ""):
            result = CommandResult(spec.name, "pause", 1, f"Error: unknown virtual MTA {vmta}", "")
            raise NodeCommandFailed(spec.name, "unknown", result)
        self.paused.add(vmta)
        return CommandResult(spec.name, "pause", 0, "Queue(s) paused.", "")

    def resume(self, spec: NodeSpec, vmta: str) -> CommandResult:
        self._reach(spec)
        self.calls.append(("resume", vmta))
        self.paused.discard(vmta)
        return CommandResult(spec.name, "resume", 0, "Queue(s) resumed.", "")

    def pull(self, spec: NodeSpec, cursor: Any, *, max_bytes: int) -> Any:
        raise AssertionError("not used here")


@dataclass
class FakeScheduler:
    jobs: list[tuple[str, ...]] = field(default_factory=list)

    def deploy_node(self, name: str, trigger: str) -> None:
        self.jobs.append(("deploy_node", name, trigger))

    def deploy_ip_node(self, address: str, trigger: str) -> None:
        self.jobs.append(("deploy_ip_node", address, trigger))

    def apply_ip_state(self, address: str, state: str) -> None:
        self.jobs.append(("apply_ip_state", address, state))

    def ingest_node(self, name: str) -> None:
        self.jobs.append(("ingest_node", name))
