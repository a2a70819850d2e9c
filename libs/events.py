"""Domain events: transactional outbox → relay → Redis Streams (or in-process) → consumer groups.

* `publish` writes the event into the service's own `event_outbox` in the caller's transaction, so the
  event exists if and only if the change that caused it was committed.
* `OutboxRelay` moves committed events to the transport and marks them relayed. A crash between the two
  sends an event twice; that is why consumers deduplicate.
* Redis may lose entries the groups have not read yet (a restart without persistence, a failover to a replica
  that was behind). So a relayed row remembers which Redis server took it (its run id) and where, until every
  group has acknowledged it; when another server answers, the relay recreates the groups and sends again the rows
  the old one still held for some group. A consumer whose group vanished recreates it. Nothing is lost, and the
  inbox makes the second delivery a no-op for the groups that had applied it.
* `EventConsumer` handles an event and records (group, event_id) in `event_inbox` in the same database
  transaction as the handler's own writes, so each event takes effect once per consumer group even when it
  is delivered again; the Redis message is acknowledged only after that commit.
* An event whose handler keeps failing is retried with backoff, then kept in `event_dead_letters` (with the
  error) and acknowledged, so one bad event never blocks the events behind it; nothing is dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import redis
import sqlalchemy as sa
from google.protobuf import any_pb2, symbol_database
from google.protobuf.message import Message
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from tenacity import RetryError, Retrying, stop_after_attempt, wait_exponential

from emailengine.platform.v1 import event_pb2
from libs.clock import SystemClock
from libs.db import Database
from libs.tables import event_dead_letters, event_inbox, event_outbox

if TYPE_CHECKING:
    from libs.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

STREAM = "ee:events"
MAX_HANDLING_ATTEMPTS = 5


def publish(session: Session, *, source: str, tenant_id: str, event: Message, now: datetime | None = None) -> str:
    """Adds the event to the outbox inside the caller's transaction. Returns its id."""
    return publish_all(session, source=source, tenant_id=tenant_id, events=(event,), now=now)[0]


def publish_all(
    session: Session, *, source: str, tenant_id: str, events: Sequence[Message], now: datetime | None = None
) -> list[str]:
    """Adds the events to the outbox, in order, inside the caller's transaction, in one statement (one round trip
    instead of one per event). Returns their ids."""
    occurred = now or datetime.now(UTC)
    rows = []
    for event in events:
        event_id = str(uuid.uuid4())
        payload = any_pb2.Any()
        payload.Pack(event)
        envelope = event_pb2.EventEnvelope(event_id=event_id, source=source, tenant_id=tenant_id, payload=payload)
        envelope.occurred_at.FromDatetime(occurred)
        rows.append(
            {
                "event_id": event_id,
                "event_type": event.DESCRIPTOR.full_name,
                "envelope": envelope.SerializeToString(),
                "created_at": occurred,
            }
        )
    if rows:
        # Several rows go as one executemany (psycopg pipelines it): the outbox's `seq` keeps their order.
        session.execute(_OUTBOX_INSERT, rows if len(rows) > 1 else rows[0])
    return [row["event_id"] for row in rows]


# Built once, its values given at execution: a statement made per call spent most of a write's time in
# SQLAlchemy's cache-key generation.
_OUTBOX_INSERT = event_outbox.insert()


def event_type_of(envelope: event_pb2.EventEnvelope) -> str:
    return envelope.payload.TypeName()


def unpack(envelope: event_pb2.EventEnvelope) -> Message:
    type_name = event_type_of(envelope)
    cls = _MESSAGE_CLASSES.get(type_name)
    if cls is None:
        cls = _MESSAGE_CLASSES[type_name] = symbol_database.Default().GetSymbol(type_name)
    message = cls()
    message.ParseFromString(envelope.payload.value)  # what Any.Unpack does, once its type name is known
    return message


# Event classes by type name: the symbol database's lookup was a visible part of each event's handling.
_MESSAGE_CLASSES: dict[str, type[Message]] = {}


# -- consumers ------------------------------------------------------------------------------------

# A handler applies one event inside the unit of work the consumer opened (which already holds the inbox row):
# its writes and the "handled" mark commit together.
Handler = Callable[[Any, event_pb2.EventEnvelope, Message], None]
# True for an event its handler is known to leave alone (it would return at once, reading and writing nothing).
NoEffect = Callable[[Message], bool]


@dataclass(frozen=True)
class Subscriptions:
    """What a service consumes: a unit of work factory for its handlers, and a handler per event type.

    `no_effect` (optional, per event type) names the events a handler does nothing with: such an event is only
    marked handled, in one statement, without a unit of work (the same inbox row, so the same exactly-once record).
    It must be the very test the handler makes."""

    unit_of_work: Callable[[], SqlUnitOfWork]
    handlers: Mapping[type[Message], Handler]
    no_effect: Mapping[type[Message], NoEffect] = field(default_factory=dict)


@dataclass
class EventConsumer:
    """One consumer group: the handlers of one service, applied once per event."""

    group: str
    db: Database
    unit_of_work: Callable[[], SqlUnitOfWork] | None = None
    handlers: dict[str, Handler] = field(default_factory=dict)
    no_effect: dict[str, NoEffect] = field(default_factory=dict)
    # Told the type of each event applied, and of each event set aside as a dead letter (metrics).
    on_applied: Callable[[str], None] | None = None
    on_dead_lettered: Callable[[str], None] | None = None

    def subscribe(self, subscriptions: Subscriptions) -> None:
        self.unit_of_work = subscriptions.unit_of_work
        for event_cls, handler in subscriptions.handlers.items():
            self.on(event_cls, handler)
        for event_cls, test in subscriptions.no_effect.items():
            self.no_effect[event_cls.DESCRIPTOR.full_name] = test

    def on(self, event_cls: type[Message], handler: Handler) -> None:
        self.handlers[event_cls.DESCRIPTOR.full_name] = handler

    def wants(self, event_type: str) -> bool:
        return event_type in self.handlers

    def _new_unit_of_work(self) -> SqlUnitOfWork:
        if self.unit_of_work is not None:
            return self.unit_of_work()
        from libs.unit_of_work import SqlUnitOfWork

        return SqlUnitOfWork(self.db, source=self.group, clock=SystemClock())

    def handle(self, raw_envelope: bytes) -> bool:
        """Applies the event once. Returns False when it was already handled (a redelivery).

        Only a duplicate of the inbox row means "already handled"; any other error, an IntegrityError of the
        handler's own writes included, is a failure that is retried and then dead-lettered.
        """
        envelope = event_pb2.EventEnvelope.FromString(raw_envelope)
        event_type = event_type_of(envelope)
        handler = self.handlers.get(event_type)
        if handler is None:
            return False
        event = unpack(envelope)
        no_effect = self.no_effect.get(event_type)
        if no_effect is not None and self.db.is_postgres and no_effect(event):
            # Nothing to apply: the inbox row alone, one autocommitted statement (no BEGIN, no COMMIT, no session).
            # SQLite keeps the unit of work, whose writer lock orders the process's writes.
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                marked = self._mark_handled(connection, envelope.event_id)
        else:
            with self._new_unit_of_work() as uow:
                marked = self._mark_handled(uow.session, envelope.event_id)
                if marked:
                    handler(uow, envelope, event)
                    uow.commit()
        if not marked:
            log.info("event already handled", extra={"event_id": envelope.event_id, "group": self.group})
            return False
        if self.on_applied is not None:
            self.on_applied(event_type)
        return True

    def _mark_handled(self, executor: Session | sa.Connection, event_id: str) -> bool:
        """Adds the inbox row; False when this group handled the event already (or is handling it now: the insert
        waits for that transaction, and adds nothing if it commits)."""
        statement = _INBOX_ADD_PG if self.db.is_postgres else _INBOX_ADD_SQLITE
        params = {"consumer_group": self.group, "event_id": event_id, "handled_at": datetime.now(UTC)}
        return executor.execute(statement, params).rowcount == 1

    def dead_letter(self, raw_envelope: bytes, error: BaseException, attempts: int) -> None:
        """Keeps an event the handler could not apply, so it is neither lost nor blocking the group."""
        envelope = event_pb2.EventEnvelope.FromString(raw_envelope)
        log.error(
            "event dead-lettered after %d attempts: %s",
            attempts,
            error,
            extra={"event_id": envelope.event_id, "group": self.group, "event_type": event_type_of(envelope)},
        )
        with self.db.transaction() as session:
            exists = session.execute(
                sa.select(event_dead_letters.c.event_id).where(
                    event_dead_letters.c.consumer_group == self.group,
                    event_dead_letters.c.event_id == envelope.event_id,
                )
            ).first()
            if exists is None:
                session.execute(
                    event_dead_letters.insert().values(
                        consumer_group=self.group,
                        event_id=envelope.event_id,
                        event_type=event_type_of(envelope),
                        envelope=raw_envelope,
                        error=f"{type(error).__name__}: {error}"[:4000],
                        attempts=attempts,
                        failed_at=datetime.now(UTC),
                    )
                )
        if self.on_dead_lettered is not None:
            self.on_dead_lettered(event_type_of(envelope))

    def handle_with_retries(self, raw_envelope: bytes, max_attempts: int = MAX_HANDLING_ATTEMPTS) -> None:
        """In-process delivery: a few quick retries with backoff, then the dead-letter table."""
        retrying = Retrying(
            stop=stop_after_attempt(max_attempts),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            before_sleep=lambda state: log.warning(
                "event handler failed; retrying",
                exc_info=state.outcome.exception() if state.outcome else None,
                extra={"group": self.group, "attempt": state.attempt_number},
            ),
        )
        try:
            retrying(self.handle, raw_envelope)
        except RetryError as failed:
            error = failed.last_attempt.exception() or RuntimeError("event handler failed")
            self.dead_letter(raw_envelope, error, max_attempts)


# One statement and one round trip where a select then an insert were built and sent for each event: ON CONFLICT
# DO NOTHING adds the row or, when the group has it already, nothing (rowcount 0) without failing the transaction.
def _inbox_add(insert: postgresql.Insert | sqlite.Insert) -> postgresql.Insert | sqlite.Insert:
    return (
        insert.values(
            consumer_group=sa.bindparam("consumer_group"),
            event_id=sa.bindparam("event_id"),
            handled_at=sa.bindparam("handled_at"),
        )
        .on_conflict_do_nothing(index_elements=[event_inbox.c.consumer_group, event_inbox.c.event_id])
        .execution_options(preserve_rowcount=True)  # SQLAlchemy keeps an INSERT's rowcount only when asked
    )


_INBOX_ADD_PG = _inbox_add(postgresql.insert(event_inbox))
_INBOX_ADD_SQLITE = _inbox_add(sqlite.insert(event_inbox))


# -- transports -----------------------------------------------------------------------------------


class Transport(Protocol):
    def send(self, event_type: str, raw_envelope: bytes, event_id: str) -> str | None:
        """Hands the event on; returns its position in a store that holds it until every group has read it (None
        when it was delivered there and then)."""
        ...


@runtime_checkable
class LossyTransport(Transport, Protocol):
    """A transport that holds events until every group has read them and may lose what it holds (Redis)."""

    def instance(self) -> str:
        """Which server answers now: another one may not hold what the previous one did."""
        ...

    def read_below(self) -> tuple[str, str] | None:
        """(instance, position): every entry before the position has been read and acknowledged by every group;
        None when that is not known now."""
        ...


class InProcessTransport:
    """Delivers straight to the consumers registered in this process (embedded mode, no Redis)."""

    def __init__(self) -> None:
        self._consumers: list[EventConsumer] = []
        self._lock = threading.Lock()

    def subscribe(self, consumer: EventConsumer) -> None:
        with self._lock:
            self._consumers.append(consumer)

    def unsubscribe(self, consumer: EventConsumer) -> None:
        with self._lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    def send(self, event_type: str, raw_envelope: bytes, event_id: str) -> None:
        with self._lock:
            consumers = list(self._consumers)
        for consumer in consumers:
            if consumer.wants(event_type):
                consumer.handle_with_retries(raw_envelope)


IN_PROCESS = InProcessTransport()


class RedisStreamTransport:
    """Appends to the stream. Entries are trimmed only once every consumer group has acknowledged them, so a
    group that lags (a service down for a day) loses nothing; the groups of every consuming service are created
    up front (and again on a Redis server that lost them), so an event relayed before a service's first start
    still waits for it."""

    TRIM_EVERY = 500  # sends between two trims

    def __init__(self, client: redis.Redis, stream: str = STREAM, groups: tuple[str, ...] = ()):
        self._redis = client
        self._stream = stream
        self._groups = groups
        self._sends = 0
        self._instance = ""
        for group in groups:
            ensure_group(client, stream, group)

    def instance(self) -> str:
        """The Redis server's run id, new at every start of a server: a restart or a failover may have lost
        entries. On a new one the groups are created again before anything is sent to it."""
        run_id = str(self._redis.info("server")["run_id"])
        if run_id != self._instance:
            for group in self._groups:
                ensure_group(self._redis, self._stream, group)
            self._instance = run_id
        return run_id

    def send(self, event_type: str, raw_envelope: bytes, event_id: str) -> str:
        entry = self._redis.xadd(self._stream, {"type": event_type, "event_id": event_id, "envelope": raw_envelope})
        self._sends += 1
        if self._sends % self.TRIM_EVERY == 0:
            trim_acknowledged(self._redis, self._stream, self._groups)
        return stream_position(entry)

    def read_below(self) -> tuple[str, str] | None:
        before = self.instance()
        oldest = oldest_needed(self._redis, self._stream, self._groups)
        if oldest is None or self.instance() != before:  # the answer may come from another server
            return None
        return before, stream_position(oldest)


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def oldest_needed(client: redis.Redis, stream: str, expected_groups: tuple[str, ...] = ()) -> bytes | None:
    """The id of the oldest entry some group has not read and acknowledged yet (every entry before it is done
    with); None when there is no group, or one of the expected groups is missing (its progress is unknown)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream
        return None
    names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}
    if not groups or not set(expected_groups) <= names:
        return None
    needed: list[bytes] = []
    for group in groups:
        # The group may acknowledge its pending entries between the two reads: no oldest pending one then, and
        # the last entry delivered when the groups were read is done with (an older bound: it keeps more).
        oldest_pending = client.xpending(stream, group["name"])["min"] if int(group["pending"]) else None
        if oldest_pending is not None:
            needed.append(oldest_pending)
        else:
            last = group["last-delivered-id"]
            # Entries up to and including the last delivered one are done: keep from the next id on.
            ms, _, seq = (last.decode() if isinstance(last, bytes) else last).partition("-")
            needed.append(f"{ms}-{int(seq or 0) + 1}".encode())
    return min(needed, key=_stream_id)


def trim_acknowledged(client: redis.Redis, stream: str, expected_groups: tuple[str, ...] = ()) -> int:
    """Drops the entries every group has read and acknowledged; returns how many went. Nothing goes while one of
    the expected groups is missing (it may be about to be created, and would need them)."""
    threshold = oldest_needed(client, stream, expected_groups)
    if threshold is None:
        return 0
    return int(client.xtrim(stream, minid=threshold, approximate=False))


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def stream_position(entry_id: bytes | str) -> str:
    """A stream entry id written so that positions compare as text in the order of the stream."""
    ms, seq = _stream_id(entry_id)
    return f"{ms:015d}-{seq:020d}"


# -- relay ----------------------------------------------------------------------------------------


# The relay's statements, built once (one per event was built before: most of the relay's CPU per event).
_UNRELAYED = (
    sa.select(event_outbox)
    .where(event_outbox.c.relayed_at.is_(None))
    .order_by(event_outbox.c.seq)
    .limit(sa.bindparam("batch"))
)
_UNRELAYED_LOCKED = _UNRELAYED.with_for_update(skip_locked=True)
_MARK_RELAYED = (
    event_outbox.update()
    .where(event_outbox.c.seq == sa.bindparam("key_seq"))
    .values(
        relayed_at=sa.bindparam("relayed_at"),
        relayed_to=sa.bindparam("relayed_to"),
        stream_position=sa.bindparam("stream_position"),
    )
)


class OutboxRelay:
    """Moves committed outbox rows to the transport, oldest first.

    On a transport that may lose what it holds (LossyTransport), each relayed row keeps the server that took it
    (`relayed_to`) and its position there (`stream_position`) until every group has read it (`relayed_to` is then
    cleared: settled). When another server answers, the rows the previous one still held are sent again."""

    SETTLE_EVERY_SECONDS = 1.0

    def __init__(self, db: Database, transport: Transport, batch_size: int = 100):
        self._db = db
        self._transport = transport
        self._batch_size = batch_size
        self._lossy = transport if isinstance(transport, LossyTransport) else None
        self._instance: str | None = None
        self._settled_at = 0.0

    def relay_once(self) -> int:
        instance = self._follow_instance()
        if self._db.is_postgres:
            # Replicas relay disjoint batches; the row locks are held while sending, and the batch is marked in
            # one executemany before the commit (a failed send rolls every mark back, as marking each would).
            with self._db.transaction() as session:
                rows = session.execute(_UNRELAYED_LOCKED, {"batch": self._batch_size}).all()
                marks = [self._send(row, instance) for row in rows]
                if marks:
                    session.execute(_MARK_RELAYED, marks)
        else:
            # SQLite has one writer at a time: send outside the read transaction, so an in-process handler
            # writing to the same file is not blocked by the relay.
            with self._db.transaction() as session:
                rows = session.execute(_UNRELAYED, {"batch": self._batch_size}).all()
            for row in rows:
                with self._db.transaction() as session:
                    session.execute(_MARK_RELAYED, self._send(row, instance))
        self._settle()
        return len(rows)

    def _send(self, row: sa.Row, instance: str | None) -> dict[str, Any]:
        """Sends the row's event; the values that mark it relayed (`_MARK_RELAYED`)."""
        position = self._transport.send(row.event_type, row.envelope, row.event_id)
        held = instance is not None and position is not None
        return {
            "key_seq": row.seq,
            "relayed_at": datetime.now(UTC),
            "relayed_to": instance if held else None,
            "stream_position": position if held else None,
        }

    def _follow_instance(self) -> str | None:
        """The server the transport sends to now; when it is not the one this relay last saw (or this relay just
        started), the rows another server still held unread are put back to be sent again."""
        if self._lossy is None:
            return None
        instance = self._lossy.instance()
        if instance != self._instance:
            held_elsewhere = event_outbox.c.relayed_to.is_not(None) & (event_outbox.c.relayed_to != instance)
            with self._db.transaction() as session:
                resent = session.execute(
                    event_outbox.update()
                    .where(held_elsewhere)
                    .values(relayed_at=None, relayed_to=None, stream_position=None)
                ).rowcount
            if resent:
                log.warning(
                    "the event transport changed server; sending again what the previous one had not delivered",
                    extra={"events": resent},
                )
            self._instance = instance
        return instance

    def _settle(self) -> None:
        """Clears `relayed_to` on the rows every group has read: they will never need sending again."""
        if self._lossy is None or time.monotonic() - self._settled_at < self.SETTLE_EVERY_SECONDS:
            return
        self._settled_at = time.monotonic()
        read = self._lossy.read_below()
        if read is None:
            return
        instance, position = read
        with self._db.transaction() as session:
            session.execute(
                event_outbox.update()
                .where(event_outbox.c.relayed_to == instance, event_outbox.c.stream_position < position)
                .values(relayed_to=None, stream_position=None)
            )


class RedisStreamConsumer:
    """Reads the stream for one consumer group and hands each message to an EventConsumer.

    On start it first re-reads its own pending messages (delivered before a crash, never acknowledged),
    and it claims messages left pending by dead consumers of the same group.
    """

    READ_COUNT = 100  # entries per read

    def __init__(
        self,
        client: redis.Redis,
        consumer: EventConsumer,
        *,
        stream: str = STREAM,
        name: str | None = None,
        claim_idle_ms: int = 30_000,
        max_attempts: int = MAX_HANDLING_ATTEMPTS,
    ):
        self._redis = client
        self._consumer = consumer
        self._stream = stream
        self._name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._claim_idle_ms = claim_idle_ms
        self._max_attempts = max_attempts
        # Whether this consumer may hold entries it read and did not acknowledge: true at start (a previous run of
        # this name may have died holding some), and after any poll that left some (a failing handler, an error).
        # Reading them back at every poll was two of a poll's three Redis calls with the claim below.
        self._may_hold_pending = True
        # Entries of dead consumers can be claimed only once idle for claim_idle_ms: looking more often than a
        # fraction of that finds nothing new.
        self._claim_every = min(1.0, claim_idle_ms / 4000)
        self._claimed_at = -float("inf")
        self._ensure_group()

    def _ensure_group(self) -> None:
        ensure_group(self._redis, self._stream, self._consumer.group)

    def _process(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Applies the entries in order and acknowledges those done, in one XACK (an entry applied and not yet
        acknowledged when this process dies is delivered again, and the inbox makes that a no-op). Stops at an
        entry left pending, which is read again (after a pause) before anything newer."""
        done: list[bytes] = []
        pause = None
        try:
            for message_id, fields in entries:
                if fields:  # a trimmed entry comes back empty: nothing to do but acknowledge
                    event_type = fields[b"type"].decode()
                    if self._consumer.wants(event_type):
                        pause = self._apply(message_id, fields[b"envelope"])
                        if pause is not None:
                            break
                done.append(message_id)
        finally:
            if done:
                self._redis.xack(self._stream, self._consumer.group, *done)
        if pause is not None:
            time.sleep(pause)  # after the acknowledgement: what was done is not claimed by another replica meanwhile
        return len(done)

    def _apply(self, message_id: bytes, raw_envelope: bytes) -> float | None:
        """None when the entry may be acknowledged (applied, a redelivery, or dead-lettered); otherwise how long to
        pause before it is read again."""
        try:
            self._consumer.handle(raw_envelope)
            return None
        except Exception as exc:
            attempts = self._deliveries(message_id)
            if attempts >= self._max_attempts:
                self._consumer.dead_letter(raw_envelope, exc, attempts)
                return None
            log.warning(
                "event handler failed; will retry",
                exc_info=True,
                extra={"group": self._consumer.group, "attempt": attempts},
            )
            # The attempts live in Redis (they survive a restart of this process), so the pause is computed
            # from them here rather than by an in-memory retry loop.
            return min(0.1 * 2**attempts, 5.0)

    def _deliveries(self, message_id: bytes) -> int:
        """How many times the stream delivered this entry to the group (XPENDING's delivery counter)."""
        pending = self._redis.xpending_range(
            self._stream, self._consumer.group, min=message_id, max=message_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    def poll_once(self, block_ms: int = 1000) -> int:
        try:
            return self._poll(block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The group is gone (Redis restarted without persistence, or failed over): made again from the start
            # of the stream, whose entries this group has not read on this server. The relays send again what the
            # previous server held unread.
            log.warning("consumer group missing; creating it again", extra={"group": self._consumer.group})
            self._ensure_group()
            return 0

    def _poll(self, block_ms: int) -> int:
        # Until this poll has left nothing pending, this consumer may hold some (an error on the way leaves it so).
        holding, self._may_hold_pending = self._may_hold_pending, True
        done = 0
        left = False  # whether some entry read here was left pending
        # 1. Our own pending entries (we crashed after reading, before acknowledging, or a handler failed).
        if holding:
            pending = self._redis.xreadgroup(
                self._consumer.group, self._name, {self._stream: "0"}, count=self.READ_COUNT
            )
            for _stream, entries in pending or []:
                processed = self._process(entries)
                done += processed
                left |= processed < len(entries) or len(entries) == self.READ_COUNT  # or more not read yet
        # 2. Entries of consumers that died.
        if time.monotonic() - self._claimed_at >= self._claim_every:
            _next, claimed, *_ = self._redis.xautoclaim(
                self._stream, self._consumer.group, self._name, min_idle_time=self._claim_idle_ms, count=self.READ_COUNT
            )
            self._claimed_at = time.monotonic()
            processed = self._process(claimed)
            done += processed
            left |= processed < len(claimed)
        # 3. New entries.
        fresh = self._redis.xreadgroup(
            self._consumer.group, self._name, {self._stream: ">"}, count=self.READ_COUNT, block=block_ms
        )
        for _stream, entries in fresh or []:
            processed = self._process(entries)
            done += processed
            left |= processed < len(entries)
        self._may_hold_pending = left
        return done
