"""The MailWizz quota sync use case over fakes: a new IP gets its row (inactive, then active when it may send),
a standby IP's row goes inactive, a dry run writes nothing, a row with a MailWizz warmup plan is left alone and
reported once, an IP whose PMTA node is unknown waits, and ip-pool's events only ask for a sync."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaign_gateway.adapters.ippool_peer import TenantDay
from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync, ip_sending
from campaign_gateway.app.ports import TenantMailwizz
from campaign_gateway.domain.pmta_config import vmta_name
from emailengine.campaign.v1 import events_pb2 as campaign_events
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import FailedPrecondition, NotFound, PermissionDenied
from tests.fakes import FakeStore
from tests.unit.campaign_gateway.campaign_fakes import (
    TENANT,
    VIEW,
    FakeCampaignUnitOfWork,
    FakeDirectory,
    FakeIpPool,
    FakeMailwizzApi,
    FakeServerTable,
    pool_ip,
)

NEW_IP = "192.0.2.50"


class Nodes:
    def __init__(self, known: dict[str, tuple[str, int]]):
        self.known = known

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None:
        return self.known.get(node_name)


class World:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.table = FakeServerTable()
        self.ippool = FakeIpPool([pool_ip(NEW_IP, state="WARMING", daily=50, hourly=3)])
        self.nodes = Nodes({"pmta1": ("pmta1.internal", 2525)})
        self.asked: list[str] = []
        self.sync = MailwizzQuotaSync(
            lambda: FakeCampaignUnitOfWork(self.store),
            FakeClock(datetime(2026, 1, 5, 10, tzinfo=UTC)),
            directory=FakeDirectory({TENANT: TenantMailwizz(VIEW, FakeMailwizzApi(), self.table)}),
            ippool=self.ippool,
            nodes=self.nodes,
            request_sync=self.asked.append,
        )

    def conflicts_published(self) -> list[campaign_events.DeliveryServerConflictChanged]:
        return [e for _, e in self.store.published if isinstance(e, campaign_events.DeliveryServerConflictChanged)]


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_ip_gets_its_row_created_inactive_then_activated_with_its_quota(world: World) -> None:
    report = world.sync.sync_tenant(TENANT)
    (row,) = world.table.rows()
    assert report.created == (row.server_id,) and report.written == (row.server_id,)
    created, activated = world.table.applied
    assert created.writes()[0].after.status.value == "inactive"  # type: ignore[union-attr]
    assert (row.status, row.hourly_quota, row.daily_quota) == ("active", 3, 50)
    assert (row.hostname, row.port, row.vmta) == ("pmta1.internal", 2525, vmta_name(NEW_IP))
    assert activated.writes()[0].kind.value == "UPDATE"


def test_standby_makes_the_row_inactive_with_quotas_that_are_never_zero(world: World) -> None:
    world.sync.sync_tenant(TENANT)
    world.ippool.ips = [pool_ip(NEW_IP, state="STANDBY", daily=0, hourly=0)]
    world.sync.sync_tenant(TENANT)
    (row,) = world.table.rows()
    assert (row.status, row.hourly_quota, row.daily_quota) == ("inactive", 1, 1)


def test_a_dry_run_shows_the_diff_and_writes_nothing(world: World) -> None:
    report = world.sync.plan(Caller("v", Role.VIEWER, TENANT), TENANT)
    assert report.dry_run and [c.kind.value for c in report.changes] == ["CREATE"]
    assert world.table.rows() == [] and world.store.commits == 0


def test_an_ip_whose_node_is_unknown_waits_and_is_reported(world: World) -> None:
    world.nodes.known = {}
    report = world.sync.sync_tenant(TENANT)
    assert world.table.rows() == [] and [c.address for c in report.blocked] == [NEW_IP]
    state = world.store.tables["sync"][TENANT]
    assert "no SMTP host" in state.last_outcome and NEW_IP in state.last_outcome


def test_a_warmup_plan_row_is_left_alone_and_its_conflict_published_once_each_way(world: World) -> None:
    server_id = world.table.add(NEW_IP, status="active", warmup_plan_id=7)
    before = world.table.rows()
    world.sync.sync_tenant(TENANT)
    world.sync.sync_tenant(TENANT)
    assert world.table.rows() == before
    (event,) = world.conflicts_published()
    assert (event.server_id, event.conflict, event.address) == (server_id, True, NEW_IP)
    assert "warmup plan 7" in event.reason
    status = world.sync.binding(Caller("o", Role.OPERATOR, TENANT), TENANT)
    assert [c.server_id for c in status.state.conflicts] == [server_id]  # type: ignore[union-attr]
    row = world.table.rows_by_id[server_id]
    world.table.rows_by_id[server_id] = type(row)(**{**row.__dict__, "warmup_plan_id": None})
    world.sync.sync_tenant(TENANT)
    assert [e.conflict for e in world.conflicts_published()] == [True, False]


def test_ip_pool_events_only_ask_for_a_sync_of_a_bound_tenant(world: World) -> None:
    envelope = event_pb2.EventEnvelope(event_id="e", tenant_id=TENANT)
    world.sync.on_ip_registered(None, envelope, ippool_events.IpRegistered(address=NEW_IP, tenant_id=TENANT))
    world.sync.on_ip_state_changed(None, envelope, ippool_events.IpStateChanged(address=NEW_IP, tenant_id=TENANT))
    world.sync.on_ip_quota_changed(None, envelope, ippool_events.IpQuotaChanged(address=NEW_IP, tenant_id="ulixai"))
    assert world.asked == [TENANT, TENANT]
    assert world.table.rows() == []


def test_bindings_are_read_per_tenant_and_unknown_ones_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.sync.binding(Caller("u", Role.OPERATOR, "ulixai"), TENANT)
    with pytest.raises(PermissionDenied):
        world.sync.sync(Caller("v", Role.VIEWER, TENANT), TENANT)
    with pytest.raises(FailedPrecondition):
        world.sync.sync_tenant("ulixai")
    assert [b.tenant for b in world.sync.bindings(Caller("a", Role.ADMIN, ""))] == [TENANT]


def test_the_sending_window_is_read_in_the_tenants_time_zone() -> None:
    ip = pool_ip(NEW_IP)
    day = TenantDay(TENANT, "Europe/Paris", 9, 18)
    assert ip_sending(ip, day, datetime(2026, 1, 5, 7, 30, tzinfo=UTC)).inside_window is False  # 08:30 in Paris
    assert ip_sending(ip, day, datetime(2026, 1, 5, 8, 30, tzinfo=UTC)).inside_window is True
    assert ip_sending(ip, TenantDay(TENANT, "UTC", 0, 24), datetime(2026, 1, 5, 23, tzinfo=UTC)).inside_window
