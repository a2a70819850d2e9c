"""GetIp's cache against real databases: two replicas of ip-pool on one database, as in production. A write on
one is seen by the other's next reads (SQLite: at once; PostgreSQL: when its notification arrives, within
milliseconds), also after the connection that listens for them was cut."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from tests.harness.servers import PostgresServer
from tests.integration.ippool.conftest import IpPoolService, postgres_url, running_ippool

ADDRESS = "192.0.2.10"


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[IpPoolService, IpPoolService]]:
    url = ""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = postgres_url(server, f"cache_{tmp_path.name[-10:].replace('-', '_')}")
    with ExitStack() as stack:
        first = stack.enter_context(running_ippool(tmp_path, database_url=url))
        second = stack.enter_context(running_ippool(tmp_path, database_url=url, clock=first.clock))
        yield first, second


def state_of(service: IpPoolService) -> int:
    return service.ip(ADDRESS).state


def soon(check: Callable[[], bool], seconds: float = 5.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_write_on_one_replica_is_seen_by_the_other_s_next_read(
    replicas: tuple[IpPoolService, IpPoolService],
) -> None:
    first, second = replicas
    first.register(ADDRESS, helo_hostname="mta.example.net")
    assert state_of(second) == pb.IP_STATE_WARMING
    for _ in range(3):
        state_of(second)  # served from its cache now
    first.call("PauseIp", pb.PauseIpRequest(address=ADDRESS, reason="maintenance"))
    assert state_of(first) == pb.IP_STATE_PAUSED  # the replica that wrote: at once
    waited = soon(lambda: state_of(second) == pb.IP_STATE_PAUSED)
    print(f"the other replica saw the pause after {waited * 1000:.1f} ms")
    second.call("ResumeIp", pb.ResumeIpRequest(address=ADDRESS, reason="done"))
    soon(lambda: state_of(first) != pb.IP_STATE_PAUSED)
    assert state_of(second) != pb.IP_STATE_PAUSED


def test_a_write_made_while_the_listening_connection_was_cut_is_not_served_stale(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_url(postgres, f"cut_{tmp_path.name[-10:].replace('-', '_')}")
    with (
        running_ippool(tmp_path, database_url=url) as first,
        running_ippool(tmp_path, database_url=url, clock=first.clock) as second,
    ):
        first.register(ADDRESS, helo_hostname="mta.example.net")
        soon(lambda: state_of(second) == pb.IP_STATE_WARMING)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            cut = conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'"
                        " OR (query = 'SELECT 1' AND backend_type = 'client backend' AND datname = current_database())")
            ).rowcount  # fmt: skip
        engine.dispose()
        assert cut >= 1
        first.call("PauseIp", pb.PauseIpRequest(address=ADDRESS, reason="maintenance"))
        soon(lambda: state_of(second) == pb.IP_STATE_PAUSED)
