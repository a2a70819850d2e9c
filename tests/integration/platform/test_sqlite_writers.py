"""SQLite in one process: writing units of work queue on a lock from their first write, instead of SQLite's busy
handler (which polls with growing sleeps and left some writers waiting past 2 s under 50 concurrent writes)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ippool.adapters import tables
from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.bootstrap import DEFINITION
from libs.clock import SystemClock
from libs.config import Settings
from libs.db import Database, connect, migrate


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = connect(Settings(data_dir=tmp_path), "ip-pool")
    migrate(database, DEFINITION.migrations)
    return database


def unit_of_work(db: Database) -> SqlIpPoolUnitOfWork:
    return SqlIpPoolUnitOfWork(db, source="test", clock=SystemClock())


def generation(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(tables.changes.c.generation)).scalar_one()


def test_sixteen_threads_writing_at_once_all_commit_and_none_is_refused(db: Database) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        for _ in range(25):
            try:
                with unit_of_work(db) as uow:
                    uow.tenants.all()  # a read first: no lock yet
                    uow.commit()  # its write (the change count) takes the lock until the unit of work ends
            except BaseException as exc:  # any failure is the test's finding
                errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    assert generation(db) == 16 * 25


def test_a_unit_of_work_that_fails_after_writing_lets_the_next_writer_in(db: Database) -> None:
    with pytest.raises(RuntimeError), unit_of_work(db) as uow:
        uow.session.execute(sa.update(tables.changes).values(generation=tables.changes.c.generation + 1))
        raise RuntimeError("the use case failed")
    done = threading.Event()

    def write() -> None:
        with unit_of_work(db) as uow:
            uow.commit()
        done.set()

    other = threading.Thread(target=write)
    other.start()
    other.join(30)
    assert done.is_set(), "the lock was released with the failed unit of work"
    assert generation(db) == 1  # the failed one rolled back
