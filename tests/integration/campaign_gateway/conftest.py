"""Real servers for the campaign-gateway integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.mariadb import MariadbServer


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariadbServer]:
    """One MariaDB for the session; each test makes its own database in it."""
    server = MariadbServer().start()
    yield server
    server.stop()
