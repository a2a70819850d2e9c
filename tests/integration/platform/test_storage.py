"""Platform storage on both databases: migrations, outbox → consumer exactly once, audit log, job claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2
from libs import audit, events
from libs.clock import SystemClock
from libs.config import Settings
from libs.db import Database, connect, driver_value, insert_many, migrate
from libs.jobs import claim_once
from libs.tables import event_inbox
from libs.unit_of_work import SqlUnitOfWork
from tests.harness.servers import PostgresServer

MIGRATIONS = Path(__file__).parents[3] / "services" / "reputation" / "reputation" / "adapters" / "migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    settings = Settings(data_dir=tmp_path)
    url = ""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.url.replace("postgresql://", "postgresql+psycopg://")
    service = f"test_{tmp_path.name[-12:].replace('-', '_')}"
    database = connect(settings, service, url=url)
    migrate(database, MIGRATIONS)
    yield database
    if database.is_postgres:
        with database.engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{database.schema}" CASCADE'))
    database.dispose()


def test_migrations_are_idempotent(db: Database) -> None:
    migrate(db, MIGRATIONS)
    tables = set(sa.inspect(db.engine).get_table_names(schema=db.schema))
    assert {"event_outbox", "event_inbox", "audit_entries", "job_runs", "monitored_ips"} <= tables


def test_an_event_is_stored_only_with_its_change(db: Database) -> None:
    event = events_pb2.IpRegistered(address="192.0.2.1", tenant_id="sos-expat")
    with pytest.raises(RuntimeError), db.transaction() as session:
        events.publish(session, source="t", tenant_id="sos-expat", event=event)
        raise RuntimeError("the change failed")
    with db.transaction() as session:
        events.publish(session, source="t", tenant_id="sos-expat", event=event)
    with db.transaction() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(events.event_outbox)).scalar() == 1


def test_relay_delivers_and_consumer_applies_each_event_once(db: Database) -> None:
    seen: list[str] = []
    consumer = events.EventConsumer(group="g", db=db)
    consumer.on(events_pb2.IpRegistered, lambda _s, env, ev: seen.append(ev.address))

    class Recorder:
        sent: list[bytes] = []

        def send(self, event_type: str, raw: bytes, event_id: str) -> None:
            self.sent.append(raw)
            consumer.handle(raw)

    with db.transaction() as session:
        for n in range(3):
            events.publish(
                session, source="t", tenant_id="x", event=events_pb2.IpRegistered(address=f"192.0.2.{n}", tenant_id="x")
            )
    transport = Recorder()
    assert events.OutboxRelay(db, transport).relay_once() == 3
    assert events.OutboxRelay(db, transport).relay_once() == 0
    for raw in transport.sent:  # a redelivery changes nothing
        assert consumer.handle(raw) is False
    assert seen == ["192.0.2.0", "192.0.2.1", "192.0.2.2"]


def test_a_failing_handler_leaves_the_event_to_be_handled_again(db: Database) -> None:
    calls: list[int] = []

    def flaky(_s: object, _e: object, _ev: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    consumer = events.EventConsumer(group="g2", db=db)
    consumer.on(events_pb2.IpRegistered, flaky)
    with db.transaction() as session:
        events.publish(session, source="t", tenant_id="x", event=events_pb2.IpRegistered(address="192.0.2.9"))
        raw = session.execute(sa.select(events.event_outbox.c.envelope)).scalar_one()
    with pytest.raises(RuntimeError):
        consumer.handle(raw)
    assert consumer.handle(raw) is True
    assert consumer.handle(raw) is False
    assert len(calls) == 2


def test_audit_entries_page_newest_first(db: Database) -> None:
    for n in range(5):
        audit.record(
            db,
            actor=f"a{n}",
            actor_role="operator",
            tenant_id="sos-expat",
            service="s",
            method="/m",
            resource=f"r/{n}",
            outcome="OK",
            outcome_message="",
        )
    first = audit.list_entries(db, tenant_id="sos-expat", limit=3, page_token="")
    rest = audit.list_entries(db, tenant_id="sos-expat", limit=3, page_token=audit.position_of(first[-1]))
    assert [e.actor for e in first + rest] == ["a4", "a3", "a2", "a1", "a0"]
    assert audit.list_entries(db, tenant_id="ulixai", limit=3, page_token="") == []


def test_a_job_key_is_claimed_once_by_racing_replicas(db: Database) -> None:
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        if claim_once(db, "advance:2026-01-05", owner=f"r{n}"):
            winners.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_an_event_that_keeps_failing_is_dead_lettered_and_does_not_block_the_next(db: Database) -> None:
    applied: list[str] = []

    def handler(_s: object, _e: object, ev: events_pb2.IpRegistered) -> None:
        if ev.address == "192.0.2.66":
            raise ValueError("cannot apply this one")
        applied.append(ev.address)

    consumer = events.EventConsumer(group="dl", db=db)
    consumer.on(events_pb2.IpRegistered, handler)
    transport = events.InProcessTransport()
    transport.subscribe(consumer)
    with db.transaction() as session:
        for address in ("192.0.2.66", "192.0.2.67"):
            events.publish(session, source="t", tenant_id="x", event=events_pb2.IpRegistered(address=address))
    assert events.OutboxRelay(db, transport).relay_once() == 2
    assert applied == ["192.0.2.67"]
    with db.transaction() as session:
        dead = session.execute(sa.select(events.event_dead_letters)).all()
    assert [(d.consumer_group, d.attempts) for d in dead] == [("dl", events.MAX_HANDLING_ATTEMPTS)]
    assert "cannot apply this one" in dead[0].error


def test_sqlite_databases_and_their_directory_are_private(tmp_path: Path) -> None:
    """Webhook secrets live in the notifier's database: nobody but the service's user may read the file."""
    from libs.config import Settings
    from libs.db import connect

    data_dir = tmp_path / "var"
    db = connect(Settings(data_dir=data_dir, database_url=""), "notifier")
    with db.transaction() as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    db.dispose()
    assert data_dir.stat().st_mode & 0o077 == 0
    for path in data_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


def test_insert_many_stores_what_sqlalchemys_own_insert_stores(db: Database) -> None:
    """`insert_many` hands the driver plain values; the rows read back are the same as from a Core insert, dates,
    times, JSON text and bytes included, and a conflicting row is left out when asked."""
    table = sa.Table(
        "insert_many_check",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(20), nullable=False, unique=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("moment", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    table.create(db.engine)
    moment = datetime(2026, 1, 6, 7, 8, 9, 123456, tzinfo=UTC)
    columns = ("key", "day", "moment", "doc", "data")
    with db.transaction() as session:
        core = {"key": "core", "day": date(2026, 1, 5), "moment": moment, "doc": [["a", 1]], "data": b"\x00\xff"}
        session.execute(table.insert(), [core])
        day, stamp = driver_value(session, table.c.day, date(2026, 1, 5)), driver_value(session, table.c.moment, moment)
        insert_many(session, table, columns, [("plain", day, stamp, '[["a", 1]]', b"\x00\xff")])
        insert_many(
            session,
            table,
            columns,
            [("core", day, stamp, "[]", b""), ("other", day, stamp, "{}", b"x")],
            skip_conflicts_on=("key",),
        )
    with db.transaction() as session:
        rows = {row.key: row for row in session.execute(sa.select(table)).all()}
        raw = dict(session.execute(sa.text("SELECT key, CAST(moment AS TEXT) FROM insert_many_check")).all())
    assert set(rows) == {"core", "plain", "other"}
    for name in ("day", "moment", "doc", "data"):
        assert getattr(rows["plain"], name) == getattr(rows["core"], name), name
    assert bytes(rows["other"].data) == b"x" and rows["other"].doc == {}
    assert raw["plain"] == raw["core"]  # stored in the same form, not only read back alike
    table.drop(db.engine)


def test_an_event_a_handler_leaves_alone_is_still_marked_handled_once(db: Database) -> None:
    """`Subscriptions.no_effect`: an event the handler would leave alone is only marked handled on PostgreSQL (no
    unit of work), through the handler on SQLite; either way once, and the events it does act on are applied."""
    applied: list[str] = []
    consumer = events.EventConsumer(group="quiet", db=db)
    consumer.subscribe(
        events.Subscriptions(
            unit_of_work=lambda: SqlUnitOfWork(db, source="quiet", clock=SystemClock()),
            handlers={events_pb2.IpRegistered: lambda _uow, _env, ev: applied.append(ev.address)},
            no_effect={events_pb2.IpRegistered: lambda ev: ev.address.startswith("198.51.100.")},
        )
    )
    with db.transaction() as session:
        for address in ("198.51.100.1", "192.0.2.1"):
            events.publish(session, source="t", tenant_id="x", event=events_pb2.IpRegistered(address=address))
        raws = session.execute(sa.select(events.event_outbox.c.envelope).order_by(events.event_outbox.c.seq)).scalars()
        raws = list(raws)
    assert [consumer.handle(raw) for raw in raws] == [True, True]
    assert [consumer.handle(raw) for raw in raws] == [False, False]  # redeliveries
    expected = ["192.0.2.1"] if db.is_postgres else ["198.51.100.1", "192.0.2.1"]
    assert applied == expected
    with db.transaction() as session:
        handled = session.execute(
            sa.select(sa.func.count()).select_from(event_inbox).where(event_inbox.c.consumer_group == "quiet")
        ).scalar_one()
    assert handled == 2
