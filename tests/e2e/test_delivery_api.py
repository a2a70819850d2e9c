"""The campaign-gateway's DeliveryService through the real Envoy over REST, each service its own process on
PostgreSQL and Redis, reaching a PowerMTA node behind a real sshd: register a node, `:plan` its configuration
(read from the node over SSH, nothing deployed), push accounting as the node's forwarder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.servers import PostgresServer, RedisServer, Stack, production_stack
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.ssh_fixtures import pmta_nodes, pmta_servers, ssh_client_key

pytestmark = pytest.mark.e2e

__all__ = ["pmta_nodes", "pmta_servers", "ssh_client_key"]


@pytest.fixture(scope="module")
def delivery_stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    redis_server: RedisServer,
    ssh_client_key: KeyPair,
) -> Iterator[Stack]:
    extra = {"EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE": str(ssh_client_key.private_path)}
    with production_stack(tmp_path_factory.mktemp("delivery-stack"), postgres, redis_server, extra=extra) as stack:
        yield stack


def rest(stack: Stack, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{stack.gateway}{path}", headers=headers, timeout=30, **kwargs)


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_register_a_node_and_plan_its_configuration_over_rest(
    delivery_stack: Stack, pmta_nodes: list[PmtaNodeServer], tmp_path: Path
) -> None:
    stack, node = delivery_stack, pmta_nodes[0]
    admin, operator = stack.token("--admin"), stack.token("--tenant", "sos-expat")
    body = node.registration(hostname="pmta-a.example.net")
    del body["smtp_host"], body["smtp_port"]  # optional: registered without them
    # Admin only; a tenant's operator is refused.
    assert rest(stack, "POST", "/api/v2/pmta-nodes", operator, json=body).status_code == 403
    created = ok(rest(stack, "POST", "/api/v2/pmta-nodes", admin, json=body))
    assert created["name"] == node.name and created["ssh_port"] == node.port and created["forwarder_token"]
    assert created["smtp_host"] == "127.0.0.1" and created["smtp_port"] == 25
    fetched = ok(rest(stack, "GET", f"/api/v2/pmta-nodes/{node.name}", admin))
    assert fetched["forwarder_token"] == "" and fetched["accounting_push_only"] is False

    bad = rest(stack, "POST", "/api/v2/pmta-nodes", admin, json={**body, "name": "x_y", "ssh_port": 70000})
    assert bad.status_code == 400
    fields = [v["field"] for d in bad.json()["details"] if "field_violations" in d for v in d["field_violations"]]
    assert "pmta_node.name" in fields and "pmta_node.ssh_port" in fields

    ok(
        rest(
            stack,
            "POST",
            "/api/v2/ips",
            admin,
            json={
                "address": "192.0.2.10",
                "tenant_id": "sos-expat",
                "pmta_node": node.name,
                "helo_hostname": "mta10.example.net",
            },
        )
    )
    plan = ok(rest(stack, "POST", "/api/v2/pmta-nodes:plan", admin, json={"names": [node.name]}))["plans"][0]
    assert plan["node"] == node.name and plan["changed"] is True and plan["compared_with"] == "node"
    assert plan["ip_count"] == 1 and plan["error"] == ""
    assert "+<virtual-mta vmta-192-0-2-10>" in plan["diff"]
    assert "+    smtp-source-host 192.0.2.10 mta10.example.net" in plan["diff"]
    assert "-# PowerMTA configuration before email-engine's first deploy" in plan["diff"]
    # Nothing was deployed: the node still runs its own file, and no reload happened.
    assert node.config_path.read_text().startswith("# PowerMTA configuration before")
    assert not [entry for entry in node.journal() if entry["command"] == "reload"]

    # The node's forwarder pushes NDJSON with its token (the body MailWizz's /dswh/pmta takes).
    record = (
        '{"type":"d","timeLogged":"2026-01-05 09:00:30+0000","timeQueued":"2026-01-05 09:00:00+0000",'
        '"rcpt":"a@gmail.com","vmta":"vmta-192-0-2-10","header_Message-Id":"<m1@x>"}\n'
        "garbage\n"
    )
    path = f"/api/v2/pmta-nodes/{node.name}/accounting:push"
    headers = {"Content-Type": "application/x-ndjson", "x-emailengine-forwarder-token": created["forwarder_token"]}
    pushed = ok(rest(stack, "POST", path, admin, content=record.encode(), headers=headers))
    assert pushed["records"] == 1 and pushed["counted"] == 1
    assert [(p["kind"], p["line"]) for p in pushed["problems"]] == [("GARBAGE", "2")]
    wrong = rest(
        stack, "POST", path, admin, content=record.encode(), headers={**headers, "x-emailengine-forwarder-token": "no"}
    )
    assert wrong.status_code == 403
