"""The system the fault tests break: the production layout (each service in two replica processes behind the real
Envoy, on a PostgreSQL cluster and a Redis server of their own, which the tests may stop and start), with every
peer it talks to: the strict MailWizz stand-in over a real MariaDB, the Telegram Bot API stand-in, nsd and rbldnsd.

Tenants: `sos-expat` has the MailWizz binding and two sending IPs on `pmta-a` (campaigns); `ulixai` has a Telegram
route to its chat (alerts); `acme` holds the IPs and the tenant record the load tests pause, resume and update (no
route: its alerts are stored, never sent). Two PowerMTA nodes (`pmta-a`, `pmta-b`: real sshd with the stand-in
`pmta`) are registered, and a campaign-gateway RQ worker runs its jobs (deploys, queue commands, quota syncs).

`consistent()` is what every fault test ends with: nothing left in any outbox, every event applied by every
consumer group that wants it (its inbox), nothing dead-lettered, nothing pending or unread in the stream.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from libs.clock import ShiftedClock
from libs.config import SERVICE_NAMES
from libs.db import schema_name
from libs.events import STREAM, event_type_of
from libs.service_catalog import definitions
from libs.tables import event_dead_letters, event_inbox, event_outbox
from tests.harness.dns_servers import Rbldnsd
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import PostgresServer, RedisServer, Stack, wait_until
from tests.harness.ssh_server import PmtaNodeServer
from tests.integration.reputation.service import LIVE
from tests.standins.mailwizz_api import Customer, MailwizzApiStandIn
from tests.standins.telegram_bot_api import TelegramBotApiStandIn

ULIXAI_CHAT = -1002000000002
CAMPAIGN_IPS = ("192.0.2.40", "192.0.2.41")
LOAD_TENANT = "acme"
REPLICAS = 2
PMTA_NODES = ("pmta-a", "pmta-b")
ZEN_PLACEHOLDER = "192.0.2.255 :127.0.0.2:placeholder"  # what start_rbldnsd puts in the live dataset


class _Anything:
    """Stands for a service's application when asking only which events it subscribes to."""

    def __getattr__(self, _name: str) -> _Anything:
        return self

    def __call__(self, *_args: object, **_kwargs: object) -> _Anything:
        return self


@cache
def consumers_of() -> dict[str, tuple[str, ...]]:
    """Event type -> the consumer groups (services) that apply it, from the services' own subscriptions."""
    wanted: dict[str, list[str]] = {}
    for name, definition in definitions().items():
        if definition.subscriptions is None:
            continue
        for event_cls in definition.subscriptions(_Anything()).handlers:
            wanted.setdefault(event_cls.DESCRIPTOR.full_name, []).append(name)
    return {event_type: tuple(groups) for event_type, groups in wanted.items()}


@dataclass
class Inconsistency:
    """What `consistent()` found wrong, by kind; empty when the system is consistent."""

    unrelayed: dict[str, int] = field(default_factory=dict)
    unapplied: dict[str, list[str]] = field(default_factory=dict)  # group -> event ids (type) not in its inbox
    dead_letters: dict[str, int] = field(default_factory=dict)
    stream: dict[str, str] = field(default_factory=dict)  # group -> what is pending or unread

    def __bool__(self) -> bool:
        return bool(self.unrelayed or self.unapplied or self.dead_letters or self.stream)


@dataclass
class FaultWorld:
    stack: Stack
    postgres: PostgresServer
    redis: RedisServer
    mariadb: MariadbServer
    telegram: TelegramBotApiStandIn
    mailwizz: MailwizzApiStandIn
    customer: Customer
    mailwizz_engine: sa.Engine
    pmta_nodes: list[PmtaNodeServer]
    rbl: Rbldnsd | None = None
    clock_file: Path | None = None
    """EE_CLOCK_OFFSET_FILE of every process: `shift_clock` moves them all."""
    tokens: dict[str, str] = field(default_factory=dict)
    _engines: dict[str, sa.Engine] = field(default_factory=dict)

    # -- calls through the gateway -------------------------------------------------------------

    def rest(self, method: str, path: str, token: str = "admin", timeout: float = 30, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.request(method, f"{self.stack.gateway}{path}", headers=headers, timeout=timeout, **kwargs)

    # -- the outside world the loop watches -----------------------------------------------------

    def set_listed(self, addresses: Collection[str]) -> None:
        """Spamhaus ZEN (the test zone's live dataset) lists exactly these addresses from now on (SBL, a listing
        that puts an IP in standby); returns once rbldnsd serves the new zone."""
        assert self.rbl is not None
        listed = [f"{a} :127.0.0.2:Listed in the SBL, see https://check.spamhaus.org/" for a in addresses]
        lines = [ZEN_PLACEHOLDER, *listed]
        self.rbl.update(LIVE["spamhaus-zen"], lines)

    def shift_clock(self, to: datetime) -> timedelta:
        """Every service process's clock reads `to` from now on (and runs on from it); returns the offset."""
        assert self.clock_file is not None
        offset = to - datetime.now(UTC)
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{offset.total_seconds():.3f}\n")
        os.replace(tmp, self.clock_file)
        return offset

    def now(self) -> datetime:
        """What the services' clocks read now."""
        assert self.clock_file is not None
        return ShiftedClock(self.clock_file).now()

    def pmta_node(self, name: str) -> PmtaNodeServer:
        return next(node for node in self.pmta_nodes if node.name == name)

    def delivery_server(self, address: str) -> sa.Row | None:
        """The IP's row in MailWizz's delivery_server table (found by its VMTA in meta_data), or None."""
        vmta = f"vmta-{address.replace('.', '-')}".encode()
        with self.mailwizz_engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT hostname, meta_data, status, hourly_quota, daily_quota FROM mw_delivery_server")
            ).all()
        return next((row for row in found if vmta in (row.meta_data or b"")), None)

    # -- the services' own databases -----------------------------------------------------------

    def db(self, service: str) -> sa.Engine:
        """The service's schema, read directly (what the API does not show: outbox, inbox, dead letters)."""
        if service not in self._engines:
            url = self.stack.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
            self._engines[service] = sa.create_engine(
                url, connect_args={"options": f"-csearch_path={schema_name(service)}"}, pool_pre_ping=True
            )
        return self._engines[service]

    def rows(self, service: str, query: sa.Executable | str, **params: Any) -> list[sa.Row]:
        statement = sa.text(query) if isinstance(query, str) else query
        with self.db(service).connect() as connection:
            return list(connection.execute(statement, params))

    def events(self, service: str, event_type: str | None = None) -> list[tuple[str, str, bytes]]:
        """(event_id, event_type, envelope) of every event the service published, oldest first."""
        query = sa.select(event_outbox.c.event_id, event_outbox.c.event_type, event_outbox.c.envelope).order_by(
            event_outbox.c.seq
        )
        if event_type is not None:
            query = query.where(event_outbox.c.event_type == event_type)
        return [(r.event_id, r.event_type, r.envelope) for r in self.rows(service, query)]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    # -- consistency ---------------------------------------------------------------------------

    def inconsistency(self) -> Inconsistency:
        found = Inconsistency()
        wanted = consumers_of()
        inboxes: dict[str, set[str]] = {}
        for service in SERVICE_NAMES:
            rows = self.rows(service, sa.select(event_inbox.c.event_id).where(event_inbox.c.consumer_group == service))
            inboxes[service] = {r.event_id for r in rows}
            letters = self.rows(service, sa.select(sa.func.count()).select_from(event_dead_letters))[0][0]
            if letters:
                found.dead_letters[service] = letters
        for service in SERVICE_NAMES:
            unrelayed = self.rows(
                service,
                sa.select(sa.func.count()).select_from(event_outbox).where(event_outbox.c.relayed_at.is_(None)),
            )[0][0]
            if unrelayed:
                found.unrelayed[service] = unrelayed
            for event_id, event_type, _ in self.events(service):
                for group in wanted.get(event_type, ()):
                    if event_id not in inboxes[group]:
                        found.unapplied.setdefault(group, []).append(f"{event_id} ({event_type})")
        client = redis.Redis.from_url(self.redis.url)
        try:
            groups = {g["name"].decode(): g for g in client.xinfo_groups(STREAM)} if client.exists(STREAM) else {}
        finally:
            client.close()
        for group in {g for groups_ in wanted.values() for g in groups_}:
            info = groups.get(group)
            if info is None:
                found.stream[group] = "no consumer group on the stream"
            elif info["pending"] or info.get("lag"):
                found.stream[group] = f"{info['pending']} pending, {info.get('lag')} unread"
        return found

    def consistent(self, timeout: float = 60) -> Inconsistency:
        """Waits until the system is consistent and returns what is still wrong when the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.inconsistency()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    # -- notifier ------------------------------------------------------------------------------

    def alerts_by_key(self, tenant: str, prefix: str) -> dict[str, Counter[str]]:
        """dedup key -> delivery states of the alerts stored under it (for keys starting with `prefix`)."""
        rows = self.rows(
            "notifier",
            "SELECT dedup_key, delivery_state FROM alerts WHERE tenant_id = :tenant AND dedup_key LIKE :prefix",
            tenant=tenant,
            prefix=f"{prefix}%",
        )
        found: dict[str, Counter[str]] = {}
        for key, state in rows:
            found.setdefault(key, Counter())[state] += 1
        return found


def describe(found: Inconsistency) -> str:
    return json.dumps(
        {
            "unrelayed outbox rows": found.unrelayed,
            "events not applied": {g: [*ids[:5], f"... {len(ids)} in all"] for g, ids in found.unapplied.items()},
            "dead letters": found.dead_letters,
            "stream": found.stream,
        },
        indent=1,
    )


def replicas_of(world: FaultWorld, service: str) -> list[str]:
    return world.stack.replicas_of(service)


def serving(world: FaultWorld, replica: str) -> bool:
    """The replica's own health (straight to its port, not through Envoy)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{world.stack.grpc_port_of(replica)}")
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def restart(world: FaultWorld, replica: str) -> None:
    """Starts the replica again and waits until it serves."""
    world.stack.start_service(replica)
    wait_until(lambda: serving(world, replica), 30, f"{replica} serving again")


def every_event_type(envelope: bytes) -> str:
    from emailengine.platform.v1 import event_pb2

    return event_type_of(event_pb2.EventEnvelope.FromString(envelope))


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
