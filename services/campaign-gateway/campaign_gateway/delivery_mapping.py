"""DeliveryService proto <-> the delivery use cases' dataclasses."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from campaign_gateway.app.delivery_views import (
    BounceRouteView,
    Deployment,
    NodePlan,
    NodeView,
    ProblemView,
    PushReport,
)
from campaign_gateway.domain.pmta_nodes import NodeSpec
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from libs.outbound import origin_of

# PmtaNode field -> NodeSpec field, for requests and update masks.
NODE_FIELDS = {
    "name": "name",
    "hostname": "hostname",
    "ssh_host": "ssh_host",
    "ssh_port": "ssh_port",
    "ssh_user": "ssh_user",
    "ssh_host_key": "ssh_host_key",
    "config_path": "config_path",
    "pmta_command": "pmta_command",
    "accounting_directory": "accounting_directory",
    "accounting_move_to_directories": "accounting_move_to",
    "accounting_file_pattern": "accounting_pattern",
    "accounting_push_only": "accounting_pull",
    "http_monitor_url": "http_monitor_url",
    "smtp_host": "smtp_host",
    "smtp_port": "smtp_port",
}


def _time(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def spec_from_proto(node: pb.PmtaNode) -> NodeSpec:
    return NodeSpec(**node_changes(node, list(NODE_FIELDS)))  # type: ignore[arg-type]


def node_changes(node: pb.PmtaNode, paths: list[str]) -> dict[str, object]:
    """NodeSpec field -> value for the proto fields named (unknown paths are kept, for the use case to refuse)."""
    changes: dict[str, object] = {}
    for path in paths:
        target = NODE_FIELDS.get(path)
        if target is None:
            changes[path] = None
            continue
        value = getattr(node, path)
        if path == "accounting_move_to_directories":
            value = tuple(value)
        elif path == "accounting_push_only":
            value = not value
        changes[target] = value
    return changes


def present_fields(node: pb.PmtaNode) -> list[str]:
    """Without an update mask: the fields set in the request (a scalar at its default counts as absent)."""
    return [descriptor.name for descriptor, _value in node.ListFields() if descriptor.name in NODE_FIELDS]


def deployment_to_proto(deployment: Deployment) -> pb.PmtaDeployment:
    return pb.PmtaDeployment(
        node=deployment.node,
        outcome=pb.DeployOutcome.Value(f"DEPLOY_OUTCOME_{deployment.outcome.value}"),
        time=_time(deployment.time),
        config_sha256=deployment.config_sha256,
        trigger=deployment.trigger,
        detail=deployment.detail,
        consecutive_failures=deployment.consecutive_failures,
    )


def problem_to_proto(problem: ProblemView) -> pb.AccountingProblem:
    return pb.AccountingProblem(
        kind=problem.kind, source=problem.source, line=problem.line, detail=problem.detail, time=_time(problem.time)
    )


def node_to_proto(view: NodeView) -> pb.PmtaNode:
    spec, record = view.record.spec, view.record
    message = pb.PmtaNode(
        name=spec.name,
        hostname=spec.hostname,
        ssh_host=spec.ssh_host,
        ssh_port=spec.ssh_port,
        ssh_user=spec.ssh_user,
        ssh_host_key=spec.ssh_host_key,
        config_path=spec.config_path,
        pmta_command=spec.pmta_command,
        accounting_directory=spec.accounting_directory,
        accounting_move_to_directories=list(spec.accounting_move_to),
        accounting_file_pattern=spec.accounting_pattern,
        accounting_push_only=not spec.accounting_pull,
        http_monitor_url=spec.http_monitor_url,
        smtp_host=spec.smtp_host,
        smtp_port=spec.smtp_port,
        create_time=_time(record.create_time),
        update_time=_time(record.update_time),
        deployed_config_sha256=record.deployed_sha256,
        forwarder_token=view.forwarder_token,
    )
    if view.last_deployment is not None:
        message.last_deployment.CopyFrom(deployment_to_proto(view.last_deployment))
    cursor = view.cursor
    state = pb.AccountingState(
        pending=view.pending, recent_problems=[problem_to_proto(p) for p in view.recent_problems]
    )
    if cursor is not None:
        state.file, state.offset, state.line = cursor.path, cursor.offset, cursor.line
        state.records_counted, state.duplicates, state.last_error = (
            cursor.records_counted,
            cursor.duplicates,
            cursor.last_error,
        )
        if cursor.last_ingest_time is not None:
            state.last_ingest_time.FromDatetime(cursor.last_ingest_time)
    message.accounting.CopyFrom(state)
    return message


def plan_to_proto(plan: NodePlan) -> pb.NodePlan:
    return pb.NodePlan(
        node=plan.node,
        changed=plan.changed,
        diff=plan.diff,
        rendered_sha256=plan.rendered_sha256,
        current_sha256=plan.current_sha256,
        compared_with=plan.compared_with,
        error=plan.error,
        ip_count=plan.ip_count,
        excluded=list(plan.excluded),
    )


def push_to_proto(report: PushReport) -> pb.PushAccountingResponse:
    return pb.PushAccountingResponse(
        records=report.records,
        counted=report.counted,
        duplicates=report.duplicates,
        pending=report.pending,
        unattributed=report.unattributed,
        problems=[problem_to_proto(p) for p in report.problems],
    )


def route_to_proto(view: BounceRouteView) -> pb.BounceRoute:
    route, counts = view.route, view.counts
    return pb.BounceRoute(
        route_id=route.route_id,
        tenant_id=route.tenant_id,
        url=origin_of(route.url),  # the path may carry a secret: never shown back
        events=[pb.BounceEventKind.Value(f"BOUNCE_EVENT_KIND_{kind}") for kind in route.events],
        create_time=_time(route.create_time),
        delivered=counts.delivered,
        pending=counts.pending,
        failed=counts.failed,
        last_error=counts.last_error,
    )


def event_kinds(values: list[int]) -> list[str]:
    return [pb.BounceEventKind.Name(v).removeprefix("BOUNCE_EVENT_KIND_") for v in values if v]
