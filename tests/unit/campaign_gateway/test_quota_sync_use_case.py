"""The MailWizz quota sync use case over fakes: a new IP gets its row (inactive, then active when it may send),
a standby IP's row goes inactive, a dry run writes nothing, a row with a MailWizz warmup plan is left alone and
reported once, an IP whose PMTA node is not registered waits, and ip-pool's events only ask for a sync (and,
through the one handler per event, for the IP's PowerMTA node's jobs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaign_gateway.adapters.ippool_peer import TenantDay
from campaign_gateway.app.ip_events import IpEventHandlers
from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync, ip_sending
from campaign_gateway.app.pmta_deploy import DeploySettings, DeployUseCases
from campaign_gateway.app.ports import TenantMailwizz
from campaign_gateway.domain.pmta_config import vmta_name
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec, with_defaults
from emailengine.campaign.v1 import events_pb2 as campaign_events
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
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
from tests.unit.campaign_gateway.delivery_fakes import FakeNodeGateway, FakeScheduler

NEW_IP = "192.0.2.50"
NOW = datetime(2026, 1, 5, 10, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr6"


class World:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.table = FakeServerTable()
        self.ippool = FakeIpPool([pool_ip(NEW_IP, state="WARMING", daily=50, hourly=3)])
        self.asked: list[str] = []
        self.register_node("pmta1", "pmta1.internal", 2525)
        self.sync = MailwizzQuotaSync(
            lambda: FakeCampaignUnitOfWork(self.store),
            FakeClock(NOW),
            directory=FakeDirectory({TENANT: TenantMailwizz(VIEW, FakeMailwizzApi(), self.table)}),
            ippool=self.ippool,
            request_sync=self.asked.append,
        )

    def register_node(self, name: str, smtp_host: str, smtp_port: int) -> None:
        """The node in the PMTA node registry, as CreatePmtaNode leaves it."""
        spec = NodeSpec(name=name, ssh_host=smtp_host, ssh_host_key=KEY, smtp_host=smtp_host, smtp_port=smtp_port)
        with FakeCampaignUnitOfWork(self.store) as uow:
            uow.pmta_nodes.add(NodeRecord(spec=with_defaults(spec), create_time=NOW, update_time=NOW), token_sha256="")
            uow.commit()

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
    commits = world.store.commits
    report = world.sync.plan(Caller("v", Role.VIEWER, TENANT), TENANT)
    assert report.dry_run and [c.kind.value for c in report.changes] == ["CREATE"]
    assert world.table.rows() == [] and world.store.commits == commits


def test_an_ip_whose_node_is_not_registered_waits_and_is_reported_then_gets_its_row(world: World) -> None:
    world.ippool.ips = [pool_ip(NEW_IP, state="WARMING", daily=50, hourly=3, node="pmta2")]
    report = world.sync.sync_tenant(TENANT)
    assert world.table.rows() == [] and [c.address for c in report.blocked] == [NEW_IP]
    state = world.store.tables["sync"][TENANT]
    assert "no registered PowerMTA node" in state.last_outcome and NEW_IP in state.last_outcome
    world.register_node("pmta2", "pmta2.internal", 25)
    assert world.sync.sync_tenant(TENANT).blocked == ()
    (row,) = world.table.rows()
    assert (row.hostname, row.port, row.status) == ("pmta2.internal", 25, "active")


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


def test_each_ip_event_reaches_both_mailwizz_and_the_ip_s_powermta_node(world: World) -> None:
    scheduler = FakeScheduler()
    deploys = DeployUseCases(
        lambda: FakeCampaignUnitOfWork(world.store),
        FakeClock(NOW),
        ippool=world.ippool,
        nodes=FakeNodeGateway(),
        scheduler=scheduler,
        settings=DeploySettings(),
    )
    handlers = IpEventHandlers(mailwizz=world.sync, deploys=deploys)
    envelope = event_pb2.EventEnvelope(event_id="e", tenant_id=TENANT)
    handlers.on_ip_registered(None, envelope, ippool_events.IpRegistered(address=NEW_IP, tenant_id=TENANT))  # type: ignore[arg-type]
    handlers.on_ip_quota_changed(None, envelope, ippool_events.IpQuotaChanged(address=NEW_IP, tenant_id=TENANT))  # type: ignore[arg-type]
    standby = ippool_events.IpStateChanged(address=NEW_IP, tenant_id=TENANT, state=ippool_pb.IP_STATE_STANDBY)
    handlers.on_ip_state_changed(None, envelope, standby)  # type: ignore[arg-type]
    assert world.asked == [TENANT] * 3
    assert scheduler.jobs == [("deploy_ip_node", NEW_IP, "ip-event"), ("apply_ip_state", NEW_IP, "STANDBY")]


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
