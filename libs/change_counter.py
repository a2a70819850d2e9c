"""A count of the writes a service's database has committed, by which a cache of reads stays exact.

Every writing unit of work of a service that declares a counter table counts its commit (`SqlUnitOfWork.commit`
calls `bump` in the transaction and `committed` after it). A cached read takes the count first and serves what
it holds only while the count has not moved since (`libs.current_cache`).

* SQLite (the embedded layout): `bump` adds one to the table's single row; `current()` reads it (a few
  microseconds, no network), so a write by any connection or process is seen by the next read.
* PostgreSQL: `bump` also sends a notification on the table's channel, delivered when the transaction commits;
  one connection per process LISTENs and counts them. `current()` is then a memory read, not a round trip per
  call (a round trip cost ~30 % of GetIp's throughput). A write made by this process counts before its call
  returns (`committed`); a write made by another replica or worker counts when its notification arrives,
  normally within a millisecond of its commit. While the listening connection is down (the database
  restarted), `current()` answers None and callers read the database as if nothing were cached; when it is back,
  the count moves once, since anything may have changed meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from libs.db import Database

log = logging.getLogger(__name__)

ROW_ID = 1
_RECONNECT_SECONDS = (0.05, 0.2, 1.0, 2.0)
_WAIT_SECONDS = 1.0  # how often the listener looks whether it should stop

# The process's counters by engine and table, so a unit of work counts its own commit at once.
_COUNTERS: weakref.WeakKeyDictionary[Engine, dict[str, ChangeCounter]] = weakref.WeakKeyDictionary()


def counter_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The one-row table a service's migration creates (with its row: id 1, generation 0)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )


def bump(session: Session, table: sa.Table) -> None:
    """Counts one write, in its transaction; called last before the commit."""
    notify, add_one = _bump_statements(table)
    # On PostgreSQL the notification is delivered to every listener when (and only if) the transaction commits.
    session.execute(notify if session.get_bind().dialect.name == "postgresql" else add_one)


@functools.cache
def _bump_statements(table: sa.Table) -> tuple[sa.Executable, sa.Executable]:
    """Built once per table: a statement made per call cost more than its round trip."""
    notify = sa.select(sa.func.pg_notify(sa.literal(table.name), sa.literal("")))
    add_one = sa.update(table).where(table.c.id == ROW_ID).values(generation=table.c.generation + 1)
    return notify, add_one


def committed(engine: Engine, table: sa.Table) -> None:
    """This process committed a write: its own counter moves now, not when the notification comes back."""
    counter = _COUNTERS.get(engine, {}).get(table.name)
    if counter is not None:
        counter.moved()


class ChangeCounter:
    """The count of a service's committed writes, as this process sees it."""

    def __init__(self, db: Database, table: sa.Table):
        self._db = db
        self._table = table
        self._sql = f"SELECT generation FROM {table.name} WHERE id = {ROW_ID}"
        self._lock = threading.Lock()
        self._generation = 0
        self._listening = False
        self._stopping = threading.Event()
        self._idle: list[Any] = []  # SQLite: connections for reading the row
        self._listener: threading.Thread | None = None
        _COUNTERS.setdefault(db.engine, {})[table.name] = self

    def current(self) -> int | None:
        if not self._db.is_postgres:
            return self._read_row()
        if self._listener is None:
            self._start_listener()
        return self._generation if self._listening else None

    def moved(self) -> None:
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._wake_listener()
            self._listener.join(timeout=5)
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            _close_quietly(connection)
        _COUNTERS.get(self._db.engine, {}).pop(self._table.name, None)

    def _wake_listener(self) -> None:
        """A notification of its own, so the listener sees it should stop now rather than at its next wait's end
        (other processes only count one write more)."""
        with contextlib.suppress(Exception), self._db.engine.connect() as conn:
            conn.execute(_bump_statements(self._table)[0])
            conn.commit()

    # -- SQLite: read the row ----------------------------------------------------------------------

    def _read_row(self) -> int | None:
        connection = None
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = self._raw_connection()
            cursor = connection.execute(self._sql)
            row = cursor.fetchone()
        except Exception:  # any failure: read without the cache; the normal path reports it
            if connection is not None:
                _close_quietly(connection)
            return None
        with self._lock:  # never more than the threads reading at once (the RPC workers)
            self._idle.append(connection)
        return None if row is None else int(row[0])

    def _raw_connection(self) -> Any:
        """A connection opened by the engine (its connect arguments and pragmas), then taken out of its pool,
        in autocommit so each read sees the latest commit."""
        proxy = self._db.engine.raw_connection()
        connection = proxy.driver_connection
        proxy.detach()
        if self._db.is_postgres:
            connection.autocommit = True
        else:
            connection.isolation_level = None
        return connection

    # -- PostgreSQL: listen ------------------------------------------------------------------------

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._listen, name=f"{self._table.name}-listener", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._raw_connection()
                connection.execute(f"LISTEN {self._table.name}")
                self.moved()  # whatever was written while nobody listened
                self._listening = True
                failures = 0
                while not self._stopping.is_set():
                    for _notification in connection.notifies(timeout=_WAIT_SECONDS):
                        self.moved()
                    connection.execute("SELECT 1")  # a server gone quiet is found within a second
            except Exception as exc:  # the database went away: no cache until listening again
                self._listening = False
                if failures == 0:
                    log.warning("change notifications lost; reads bypass the cache", extra={"error": str(exc)})
                failures += 1
                self._stopping.wait(_RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS)) - 1])
            finally:
                self._listening = False
                if connection is not None:
                    _close_quietly(connection)


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection is dropped either way
        connection.close()
