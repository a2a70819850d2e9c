"""PowerMTA nodes for the campaign-gateway tests: two real sshd servers with the stand-in `pmta`.

Imported by this folder's conftest.py. The servers live for the session; `pmta_nodes` hands them out reset (initial
configuration in force, empty journal, nothing paused, no accounting files), so tests do not see each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaign_gateway.adapters.pmta_node import NodeAccess
from tests.harness.ssh_server import KeyPair, PmtaNodeServer, generate_key, running_nodes

NODE_NAMES = ("pmta-a", "pmta-b")


@pytest.fixture(scope="session")
def ssh_client_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_key(tmp_path_factory.mktemp("ssh-client") / "id_ed25519", comment="email-engine")


@pytest.fixture(scope="session")
def pmta_servers(tmp_path_factory: pytest.TempPathFactory, ssh_client_key: KeyPair) -> Iterator[list[PmtaNodeServer]]:
    with running_nodes(tmp_path_factory.mktemp("pmta-nodes"), NODE_NAMES, ssh_client_key) as nodes:
        yield nodes


@pytest.fixture
def pmta_nodes(pmta_servers: list[PmtaNodeServer]) -> list[PmtaNodeServer]:
    for node in pmta_servers:
        node.reset()
    return pmta_servers


def node_access(node: PmtaNodeServer, client_key: KeyPair, **overrides: object) -> NodeAccess:
    """How the product reaches `node`: its registered host key, the client key, the stand-in's paths."""
    assert node.host_key is not None
    settings: dict[str, object] = {
        "name": node.name,
        "host": "127.0.0.1",
        "port": node.port,
        "username": node.user,
        "host_key": node.host_key.public,
        "client_key": client_key.private,
        "config_path": str(node.config_path),
        "pmta_command": str(node.pmta_command),
        "connect_timeout": 10.0,
        "command_timeout": 30.0,
        "connect_attempts": 1,
    }
    settings.update(overrides)
    return NodeAccess(**settings)  # type: ignore[arg-type]
