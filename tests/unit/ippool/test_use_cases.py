"""The ip-pool's use cases over the in-memory unit of work: registering, allocating, the daily decision,
pause/resume/retire and a listing event, each rule in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emailengine.ippool.v1 import events_pb2
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool.app.history import state_number
from ippool.app.schedules import StepInput
from ippool.app.signals import StatsInput
from ippool.domain.history import DecisionKind
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import ProviderGroup
from ippool.domain.usage import DayCounts
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tests.unit.ippool.fakes import FakeIpPool

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ADMIN = Caller("admin", Role.ADMIN, "")
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")


@pytest.fixture
def pool() -> FakeIpPool:
    pool = FakeIpPool(FakeClock(START))
    pool.tenants.ensure("sos-expat")
    pool.tenants.ensure("ulixai")
    return pool


def register(pool: FakeIpPool, address: str, caller: Caller = SOS, tenant: str = "sos-expat", schedule: str = ""):
    return pool.ips.register(
        caller,
        address=address,
        tenant_id=tenant,
        purpose="",
        pool="",
        pmta_node="",
        helo_hostname="",
        schedule_id=schedule,
    )


def stats(pool: FakeIpPool, address: str, sent: int, delivered: int | None = None, bounced: int = 0) -> None:
    counts = DayCounts(sent=sent, delivered=sent if delivered is None else delivered, bounced=bounced)
    entry = StatsInput(address, "", None, counts)
    pool.signals.record_stats(SOS, [entry])


def next_day(pool: FakeIpPool) -> int:
    pool.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    return pool.daily.run_day().decided


def fast_schedule(pool: FakeIpPool) -> None:
    """100/day for one sending day, 200/day for one, then 400/day."""
    steps = [StepInput(100, 1), StepInput(200, 1), StepInput(400, 0)]
    pool.schedules.create(SOS, tenant_id="sos-expat", schedule_id="fast", display_name="", steps=steps)


# -- registering -----------------------------------------------------------------------------------------


def test_a_registered_ip_starts_warming_at_the_first_step_with_its_history_and_events(pool: FakeIpPool) -> None:
    registered = register(pool, "192.0.2.10")
    assert (registered.ip.state, registered.quota.daily, registered.ip.sending_day) == (IpState.WARMING, 50, 1)
    assert registered.ip.purpose == "marketing" and registered.ip.pool == "default"
    assert [e.address for e in pool.events(events_pb2.IpRegistered)] == ["192.0.2.10"]
    assert [(e.previous_daily_quota, e.daily_quota) for e in pool.events(events_pb2.IpQuotaChanged)] == [(0, 50)]
    history, _ = pool.ips.decisions(SOS, "192.0.2.10", kind=None, size=10, token="")
    assert [(d.action, d.actor) for d in history] == [("REGISTER", "sos-operator")]


def test_registration_names_every_bad_field_and_stores_nothing(pool: FakeIpPool) -> None:
    commits = pool.store.commits
    with pytest.raises(InvalidArgument) as bad:
        pool.ips.register(
            SOS,
            address="300.1.2.3",
            tenant_id="Bad Tenant",
            purpose="spam",
            pool="",
            pmta_node="",
            helo_hostname="1.2.3.4",
            schedule_id="",
        )
    assert [v.field for v in bad.value.violations] == ["address", "tenant_id", "purpose", "helo_hostname"]
    with pytest.raises(InvalidArgument) as unknown:
        register(pool, "192.0.2.10", caller=ADMIN, tenant="nobody-here")
    assert [v.field for v in unknown.value.violations] == ["tenant_id"]
    with pytest.raises(InvalidArgument) as no_schedule:
        register(pool, "192.0.2.10", schedule="nope")
    assert [v.field for v in no_schedule.value.violations] == ["schedule_id"]
    assert pool.store.commits == commits and pool.store.published == []


def test_an_address_belongs_to_one_tenant_however_it_is_spelled(pool: FakeIpPool) -> None:
    register(pool, "2001:db8::10")
    with pytest.raises(AlreadyExists):
        register(pool, "2001:DB8:0::0010", caller=ULIXAI, tenant="ulixai")
    with pytest.raises(AlreadyExists):
        register(pool, "2001:db8::10")


def test_an_operator_registers_only_for_its_own_tenant(pool: FakeIpPool) -> None:
    with pytest.raises(PermissionDenied):
        register(pool, "192.0.2.10", caller=ULIXAI)
    viewer = Caller("sos-viewer", Role.VIEWER, "sos-expat")
    with pytest.raises(PermissionDenied):
        register(pool, "192.0.2.10", caller=viewer)
    assert pool.store.published == []


# -- allocating ------------------------------------------------------------------------------------------


def test_an_allocation_reserves_room_and_the_next_one_gets_only_what_is_left(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10")
    register(pool, "192.0.2.11")

    def allocate(volume: int, validate_only: bool = False):
        return pool.allocations.allocate(
            SOS,
            tenant_id="sos-expat",
            volume=volume,
            volume_by_provider=[],
            plan_horizon_days=None,
            validate_only=validate_only,
        )

    preview = allocate(80, validate_only=True)
    assert preview.allocation_id == "" and preview.result.allocated_today == 80
    first = allocate(80)
    assert first.allocation_id and first.result.allocated_today == 80 and first.result.remainder == 0
    second = allocate(80)
    assert second.result.allocated_today == 20 and second.result.remainder == 60
    assert second.result.plan and sum(day.total for day in second.result.plan) == 60
    assert pool.ips.get(SOS, "192.0.2.10").quota.remaining_today == 0
    with pytest.raises(PermissionDenied):
        pool.allocations.allocate(
            ULIXAI, tenant_id="sos-expat", volume=1, volume_by_provider=[], plan_horizon_days=None, validate_only=False
        )


def test_a_provider_breakdown_is_capped_by_the_providers_share(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10")
    view = pool.allocations.allocate(
        SOS,
        tenant_id="sos-expat",
        volume=0,
        volume_by_provider=[(ProviderGroup.GMAIL, 50)],
        plan_horizon_days=0,
        validate_only=True,
    )
    assert view.result.allocated_today == 20  # Gmail may take 40 % of 50
    assert view.result.unplanned == 30


# -- the daily decision ----------------------------------------------------------------------------------


def test_a_healthy_day_advances_with_its_figures_in_the_history(pool: FakeIpPool) -> None:
    fast_schedule(pool)
    register(pool, "192.0.2.10", schedule="fast")
    stats(pool, "192.0.2.10", sent=100)
    assert next_day(pool) == 1
    assert next_day(pool) == 1  # nothing sent: the day holds
    assert pool.daily.run_day().decided == 0  # the same day again changes nothing
    ip = pool.ips.get(SOS, "192.0.2.10")
    assert (ip.quota.daily, ip.ip.position.step_index) == (200, 1)
    history, _ = pool.ips.decisions(SOS, "192.0.2.10", kind=DecisionKind.WARMUP, size=10, token="")
    assert [(d.action, d.rule) for d in history] == [("HOLD", "NO_SENDING"), ("ADVANCE", "HEALTHY")]
    advanced = history[1]
    assert advanced.figures is not None
    assert (advanced.figures["sent"], advanced.figures["delivered"], advanced.figures["target"]) == (100, 100, 100)
    assert (advanced.quota_before, advanced.quota_after) == (100, 200)
    quota_events = [(e.previous_daily_quota, e.daily_quota) for e in pool.events(events_pb2.IpQuotaChanged)]
    assert quota_events == [(0, 100), (100, 200)]


def test_bounces_hold_then_step_back_with_the_rates_recorded(pool: FakeIpPool) -> None:
    fast_schedule(pool)
    register(pool, "192.0.2.10", schedule="fast")
    stats(pool, "192.0.2.10", sent=100)
    next_day(pool)
    stats(pool, "192.0.2.10", sent=200, bounced=6)  # 3 %: above the 2 % gate, under the 5 % limit
    next_day(pool)
    stats(pool, "192.0.2.10", sent=200, bounced=12)  # 6 %: one step back
    next_day(pool)
    history, _ = pool.ips.decisions(SOS, "192.0.2.10", kind=DecisionKind.WARMUP, size=10, token="")
    step_back, hold = history[0], history[1]
    assert (hold.action, hold.rule, hold.figures["bounce_rate"]) == ("HOLD", "BOUNCE_HOLD", 0.03)
    assert (step_back.action, step_back.rule, step_back.figures["bounce_rate"]) == (
        "STEP_BACK",
        "BOUNCE_STEP_BACK",
        0.06,
    )
    assert (step_back.step_index_before, step_back.step_index_after) == (1, 0)
    assert pool.ips.get(SOS, "192.0.2.10").quota.daily == 100


def test_stats_for_an_unknown_ip_or_a_future_day_are_refused_whole(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10")
    commits = pool.store.commits
    with pytest.raises(NotFound):
        pool.signals.record_stats(
            SOS, [StatsInput("192.0.2.10", "", None, DayCounts(sent=5)), StatsInput("192.0.2.99", "", None)]
        )
    with pytest.raises(InvalidArgument) as future:
        pool.signals.record_stats(SOS, [StatsInput("192.0.2.10", "2026-01-06", None, DayCounts(sent=5))])
    assert future.value.violations[0].field == "stats[0].day"
    assert pool.store.commits == commits


# -- pause, resume, retire -------------------------------------------------------------------------------


def test_pause_resume_retire_follow_the_lifecycle_and_publish_each_change(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10")
    paused = pool.ips.pause(SOS, "192.0.2.10", "maintenance")
    assert (paused.ip.state, paused.quota.daily) == (IpState.PAUSED, 0) and "maintenance" in paused.ip.state_reason
    pool.ips.pause(SOS, "192.0.2.10", "")  # again: nothing changes, nothing is published
    resumed = pool.ips.resume(SOS, "192.0.2.10", "")
    assert (resumed.ip.state, resumed.quota.daily) == (IpState.WARMING, 50)
    retired = pool.ips.retire(ADMIN, "192.0.2.10", "returned")
    assert retired.ip.state is IpState.RETIRED
    with pytest.raises(FailedPrecondition):
        pool.ips.resume(SOS, "192.0.2.10", "")
    changes = [(e.previous_state, e.state) for e in pool.events(events_pb2.IpStateChanged)]
    assert changes == [
        (state_number(IpState.WARMING), state_number(IpState.PAUSED)),
        (state_number(IpState.PAUSED), state_number(IpState.WARMING)),
        (state_number(IpState.WARMING), state_number(IpState.RETIRED)),
    ]
    history, _ = pool.ips.decisions(ADMIN, "192.0.2.10", kind=DecisionKind.LIFECYCLE, size=10, token="")
    assert [(d.action, d.actor) for d in reversed(history)] == [
        ("REGISTER", "sos-operator"),
        ("PAUSE", "sos-operator"),
        ("RESUME", "sos-operator"),
        ("RETIRE", "admin"),
    ]
    assert next_day(pool) == 0  # a retired IP is never decided again


# -- a listing event -------------------------------------------------------------------------------------


def listing(pool: FakeIpPool, event_id: str, zone: str, listed: bool, tenant: str = "sos-expat") -> None:
    envelope = event_pb2.EventEnvelope(event_id=event_id, source="reputation", tenant_id=tenant)
    event = reputation_events.IpListingChanged(address="192.0.2.10", tenant_id=tenant, listed=listed, zone=zone)
    with pool.unit_of_work() as uow:
        pool.signals.on_listing_changed(uow, envelope, event)
        uow.commit()  # the consumer commits, with its inbox row


def test_a_listing_event_puts_the_ip_in_standby_one_step_lower(pool: FakeIpPool) -> None:
    fast_schedule(pool)
    register(pool, "192.0.2.10", schedule="fast")
    stats(pool, "192.0.2.10", sent=100)
    next_day(pool)
    listing(pool, "ev-1", "zen.spamhaus.org", True)
    ip = pool.ips.get(SOS, "192.0.2.10")
    assert (ip.ip.state, ip.quota.daily, ip.step_daily_volume) == (IpState.STANDBY, 0, 100)
    assert ip.active_listings == ("zen.spamhaus.org",)
    listing(pool, "ev-2", "zen.spamhaus.org", True)  # the same zone again: nothing more
    listing(pool, "ev-3", "zen.spamhaus.org", True, tenant="ulixai")  # names another tenant: ignored
    assert pool.ips.get(SOS, "192.0.2.10").ip.position.step_index == 0
    assert len(pool.events(events_pb2.IpStateChanged)) == 1
    history, _ = pool.ips.decisions(SOS, "192.0.2.10", kind=DecisionKind.LIFECYCLE, size=10, token="")
    assert (history[0].action, history[0].rule, history[0].actor) == ("STANDBY", "LISTING", "event:reputation")
    listing(pool, "ev-4", "zen.spamhaus.org", False)
    pool.clock.advance(timedelta(hours=24))  # type: ignore[attr-defined]
    assert pool.daily.release_standbys() == 1
    assert pool.ips.get(SOS, "192.0.2.10").ip.state is IpState.WARMING


# -- an address squatted ---------------------------------------------------------------------------------


def test_an_admin_transfers_an_address_and_each_tenant_keeps_only_its_own_history(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10", caller=ULIXAI, tenant="ulixai")
    with pytest.raises(PermissionDenied):
        pool.ips.transfer(ULIXAI, "192.0.2.10", tenant_id="sos-expat", reason="")
    moved = pool.ips.transfer(ADMIN, "192.0.2.10", tenant_id="sos-expat", reason="ticket 42")
    assert (moved.ip.tenant_id, moved.ip.state, moved.quota.daily) == ("sos-expat", IpState.WARMING, 50)
    with pytest.raises(NotFound):
        pool.ips.get(ULIXAI, "192.0.2.10")
    own, _ = pool.ips.decisions(SOS, "192.0.2.10", kind=None, size=10, token="")
    every, _ = pool.ips.decisions(ADMIN, "192.0.2.10", kind=None, size=10, token="")
    assert [d.action for d in own] == ["REGISTER"]
    assert [(d.action, d.tenant_id) for d in every] == [
        ("REGISTER", "sos-expat"),
        ("TRANSFER", "ulixai"),
        ("REGISTER", "ulixai"),
    ]
    assert [e.tenant_id for e in pool.events(events_pb2.IpRegistered)] == ["ulixai", "sos-expat"]
    assert [(e.tenant_id, e.state) for e in pool.events(events_pb2.IpStateChanged)] == [
        ("ulixai", state_number(IpState.RETIRED))
    ]


def test_a_released_address_may_be_registered_by_any_tenant_and_an_unreleased_one_not(pool: FakeIpPool) -> None:
    register(pool, "192.0.2.10", caller=ULIXAI, tenant="ulixai")
    with pytest.raises(AlreadyExists):
        register(pool, "192.0.2.10")
    released = pool.ips.release(ADMIN, "192.0.2.10", "")
    assert released.ip.state is IpState.RETIRED and released.ip.released_at == START
    taken = register(pool, "192.0.2.10")
    assert (taken.ip.tenant_id, taken.ip.state, taken.ip.released_at) == ("sos-expat", IpState.WARMING, None)
