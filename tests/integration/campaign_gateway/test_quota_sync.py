"""MailWizz's delivery servers kept in step with the IP pool (acceptance 3), among real peers (gateway_world.py):
ip-pool's events reach the gateway in process, whose job writes MailWizz's real delivery_server table in MariaDB.

A watcher reads the table all along each test: at no moment is a row active with a quota of 0."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.protobuf import field_mask_pb2

from campaign_gateway import jobs
from campaign_gateway.adapters.mailwizz_db import headers_from_meta
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import events_pb2 as campaign_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.platform.v1 import event_pb2
from libs.tables import event_outbox
from tests.harness.dns_servers import Nsd, Rbldnsd
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import wait_until
from tests.integration.campaign_gateway.gateway_world import PMTA_NODE, TENANT, World, running_world, start_zones
from tests.integration.reputation.service import start_rbldnsd

pytestmark = pytest.mark.integration

IP = "192.0.2.30"
OTHER = "192.0.2.31"


class ZeroQuotaWatcher:
    """Reads the table in a loop and keeps every row it ever saw active (or in use) with a quota of 0."""

    def __init__(self, world: World):
        self._engine = world.engine
        self.violations: list[tuple] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        query = sa.text(
            "SELECT server_id, status, hourly_quota, daily_quota FROM mw_delivery_server"
            " WHERE status IN ('active', 'in-use') AND (hourly_quota = 0 OR daily_quota = 0)"
        )
        while not self._stop.is_set():
            try:
                with self._engine.connect() as connection:
                    self.violations.extend(tuple(row) for row in connection.execute(query))
                self.reads += 1
            except sa.exc.DBAPIError:
                pass  # a test moved the table away for a moment
            time.sleep(0.01)

    def __enter__(self) -> ZeroQuotaWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def zones() -> Iterator[Nsd]:
    server = start_zones()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    yield server
    server.cleanup()


@pytest.fixture
def world(tmp_path: Path, mariadb: MariadbServer, zones: Nsd, rbl: Rbldnsd) -> Iterator[World]:
    with running_world(tmp_path, mariadb, zones=zones, rbl=rbl) as running:
        with ZeroQuotaWatcher(running) as watcher:
            yield running
        assert watcher.reads > 0 and watcher.violations == []


def row_of(world: World, address: str) -> dict | None:
    vmta = "vmta-" + address.replace(".", "-")
    for row in world.rows():
        if dict(headers_from_meta(row["meta_data"]) or []).get("X-Virtual-MTA") == vmta:
            return row
    return None


def wait_for(world: World, address: str, what: str, check: object) -> tuple[dict, float]:
    """Waits (10 s at most) until the IP's row passes `check`; returns it and how long it took."""
    started = time.monotonic()
    wait_until(lambda: (row := row_of(world, address)) is not None and check(row), 10, what)  # type: ignore[operator]
    return row_of(world, address), time.monotonic() - started  # type: ignore[return-value]


def set_window(world: World, start: int, end: int) -> None:
    world.ippool.call(
        "UpdateTenant",
        ippool_pb.UpdateTenantRequest(
            tenant=ippool_pb.Tenant(
                tenant_id=TENANT, time_zone="UTC", sending_window_start_hour=start, sending_window_end_hour=end
            ),
            update_mask=field_mask_pb2.FieldMask(
                paths=["time_zone", "sending_window_start_hour", "sending_window_end_hour"]
            ),
        ),
    )


def test_a_registered_ip_gets_its_row_inactive_and_it_is_active_only_with_a_quota(world: World) -> None:
    set_window(world, 10, 18)  # it is 09:00 UTC: outside the window, no hourly quota yet
    world.register(IP, schedule="default")
    row, _ = wait_for(world, IP, "the new IP's row", lambda r: True)
    assert (row["type"], row["hostname"], row["port"], row["customer_id"]) == ("smtp-pmta", "pmta1.internal", 2525, 1)
    assert headers_from_meta(row["meta_data"]) == [("X-Virtual-MTA", "vmta-192-0-2-30")]
    assert (row["status"], row["hourly_quota"], row["daily_quota"]) == ("inactive", 1, 50)
    world.clock.advance(timedelta(hours=1, minutes=30))  # 10:30: inside the window
    assert jobs.sync_quotas(world.app) == 1
    row = row_of(world, IP)
    assert (row["status"], row["hourly_quota"], row["daily_quota"]) == ("active", 7, 50)  # ceil(50 / 8 hours)


def test_standby_makes_the_row_inactive_within_seconds_and_retiring_disables_it(world: World) -> None:
    world.register(IP)
    world.register(OTHER)
    wait_for(world, IP, "the row active", lambda r: r["status"] == "active")
    wait_for(world, OTHER, "the other row active", lambda r: r["status"] == "active")
    world.ippool.call("RecordListing", ippool_pb.RecordListingRequest(address=IP, zone="zen.spamhaus.org", listed=True))
    row, took = wait_for(world, IP, "the standby IP's row inactive", lambda r: r["status"] == "inactive")
    print(f"standby -> inactive in {took:.2f} s")
    assert row["hourly_quota"] >= 1 and row["daily_quota"] >= 1
    assert row_of(world, OTHER)["status"] == "active"  # type: ignore[index]
    world.ippool.call("RetireIp", ippool_pb.RetireIpRequest(address=OTHER, reason="end of contract"))
    row, _ = wait_for(world, OTHER, "the retired IP's row disabled", lambda r: r["status"] == "disabled")
    assert len(world.rows()) == 2  # disabled, never deleted


def test_a_row_with_a_mailwizz_warmup_plan_is_left_alone_and_reported_once(world: World) -> None:
    world.register(IP)
    row, _ = wait_for(world, IP, "the row active", lambda r: r["status"] == "active")
    world.query(
        "INSERT INTO mw_delivery_server_warmup_plan (name, date_added, last_updated) VALUES ('mw', NOW(), NOW())"
    )
    world.query(
        "UPDATE mw_delivery_server SET warmup_plan_id = 1, hourly_quota = 7, daily_quota = 70,"
        " last_updated = '2025-01-01 00:00:00' WHERE server_id = %s",
        row["server_id"],
    )
    report = world.call("SyncQuotas", pb.SyncQuotasRequest(tenant=TENANT))
    world.call("SyncQuotas", pb.SyncQuotasRequest(tenant=TENANT))
    (change,) = report.changes
    assert change.kind == pb.QUOTA_CHANGE_KIND_CONFLICT and "warmup plan 1" in change.reason
    assert list(report.written) == []
    untouched = world.query(
        "SELECT status, hourly_quota, daily_quota, last_updated FROM mw_delivery_server WHERE server_id = %s",
        row["server_id"],
    )
    assert [tuple(map(str, r)) for r in untouched] == [("active", "7", "70", "2025-01-01 00:00:00")]
    binding = world.call("GetMailwizzBinding", pb.GetMailwizzBindingRequest(tenant=TENANT))
    assert [(c.server_id, c.address) for c in binding.conflicts] == [(row["server_id"], IP)]
    with world.gateway.db.engine.connect() as connection:
        envelopes = [
            event_pb2.EventEnvelope.FromString(raw)
            for raw in connection.execute(
                sa.select(event_outbox.c.envelope).where(
                    event_outbox.c.event_type == "emailengine.campaign.v1.DeliveryServerConflictChanged"
                )
            ).scalars()
        ]
    (envelope,) = envelopes  # two syncs, one conflict: published once
    event = campaign_events.DeliveryServerConflictChanged()
    envelope.payload.Unpack(event)
    assert (event.tenant_id, event.server_id, event.conflict) == (TENANT, row["server_id"], True)


def test_a_dry_run_shows_the_diff_and_writes_nothing(world: World) -> None:
    world.register(IP)
    row, _ = wait_for(world, IP, "the row active", lambda r: r["status"] == "active")
    world.query("UPDATE mw_delivery_server SET hourly_quota = 999 WHERE server_id = %s", row["server_id"])
    plan = world.call("PlanQuotaSync", pb.PlanQuotaSyncRequest(tenant=TENANT))
    (change,) = plan.changes
    assert plan.dry_run and change.kind == pb.QUOTA_CHANGE_KIND_UPDATE
    assert (change.before.hourly_quota, change.after.hourly_quota) == (999, row["hourly_quota"])
    assert row_of(world, IP)["hourly_quota"] == 999  # type: ignore[index]
    world.call("SyncQuotas", pb.SyncQuotasRequest(tenant=TENANT))
    assert row_of(world, IP)["hourly_quota"] == row["hourly_quota"]  # type: ignore[index]


def test_an_ip_on_an_unregistered_pmta_node_waits_for_it_and_is_reported(world: World) -> None:
    world.register(IP, node="pmta9")
    report = world.call("PlanQuotaSync", pb.PlanQuotaSyncRequest(tenant=TENANT))
    (change,) = report.changes
    assert change.kind == pb.QUOTA_CHANGE_KIND_BLOCKED and "not registered" in change.reason
    world.call("SyncQuotas", pb.SyncQuotasRequest(tenant=TENANT))
    assert world.rows() == []
    binding = world.call("GetMailwizzBinding", pb.GetMailwizzBindingRequest(tenant=TENANT))
    assert IP in binding.last_sync_outcome
    # Registering the node is all it takes: the next sync makes the IP's server, on the node's SMTP listener.
    node = {**PMTA_NODE, "name": "pmta9", "smtp_host": "pmta9.internal", "smtp_port": 25}
    world.register_node(node)
    world.call("SyncQuotas", pb.SyncQuotasRequest(tenant=TENANT))
    ((hostname, port),) = [(row["hostname"], row["port"]) for row in world.rows()]
    assert (hostname, port) == ("pmta9.internal", 25)


def test_a_database_failure_leaves_nothing_behind_and_the_next_sync_does_it(world: World) -> None:
    world.query("RENAME TABLE mw_delivery_server TO mw_delivery_server_away")
    world.register(IP)
    wait_until(
        lambda: (
            "failed" in world.call("GetMailwizzBinding", pb.GetMailwizzBindingRequest(tenant=TENANT)).last_sync_outcome
        ),
        10,
        "the failed sync recorded",
    )
    world.query("RENAME TABLE mw_delivery_server_away TO mw_delivery_server")
    assert world.rows() == []
    assert jobs.sync_quotas(world.app) == 1
    assert row_of(world, IP)["status"] == "active"  # type: ignore[index]
