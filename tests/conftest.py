"""Session-wide real servers. A server that cannot start fails the tests that need it; none are skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
