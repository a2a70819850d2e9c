from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.servers import PostgresServer, RedisServer, Stack, stack_env


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, redis_server: RedisServer
) -> Iterator[Stack]:
    """Production-like: the four services as separate processes on PostgreSQL and Redis, behind a real Envoy."""
    data_dir: Path = tmp_path_factory.mktemp("stack")
    database = f"ee_{data_dir.name.replace('-', '_')}"
    postgres.create_database(database)
    env = stack_env(data_dir, database_url=postgres.url_for(database), redis_url=redis_server.url)
    running = Stack(data_dir, env)
    try:
        running.start()
        yield running
    finally:
        running.stop()
