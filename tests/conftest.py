"""Session-wide real servers. A server that cannot start fails the tests that need it; none are skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.mariadb import MariadbServer
from tests.harness.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariadbServer]:
    """One MariaDB for the session (MailWizz's database); each test makes its own database in it."""
    server = MariadbServer().start()
    yield server
    server.stop()
