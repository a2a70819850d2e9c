"""The SSH node client against real OpenSSH servers running the stand-in `pmta`: deploy, reload, pause, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from campaign_gateway.adapters.pmta_node import (
    CommandResult,
    DeployResult,
    NodeAccess,
    NodeAuthRefused,
    NodeCommandFailed,
    NodeHostKeyMismatch,
    NodeUnreachable,
    PmtaNodeClient,
    pause_vmta_on_nodes,
    resume_vmta_on_nodes,
)
from campaign_gateway.domain.pmta_config import IpState, NodeIp, PmtaNode, RenderSettings, render_node_config
from campaign_gateway.domain.providers import ProviderGroup
from tests.harness.servers import free_port
from tests.harness.ssh_server import INITIAL_CONFIG, KeyPair, PmtaNodeServer, generate_key
from tests.integration.campaign_gateway.ssh_fixtures import node_access

pytestmark = pytest.mark.integration

VMTA = "vmta-192-0-2-10"


def _config(hourly: int = 50, *, standby: bool = False) -> str:
    ips = [
        NodeIp(
            "192.0.2.10", "mta10.example.net", "sos-expat", IpState.WARMING, 500, hourly, {ProviderGroup.GMAIL: 200}
        ),
        NodeIp("192.0.2.11", "mta11.example.net", "sos-expat", IpState.STANDBY if standby else IpState.WARM, 900, 90),
        NodeIp("192.0.2.12", "mta12.example.net", "ulixai", IpState.WARM, 900, 90),
    ]
    settings = RenderSettings(accounting_forwarder_command="/usr/local/bin/ee-acct-forward --node test")
    return render_node_config(node=PmtaNode("test", "pmta.example.net"), ips=ips, settings=settings).text


def _reloads(node: PmtaNodeServer) -> list[bool]:
    return [bool(entry["ok"]) for entry in node.journal() if entry["command"] == "reload"]


async def _deploy(node: PmtaNodeServer, key: KeyPair, text: str) -> DeployResult:
    async with PmtaNodeClient(node_access(node, key)) as client:
        return await client.deploy_config(text)


def test_deploy_writes_the_file_atomically_and_reloads(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    node = pmta_nodes[0]
    text = _config()
    result = asyncio.run(_deploy(node, ssh_client_key, text))
    assert result.applied and result.changed and not result.restored
    assert result.reload is not None and result.reload.stdout.strip() == "Configuration reloaded."
    assert node.config_path.read_text() == text
    assert node.active_config() == text
    assert _reloads(node) == [True]
    assert [path.name for path in node.config_path.parent.iterdir()] == ["config"]  # no temporary file left


def test_the_same_text_is_not_deployed_twice(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[0]
    asyncio.run(_deploy(node, ssh_client_key, _config()))
    again = asyncio.run(_deploy(node, ssh_client_key, _config()))
    assert again.applied and not again.changed and again.reload is None
    assert _reloads(node) == [True]


def test_reading_the_current_configuration(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    async def read() -> str | None:
        async with PmtaNodeClient(node_access(pmta_nodes[0], ssh_client_key)) as client:
            return await client.read_config()

    assert asyncio.run(read()) == INITIAL_CONFIG
    pmta_nodes[0].config_path.unlink()
    assert asyncio.run(read()) is None


def test_a_failing_reload_restores_the_previous_file(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[0]
    first = _config(hourly=50)
    asyncio.run(_deploy(node, ssh_client_key, first))
    node.fail_next_reload("license expired")
    result = asyncio.run(_deploy(node, ssh_client_key, _config(hourly=60)))
    assert not result.applied and result.changed and result.restored
    assert result.reload is not None and result.reload.exit_status == 1
    assert result.reload.output == f"Error in line 1 of {node.config_path}: license expired"
    assert result.restore_reload is not None and result.restore_reload.ok
    assert node.config_path.read_text() == first
    assert node.active_config() == first
    assert _reloads(node) == [True, False, True]


def test_a_config_powermta_rejects_is_rolled_back(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[1]
    good = _config()
    asyncio.run(_deploy(node, ssh_client_key, good))
    swapped = good.replace(
        "smtp-source-host 192.0.2.10 mta10.example.net", "smtp-source-host mta10.example.net 192.0.2.10"
    )
    result = asyncio.run(_deploy(node, ssh_client_key, swapped))
    assert not result.applied and result.restored
    assert result.reload is not None and "invalid IP address or CIDR 'mta10.example.net'" in result.reload.output
    assert node.config_path.read_text() == good and node.active_config() == good


def test_a_failed_first_deploy_removes_its_file(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[1]
    node.config_path.unlink()
    result = asyncio.run(_deploy(node, ssh_client_key, "<virtual-mta broken>\n"))
    assert result.restored and result.restore_reload is None
    assert not node.config_path.exists()


def test_pause_and_resume_a_vmta_queues(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[0]
    asyncio.run(_deploy(node, ssh_client_key, _config()))

    async def pause_then_resume() -> tuple[CommandResult, CommandResult]:
        async with PmtaNodeClient(node_access(node, ssh_client_key)) as client:
            paused = await client.pause_queue(VMTA)
            assert node.queues()["paused"] == [f"*/{VMTA}"]
            return paused, await client.resume_queue(VMTA)

    paused, resumed = asyncio.run(pause_then_resume())
    assert paused.stdout.strip() == "Queue(s) paused." and resumed.stdout.strip() == "Queue(s) resumed."
    assert node.queues()["paused"] == []
    assert [(entry["command"], entry.get("queue")) for entry in node.journal()[1:]] == [
        ("pause queue", f"*/{VMTA}"),
        ("resume queue", f"*/{VMTA}"),
    ]


def test_a_standby_ip_is_paused_on_every_node_at_once(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    for node in pmta_nodes:
        asyncio.run(_deploy(node, ssh_client_key, _config(standby=True)))
    accesses = [node_access(node, ssh_client_key) for node in pmta_nodes]
    paused = asyncio.run(pause_vmta_on_nodes(accesses, "vmta-192-0-2-11"))
    assert {name: isinstance(result, CommandResult) and result.ok for name, result in paused.items()} == {
        "pmta-a": True,
        "pmta-b": True,
    }
    assert all(node.queues()["paused"] == ["*/vmta-192-0-2-11"] for node in pmta_nodes)
    resumed = asyncio.run(resume_vmta_on_nodes(accesses, "vmta-192-0-2-11"))
    assert all(isinstance(result, CommandResult) and result.ok for result in resumed.values())


def test_source_commands(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[0]
    asyncio.run(_deploy(node, ssh_client_key, _config()))

    async def disable_enable() -> None:
        async with PmtaNodeClient(node_access(node, ssh_client_key)) as client:
            await client.disable_source("192.0.2.10", VMTA, domain="gmail.com", reenable_after="1h")
            assert node.queues()["disabled"] == [f"192.0.2.10 gmail.com/{VMTA}"]
            await client.enable_source("192.0.2.10", VMTA, domain="gmail.com")
            status = await client.run_pmta("show", "status")
            assert "Status    running" in status.stdout

    asyncio.run(disable_enable())
    assert node.queues()["disabled"] == []
    assert node.journal()[1]["reenable_after"] == "1h"


def test_a_refused_command_is_a_typed_error_naming_the_node(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    async def pause_unknown() -> None:
        async with PmtaNodeClient(node_access(pmta_nodes[0], ssh_client_key)) as client:
            await client.pause_queue("vmta-not-configured")

    with pytest.raises(NodeCommandFailed) as caught:
        asyncio.run(pause_unknown())
    assert caught.value.node == "pmta-a" and "pmta-a" in str(caught.value)
    assert "unknown virtual MTA vmta-not-configured" in str(caught.value)
    assert caught.value.result is not None and caught.value.result.exit_status == 1


def _connect(access: NodeAccess) -> None:
    async def go() -> None:
        async with PmtaNodeClient(access):
            pass

    asyncio.run(go())


def test_a_host_key_other_than_the_registered_one_is_refused(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    node_a, node_b = pmta_nodes
    assert node_b.host_key is not None
    access = node_access(node_a, ssh_client_key, host_key=node_b.host_key.public)
    with pytest.raises(NodeHostKeyMismatch) as caught:
        _connect(access)
    message = str(caught.value)
    assert caught.value.node == "pmta-a" and "pmta-a" in message and "host key" in message
    assert "PRIVATE KEY" not in message and ssh_client_key.private.splitlines()[1] not in message
    assert node_a.journal() == []  # nothing ran on a node that could not prove who it is


def test_a_node_registered_with_its_rsa_host_key(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[1]
    assert node.rsa_host_key is not None
    _connect(node_access(node, ssh_client_key, host_key=node.rsa_host_key.public))
    other = pmta_nodes[0].rsa_host_key
    assert other is not None
    with pytest.raises(NodeHostKeyMismatch):
        _connect(node_access(node, ssh_client_key, host_key=other.public))


def test_a_client_key_the_node_does_not_know_is_refused(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair, tmp_path: Path
) -> None:
    stranger = generate_key(tmp_path / "stranger")
    with pytest.raises(NodeAuthRefused) as caught:
        _connect(node_access(pmta_nodes[0], stranger))
    assert "pmta-a" in str(caught.value) and "refused" in str(caught.value)
    assert stranger.private.splitlines()[1] not in str(caught.value)


def test_a_node_refusing_connections_is_unreachable(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    closed_port = free_port()  # nothing listens there
    access = node_access(pmta_nodes[0], ssh_client_key, port=closed_port, connect_attempts=2)
    with pytest.raises(NodeUnreachable) as caught:
        _connect(access)
    assert caught.value.node == "pmta-a"
    assert f"cannot connect to 127.0.0.1:{closed_port}" in str(caught.value)


def test_the_client_key_is_never_shown(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    access = node_access(pmta_nodes[0], ssh_client_key)
    assert ssh_client_key.private.splitlines()[1] not in repr(access)
    assert "client_key" not in repr(access)
