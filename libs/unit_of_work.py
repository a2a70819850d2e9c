"""The unit of work: one database transaction that a use case opens, changes and commits as a whole.

A use case never sees a session or a table. It takes a unit of work, reads and writes through the
repositories the service's own unit of work exposes, publishes events, and calls `commit()`; leaving the
`with` block without a commit rolls everything back. The change, its events (the transactional outbox)
and its audit line are committed together, or not at all.

    with uow:
        ip = uow.ips.get(address)
        ...
        uow.publish(IpStateChanged(...), tenant_id=ip.tenant_id)
        uow.commit()

`SqlUnitOfWork` is the real one; a service subclasses it and binds its repositories in `_bind`. Tests of the
use cases use an in-memory fake with the same attributes (see `tests/fakes.py`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Protocol, Self, TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session

from libs import audit, change_counter, events
from libs.clock import Clock
from libs.db import Database
from libs.errors import Unavailable

# SQLite takes one writer at a time, and makes the others poll with growing sleeps (its busy handler): under 50
# concurrent writes some waited past 2 s while the file sat idle between sleeps. The units of work of one process
# queue on a lock per database from their first write instead, so SQLite's own lock is free when each gets it.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_SQLITE_WRITERS_GUARD = threading.Lock()
_SQLITE_WRITER_WAIT_SECONDS = 30  # as SQLite's busy_timeout


class UnitOfWork(Protocol):
    """What every service's unit of work offers besides its repositories."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def publish(self, event: Message, *, tenant_id: str) -> str:
        """Adds a domain event to the outbox; it is relayed only if this unit of work commits."""
        ...

    def publish_all(self, messages: Sequence[Message], *, tenant_id: str) -> list[str]:
        """`publish` of several events of one tenant, in order, at the cost of one."""
        ...


UnitOfWorkT_co = TypeVar("UnitOfWorkT_co", covariant=True)


class UnitOfWorkFactory(Protocol[UnitOfWorkT_co]):
    """How use cases get a unit of work: a new one per transaction; `read_only` for a pure read."""

    def __call__(self, *, read_only: bool = False) -> UnitOfWorkT_co: ...


class SqlUnitOfWork:
    """A unit of work over one SQLAlchemy session of the service's own database."""

    # A service whose reads are cached names its counter table (`libs.change_counter`): every commit counts.
    change_counter: ClassVar[sa.Table | None] = None

    def __init__(self, db: Database, *, source: str, clock: Clock, read_only: bool = False):
        self.db = db
        self.source = source
        self.clock = clock
        # A read: no transaction at all (no BEGIN, no COMMIT, each statement sees the latest committed data),
        # which saves two round trips per call on PostgreSQL; it can neither commit nor publish.
        self.read_only = read_only
        self._session: Session | None = None
        self._connection: Connection | None = None
        self._writer: threading.RLock | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._session

    @property
    def is_postgres(self) -> bool:
        return self.db.is_postgres

    def now(self) -> datetime:
        return self.clock.now()

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is entered once at a time")
        if self.read_only:
            self._connection = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._session = Session(bind=self._connection)
        else:
            self._session = self.db.sessions()
            if not self.db.is_postgres:
                sa.event.listen(self._session, "do_orm_execute", self._before_statement)
        self._bind(self._session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._session, None
        connection, self._connection = self._connection, None
        writer, self._writer = self._writer, None
        try:
            if session is not None:
                session.close()  # rolls back whatever was not committed
            if connection is not None:
                connection.close()
        finally:
            if writer is not None:
                writer.release()

    def _bind(self, session: Session) -> None:
        """Subclasses create their repositories over the session here."""

    def _before_statement(self, state: ORMExecuteState) -> None:
        """SQLite: the first write of this unit of work queues for the process's writer lock, held (as SQLite's
        own lock would be) until the unit of work ends."""
        if self._writer is not None or not (state.is_insert or state.is_update or state.is_delete):
            return
        writer = _sqlite_writer(self.db.engine)
        if not writer.acquire(timeout=_SQLITE_WRITER_WAIT_SECONDS):
            raise Unavailable("the database is busy with other writes; try again shortly")
        self._writer = writer

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        # The audit line of the API call being served (if any) commits with the change it describes.
        audit.write_pending(self.session, self.now())
        if self.change_counter is not None:
            change_counter.bump(self.session, self.change_counter)
        self.session.commit()
        if self.change_counter is not None:
            change_counter.committed(self.db.engine, self.change_counter)

    def rollback(self) -> None:
        self.session.rollback()

    def publish(self, event: Message, *, tenant_id: str) -> str:
        if self.read_only:
            raise RuntimeError("a read-only unit of work publishes nothing")
        return events.publish(self.session, source=self.source, tenant_id=tenant_id, event=event, now=self.now())

    def publish_all(self, messages: Sequence[Message], *, tenant_id: str) -> list[str]:
        if self.read_only:
            raise RuntimeError("a read-only unit of work publishes nothing")
        return events.publish_all(
            self.session, source=self.source, tenant_id=tenant_id, events=messages, now=self.now()
        )


def _sqlite_writer(engine: Engine) -> threading.RLock:
    with _SQLITE_WRITERS_GUARD:
        lock = _SQLITE_WRITERS.get(engine)
        if lock is None:
            lock = _SQLITE_WRITERS[engine] = threading.RLock()
        return lock
