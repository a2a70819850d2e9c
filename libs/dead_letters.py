"""Dead letters: the events a service could not apply after its retries, listed and replayed by an admin.

An event lands here (libs.events) instead of blocking its consumer group; nothing is dropped. A replay applies it
again through the same handler, in the same unit of work as its inbox row, so a service that has meanwhile applied
the event skips it: replaying is safe to repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from emailengine.platform.v1 import event_pb2
from libs.db import Database
from libs.errors import FailedPrecondition, NotFound
from libs.events import EventConsumer
from libs.pagination import TimePosition
from libs.tables import event_dead_letters


@dataclass(frozen=True)
class DeadLetter:
    service: str
    event_id: str
    event_type: str
    source: str
    tenant_id: str
    occurred_at: datetime | None
    error: str
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None


class DeadLetters:
    """One service's dead letters (its consumer group's), on its own database."""

    def __init__(self, db: Database, consumer: EventConsumer):
        self._db = db
        self._consumer = consumer

    def list(self, *, include_replayed: bool, limit: int, after: TimePosition | None) -> list[DeadLetter]:
        table = event_dead_letters
        query = (
            sa.select(table)
            .where(table.c.consumer_group == self._consumer.group)
            .order_by(table.c.failed_at.desc(), table.c.event_id.desc())
            .limit(limit)
        )
        if not include_replayed:
            query = query.where(table.c.replayed_at.is_(None))
        if after is not None:
            query = query.where(
                sa.or_(
                    table.c.failed_at < after.time,
                    sa.and_(table.c.failed_at == after.time, table.c.event_id < after.id),
                )
            )
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        return [_dead_letter(row) for row in rows]

    def replay(self, event_id: str) -> DeadLetter:
        """Applies the event again; FailedPrecondition (keeping the letter, one attempt more) when it fails."""
        row = self._row(event_id)
        if row.replayed_at is not None:
            return _dead_letter(row)
        try:
            self._consumer.handle(row.envelope)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:4000]
            self._update(event_id, error=error, attempts=row.attempts + 1, failed_at=datetime.now(UTC))
            raise FailedPrecondition(f"the event failed again: {error[:300]}") from None
        self._update(event_id, replayed_at=datetime.now(UTC))
        return _dead_letter(self._row(event_id))

    def _row(self, event_id: str) -> sa.Row:
        table = event_dead_letters
        with self._db.transaction() as session:
            row = session.execute(
                sa.select(table).where(table.c.consumer_group == self._consumer.group, table.c.event_id == event_id)
            ).first()
        if row is None:
            raise NotFound("dead letter", event_id)
        return row

    def _update(self, event_id: str, **values: object) -> None:
        table = event_dead_letters
        with self._db.transaction() as session:
            session.execute(
                table.update()
                .where(table.c.consumer_group == self._consumer.group, table.c.event_id == event_id)
                .values(**values)
            )


def _dead_letter(row: sa.Row) -> DeadLetter:
    envelope = event_pb2.EventEnvelope.FromString(row.envelope)
    occurred = envelope.occurred_at.ToDatetime(tzinfo=UTC) if envelope.HasField("occurred_at") else None
    return DeadLetter(
        service=row.consumer_group,
        event_id=row.event_id,
        event_type=row.event_type,
        source=envelope.source,
        tenant_id=envelope.tenant_id,
        occurred_at=occurred,
        error=row.error,
        attempts=row.attempts,
        failed_at=_aware(row.failed_at),
        replayed_at=_aware(row.replayed_at) if row.replayed_at is not None else None,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
