"""A relay or a consumer in its own process, for the crash tests; it can die at a chosen moment.

  python -m tests.integration.platform.event_worker relay|consume
Environment: PRODUCER_URL, CONSUMER_URL (PostgreSQL), REDIS_URL, CRASH_AFTER (die with os._exit after that
many sends/handles, before acknowledging), RUN_SECONDS.
"""

from __future__ import annotations

import os
import sys
import time

import redis
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2
from libs import events
from libs.config import Settings
from libs.db import connect
from libs.unit_of_work import SqlUnitOfWork

effects = sa.Table(
    "effects",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
)


def main(mode: str) -> None:
    crash_after = int(os.environ.get("CRASH_AFTER", "0"))
    deadline = time.monotonic() + float(os.environ.get("RUN_SECONDS", "30"))
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    settings = Settings()
    done = 0
    if mode == "relay":
        db = connect(settings, "producer", url=os.environ["PRODUCER_URL"])

        class CrashingTransport(events.RedisStreamTransport):
            def send(self, event_type: str, raw_envelope: bytes, event_id: str) -> str:
                nonlocal done
                position = super().send(event_type, raw_envelope, event_id)
                done += 1
                if crash_after and done >= crash_after:
                    os._exit(17)  # sent to Redis, not yet marked relayed
                return position

        relay = events.OutboxRelay(db, CrashingTransport(client), batch_size=7)
        while time.monotonic() < deadline:
            if not relay.relay_once():
                time.sleep(0.05)
    else:
        db = connect(settings, "consumer", url=os.environ["CONSUMER_URL"])
        consumer = events.EventConsumer(group="consumer", db=db)

        def apply(uow: SqlUnitOfWork, envelope: object, _event: object) -> None:
            uow.session.execute(effects.insert().values(event_id=envelope.event_id))  # type: ignore[attr-defined]

        consumer.on(events_pb2.IpRegistered, apply)
        original = consumer.handle

        def crashing_handle(raw: bytes) -> bool:
            nonlocal done
            result = original(raw)
            done += 1
            if crash_after and done >= crash_after:
                os._exit(17)  # handled and committed, not yet acknowledged in Redis
            return result

        consumer.handle = crashing_handle  # type: ignore[method-assign]
        reader = events.RedisStreamConsumer(client, consumer, name="worker-1", claim_idle_ms=500)
        while time.monotonic() < deadline:
            reader.poll_once(block_ms=200)


if __name__ == "__main__":
    main(sys.argv[1])
