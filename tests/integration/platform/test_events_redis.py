"""Acceptance: an event written with a change in one service reaches a subscriber in another exactly once
per consumer group, also when the relay or the subscriber is killed half-way and restarted (real Redis,
real PostgreSQL, separate processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2
from libs import events
from libs.config import Settings
from libs.db import Database, connect, migrate
from tests.harness.servers import PostgresServer, RedisServer
from tests.integration.platform.event_worker import effects

MIGRATIONS = Path(__file__).parents[3] / "services" / "reputation" / "reputation" / "adapters" / "migrations"
EVENTS = 60

pytestmark = pytest.mark.integration


def _db(postgres: PostgresServer, name: str, tmp_path: Path, service: str = "consumer") -> Database:
    postgres.create_database(name)
    url = postgres.url_for(name).replace("postgresql://", "postgresql+psycopg://")
    db = connect(Settings(data_dir=tmp_path), service, url=url)
    migrate(db, MIGRATIONS)
    return db


def _worker(mode: str, env: dict[str, str], crash_after: int = 0, seconds: float = 30) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.platform.event_worker", mode],
        env={**env, "CRASH_AFTER": str(crash_after), "RUN_SECONDS": str(seconds)},
    )


def test_exactly_once_per_group_across_relay_and_consumer_crashes(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    suffix = tmp_path.name[-8:].replace("-", "_")
    producer = _db(postgres, f"prod_{suffix}", tmp_path, service="producer")
    consumer = _db(postgres, f"cons_{suffix}", tmp_path)
    effects.metadata.create_all(consumer.engine)
    stream_client = __import__("redis").Redis.from_url(redis_server.url)
    stream_client.delete(events.STREAM)
    env = {
        **os.environ,
        "PRODUCER_URL": str(producer.engine.url.render_as_string(hide_password=False)),
        "CONSUMER_URL": str(consumer.engine.url.render_as_string(hide_password=False)),
        "REDIS_URL": redis_server.url,
    }
    with producer.transaction() as session:
        for n in range(EVENTS):
            events.publish(
                session,
                source="ip-pool",
                tenant_id="t",
                event=events_pb2.IpRegistered(address=f"192.0.2.{n}", tenant_id="t"),
            )

    # The relay dies right after its 10th send, before marking it relayed; the consumer dies right after
    # handling its 5th event, before acknowledging it. Both are restarted.
    assert _worker("relay", env, crash_after=10).wait(60) == 17
    assert _worker("consume", env, crash_after=5).wait(60) == 17
    relay = _worker("relay", env, seconds=5)
    consume = _worker("consume", env, seconds=5)
    relay.wait(60)
    consume.wait(60)

    with producer.transaction() as session:
        unrelayed = session.execute(
            sa.select(sa.func.count())
            .select_from(events.event_outbox)
            .where(events.event_outbox.c.relayed_at.is_(None))
        ).scalar()
    assert unrelayed == 0
    assert stream_client.xlen(events.STREAM) > EVENTS  # the crash made the relay send some twice
    with consumer.transaction() as session:
        per_event = session.execute(sa.select(effects.c.event_id, sa.func.count()).group_by(effects.c.event_id)).all()
    assert len(per_event) == EVENTS
    assert {count for _, count in per_event} == {1}
    pending = stream_client.xpending(events.STREAM, "consumer")
    assert pending["pending"] == 0


def test_each_consumer_group_gets_every_event(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    suffix = tmp_path.name[-8:].replace("-", "_")
    producer = _db(postgres, f"p2_{suffix}", tmp_path)
    groups = {name: _db(postgres, f"{name}_{suffix}", tmp_path) for name in ("reputation", "notifier")}
    client = redis.Redis.from_url(redis_server.url)
    stream = f"ee:test:{suffix}"
    seen: dict[str, list[str]] = {name: [] for name in groups}
    readers = []
    for name, db in groups.items():
        consumer = events.EventConsumer(group=name, db=db)
        consumer.on(events_pb2.IpRegistered, lambda _s, _e, ev, name=name: seen[name].append(ev.address))
        readers.append(events.RedisStreamConsumer(client, consumer, stream=stream))
    with producer.transaction() as session:
        for n in range(5):
            events.publish(
                session, source="ip-pool", tenant_id="t", event=events_pb2.IpRegistered(address=f"198.51.100.{n}")
            )
    events.OutboxRelay(producer, events.RedisStreamTransport(client, stream=stream)).relay_once()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(v) < 5 for v in seen.values()):
        for reader in readers:
            reader.poll_once(block_ms=100)
    assert seen == {name: [f"198.51.100.{n}" for n in range(5)] for name in groups}


def test_a_poison_event_is_dead_lettered_and_the_group_moves_on(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    suffix = tmp_path.name[-8:].replace("-", "_")
    producer = _db(postgres, f"p3_{suffix}", tmp_path, service="producer")
    consumer_db = _db(postgres, f"c3_{suffix}", tmp_path)
    client = redis.Redis.from_url(redis_server.url)
    stream = f"ee:poison:{suffix}"
    applied: list[str] = []

    def handler(_s: object, _e: object, ev: events_pb2.IpRegistered) -> None:
        if ev.address == "203.0.113.66":
            raise ValueError("poison")
        applied.append(ev.address)

    consumer = events.EventConsumer(group="poison", db=consumer_db)
    consumer.on(events_pb2.IpRegistered, handler)
    reader = events.RedisStreamConsumer(client, consumer, stream=stream, max_attempts=3)
    with producer.transaction() as session:
        for address in ("203.0.113.66", "203.0.113.67"):
            events.publish(session, source="ip-pool", tenant_id="t", event=events_pb2.IpRegistered(address=address))
    events.OutboxRelay(producer, events.RedisStreamTransport(client, stream=stream)).relay_once()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not applied:
        reader.poll_once(block_ms=100)
    assert applied == ["203.0.113.67"]
    assert client.xpending(stream, "poison")["pending"] == 0
    with consumer_db.transaction() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(events.event_dead_letters)).scalar() == 1


def test_the_stream_is_never_trimmed_past_a_lagging_group(redis_server: RedisServer) -> None:
    """Only what every consumer group has read and acknowledged is dropped (not 'about a million entries')."""
    client = redis.Redis.from_url(redis_server.url)
    stream = f"ee:trim:{uuid.uuid4().hex[:8]}"
    transport = events.RedisStreamTransport(client, stream=stream, groups=("fast", "lagging"))
    for i in range(10):
        transport.send("t", b"x", f"e{i}")
    for group, count in (("fast", 10), ("lagging", 3)):
        read = client.xreadgroup(group, "c1", {stream: ">"}, count=count)
        client.xack(stream, group, *[entry_id for entry_id, _ in read[0][1]])
    client.xreadgroup("lagging", "c1", {stream: ">"}, count=2)  # read, not yet acknowledged
    assert events.trim_acknowledged(client, stream) == 3
    assert client.xlen(stream) == 7
    rest = client.xreadgroup("lagging", "c2", {stream: ">"})
    assert len(rest[0][1]) == 5  # nothing the lagging group still needs was dropped


def test_a_group_acknowledging_while_the_stream_is_measured_is_no_failure(redis_server: RedisServer) -> None:
    """The group counts pending entries when the groups are read and has acknowledged them all when its pending
    entries are read (a consumer working meanwhile): the relay's measure answers, and keeps what is not done."""
    client = redis.Redis.from_url(redis_server.url)
    stream = f"ee:race:{uuid.uuid4().hex[:8]}"
    transport = events.RedisStreamTransport(client, stream=stream, groups=("busy",))
    for i in range(5):
        transport.send("t", b"x", f"e{i}")
    read = client.xreadgroup("busy", "c1", {stream: ">"}, count=3)
    delivered = [entry_id for entry_id, _ in read[0][1]]

    class AcknowledgingMeanwhile(redis.Redis):
        def xinfo_groups(self, name: str) -> list[dict[str, object]]:
            groups = client.xinfo_groups(name)
            client.xack(stream, "busy", *delivered)  # the consumer acknowledges right after
            return groups

    racing = AcknowledgingMeanwhile.from_url(redis_server.url)
    oldest = events.oldest_needed(racing, stream, ("busy",))
    assert oldest is not None
    assert events.trim_acknowledged(client, stream, ("busy",)) == 3
    assert client.xlen(stream) == 2  # the two entries the group has not read are kept


def test_the_redis_rate_limit_is_shared_by_replicas(redis_server: RedisServer) -> None:
    from libs.errors import ResourceExhausted
    from libs.rate_limit import Limit, RedisRateLimiter

    client = redis.Redis.from_url(redis_server.url)
    replicas = [RedisRateLimiter(client, prefix=f"ee:rate:{uuid.uuid4().hex[:6]}:")] * 2
    limit = Limit("scans", per_minute=1, burst=2)
    replicas[0].acquire("sos-expat", limit, what="ScanTenant")
    replicas[1].acquire("sos-expat", limit, what="ScanTenant")
    with pytest.raises(ResourceExhausted) as refused:
        replicas[0].acquire("sos-expat", limit, what="ScanTenant")
    assert 55 <= refused.value.retry_after_seconds <= 60
    replicas[1].acquire("ulixai", limit, what="ScanTenant")


def test_a_redis_restarted_empty_loses_no_event_and_applies_none_twice(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Redis keeps nothing across a restart here. Entries one group had not read are sent again by the relay (the
    other group skips them: already in its inbox), the consumers recreate their vanished groups, and entries every
    group had read are never sent again."""
    server = RedisServer().start()
    try:
        suffix = tmp_path.name[-8:].replace("-", "_")
        producer = _db(postgres, f"p5_{suffix}", tmp_path, service="producer")
        client = redis.Redis.from_url(server.url)
        stream = f"ee:restart:{suffix}"
        applied: dict[str, list[str]] = {"fast": [], "slow": []}
        readers = {}
        for group in applied:
            consumer = events.EventConsumer(group=group, db=_db(postgres, f"{group}5_{suffix}", tmp_path))
            consumer.on(events_pb2.IpRegistered, lambda _s, _e, ev, group=group: applied[group].append(ev.address))
            readers[group] = events.RedisStreamConsumer(client, consumer, stream=stream)
        relay = events.OutboxRelay(producer, events.RedisStreamTransport(client, stream=stream, groups=tuple(applied)))

        def publish(*addresses: str) -> None:
            with producer.transaction() as session:
                for address in addresses:
                    event = events_pb2.IpRegistered(address=address)
                    events.publish(session, source="ip-pool", tenant_id="t", event=event)
            relay.relay_once()

        def read(group: str, count: int) -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(applied[group]) < count:
                readers[group].poll_once(block_ms=100)

        def held() -> int:
            relay._settled_at = 0.0  # settle now rather than within the second
            relay.relay_once()
            with producer.transaction() as session:
                query = sa.select(sa.func.count()).where(events.event_outbox.c.relayed_to.is_not(None))
                return int(session.execute(query).scalar_one())

        publish("192.0.2.1", "192.0.2.2")
        read("fast", 2)
        read("slow", 2)
        assert held() == 0  # both groups read them: never to be sent again
        publish("192.0.2.3", "192.0.2.4")
        read("fast", 4)
        assert held() == 2  # the slow group has not read them yet

        server.halt()
        server.start_again()
        publish("192.0.2.5")  # the relay sees another server: the two held ones go again, before this one
        read("fast", 5)
        read("slow", 5)
        addresses = [f"192.0.2.{n}" for n in range(1, 6)]
        assert applied == {"fast": addresses, "slow": addresses}
        assert held() == 0

        server.halt()
        server.start_again()
        assert relay.relay_once() == 0  # nothing held: nothing sent again
        assert client.xlen(stream) == 0
    finally:
        server.stop()
