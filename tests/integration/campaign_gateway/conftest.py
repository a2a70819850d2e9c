"""Real servers for the campaign-gateway integration tests: MariaDB (the session's, tests/conftest.py) and the PMTA
nodes' sshd in ssh_fixtures."""

from __future__ import annotations

from tests.integration.campaign_gateway.ssh_fixtures import pmta_nodes, pmta_servers, ssh_client_key

__all__ = ["pmta_nodes", "pmta_servers", "ssh_client_key"]
