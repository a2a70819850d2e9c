"""Plain records the delivery use cases read, write and return (PowerMTA deploys, accounting, bounces)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from campaign_gateway.domain.pmta_nodes import DeployOutcome, NodeRecord


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    node: str
    outcome: DeployOutcome
    time: datetime
    config_sha256: str
    trigger: str
    detail: str
    consecutive_failures: int


@dataclass(frozen=True)
class IpStateApplied:
    """What applying an IP's state on its node did."""

    done: str
    """"pause" or "resume", "<verb> failed: <why>", "<verb>: no such VMTA on the node yet", "no node", ..."""
    unreachable: bool = False
    """The node could not be reached (for the queue command or the deploy that follows): worth trying again."""


@dataclass(frozen=True)
class CursorState:
    """Where the SFTP pull of a node's accounting stands, and what it has counted."""

    path: str = ""
    inode: int = 0
    offset: int = 0
    line: int = 0
    """Physical lines of `path` consumed before `offset`."""
    columns: tuple[str, ...] | None = None
    last_ingest_time: datetime | None = None
    records_counted: int = 0
    duplicates: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class ProblemView:
    kind: str
    source: str
    line: int
    detail: str
    time: datetime


@dataclass(frozen=True)
class NodeView:
    """A node as the API shows it."""

    record: NodeRecord
    last_deployment: Deployment | None = None
    cursor: CursorState | None = None
    pending: int = 0
    recent_problems: tuple[ProblemView, ...] = ()
    forwarder_token: str = ""
    """Set only in the answer that created the token."""


@dataclass(frozen=True)
class NodePlan:
    node: str
    changed: bool
    diff: str
    rendered_sha256: str
    current_sha256: str
    compared_with: str
    error: str
    ip_count: int
    excluded: tuple[str, ...]


@dataclass(frozen=True)
class BounceRouteRecord:
    route_id: str
    tenant_id: str
    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...]
    create_time: datetime


@dataclass(frozen=True)
class DeliveryCounts:
    delivered: int = 0
    pending: int = 0
    failed: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class BounceRouteView:
    route: BounceRouteRecord
    counts: DeliveryCounts


@dataclass(frozen=True)
class NewDelivery:
    delivery_id: str
    route_id: str
    tenant_id: str
    body: bytes = field(repr=False)
    created_at: datetime


@dataclass(frozen=True)
class ClaimedDelivery:
    delivery_id: str
    route_id: str
    tenant_id: str
    body: bytes = field(repr=False)
    attempts: int
    """Attempts made so far, the one about to be made included."""
    created_at: datetime


@dataclass(frozen=True)
class PushReport:
    records: int
    counted: int
    duplicates: int
    pending: int
    unattributed: int
    problems: tuple[ProblemView, ...]


@dataclass
class IngestReport:
    """One run of a node's accounting ingestion."""

    node: str
    batches: int = 0
    records: int = 0
    counted: int = 0
    duplicates: int = 0
    pending: int = 0
    unattributed: int = 0
    forwarded: int = 0
    suppressed: int = 0
    problems: list[ProblemView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    skipped: str = ""
    """Why nothing was done (the node is being ingested by another worker, pull disabled)."""
