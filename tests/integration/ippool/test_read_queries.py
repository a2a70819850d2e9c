"""The read path in a fixed number of queries: GetIp and ListIps cost the same few SELECTs whatever the page
holds (IPs of several tenants, time zones and schedules), never one more per IP; a pause or resume costs a fixed
few statements too, and answers what GetIp reads after it. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool.app.ip_today import IpToday
from ippool.domain.lifecycle import IpState
from libs.auth import Caller, Role
from tests.integration.ippool.conftest import IpPoolService

pytestmark = pytest.mark.integration

ADMIN = Caller("admin", Role.ADMIN, "")


@pytest.fixture(params=["sqlite", "postgresql"])
def ippool(request: pytest.FixtureRequest) -> IpPoolService:
    return request.getfixturevalue("ippool" if request.param == "sqlite" else "ippool_pg")


@contextmanager
def statements(service: IpPoolService) -> Iterator[list[str]]:
    """The SQL statements this thread runs on the service's database (background threads are not counted)."""
    seen: list[str] = []
    me = threading.get_ident()

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if threading.get_ident() == me:
            seen.append(statement)

    sa.event.listen(service.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(service.db.engine, "before_cursor_execute", count)


def fleet(ippool: IpPoolService, size: int) -> None:
    """IPs of two tenants whose local days differ, on the default schedule and on each tenant's own ones,
    some listed, all with delivery stats and an allocation today."""
    ippool.call(
        "UpdateTenant", pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="ulixai", time_zone="Pacific/Honolulu"))
    )
    steps = [pb.WarmupStep(daily_volume=100, sending_days=2), pb.WarmupStep(daily_volume=900)]
    for tenant in ("sos-expat", "ulixai"):
        for name in ("slow", "fast"):
            schedule = pb.Schedule(schedule_id=name, steps=steps)
            ippool.call("CreateSchedule", pb.CreateScheduleRequest(tenant_id=tenant, schedule=schedule))
    for n in range(size):
        address = f"192.0.2.{10 + n}"
        ippool.register(address, tenant="ulixai" if n % 2 else "sos-expat", schedule_id=["", "slow", "fast"][n % 3])
        listing = pb.RecordListingRequest(address=address, zone="bl.example.org", listed=n % 4 == 3)
        ippool.call("RecordListing", listing)
        ippool.stats(pb.DeliveryStats(address=address, sent=5, delivered=5))
    for tenant in ("sos-expat", "ulixai"):
        ippool.call("AllocateVolume", pb.AllocateVolumeRequest(tenant_id=tenant, volume=10))


# ips, tenants, schedules (none when every IP is on the built-in one), and listings, sent and committed in one
READ_QUERIES = 4
# the IP and its tenant (locked), listings and usage, the IP saved, its history entry, its events (one executemany),
# the change count; SQLite takes its write lock with one statement more
WRITE_STATEMENTS = 6


@pytest.mark.parametrize("size", [1, 12])
def test_get_ip_and_list_ips_in_a_fixed_number_of_queries(ippool: IpPoolService, size: int) -> None:
    fleet(ippool, size)
    on_own_schedule = "192.0.2.11" if size > 1 else "192.0.2.10"
    with statements(ippool) as get_ip:
        ippool.app.ips.get(ADMIN, on_own_schedule)
    with statements(ippool) as list_ips:
        found, _ = ippool.app.ips.list(ADMIN, tenant_id="", state=None, size=100, token="")
    assert len(found) == size
    if size > 1:
        assert len({ip.quota.day for ip in found}) == 2 and len({ip.ip.schedule_id for ip in found}) == 3
    assert len(get_ip) <= READ_QUERIES and len(list_ips) <= READ_QUERIES, (get_ip, list_ips)
    assert all(s.lstrip().upper().startswith("SELECT") for s in get_ip + list_ips)


def test_pause_and_resume_answer_what_get_ip_reads_in_a_fixed_number_of_statements(ippool: IpPoolService) -> None:
    fleet(ippool, 12)
    sqlite = ippool.db.engine.dialect.name == "sqlite"
    for n in range(12):
        address = f"192.0.2.{10 + n}"
        listed = n % 4 == 3
        caller = Caller("operator", Role.OPERATOR, "ulixai" if n % 2 else "sos-expat")
        with statements(ippool) as pause:
            paused = ippool.app.ips.pause(caller, address, "maintenance")
        assert paused == ippool.app.ips.get(ADMIN, address)
        assert paused.ip.state is IpState.PAUSED  # from standby too
        with statements(ippool) as resume:
            resumed = ippool.app.ips.resume(caller, address, "done")
        assert resumed == ippool.app.ips.get(ADMIN, address)
        assert resumed.ip.state is (IpState.STANDBY if listed else IpState.WARMING)
        assert resumed.quota.used_today >= 5 and resumed.active_listings == (("bl.example.org",) if listed else ())
        own_schedule = paused.ip.schedule_id != "default"  # read once; the built-in one never
        assert len(pause) == len(resume) == WRITE_STATEMENTS + sqlite + own_schedule, (pause, resume)


def test_a_pause_that_waited_for_the_ip_while_it_changed_tenant_sees_the_new_tenant(ippool_pg: IpPoolService) -> None:
    """The IP and its tenant are read in one locked join; PostgreSQL rechecks a row changed while the read waited
    for its lock against the tenant row joined before, and drops it: the repository then reads the two apart."""
    ippool_pg.register("192.0.2.10")
    answers: list[IpToday] = []
    with ippool_pg.db.engine.connect() as holder:
        holder.execute(sa.text("SELECT address FROM ips WHERE address = '192.0.2.10' FOR UPDATE"))
        waiting = threading.Thread(target=lambda: answers.append(ippool_pg.app.ips.pause(ADMIN, "192.0.2.10", "r")))
        waiting.start()
        deadline = time.monotonic() + 10
        with ippool_pg.db.engine.connect() as watcher:
            blocked = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            while not watcher.execute(blocked).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.01)
        holder.execute(sa.text("UPDATE ips SET tenant_id = 'ulixai' WHERE address = '192.0.2.10'"))
        holder.commit()
    waiting.join(timeout=10)
    assert [(a.ip.tenant_id, a.ip.state) for a in answers] == [("ulixai", IpState.PAUSED)]
