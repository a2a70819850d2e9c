"""Every RPC of every service, through Envoy, over REST and gRPC, with another tenant's operator token and with a
viewer's: every write is refused, no read shows anything of the other tenant, and a refusal reads the same
whether the resource exists or not (no existence oracle).

One row per RPC; a test checks that every RPC with an HTTP binding has its row, so a new RPC cannot skip this.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, symbol_database
from grpc_status import rpc_status

from tests.e2e.test_rest_fuzz import BINDINGS
from tests.harness.servers import Stack

pytestmark = pytest.mark.e2e

SOS_IP, NO_IP = "192.0.2.90", "192.0.2.91"
NO_TENANT = "nosuch-tenant"
NODE, NODE_HOST_KEY = "pmta-isolation", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr6"


@dataclass(frozen=True)
class Case:
    rpc: str  # Service.Method
    verb: str
    path: str  # with {id} where the resource goes
    body: dict[str, Any] | None = None  # JSON body; {id} in string values is replaced too
    write: bool = True
    # (existing, missing) values of {id}: another tenant's resource, and one that does not exist at all
    ids: str = "ip"
    # REST path parameter -> request field, for the gRPC call
    path_field: str = ""
    query: dict[str, str] = field(default_factory=dict)
    # The call is the caller's own business (no other tenant in it): only the viewer rule applies
    own: bool = False
    # Request fields the REST path holds literally (gRPC callers set them)
    fixed: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("IpPoolService.CreateIp", "POST", "/api/v2/ips", {"address": "192.0.2.77", "tenant_id": "{id}"}, ids="tenant"),
    Case("IpPoolService.GetIp", "GET", "/api/v2/ips/{id}", write=False, path_field="address"),
    Case("IpPoolService.ListIps", "GET", "/api/v2/ips", write=False, ids="tenant", query={"tenant_id": "{id}"}),
    Case("IpPoolService.PauseIp", "POST", "/api/v2/ips/{id}:pause", {"reason": "x"}, path_field="address"),
    Case("IpPoolService.ResumeIp", "POST", "/api/v2/ips/{id}:resume", {"reason": "x"}, path_field="address"),
    Case("IpPoolService.RetireIp", "POST", "/api/v2/ips/{id}:retire", {"reason": "x"}, path_field="address"),
    Case("IpPoolService.ReleaseIp", "POST", "/api/v2/ips/{id}:release", {"reason": "x"}, path_field="address"),
    Case(
        "IpPoolService.TransferIp",
        "POST",
        "/api/v2/ips/{id}:transfer",
        {"tenant_id": "ulixai", "reason": "x"},
        path_field="address",
    ),
    Case("IpPoolService.ListIpDecisions", "GET", "/api/v2/ips/{id}/decisions", write=False, path_field="address"),
    Case(
        "IpPoolService.RecordDeliveryStats",
        "POST",
        "/api/v2/delivery-stats:record",
        {"stats": [{"address": "{id}", "sent": 10, "delivered": 10}]},
    ),
    Case(
        "IpPoolService.RecordListing",
        "POST",
        "/api/v2/ips/{id}:recordListing",
        {"zone": "zen.spamhaus.org", "listed": True},
        path_field="address",
    ),
    Case(
        "IpPoolService.AllocateVolume",
        "POST",
        "/api/v2/tenants/{id}:allocate",
        {"volume": 10},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case("IpPoolService.CreateTenant", "POST", "/api/v2/tenants", {"tenant_id": "{id}"}, ids="new-tenant"),
    Case("IpPoolService.GetTenant", "GET", "/api/v2/tenants/{id}", write=False, ids="tenant", path_field="tenant_id"),
    Case("IpPoolService.ListTenants", "GET", "/api/v2/tenants", write=False, ids="none", own=True),
    Case(
        "IpPoolService.UpdateTenant",
        "PATCH",
        "/api/v2/tenants/{id}",
        {"display_name": "mine now"},
        ids="tenant",
        path_field="tenant.tenant_id",
        query={"update_mask": "display_name"},
    ),
    Case(
        "IpPoolService.CreateSchedule",
        "POST",
        "/api/v2/tenants/{id}/schedules",
        {"schedule_id": "s2", "steps": [{"daily_volume": 10, "sending_days": 1}]},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "IpPoolService.GetSchedule",
        "GET",
        "/api/v2/tenants/sos-expat/schedules/{id}",
        write=False,
        ids="schedule",
        path_field="schedule_id",
        fixed={"tenant_id": "sos-expat"},
    ),
    Case(
        "IpPoolService.ListSchedules",
        "GET",
        "/api/v2/tenants/{id}/schedules",
        write=False,
        ids="tenant",
        path_field="tenant_id",
    ),
    Case("ReputationService.CheckIp", "POST", "/api/v2/reputation/ips/{id}:check", {}, path_field="address"),
    Case("ReputationService.GetIpReputation", "GET", "/api/v2/reputation/ips/{id}", write=False, path_field="address"),
    Case(
        "ReputationService.ScanTenant",
        "POST",
        "/api/v2/reputation/tenants/{id}:scan",
        {},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "ReputationService.ValidateDomain",
        "POST",
        "/api/v2/domains/sos-expat.example:validate",
        {"tenant_id": "{id}"},
        write=False,
        ids="tenant",
        fixed={"domain": "sos-expat.example"},
    ),
    Case("ReputationService.ListZones", "GET", "/api/v2/reputation/zones", write=False, ids="none", own=True),
    Case(
        "ReputationService.GetTenantZones",
        "GET",
        "/api/v2/reputation/tenants/{id}/zones",
        write=False,
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "ReputationService.SetTenantZones",
        "PUT",
        "/api/v2/reputation/tenants/{id}/zones",
        {"ip_zones": ["psbl"]},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "ReputationService.GetTenantDomains",
        "GET",
        "/api/v2/reputation/tenants/{id}/domains",
        write=False,
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "ReputationService.SetTenantDomains",
        "PUT",
        "/api/v2/reputation/tenants/{id}/domains",
        {"tracking_domains": ["t.example"]},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "ReputationService.CheckTenantDomains",
        "POST",
        "/api/v2/reputation/tenants/{id}/domains:check",
        {},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "CampaignService.CreateCampaign",
        "POST",
        "/api/v2/campaigns",
        {"tenant": "{id}", "template_id": "cold_v1", "contacts": [{"email": "a@example.org"}]},
        ids="tenant",
    ),
    Case(
        "CampaignService.GetCampaign",
        "GET",
        "/api/v2/campaigns/{id}",
        write=False,
        ids="campaign",
        path_field="campaign_id",
    ),
    Case(
        "CampaignService.ListCampaigns", "GET", "/api/v2/campaigns", write=False, ids="tenant", query={"tenant": "{id}"}
    ),
    Case(
        "CampaignService.PauseCampaign",
        "POST",
        "/api/v2/campaigns/{id}:pause",
        {},
        ids="campaign",
        path_field="campaign_id",
    ),
    Case(
        "CampaignService.ResumeCampaign",
        "POST",
        "/api/v2/campaigns/{id}:resume",
        {},
        ids="campaign",
        path_field="campaign_id",
    ),
    Case(
        "CampaignService.AddSuppressions",
        "POST",
        "/api/v2/suppressions:batchAdd",
        {"tenant": "{id}", "entries": [{"email": "a@example.org"}]},
        ids="tenant",
    ),
    Case(
        "CampaignService.ListSuppressions",
        "GET",
        "/api/v2/suppressions",
        write=False,
        ids="tenant",
        query={"tenant": "{id}"},
    ),
    Case(
        "CampaignService.RemoveSuppressions",
        "POST",
        "/api/v2/suppressions:batchRemove",
        {"tenant": "{id}", "emails": ["a@example.org"]},
        ids="tenant",
    ),
    Case(
        "CampaignService.GetMailwizzBinding",
        "GET",
        "/api/v2/mailwizz/bindings/{id}",
        write=False,
        ids="tenant",
        path_field="tenant",
    ),
    Case("CampaignService.ListMailwizzBindings", "GET", "/api/v2/mailwizz/bindings", write=False, ids="none", own=True),
    Case(
        "CampaignService.PlanQuotaSync",
        "POST",
        "/api/v2/mailwizz/bindings/{id}:planQuotaSync",
        {},
        write=False,
        ids="tenant",
        path_field="tenant",
    ),
    Case(
        "CampaignService.SyncQuotas",
        "POST",
        "/api/v2/mailwizz/bindings/{id}:syncQuotas",
        {},
        ids="tenant",
        path_field="tenant",
    ),
    # PowerMTA nodes are the platform's: every call is an admin's, refused alike whether the node exists or not.
    Case(
        "DeliveryService.CreatePmtaNode",
        "POST",
        "/api/v2/pmta-nodes",
        {"name": "{id}", "ssh_host": "pmta.example.net", "ssh_host_key": NODE_HOST_KEY},
        ids="node",
    ),
    Case("DeliveryService.GetPmtaNode", "GET", "/api/v2/pmta-nodes/{id}", write=False, ids="node", path_field="name"),
    Case("DeliveryService.ListPmtaNodes", "GET", "/api/v2/pmta-nodes", write=False, ids="none"),
    Case(
        "DeliveryService.UpdatePmtaNode",
        "PATCH",
        "/api/v2/pmta-nodes/{id}",
        {"smtp_host": "elsewhere.example.net"},
        ids="node",
        path_field="pmta_node.name",
        query={"update_mask": "smtp_host"},
    ),
    Case("DeliveryService.DeletePmtaNode", "DELETE", "/api/v2/pmta-nodes/{id}", ids="node", path_field="name"),
    Case(
        "DeliveryService.RotateForwarderToken",
        "POST",
        "/api/v2/pmta-nodes/{id}:rotateForwarderToken",
        {},
        ids="node",
        path_field="name",
    ),
    Case(
        "DeliveryService.PlanPmtaConfig",
        "POST",
        "/api/v2/pmta-nodes:plan",
        {"names": ["{id}"]},
        write=False,
        ids="node",
    ),
    Case(
        "DeliveryService.DeployPmtaConfig",
        "POST",
        "/api/v2/pmta-nodes/{id}:deploy",
        {},
        ids="node",
        path_field="name",
    ),
    Case(
        "DeliveryService.ListPmtaDeployments",
        "GET",
        "/api/v2/pmta-nodes/{id}/deployments",
        write=False,
        ids="node",
        path_field="name",
    ),
    # Only the node's forwarder token opens it: a user's token, of any tenant or role, is refused alike.
    Case(
        "DeliveryService.PushAccounting",
        "POST",
        "/api/v2/pmta-nodes/{id}/accounting:push",
        {"type": "d", "vmta": "vmta-192-0-2-90", "rcpt": "a@example.org"},
        ids="node",
        path_field="name",
    ),
    Case(
        "DeliveryService.CreateBounceRoute",
        "POST",
        "/api/v2/tenants/{id}/bounce-routes",
        {"url": "https://hooks.example/bounces", "secret": "0123456789abcdef0123"},
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "DeliveryService.GetBounceRoute",
        "GET",
        "/api/v2/tenants/sos-expat/bounce-routes/{id}",
        write=False,
        ids="bounce-route",
        path_field="route_id",
        fixed={"tenant_id": "sos-expat"},
    ),
    Case(
        "DeliveryService.ListBounceRoutes",
        "GET",
        "/api/v2/tenants/{id}/bounce-routes",
        write=False,
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "DeliveryService.DeleteBounceRoute",
        "DELETE",
        "/api/v2/tenants/sos-expat/bounce-routes/{id}",
        ids="bounce-route",
        path_field="route_id",
        fixed={"tenant_id": "sos-expat"},
    ),
    Case(
        "NotifierService.SendAlert",
        "POST",
        "/api/v2/alerts",
        {"tenant_id": "{id}", "severity": "ALERT_SEVERITY_INFO", "text": "x"},
        ids="tenant",
    ),
    Case("NotifierService.GetAlert", "GET", "/api/v2/alerts/{id}", write=False, ids="alert", path_field="alert_id"),
    Case("NotifierService.ListAlerts", "GET", "/api/v2/alerts", write=False, ids="tenant", query={"tenant_id": "{id}"}),
    Case(
        "NotifierService.ReceiveAlertmanagerWebhook",
        "POST",
        "/api/v2/alertmanager",
        {"version": "4", "status": "firing", "alerts": []},
        ids="none",
        own=True,
    ),
    Case(
        "NotifierService.CreateRoute",
        "POST",
        "/api/v2/alert-routes",
        {"tenant_id": "{id}", "webhook_url": "https://hooks.example/x", "webhook_secret": "0123456789abcdef0123"},
        ids="tenant",
    ),
    Case(
        "NotifierService.GetRoute", "GET", "/api/v2/alert-routes/{id}", write=False, ids="route", path_field="route_id"
    ),
    Case(
        "NotifierService.ListRoutes",
        "GET",
        "/api/v2/alert-routes",
        write=False,
        ids="tenant",
        query={"tenant_id": "{id}"},
    ),
    Case("NotifierService.DeleteRoute", "DELETE", "/api/v2/alert-routes/{id}", ids="route", path_field="route_id"),
    Case(
        "NotifierService.GetTenantSettings",
        "GET",
        "/api/v2/alert-settings/{id}",
        write=False,
        ids="tenant",
        path_field="tenant_id",
    ),
    Case(
        "NotifierService.UpdateTenantSettings",
        "PATCH",
        "/api/v2/alert-settings/{id}",
        {"allowed_telegram_chat_ids": ["-1001"]},
        ids="tenant",
        path_field="settings.tenant_id",
        query={"update_mask": "allowed_telegram_chat_ids"},
    ),
    Case(
        "PlatformService.ListDeadLetters",
        "GET",
        "/api/v2/dead-letters",
        write=False,
        ids="none",
        query={"service": "reputation"},
    ),
    Case(
        "PlatformService.ReplayDeadLetter",
        "POST",
        "/api/v2/dead-letters/reputation/{id}:replay",
        {},
        ids="dead-letter",
        path_field="event_id",
        fixed={"service": "reputation"},
    ),
    Case("PlatformService.GetHealth", "GET", "/api/v2/health", write=False, ids="none", own=True),
    Case(
        "PlatformService.ListAuditEntries",
        "GET",
        "/api/v2/audit-entries",
        write=False,
        ids="tenant",
        query={"tenant_id": "{id}"},
    ),
]

# Where a REST body binds to one field of the request (`body: "tenant"`), the gRPC request nests it there.
BODY_FIELD = {b.name: b.body for b in BINDINGS if b.body not in ("", "*")}


@dataclass
class World:
    """sos-expat's resources (the other tenant's, seen from ulixai) and ids that exist nowhere."""

    ids: dict[str, tuple[str, str]]
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    admin = stack.token("--admin")
    sos = stack.token("--tenant", "sos-expat")

    def call(verb: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = httpx.request(
            verb, f"{stack.gateway}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert reply.status_code == 200, f"{verb} {path}: {reply.status_code} {reply.text}"
        return reply.json()

    call("POST", "/api/v2/ips", sos, {"address": SOS_IP, "tenant_id": "sos-expat"})
    call(
        "POST", "/api/v2/tenants/sos-expat/schedules", admin, {"schedule_id": "gentle", "steps": [{"daily_volume": 20}]}
    )
    alert = call(
        "POST", "/api/v2/alerts", sos, {"tenant_id": "sos-expat", "severity": "ALERT_SEVERITY_INFO", "text": "hello"}
    )
    call(
        "POST",
        "/api/v2/alert-routes",
        sos,
        {
            "route_id": "sos-route",
            "tenant_id": "sos-expat",
            "webhook_url": "https://hooks.example/sos",
            "webhook_secret": "0123456789abcdef0123",
        },
    )
    node = {"name": NODE, "ssh_host": "pmta.example.net", "ssh_host_key": NODE_HOST_KEY}
    call("POST", "/api/v2/pmta-nodes", admin, node)
    bounce_route = call(
        "POST",
        "/api/v2/tenants/sos-expat/bounce-routes",
        sos,
        {"url": "https://hooks.example/sos-bounces", "secret": "0123456789abcdef0123"},
    )
    campaign = _campaign_of_sos(stack, sos)
    return World(
        ids={
            "ip": (SOS_IP, NO_IP),
            "tenant": ("sos-expat", NO_TENANT),
            "new-tenant": ("sos-expat", NO_TENANT),
            "schedule": ("gentle", "nosuch-schedule"),
            "alert": (alert["alert_id"], str(uuid.uuid4())),
            "route": ("sos-route", "nosuch-route"),
            "campaign": (campaign, str(uuid.uuid4())),
            "node": (NODE, "nosuch-node"),
            "bounce-route": (bounce_route["route_id"], str(uuid.uuid4())),
            "none": ("", ""),
            "dead-letter": (str(uuid.uuid4()), str(uuid.uuid4())),
        },
        tokens={
            "ulixai": stack.token("--tenant", "ulixai"),
            "viewer": stack.token("--tenant", "sos-expat", "--role", "viewer"),
        },
    )


def _campaign_of_sos(stack: Stack, token: str) -> str:
    """A campaign of sos-expat: created if this stack can, else the first listed (its id is what matters)."""
    reply = httpx.post(
        f"{stack.gateway}/api/v2/campaigns",
        json={"tenant": "sos-expat", "template_id": "cold_v1", "contacts": [{"email": "a@example.org"}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if reply.status_code == 200:
        return str(reply.json()["campaign_id"])
    listed = httpx.get(
        f"{stack.gateway}/api/v2/campaigns", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    campaigns = listed.get("campaigns") or []
    return str(campaigns[0]["campaign_id"]) if campaigns else str(uuid.uuid4())


def _fill(value: Any, resource: str) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", resource)
    if isinstance(value, dict):
        return {k: _fill(v, resource) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, resource) for v in value]
    return value


@dataclass(frozen=True)
class Answer:
    code: int  # HTTP status (REST) or the gRPC code's number
    text: str  # the body or message, the resource's own id taken out


def rest(stack: Stack, case: Case, token: str, resource: str) -> Answer:
    reply = httpx.request(
        case.verb,
        f"{stack.gateway}{_fill(case.path, resource)}",
        params=_fill(case.query, resource),
        json=_fill(case.body, resource) if case.body is not None else None,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return Answer(reply.status_code, _anonymous(reply.text, resource))


def grpc_call(stack: Stack, case: Case, token: str, resource: str) -> Answer:
    method = case.rpc.split(".")[1]
    full = next(b for b in BINDINGS if b.name == case.rpc).method
    request_cls = symbol_database.Default().GetSymbol(full.input_type.full_name)
    response_cls = symbol_database.Default().GetSymbol(full.output_type.full_name)
    fields: dict[str, Any] = dict(case.fixed)
    body = _fill(case.body, resource) if case.body is not None else {}
    if full.input_type.full_name == "google.api.HttpBody":  # the raw JSON body, as Envoy passes it on
        data = base64.b64encode(json.dumps(body).encode()).decode()
        body = {"content_type": "application/json", "data": data}
        fields.update(body)
    elif case.rpc in BODY_FIELD and _is_http_body(full.input_type.fields_by_name[BODY_FIELD[case.rpc]]):
        data = base64.b64encode(json.dumps(body).encode()).decode()
        fields[BODY_FIELD[case.rpc]] = {"content_type": "application/json", "data": data}
    elif case.rpc in BODY_FIELD:
        fields[BODY_FIELD[case.rpc]] = body
    else:
        fields.update(body)
    for key, value in _fill(case.query, resource).items():
        # A FieldMask's JSON form is lowerCamelCase; REST takes the field's own name.
        fields[key] = _camel(value) if key == "update_mask" else value
    if case.path_field:
        head, _, tail = case.path_field.partition(".")
        if tail:
            fields.setdefault(head, {})[tail] = resource
        else:
            fields[head] = resource
    request = json_format.ParseDict(fields, request_cls())
    channel = grpc.insecure_channel(stack.grpc_target)
    try:
        rpc = channel.unary_unary(
            f"/{full.containing_service.full_name}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        reply = rpc(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)
        return Answer(0, _anonymous(json_format.MessageToJson(reply), resource))
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)
        text = status.message if status is not None else str(error.details())
        return Answer(error.code().value[0], _anonymous(text, resource))
    finally:
        channel.close()


def _is_http_body(field: Any) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.api.HttpBody"


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _anonymous(text: str, resource: str) -> str:
    if resource:
        text = text.replace(json.dumps(resource)[1:-1], "<id>").replace(resource, "<id>")
    return text


def _cases() -> Iterator[Any]:
    for case in CASES:
        yield pytest.param(case, id=case.rpc)


def test_every_rpc_has_a_row() -> None:
    assert sorted(b.name for b in BINDINGS) == sorted(c.rpc for c in CASES)


@pytest.mark.parametrize("case", _cases())
def test_another_tenant_sees_nothing_and_cannot_tell_what_exists(stack: Stack, world: World, case: Case) -> None:
    existing, missing = world.ids[case.ids]
    token = world.tokens["ulixai"]
    for transport in (rest, grpc_call):
        on_existing = transport(stack, case, token, existing)
        on_missing = transport(stack, case, token, missing)
        name = f"{case.rpc} over {transport.__name__}"
        if case.own:
            assert "sos-expat" not in on_existing.text and SOS_IP not in on_existing.text, name
            continue
        refused = {403, 404} if transport is rest else {grpc.StatusCode.PERMISSION_DENIED.value[0], 5}
        assert on_existing.code in refused, f"{name}: {on_existing}"
        assert on_existing == on_missing, f"{name}: existing {on_existing} / missing {on_missing}"


@pytest.mark.parametrize("case", [c for c in CASES if c.write and not c.own], ids=lambda c: c.rpc)
def test_a_viewer_may_not_write(stack: Stack, world: World, case: Case) -> None:
    existing, _missing = world.ids[case.ids]
    token = world.tokens["viewer"]
    assert rest(stack, case, token, existing).code == 403, case.rpc
    assert grpc_call(stack, case, token, existing).code == grpc.StatusCode.PERMISSION_DENIED.value[0], case.rpc
