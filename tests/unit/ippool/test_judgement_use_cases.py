"""The deliverability judgement through the use cases (in-memory unit of work): listings by severity and the
tenant's policy, the decision hour, held provider caps in the quota, purposes in allocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from emailengine.ippool.v1 import events_pb2
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from ippool.app.signals import StatsInput
from ippool.domain.health import DayCounts
from ippool.domain.history import DecisionKind
from ippool.domain.lifecycle import IpState
from ippool.domain.listings import ListingAction, ListingSeverity
from ippool.domain.providers import ProviderGroup
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import InvalidArgument
from tests.unit.ippool.fakes import FakeIpPool

START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
ADDRESS = "192.0.2.10"


@pytest.fixture
def pool() -> FakeIpPool:
    pool = FakeIpPool(FakeClock(START))
    pool.tenants.ensure("sos-expat")
    pool.ips.register(
        SOS, address=ADDRESS, tenant_id="sos-expat", purpose="", pool="", pmta_node="", helo_hostname="", schedule_id=""
    )
    return pool


def listing(pool: FakeIpPool, event_id: str, zone: str, listed: bool, severity: int) -> None:
    envelope = event_pb2.EventEnvelope(event_id=event_id, source="reputation", tenant_id="sos-expat")
    event = reputation_events.IpListingChanged(
        address=ADDRESS,
        tenant_id="sos-expat",
        listed=listed,
        zone=zone,
        severity=severity,  # type: ignore[arg-type]
    )
    with pool.unit_of_work() as uow:
        pool.signals.on_listing_changed(uow, envelope, event)
        uow.commit()


def lifecycle(pool: FakeIpPool) -> list:
    history, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.LIFECYCLE, size=50, token="")
    return history


def send_clean_day(pool: FakeIpPool, sent: int) -> None:
    pool.signals.record_stats(SOS, [StatsInput(ADDRESS, "", None, DayCounts(sent=sent, delivered=sent))])
    pool.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    pool.daily.run_day()


def test_a_low_listing_leaves_the_ip_warming_and_is_recorded_with_zone_severity_and_policy(pool: FakeIpPool) -> None:
    listing(pool, "ev-1", "bl.mailspike.net", True, reputation_pb.LISTING_SEVERITY_LOW)
    ip = pool.ips.get(SOS, ADDRESS)
    assert (ip.ip.state, ip.quota.daily, ip.active_listings) == (IpState.WARMING, 50, ("bl.mailspike.net",))
    entry = lifecycle(pool)[0]
    assert (entry.action, entry.rule) == ("ALERT_ONLY", "LISTING")
    assert entry.listing == {
        "zone": "bl.mailspike.net",
        "severity": "LOW",
        "action": "ALERT_ONLY",
        "policy": "listings.low",
    }
    assert entry.policy == {"listings.low": "ALERT_ONLY"}
    assert "severity LOW, listings.low: ALERT_ONLY" in entry.reason
    send_clean_day(pool, 50)
    warmup, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.WARMUP, size=1, token="")
    assert (warmup[0].action, warmup[0].rule) == ("ADVANCE", "HEALTHY")
    assert not pool.events(events_pb2.IpStateChanged)


def test_a_medium_listing_holds_the_warmup_and_its_delisting_lifts_the_hold(pool: FakeIpPool) -> None:
    listing(pool, "ev-1", "dnsbl-1.uceprotect.net", True, reputation_pb.LISTING_SEVERITY_MEDIUM)
    assert pool.ips.get(SOS, ADDRESS).quota.daily == 50  # still sending
    assert lifecycle(pool)[0].action == "HOLD_WARMUP"
    send_clean_day(pool, 50)
    warmup, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.WARMUP, size=1, token="")
    assert (warmup[0].action, warmup[0].rule) == ("HOLD", "LISTING_HOLD")
    assert warmup[0].policy["listings.medium"] == "HOLD_WARMUP"
    listing(pool, "ev-2", "dnsbl-1.uceprotect.net", False, reputation_pb.LISTING_SEVERITY_MEDIUM)
    assert "the warmup hold is lifted" in lifecycle(pool)[0].reason
    send_clean_day(pool, 50)
    warmup, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.WARMUP, size=1, token="")
    assert warmup[0].action == "ADVANCE"


def test_a_delisting_lifts_only_what_that_listing_caused(pool: FakeIpPool) -> None:
    listing(pool, "ev-1", "dnsbl-1.uceprotect.net", True, reputation_pb.LISTING_SEVERITY_MEDIUM)
    listing(pool, "ev-2", "zen.spamhaus.org", True, reputation_pb.LISTING_SEVERITY_CRITICAL)
    ip = pool.ips.get(SOS, ADDRESS).ip
    assert ip.state is IpState.STANDBY
    # The hold's delisting leaves the standby as it is.
    listing(pool, "ev-3", "dnsbl-1.uceprotect.net", False, reputation_pb.LISTING_SEVERITY_MEDIUM)
    assert pool.ips.get(SOS, ADDRESS).ip.delisted_at is None
    assert "still held by zen.spamhaus.org (CRITICAL: STANDBY)" in lifecycle(pool)[0].reason
    # Spamhaus' delisting starts the cool-down; the standby's step back and cool-down are as before.
    listing(pool, "ev-4", "zen.spamhaus.org", False, reputation_pb.LISTING_SEVERITY_CRITICAL)
    assert pool.ips.get(SOS, ADDRESS).ip.delisted_at is not None
    pool.clock.advance(timedelta(hours=24))  # type: ignore[attr-defined]
    assert pool.daily.release_standbys() == 1
    released = lifecycle(pool)[0]
    assert (released.action, released.rule, released.policy) == (
        "RELEASE",
        "COOLDOWN",
        {"health.standby_cooldown": "86400s"},
    )


def test_a_standby_listing_with_a_hold_still_active_keeps_the_hold_after_release(pool: FakeIpPool) -> None:
    listing(pool, "ev-1", "zen.spamhaus.org", True, reputation_pb.LISTING_SEVERITY_HIGH)
    listing(pool, "ev-2", "psbl.surriel.com", True, reputation_pb.LISTING_SEVERITY_MEDIUM)
    listing(pool, "ev-3", "zen.spamhaus.org", False, reputation_pb.LISTING_SEVERITY_HIGH)
    assert "cool-down starts" in lifecycle(pool)[0].reason
    pool.clock.advance(timedelta(hours=24))  # type: ignore[attr-defined]
    assert pool.daily.release_standbys() == 1
    send_clean_day(pool, 50)
    warmup, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.WARMUP, size=1, token="")
    assert warmup[0].rule == "LISTING_HOLD"


def test_a_zone_listing_again_with_a_worse_severity_is_upgraded(pool: FakeIpPool) -> None:
    listing(pool, "ev-1", "bl.mailspike.net", True, reputation_pb.LISTING_SEVERITY_LOW)
    listing(pool, "ev-2", "bl.mailspike.net", True, reputation_pb.LISTING_SEVERITY_LOW)  # the same: nothing
    assert len(lifecycle(pool)) == 2  # REGISTER, ALERT_ONLY
    listing(pool, "ev-3", "bl.mailspike.net", True, reputation_pb.LISTING_SEVERITY_HIGH)
    assert pool.ips.get(SOS, ADDRESS).ip.state is IpState.STANDBY
    assert "now HIGH (was LOW: ALERT_ONLY)" in lifecycle(pool)[0].reason


def test_the_listing_policy_is_a_tenant_setting(pool: FakeIpPool) -> None:
    tenant = pool.tenants.update(SOS, "sos-expat", {"listings.low": "STANDBY"})
    assert tenant.policy.listings.low is ListingAction.STANDBY
    with pytest.raises(InvalidArgument) as caught:
        pool.tenants.update(SOS, "sos-expat", {"listings.high": "NUKE"})
    assert [v.field for v in caught.value.violations] == ["tenant.listings.high"]
    pool.signals.record_listing(
        SOS, address=ADDRESS, zone="bl.mailspike.net", listed=True, reason="", severity=ListingSeverity.LOW
    )
    assert pool.ips.get(SOS, ADDRESS).ip.state is IpState.STANDBY


def test_the_day_is_decided_at_the_decision_hour(pool: FakeIpPool) -> None:
    pool.tenants.update(SOS, "sos-expat", {"time_zone": "Europe/Paris", "health.decision_hour": 6})
    pool.signals.record_stats(SOS, [StatsInput(ADDRESS, "", None, DayCounts(sent=50, delivered=50))])
    pool.clock.set(datetime(2026, 3, 10, 0, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    assert pool.daily.run_day().decided == 0  # 01:30 in Paris: the new day's quota, not yet its decision
    assert pool.ips.get(SOS, ADDRESS).quota.day.isoformat() == "2026-03-10"
    # A late bounce of the 9th arrives at 03:00 Paris: the decision will see it.
    late = DayCounts(sent=50, delivered=50, bounced=1)
    pool.signals.record_stats(SOS, [StatsInput(ADDRESS, "2026-03-09", None, late)])
    pool.clock.set(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    assert pool.daily.run_day().decided == 1
    warmup, _ = pool.ips.decisions(SOS, ADDRESS, kind=DecisionKind.WARMUP, size=1, token="")
    assert warmup[0].figures["bounced"] == 1 and warmup[0].policy["health.decision_hour"] == "6"


def test_held_provider_caps_show_in_the_quota_and_bound_the_allocation(pool: FakeIpPool) -> None:
    pool.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    with pool.unit_of_work() as uow:
        ip = uow.ips.get(ADDRESS)
        assert ip is not None
        uow.ips.save(replace(ip, provider_holds={ProviderGroup.YAHOO: 4}))
        uow.commit()
    quota = pool.ips.get(SOS, ADDRESS).quota
    yahoo = next(p for p in quota.by_provider if p.provider is ProviderGroup.YAHOO)
    assert (yahoo.cap, yahoo.held) == (4, True)
    result = pool.allocations.allocate(
        SOS,
        tenant_id="sos-expat",
        volume=40,
        volume_by_provider=[(ProviderGroup.YAHOO, 40)],
        plan_horizon_days=0,
        validate_only=True,
    )
    assert result.result.allocated_today == 4


def test_allocation_takes_a_purpose_and_a_pool(pool: FakeIpPool) -> None:
    pool.ips.register(
        SOS,
        address="192.0.2.20",
        tenant_id="sos-expat",
        purpose="transactional",
        pool="",
        pmta_node="",
        helo_hostname="",
        schedule_id="",
    )

    def allocated(**kwargs: str) -> dict[str, int]:
        view = pool.allocations.allocate(
            SOS,
            tenant_id="sos-expat",
            volume=200,
            volume_by_provider=[],
            plan_horizon_days=0,
            validate_only=True,
            **kwargs,
        )
        return {a.address: a.total for a in view.result.allocations}

    assert allocated() == {ADDRESS: 50}
    assert allocated(purpose="TRANSACTIONAL") == {ADDRESS: 50, "192.0.2.20": 50}
    assert allocated(pool="other") == {}
    with pytest.raises(InvalidArgument) as caught:
        allocated(purpose="SPAM", pool="Bad Pool")
    assert [v.field for v in caught.value.violations] == ["purpose", "pool"]
