"""Real servers for the campaign-gateway integration tests: MariaDB here, the PMTA nodes' sshd in ssh_fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.mariadb import MariadbServer
from tests.integration.campaign_gateway.ssh_fixtures import pmta_nodes, pmta_servers, ssh_client_key

__all__ = ["mariadb", "pmta_nodes", "pmta_servers", "ssh_client_key"]


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariadbServer]:
    """One MariaDB for the session; each test makes its own database in it."""
    server = MariadbServer().start()
    yield server
    server.stop()
