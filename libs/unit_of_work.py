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

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from google.protobuf.message import Message
from sqlalchemy.orm import Session

from libs import audit, events
from libs.clock import Clock
from libs.db import Database


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


class SqlUnitOfWork:
    """A unit of work over one SQLAlchemy session of the service's own database."""

    def __init__(self, db: Database, *, source: str, clock: Clock):
        self.db = db
        self.source = source
        self.clock = clock
        self._session: Session | None = None

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
        self._session = self.db.sessions()
        self._bind(self._session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()  # rolls back whatever was not committed

    def _bind(self, session: Session) -> None:
        """Subclasses create their repositories over the session here."""

    def commit(self) -> None:
        # The audit line of the API call being served (if any) commits with the change it describes.
        audit.write_pending(self.session, self.now())
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def publish(self, event: Message, *, tenant_id: str) -> str:
        return events.publish(self.session, source=self.source, tenant_id=tenant_id, event=event, now=self.now())
