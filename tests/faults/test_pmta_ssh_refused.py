"""Fault: a PowerMTA node down (its SSH refuses connections) while the IP pool changes under it."""

from __future__ import annotations

import pytest

from tests.faults.world import LOAD_TENANT, FaultWorld, describe
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e


def _deployments(world: FaultWorld, node: str) -> list[dict]:
    return world.rest("GET", f"/api/v2/pmta-nodes/{node}/deployments?page_size=50").json().get("deployments", [])


def _register(world: FaultWorld, address: str, node: str) -> None:
    made = world.rest(
        "POST",
        "/api/v2/ips",
        "acme",
        json={
            "address": address,
            "tenant_id": LOAD_TENANT,
            "pmta_node": node,
            "helo_hostname": f"mta{address.split('.')[-1]}.example.net",
        },
    )
    assert made.status_code == 200, made.text


def test_pmta_node_refusing_ssh_during_a_deploy_lets_the_other_deploy_and_converges_once_reachable(
    fault_world: FaultWorld,
) -> None:
    """Node B's SSH is down while an IP is added on each node and one of node B's IPs is paused: node A deploys its
    new IP at once; node B's deploy and queue pause are recorded UNREACHABLE (and reported), then retried by the
    worker, so once node B answers again it gets, with nobody asking, the configuration the IP pool implies (its
    new IP, the paused IP out of its pool) and the paused IP's queues paused. Afterwards the system is
    consistent."""
    world = fault_world
    node_a, node_b = world.pmta_nodes
    _register(world, "203.0.113.10", node_a.name)
    _register(world, "203.0.113.20", node_b.name)
    wait_until(lambda: "vmta-203-0-113-10" in node_a.active_config(), 30, "node A deployed")
    wait_until(lambda: "vmta-203-0-113-20" in node_b.active_config(), 30, "node B deployed")

    node_b.stop()
    try:
        _register(world, "203.0.113.11", node_a.name)
        _register(world, "203.0.113.21", node_b.name)
        paused = world.rest("POST", "/api/v2/ips/203.0.113.20:pause", "acme", json={"reason": "pmta fault"})
        assert paused.status_code == 200, paused.text
        wait_until(lambda: "vmta-203-0-113-11" in node_a.active_config(), 30, "node A deployed while B is down")
        # Every job the changes made has met node B down: the new IP's deploy, and the pause's queue command and
        # deploy (trigger "standby").
        wait_until(
            lambda: (
                {d["trigger"] for d in _deployments(world, node_b.name) if d["outcome"] == "DEPLOY_OUTCOME_UNREACHABLE"}
                >= {"ip-event", "standby"}
            ),
            30,
            "node B's deploys recorded unreachable",
        )
        assert "vmta-203-0-113-21" not in node_b.active_config()
    finally:
        node_b.start_again()

    def converged() -> bool:
        config = node_b.active_config()
        return (
            "virtual-mta vmta-203-0-113-21" in config
            and "*/vmta-203-0-113-20" in node_b.queues()["paused"]
            and "virtual-mta vmta-203-0-113-20\n" not in config.split("virtual-mta-pool", 1)[-1]
        )

    wait_until(converged, 60, "node B converged once reachable again")
    print([(d["outcome"], d["trigger"], d["time"]) for d in _deployments(world, node_b.name)])
    plan = world.rest("POST", "/api/v2/pmta-nodes:plan", json={"names": [node_a.name, node_b.name]}).json()
    assert [p["changed"] for p in plan["plans"]] == [False, False], "both nodes run what the IP pool implies"
    node = world.rest("GET", f"/api/v2/pmta-nodes/{node_b.name}").json()
    assert node["last_deployment"]["consecutive_failures"] == 0
    found = world.consistent()
    assert not found, describe(found)
