from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.servers import PostgresServer, RedisServer, Stack, production_stack


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, redis_server: RedisServer
) -> Iterator[Stack]:
    """Production-like: the four services as separate processes on PostgreSQL and Redis, behind a real Envoy."""
    with production_stack(tmp_path_factory.mktemp("stack"), postgres, redis_server) as running:
        yield running
