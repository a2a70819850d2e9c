"""The platform through the real Envoy, as a user calls it: REST and gRPC on one port, auth, errors,
audit, metrics, and a service stopping and coming back."""

from __future__ import annotations

import signal
import subprocess
import time

import grpc
import httpx
import pytest
from grpc_status import rpc_status

from emailengine.campaign.v1 import campaign_service_pb2 as campaign_pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as campaign_grpc
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as ippool_grpc
from emailengine.notifier.v1 import notifier_service_pb2 as notifier_pb
from emailengine.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from emailengine.platform.v1 import platform_service_pb2 as platform_pb
from emailengine.platform.v1 import platform_service_pb2_grpc as platform_grpc
from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as reputation_grpc
from libs.auth import Role, ensure_local_keys, mint_token
from tests.harness.servers import Stack, port_of, wait_until

pytestmark = pytest.mark.e2e


def rest(stack: Stack, method: str, path: str, token: str | None = None, **kwargs: object) -> httpx.Response:
    headers: dict[str, str] = dict(kwargs.pop("headers", {}))  # type: ignore[arg-type]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{stack.gateway}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def meta(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def channel(stack: Stack) -> grpc.Channel:
    return grpc.insecure_channel(stack.grpc_target)


def test_health_is_public_and_lists_every_service(stack: Stack, channel: grpc.Channel) -> None:
    reply = rest(stack, "GET", "/api/v2/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "SERVING"
    assert {s["service"]: s["status"] for s in body["services"]} == {
        "ip-pool": "SERVING",
        "reputation": "SERVING",
        "campaign-gateway": "SERVING",
        "notifier": "SERVING",
    }
    grpc_reply = platform_grpc.PlatformServiceStub(channel).GetHealth(platform_pb.GetHealthRequest(), timeout=5)
    assert grpc_reply.status == "SERVING"


def test_one_read_per_service_answers_the_same_over_rest_and_grpc(stack: Stack, channel: grpc.Channel) -> None:
    token = stack.token("--tenant", "sos-expat")
    created = rest(
        stack,
        "POST",
        "/api/v2/ips",
        token,
        json={"address": "192.0.2.10", "purpose": "marketing", "tenant_id": "sos-expat"},
    )
    assert created.status_code == 200, created.text
    assert created.json()["state"] == "IP_STATE_WARMING"

    # ip-pool
    over_rest = rest(stack, "GET", "/api/v2/ips/192.0.2.10", token).json()
    over_grpc = ippool_grpc.IpPoolServiceStub(channel).GetIp(
        ippool_pb.GetIpRequest(address="192.0.2.10"), metadata=meta(token), timeout=5
    )
    assert over_rest["address"] == over_grpc.address == "192.0.2.10"
    assert over_rest["quota"]["daily"] == over_grpc.quota.daily
    # reputation learnt the IP from ip-pool's event
    wait_until(lambda: rest(stack, "GET", "/api/v2/reputation/ips/192.0.2.10", token).status_code == 200, 10, "event")
    rep = reputation_grpc.ReputationServiceStub(channel).GetIpReputation(
        reputation_pb.GetIpReputationRequest(address="192.0.2.10"), metadata=meta(token), timeout=5
    )
    assert rep.tenant_id == "sos-expat"
    zones_rest = rest(stack, "GET", "/api/v2/reputation/zones", token).json()["zones"]
    zones_grpc = reputation_grpc.ReputationServiceStub(channel).ListZones(
        reputation_pb.ListZonesRequest(), metadata=meta(token), timeout=5
    )
    assert [z["zone"] for z in zones_rest] == [z.zone for z in zones_grpc.zones]
    # campaign-gateway: this stack binds no MailWizz, so a campaign is refused, saying why (tests/e2e/
    # test_campaign_api.py runs one with a MailWizz)
    refused = rest(
        stack,
        "POST",
        "/api/v2/campaigns",
        token,
        json={"tenant": "sos-expat", "contacts": [{"email": "a@example.com"}], "template_id": "cold_v1"},
    )
    assert refused.status_code == 400 and "no MailWizz binding" in refused.json()["message"], refused.text
    listed = campaign_grpc.CampaignServiceStub(channel).ListCampaigns(
        campaign_pb.ListCampaignsRequest(tenant="sos-expat"), metadata=meta(token), timeout=5
    )
    listed_rest = rest(stack, "GET", "/api/v2/campaigns?tenant=sos-expat", token).json()
    assert [c["campaign_id"] for c in listed_rest.get("campaigns", [])] == [c.campaign_id for c in listed.campaigns]
    # notifier
    alerts_rest = rest(stack, "GET", "/api/v2/alerts", token)
    assert alerts_rest.status_code == 200
    alerts_grpc = notifier_grpc.NotifierServiceStub(channel).ListAlerts(
        notifier_pb.ListAlertsRequest(), metadata=meta(token), timeout=5
    )
    assert len(alerts_rest.json()["alerts"]) == len(alerts_grpc.alerts)


def test_auth_and_error_matrix(stack: Stack, channel: grpc.Channel, tmp_path_factory: pytest.TempPathFactory) -> None:
    operator = stack.token("--tenant", "sos-expat")
    viewer = stack.token("--tenant", "sos-expat", "--role", "viewer")
    ulixai = stack.token("--tenant", "ulixai")
    rest(stack, "POST", "/api/v2/ips", operator, json={"address": "192.0.2.20", "tenant_id": "sos-expat"})

    # No token → 401, REST and gRPC.
    assert rest(stack, "GET", "/api/v2/ips").status_code == 401
    with pytest.raises(grpc.RpcError) as caught:
        ippool_grpc.IpPoolServiceStub(channel).ListIps(ippool_pb.ListIpsRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A token signed by another key, and an expired one → 401.
    other = tmp_path_factory.mktemp("otherkey")
    ensure_local_keys(other / "k.pem", other / "jwks.json")
    forged = mint_token(other / "k.pem", issuer="email-engine", audience="email-engine", subject="x", role=Role.ADMIN)
    assert rest(stack, "GET", "/api/v2/ips", forged).status_code == 401
    expired = stack.token("--tenant", "sos-expat", "--ttl", "-120")
    reply = rest(stack, "GET", "/api/v2/ips", expired)
    assert reply.status_code == 401
    assert reply.json()["message"] == "Jwt is expired"
    # Another tenant's resource → 404, as if missing; a list naming another tenant → 403; a viewer's write → 403.
    assert rest(stack, "GET", "/api/v2/ips/192.0.2.20", ulixai).status_code == 404
    assert rest(stack, "GET", "/api/v2/ips?tenant_id=sos-expat", ulixai).status_code == 403
    assert rest(stack, "GET", "/api/v2/ips/192.0.2.20", viewer).status_code == 200
    denied = rest(stack, "POST", "/api/v2/ips/192.0.2.20:pause", viewer, json={})
    assert denied.status_code == 403
    assert denied.json()["code"] == 7
    # Unknown path → 404, malformed JSON → 400 with a JSON body, unknown query parameter → 400.
    missing = rest(stack, "GET", "/api/v2/nope", operator)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    malformed = rest(
        stack, "POST", "/api/v2/ips", operator, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/json"
    assert malformed.json()["code"] == 3
    assert rest(stack, "GET", "/api/v2/ips?bogus=1", operator).status_code == 400
    # Bad input names the field, over REST and gRPC.
    bad = rest(stack, "POST", "/api/v2/ips", operator, json={"address": "300.1.2.3", "tenant_id": "sos-expat"})
    assert bad.status_code == 400
    violations = next(d for d in bad.json()["details"] if d["@type"].endswith("BadRequest"))["field_violations"]
    assert violations[0]["field"] == "address"
    with pytest.raises(grpc.RpcError) as caught:
        ippool_grpc.IpPoolServiceStub(channel).CreateIp(
            ippool_pb.CreateIpRequest(address="192.0.2.30", tenant_id="nobody-here"), metadata=meta(operator), timeout=5
        )
    assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED)
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details


def test_every_write_is_in_the_audit_log_with_its_caller(stack: Stack) -> None:
    operator = stack.token("--tenant", "sos-expat", "--subject", "alice")
    admin = stack.token("--admin")
    rest(stack, "POST", "/api/v2/ips", operator, json={"address": "192.0.2.40", "tenant_id": "sos-expat"})
    rest(stack, "POST", "/api/v2/ips/192.0.2.40:pause", operator, json={"reason": "test"})
    rest(
        stack,
        "POST",
        "/api/v2/alerts",
        operator,
        json={"tenant_id": "sos-expat", "severity": "ALERT_SEVERITY_INFO", "text": "hello"},
    )
    assert rest(stack, "GET", "/api/v2/audit-entries", operator).status_code == 403
    entries = rest(stack, "GET", "/api/v2/audit-entries?tenant_id=sos-expat&page_size=100", admin).json()[
        "audit_entries"
    ]
    mine = [
        (e["service"], e["method"].rsplit("/", 1)[1], e["resource"], e["outcome"])
        for e in entries
        if e["actor"] == "alice"
    ]
    assert ("ip-pool", "CreateIp", "ips/192.0.2.40", "OK") in mine
    assert ("ip-pool", "PauseIp", "ips/192.0.2.40", "OK") in mine  # named as the REST path names it
    assert any(m[0] == "notifier" and m[1] == "SendAlert" for m in mine)
    assert all("Bearer" not in str(e) for e in entries)


def test_metrics_count_calls_through_envoy(stack: Stack) -> None:
    token = stack.token("--tenant", "sos-expat")

    def handled(service: str, method: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{port_of(stack.env, service, 'METRICS')}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    calls = {
        "ip-pool": ("ListIps", "/api/v2/ips"),
        "reputation": ("ListZones", "/api/v2/reputation/zones"),
        "campaign-gateway": ("ListCampaigns", "/api/v2/campaigns"),
        "notifier": ("ListAlerts", "/api/v2/alerts"),
    }
    before = {s: handled(s, m) for s, (m, _) in calls.items()}
    for _service, (_method, path) in calls.items():
        assert rest(stack, "GET", path, token).status_code == 200
    for service, (method, _) in calls.items():
        assert handled(service, method) == before[service] + 1
    # Each service's own metrics beside the standard ones: events moved and applied.
    ippool = httpx.get(f"http://127.0.0.1:{port_of(stack.env, 'ip-pool', 'METRICS')}/metrics", timeout=5).text
    reputation = httpx.get(f"http://127.0.0.1:{port_of(stack.env, 'reputation', 'METRICS')}/metrics", timeout=5).text
    assert "emailengine_events_relayed_total" in ippool
    # The gauges read from each service's PostgreSQL database and Redis at scrape time, read without failure.
    for text in (ippool, reputation):
        assert "emailengine_outbox_pending_events " in text
        assert "emailengine_metrics_read_failures_total{" not in text
    assert "emailengine_consumer_pending_events " in reputation
    assert "# TYPE emailengine_ippool_ips gauge" in ippool
    assert 'emailengine_events_applied_total{event_type="emailengine.ippool.v1.IpRegistered"}' in reputation


def test_a_stopped_service_gives_503_and_comes_back(stack: Stack) -> None:
    token = stack.token("--tenant", "sos-expat")
    proc = stack.procs["notifier"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    wait_until(lambda: rest(stack, "GET", "/api/v2/alerts", token).status_code == 503, 10, "503 while down")
    down = rest(stack, "GET", "/api/v2/alerts", token)
    assert down.headers["content-type"] == "application/json"
    assert down.json()["code"] == 14
    health = rest(stack, "GET", "/api/v2/health").json()
    assert {s["service"]: s["status"] for s in health["services"]}["notifier"] != "SERVING"
    assert rest(stack, "GET", "/api/v2/ips", token).status_code == 200  # the others carry on
    stack.start_service("notifier")
    wait_until(lambda: rest(stack, "GET", "/api/v2/alerts", token).status_code == 200, 15, "recovery")


def test_sigterm_reports_not_serving_and_finishes_in_flight_calls(stack: Stack) -> None:
    """A call in flight when SIGTERM arrives completes; health turns NOT_SERVING before the exit.

    The call is a campaign upload whose stream the client keeps open across the SIGTERM: it is still being
    received when the service starts stopping, and is answered by the use case in the end (this stack binds no
    MailWizz, so the answer is the refusal saying so, not UNAVAILABLE or CANCELLED)."""
    import threading

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"127.0.0.1:{port_of(stack.env, 'campaign-gateway')}"
    token = stack.token("--tenant", "sos-expat")
    contacts = [campaign_pb.Contact(email=f"user{n}@example.com") for n in range(20000)]
    opened, release = threading.Event(), threading.Event()

    def upload() -> object:
        yield campaign_pb.UploadCampaignRequest(
            header=campaign_pb.CreateCampaignRequest(tenant="sos-expat", template_id="t")
        )
        opened.set()
        release.wait(20)
        yield campaign_pb.UploadCampaignRequest(contacts=campaign_pb.ContactChunk(contacts=contacts))

    stub = campaign_grpc.CampaignServiceStub(grpc.insecure_channel(target))
    future = stub.UploadCampaign.future(upload(), metadata=meta(token), timeout=60)
    assert opened.wait(10)
    time.sleep(0.3)
    proc = stack.procs["campaign-gateway"]
    proc.send_signal(signal.SIGTERM)
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
    wait_until(
        lambda: (
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
            == health_pb2.HealthCheckResponse.NOT_SERVING
        ),
        5,
        "NOT_SERVING",
    )
    release.set()
    error = future.exception()
    assert error is not None and error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert "no MailWizz binding" in error.details()
    assert proc.wait(timeout=20) == 0
    stack.start_service("campaign-gateway")


def gateway_config_path(stack: Stack) -> str:
    """The Envoy config the stack's settings render (written beside its data)."""
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from libs.cli import write_gateway_config; print(write_gateway_config())"],
        capture_output=True,
        text=True,
        check=True,
        env=stack.env,
    ).stdout.strip()


def test_envoy_config_validates(stack: Stack) -> None:
    import sys
    from pathlib import Path

    config = gateway_config_path(stack)
    assert config.startswith(str(stack.data_dir))
    envoy = Path(sys.executable).parent / "envoy"
    result = subprocess.run([str(envoy), "--mode", "validate", "-c", config], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_a_service_token_works_between_services_and_never_through_the_gateway(stack: Stack) -> None:
    """The services' own identity: accepted on a service port, for the tenant it names only; refused by Envoy."""
    from libs.config import Settings
    from libs.service_client import ServiceClients

    operator = stack.token("--tenant", "sos-expat")
    rest(stack, "POST", "/api/v2/ips", operator, json={"address": "192.0.2.61", "tenant_id": "sos-expat"})
    clients = ServiceClients(Settings(_env_file=None, data_dir=stack.data_dir, **_ports(stack)), "campaign-gateway")
    request = ippool_pb.GetIpRequest(address="192.0.2.61")
    ip = clients.call(
        "ip-pool", ippool_grpc.IpPoolServiceStub, "GetIp", request, tenant_id="sos-expat", idempotent=True
    )
    assert ip.tenant_id == "sos-expat"
    with pytest.raises(grpc.RpcError) as foreign:
        clients.call("ip-pool", ippool_grpc.IpPoolServiceStub, "GetIp", request, tenant_id="ulixai", idempotent=True)
    assert foreign.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    service_token = clients._tokens.token("")
    through_envoy = rest(stack, "GET", "/api/v2/ips/192.0.2.61", service_token)
    assert through_envoy.status_code == 401


def _ports(stack: Stack) -> dict[str, int]:
    ports: dict[str, int] = {}
    for name, stem in (("ip-pool", "ippool"), ("reputation", "reputation"), ("notifier", "notifier")):
        ports[f"{stem}_grpc_port"] = port_of(stack.env, name)
    ports["campaign_gateway_grpc_port"] = port_of(stack.env, "campaign-gateway")
    return ports


def test_envoy_starts_with_no_downstream_connection_limit_and_a_64_mib_body_buffer_no_more(stack: Stack) -> None:
    """Envoy caps connections and sheds load (overload manager), and a body larger than the services accept is
    refused with a clear JSON answer (not buffered up to 64 MiB first); the gateway keeps serving."""
    from pathlib import Path

    import yaml

    config_path = gateway_config_path(stack)
    config = yaml.safe_load(Path(config_path).read_text())
    monitors = {m["name"] for m in config["overload_manager"]["resource_monitors"]}
    assert "envoy.resource_monitors.global_downstream_max_connections" in monitors
    assert "envoy.resource_monitors.fixed_heap" in monitors
    limit = 32 << 20
    operator = stack.token("--tenant", "sos-expat")
    huge = (
        b'{"tenant":"sos-expat","template_id":"t","contacts":[' + b'{"email":"a@example.org"},' * (limit // 13) + b"]}"
    )
    reply = httpx.post(
        f"{stack.gateway}/api/v2/campaigns",
        content=huge,
        headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"},
        timeout=60,
    )
    # The transcoder streams a `body: "*"` call to the service, whose own limit (the same) refuses it: 429
    # RESOURCE_EXHAUSTED naming the sizes; a buffered call over the limit gets Envoy's own 413. Never a 5xx.
    assert reply.status_code in (413, 429), reply.text[:500]
    assert isinstance(reply.json()["code"], int) and "larger" in reply.text + "Payload Too Large"
    assert rest(stack, "GET", "/api/v2/health").status_code == 200


def test_dead_letters_are_listed_and_replayed_by_an_admin_over_rest(stack: Stack) -> None:
    """An event reputation could not apply, seen from the platform's API and applied again on demand."""
    import uuid

    from google.protobuf import any_pb2

    from emailengine.ippool.v1 import events_pb2 as ippool_events
    from emailengine.platform.v1 import event_pb2
    from libs.config import Settings
    from libs.db import connect
    from libs.events import EventConsumer

    payload = any_pb2.Any()
    payload.Pack(ippool_events.IpRegistered(address="192.0.2.72", tenant_id="sos-expat"))
    event_id = str(uuid.uuid4())
    raw = event_pb2.EventEnvelope(event_id=event_id, source="ip-pool", tenant_id="sos-expat", payload=payload)
    db = connect(Settings(_env_file=None, database_url=stack.env["DATABASE_URL"]), "reputation")
    try:
        EventConsumer(group="reputation", db=db).dead_letter(raw.SerializeToString(), RuntimeError("boom"), 5)
    finally:
        db.dispose()
    admin, operator = stack.token("--admin"), stack.token("--tenant", "sos-expat")
    assert rest(stack, "GET", "/api/v2/dead-letters", operator).status_code == 403
    listed = rest(stack, "GET", "/api/v2/dead-letters?service=reputation", admin).json()["dead_letters"]
    assert [(d["event_id"], d["service"], d["attempts"]) for d in listed] == [(event_id, "reputation", 5)]
    replay = rest(stack, "POST", f"/api/v2/dead-letters/reputation/{event_id}:replay", admin, json={})
    assert replay.status_code == 200 and replay.json()["replayed_at"]
    assert rest(stack, "GET", "/api/v2/reputation/ips/192.0.2.72", operator).status_code == 200  # now watched
    assert rest(stack, "GET", "/api/v2/dead-letters", admin).json()["dead_letters"] == []
    missing = rest(stack, "POST", f"/api/v2/dead-letters/notifier/{uuid.uuid4()}:replay", admin, json={})
    assert missing.status_code == 404
