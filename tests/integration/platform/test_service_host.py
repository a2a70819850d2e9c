"""How services start and stop in one process (the embedded layout): no event lost at start or at stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2 as ippool_events
from libs import events
from libs.auth import ensure_local_keys
from libs.clock import FakeClock
from libs.config import Settings
from libs.server import ServiceHost, start_all, stop_all
from libs.service_catalog import definition_of
from libs.tables import event_outbox
from tests.harness.servers import free_port, wait_until

pytestmark = pytest.mark.integration


def _settings(data_dir: Path) -> Settings:
    ports = {}
    for stem in ("ippool", "reputation"):
        ports[f"{stem}_grpc_port"] = free_port()
        ports[f"{stem}_metrics_port"] = free_port()
    settings = Settings(
        data_dir=data_dir, redis_url="", database_url="", shutdown_drain_seconds=0, shutdown_grace_seconds=1, **ports
    )
    ensure_local_keys(settings.private_key_path, settings.jwks_path)
    return settings


def _watched(host: ServiceHost) -> set[str]:
    with host.runtime.db.transaction() as session:
        rows = session.execute(sa.text("SELECT address FROM monitored_ips")).all()
    return {row.address for row in rows}


def _registered(address: str) -> ippool_events.IpRegistered:
    return ippool_events.IpRegistered(address=address, tenant_id="sos-expat")


def test_events_lost_at_start_in_the_embedded_layout(tmp_path: Path) -> None:
    """An event already in ip-pool's outbox when the product starts reaches reputation, which starts after it."""
    settings = _settings(tmp_path)
    ippool = ServiceHost(definition_of("ip-pool"), settings, FakeClock())
    reputation = ServiceHost(definition_of("reputation"), settings, FakeClock())
    with ippool.runtime.db.transaction() as session:
        events.publish(session, source="ip-pool", tenant_id="sos-expat", event=_registered("192.0.2.51"))
    hosts = [ippool, reputation]  # ip-pool first, as `emailengine run` starts them
    start_all(hosts)
    try:
        wait_until(lambda: "192.0.2.51" in _watched(reputation), 10, "reputation learns the IP")
    finally:
        stop_all(hosts)


def test_shutdown_relays_what_the_last_calls_committed(tmp_path: Path) -> None:
    """Intake stops first; an event committed by a call that was still running is relayed before closing."""
    settings = _settings(tmp_path)
    ippool = ServiceHost(definition_of("ip-pool"), settings, FakeClock())
    reputation = ServiceHost(definition_of("reputation"), settings, FakeClock())
    hosts = [ippool, reputation]
    start_all(hosts)
    for host in hosts:
        host.stop_intake()
    # What an in-flight call commits during the grace period, after the relay's last regular pass.
    with ippool.runtime.db.transaction() as session:
        events.publish(session, source="ip-pool", tenant_id="sos-expat", event=_registered("192.0.2.52"))
    for host in hosts:
        host.flush_events()
    assert "192.0.2.52" in _watched(reputation)
    with ippool.runtime.db.transaction() as session:
        unrelayed = session.execute(sa.select(event_outbox.c.event_id).where(event_outbox.c.relayed_at.is_(None)))
        assert unrelayed.all() == []
    for host in hosts:
        host.close()


def test_the_public_health_call_names_no_internal_address(tmp_path: Path) -> None:
    """With every service down, GetHealth (callable without a token) says UNAVAILABLE, not where it looked."""
    from libs.db import connect
    from libs.platform_service import PlatformServicer

    settings = _settings(tmp_path)
    db = connect(settings, "ip-pool")
    servicer = PlatformServicer("ip-pool", settings, db)
    try:
        reply = servicer.GetHealth(None, None)  # type: ignore[arg-type]
    finally:
        db.dispose()
    assert reply.status == "DEGRADED"
    for service in reply.services:
        assert service.status == "UNKNOWN"
        assert "127.0.0.1" not in service.detail and ":" not in service.detail, service.detail
