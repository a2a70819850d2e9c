"""The read path on SQLite and on a real PostgreSQL: GetIpReputation in a small number of queries that does not
grow with the history asked for, nor with the number of listings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.db import Database, migrate
from reputation.app.listings import record_scans
from reputation.app.scanning import IpScans
from reputation.bootstrap import DEFINITION
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome, interpret_answer
from reputation.domain.scan import ScanResult
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import DEFAULT_IP_ZONES, ZoneKind
from tests.integration.reputation.service import storage_only

pytestmark = pytest.mark.integration

GET_IP_REPUTATION_QUERIES = 3  # the IP, its latest scans, its listing state
IP = "192.0.2.10"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements this thread sends while the block runs (other threads, e.g. a relay, are not counted)."""
    mine = threading.get_ident()
    sent: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.get_ident() == mine:
            sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def scan(at: datetime, listed_on: int) -> ScanResult:
    """A scan of IP on the nine default zones, listed on the first `listed_on` of them."""
    results = tuple(
        interpret_answer(
            zone, DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.2",)) if i < listed_on else DnsAnswer(DnsOutcome.NXDOMAIN)
        )
        for i, zone in enumerate(DEFAULT_IP_ZONES)
    )
    return ScanResult(IP, ZoneKind.IP, at, at, results)


def test_get_ip_reputation_takes_three_queries_whatever_the_history_or_the_listings(empty_db: Database) -> None:
    db = empty_db
    migrate(db, DEFINITION.migrations)
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    context = storage_only(db, clock)
    ips = IpScans(context)
    viewer = Caller("viewer", Role.VIEWER, "sos-expat")
    with context.unit_of_work() as uow:
        uow.ips.register(WatchedIp(IP, "sos-expat", "mta1.sos.example"), clock.now())
        uow.commit()

    counts = {}
    for scans, listed_on in ((0, 0), (1, 1), (60, 4)):
        with context.unit_of_work() as uow:
            for i in range(scans):
                record_scans(uow, [scan(clock.now() + timedelta(minutes=i), listed_on)], "periodic", clock.now())
            uow.commit()
        clock.advance(timedelta(hours=2))
        for history_size in (1, 50):
            with statements(db) as sent:
                reply = ips.get(viewer, IP, history_size)
            counts[(scans, history_size)] = len(sent)
        assert len(reply.current_listings) == (4 if scans == 60 else listed_on)
    assert len(reply.history) == 50
    assert set(counts.values()) == {GET_IP_REPUTATION_QUERIES}, counts
