"""Acceptance 1 and 4 (nodes): two PowerMTA nodes behind real OpenSSH servers with the strict stand-in `pmta`,
driven through the running campaign-gateway and ip-pool (real gRPC, the in-process event bus)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from campaign_gateway import jobs
from emailengine.campaign.v1 import delivery_events_pb2 as events
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.delivery_fixtures import Delivery, running_delivery, wait_for

pytestmark = pytest.mark.integration


def reloads(node: PmtaNodeServer) -> list[dict]:
    return [entry for entry in node.journal() if entry["command"] == "reload"]


@pytest.fixture
def delivery(tmp_path: Path, pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> Iterator[Delivery]:
    with running_delivery(tmp_path, pmta_nodes, ssh_client_key) as running:
        for node in pmta_nodes:
            running.register_node(node)
        yield running


def deploy_everything(delivery: Delivery) -> None:
    for node in delivery.nodes:
        jobs.deploy_node(delivery.app, node.name, "api")


def test_a_quota_change_redeploys_only_the_node_holding_the_ip(delivery: Delivery) -> None:
    node_a, node_b = delivery.nodes
    delivery.register_ip("192.0.2.10", node_a.name)
    delivery.register_ip("198.51.100.20", node_b.name)
    # Registering an IP changes its quota (0 -> 50): each node is redeployed once, by its own event.
    wait_for(lambda: reloads(node_a) and reloads(node_b), "both nodes deployed after their IPs were registered")
    wait_for(lambda: "vmta-198-51-100-20" in node_b.active_config(), "node B runs its IP's VMTA")
    before_a, before_b = len(reloads(node_a)), len(reloads(node_b))
    assert "vmta-192-0-2-10" in node_a.active_config() and "vmta-198-51-100-20" not in node_a.active_config()

    # A new IP on node A: its quota changes, node A is redeployed, node B is left alone.
    delivery.register_ip("192.0.2.11", node_a.name)
    wait_for(lambda: len(reloads(node_a)) == before_a + 1, "node A reloaded")
    assert "smtp-source-host 192.0.2.11 mta11.example.net" in node_a.active_config()
    assert "virtual-mta vmta-192-0-2-11" in node_a.active_config()
    # Node B's deploy job (if any ran) found its file unchanged: no write, no reload.
    jobs.deploy_node(delivery.app, node_b.name, "hourly")
    assert len(reloads(node_b)) == before_b
    history = delivery.call("ListPmtaDeployments", pb.ListPmtaDeploymentsRequest(name=node_b.name)).deployments
    assert history[0].outcome == pb.DEPLOY_OUTCOME_UNCHANGED
    node = delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node_a.name))
    assert node.last_deployment.outcome in (pb.DEPLOY_OUTCOME_APPLIED, pb.DEPLOY_OUTCOME_UNCHANGED)
    assert (
        node.deployed_config_sha256
        == delivery.call("PlanPmtaConfig", pb.PlanPmtaConfigRequest(names=[node_a.name])).plans[0].rendered_sha256
    )


def test_a_failing_reload_restores_the_previous_file_and_alerts(delivery: Delivery) -> None:
    node_a, _node_b = delivery.nodes
    delivery.register_ip("192.0.2.10", node_a.name)
    wait_for(lambda: "vmta-192-0-2-10" in node_a.active_config(), "node A deployed")
    good = node_a.config_path.read_text()

    node_a.fail_next_reload("argument missing")
    delivery.ippool.call("PauseIp", ippool_pb.PauseIpRequest(address="192.0.2.10", reason="test"))
    failed = wait_for(
        lambda: delivery.events_of(events.PmtaDeployFailed), "a PmtaDeployFailed event for the refused reload"
    )
    assert failed[0].node == node_a.name and failed[0].outcome == "ROLLED_BACK"
    assert "Error in line 1" in failed[0].detail and failed[0].consecutive_failures == 1
    # The previous file is back on disk and in force.
    assert node_a.config_path.read_text() == good
    assert node_a.active_config() == good
    last = delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node_a.name)).last_deployment
    assert last.outcome == pb.DEPLOY_OUTCOME_ROLLED_BACK

    # The next deploy takes the new file (the IP's VMTA leaves its pool) and resets the failure count.
    deployment = jobs.deploy_node(delivery.app, node_a.name, "hourly")
    assert deployment is not None and deployment.outcome.value == "APPLIED"
    assert "virtual-mta-pool" not in node_a.active_config()
    assert (
        delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node_a.name)).last_deployment.consecutive_failures == 0
    )


def test_standby_pauses_the_ip_queues_at_once_and_resume_restarts_them(delivery: Delivery) -> None:
    node_a, node_b = delivery.nodes
    delivery.register_ip("192.0.2.10", node_a.name)
    delivery.register_ip("192.0.2.12", node_a.name)
    wait_for(lambda: "vmta-192-0-2-12" in node_a.active_config(), "node A deployed")

    listed = delivery.ippool.call(
        "RecordListing", ippool_pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=True)
    )
    assert listed.state == ippool_pb.IP_STATE_STANDBY
    wait_for(lambda: "*/vmta-192-0-2-10" in node_a.queues()["paused"], "the standby IP's queues paused")
    # The stand-in, like PowerMTA, changes the queue before it writes its journal line: wait for both.
    wait_for(lambda: any(entry["command"] == "pause queue" for entry in node_a.journal()), "the pause journaled")
    # And it leaves its pool at the deploy that follows; the other IP keeps sending.
    wait_for(
        lambda: (
            "virtual-mta vmta-192-0-2-10\n" not in node_a.active_config()
            and "virtual-mta vmta-192-0-2-12" in node_a.active_config()
        ),
        "the standby IP out of its pool",
    )
    assert not any(entry["command"] == "pause queue" for entry in node_b.journal())

    # Idempotent: the same state applied again pauses the same queue, nothing else.
    assert jobs.apply_ip_state(delivery.app, "192.0.2.10", "STANDBY") == "pause"
    assert node_a.queues()["paused"] == ["*/vmta-192-0-2-10"]

    # Delisted and back to sending (the operator resumes it): the queues are resumed.
    delivery.ippool.call(
        "RecordListing", ippool_pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=False)
    )
    delivery.ippool.call("PauseIp", ippool_pb.PauseIpRequest(address="192.0.2.10", reason="test"))
    delivery.ippool.call("ResumeIp", ippool_pb.ResumeIpRequest(address="192.0.2.10", reason="test"))
    wait_for(lambda: node_a.queues()["paused"] == [], "the queues resumed")
    wait_for(lambda: any(entry["command"] == "resume queue" for entry in node_a.journal()), "the resume journaled")


def test_a_node_refusing_ssh_is_reported_and_retried_while_the_others_deploy(delivery: Delivery) -> None:
    node_a, node_b = delivery.nodes
    delivery.register_ip("192.0.2.10", node_a.name)
    delivery.register_ip("198.51.100.20", node_b.name)
    wait_for(lambda: reloads(node_a) and reloads(node_b), "both deployed")
    # Node B now refuses the connection (its registered port points where nothing listens).
    from tests.harness.servers import free_port

    closed = free_port()
    delivery.call(
        "UpdatePmtaNode",
        pb.UpdatePmtaNodeRequest(
            pmta_node=pb.PmtaNode(name=node_b.name, ssh_port=closed), update_mask={"paths": ["ssh_port"]}
        ),
    )
    delivery.register_ip("192.0.2.11", node_a.name)
    delivery.register_ip("198.51.100.21", node_b.name)
    wait_for(lambda: "vmta-192-0-2-11" in node_a.active_config(), "node A deployed its new IP")
    failure = wait_for(
        lambda: [e for e in delivery.events_of(events.PmtaDeployFailed) if e.node == node_b.name],
        "node B's failure reported",
    )[0]
    assert failure.outcome == "UNREACHABLE" and str(closed) in failure.detail
    assert "PRIVATE KEY" not in failure.detail

    # The API says so too, and a deploy on demand is refused with the reason, not a stack trace.
    last = delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node_b.name)).last_deployment
    assert last.outcome == pb.DEPLOY_OUTCOME_UNREACHABLE and last.consecutive_failures >= 1
    # Retried: once node B answers again, the next deploy takes its new IP.
    delivery.call(
        "UpdatePmtaNode",
        pb.UpdatePmtaNodeRequest(
            pmta_node=pb.PmtaNode(name=node_b.name, ssh_port=node_b.port), update_mask={"paths": ["ssh_port"]}
        ),
    )
    assert jobs.deploy_all(delivery.app) == 2  # one job per node (run by the in-process pool)
    retried = wait_for(
        lambda: (
            (done := jobs.deploy_node(delivery.app, node_b.name, "hourly")) is not None
            and done.outcome.value in ("APPLIED", "UNCHANGED")
            and done
        ),
        "node B deployed on the retry",
    )
    assert retried.consecutive_failures == 0
    assert "vmta-198-51-100-21" in node_b.active_config()


def test_nodes_are_admin_only_and_bad_input_names_the_field(delivery: Delivery) -> None:
    operator = delivery.gateway.token("sos-expat")
    with pytest.raises(grpc.RpcError) as denied:
        delivery.call("ListPmtaNodes", pb.ListPmtaNodesRequest(), token=operator)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as bad:
        delivery.call(
            "CreatePmtaNode",
            pb.CreatePmtaNodeRequest(pmta_node=pb.PmtaNode(name="Bad Name", ssh_host="127.0.0.1", ssh_host_key="x")),
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pmta_node.name" in bad.value.details() and "pmta_node.ssh_host_key" in bad.value.details()
    listed = delivery.call("ListPmtaNodes", pb.ListPmtaNodesRequest()).pmta_nodes
    assert [n.name for n in listed] == ["pmta-a", "pmta-b"] and all(not n.forwarder_token for n in listed)
    assert delivery.app.unit_of_work().__enter__().pmta_nodes.smtp_endpoint("pmta-a") == ("127.0.0.1", 2525)
