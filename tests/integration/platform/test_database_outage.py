"""A database that refuses new sessions while it shuts down or starts up: the calls that need one answer
UNAVAILABLE (try again), never INTERNAL (a bug of ours)."""

from __future__ import annotations

from pathlib import Path

import grpc
import psycopg
import pytest

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from tests.harness.servers import PostgresServer
from tests.integration.ippool.conftest import running_ippool

pytestmark = pytest.mark.integration


def test_a_database_shutting_down_is_unavailable_then_served_again(tmp_path: Path) -> None:
    server = PostgresServer().start()
    try:
        server.create_database("outage")
        with running_ippool(tmp_path, database_url=server.url_for("outage")) as ippool:
            ippool.register("192.0.2.10")
            # A smart shutdown waits for the open sessions to end; meanwhile every new one is refused with
            # "FATAL: the database system is shutting down" (as during a start, with "starting up").
            held = psycopg.connect(f"host=127.0.0.1 port={server.port} user={server.user} dbname=outage")
            server.begin_smart_shutdown()
            ippool.db.dispose()  # the service's pooled sessions end: its next call opens a new one
            with pytest.raises(grpc.RpcError) as refused:
                ippool.ip("192.0.2.10")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            assert refused.value.details() == "the database is not reachable; try again shortly"
            held.close()
            server.halt()
            server.start_again()
            assert ippool.ip("192.0.2.10").state == pb.IP_STATE_WARMING
    finally:
        server.stop()
