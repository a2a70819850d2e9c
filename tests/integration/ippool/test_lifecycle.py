"""Standby on listings (the reputation event, consumed once; and RecordListing), cool-down and release one step
lower, pause/resume/retire, each change in the history and published as IpStateChanged."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from emailengine.ippool.v1 import events_pb2
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from ippool import jobs
from tests.integration.ippool.conftest import IpPoolService
from tests.integration.ippool.test_warmup_job import healthy, outbox_events

pytestmark = pytest.mark.integration

LIFECYCLE = pb.DECISION_KIND_LIFECYCLE


def listing_envelope(event_id: str, address: str, zone: str, listed: bool, tenant: str = "sos-expat") -> bytes:
    envelope = event_pb2.EventEnvelope(event_id=event_id, source="reputation", tenant_id=tenant)
    envelope.payload.Pack(
        reputation_events.IpListingChanged(address=address, tenant_id=tenant, listed=listed, zone=zone, reason="test")
    )
    return envelope.SerializeToString()


def at_step_two(ippool: IpPoolService, address: str) -> None:
    """Registers the IP and runs it through 7 healthy days: 200/day (step index 1)."""
    ippool.register(address)
    for _ in range(7):
        ippool.stats(healthy(address, ippool.ip(address).quota.daily))
        ippool.next_day()
        jobs.daily_warmup(ippool.app)
    assert ippool.ip(address).quota.daily == 200


def test_listing_event_puts_the_ip_in_standby_and_it_comes_back_one_step_lower(ippool: IpPoolService) -> None:
    at_step_two(ippool, "192.0.2.10")
    consumer = ippool.host.runtime.consumer
    first = listing_envelope("ev-1", "192.0.2.10", "zen.spamhaus.org", True)
    assert consumer.handle(first) is True
    assert consumer.handle(first) is False  # a redelivery is recognised
    ip = ippool.ip("192.0.2.10")
    assert ip.state == pb.IP_STATE_STANDBY
    assert (ip.quota.daily, ip.warmup.step_index, ip.warmup.step_daily_volume) == (0, 0, 50)
    assert list(ip.active_listings) == ["zen.spamhaus.org"]
    # A second zone, and a different event saying the same thing: nothing more happens.
    assert consumer.handle(listing_envelope("ev-2", "192.0.2.10", "bl.spamcop.net", True)) is True
    assert consumer.handle(listing_envelope("ev-3", "192.0.2.10", "bl.spamcop.net", True)) is True
    assert ippool.ip("192.0.2.10").warmup.step_index == 0
    # One zone delists: still listed. The last one delists: the cool-down starts.
    consumer.handle(listing_envelope("ev-4", "192.0.2.10", "zen.spamhaus.org", False))
    assert not ippool.ip("192.0.2.10").HasField("delisted_at")
    consumer.handle(listing_envelope("ev-5", "192.0.2.10", "bl.spamcop.net", False))
    ip = ippool.ip("192.0.2.10")
    assert ip.state == pb.IP_STATE_STANDBY and ip.HasField("delisted_at") and not ip.active_listings
    # Released only after the 24 h cool-down, by the periodic job.
    ippool.clock.advance(timedelta(hours=23))
    assert jobs.standby_release(ippool.app) == 0
    ippool.clock.advance(timedelta(hours=1))
    assert jobs.standby_release(ippool.app) == 1
    ip = ippool.ip("192.0.2.10")
    assert (ip.state, ip.quota.daily) == (pb.IP_STATE_WARMING, 50)
    assert jobs.standby_release(ippool.app) == 0

    actions = [(d.action, d.rule) for d in reversed(ippool.decisions("192.0.2.10", LIFECYCLE))]
    assert actions == [
        ("REGISTER", "ADMIN"),
        ("STANDBY", "LISTING"),
        ("LISTED", "LISTING"),
        ("DELISTED", "DELISTING"),
        ("DELISTED", "DELISTING"),
        ("RELEASE", "COOLDOWN"),
    ]
    changes = [(e.previous_state, e.state) for e in outbox_events(ippool, events_pb2.IpStateChanged)]
    assert changes == [(pb.IP_STATE_WARMING, pb.IP_STATE_STANDBY), (pb.IP_STATE_STANDBY, pb.IP_STATE_WARMING)]


def test_listing_of_an_unknown_ip_or_of_another_tenant_changes_nothing(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    consumer = ippool.host.runtime.consumer
    assert consumer.handle(listing_envelope("ev-a", "192.0.2.99", "zen.spamhaus.org", True)) is True
    assert consumer.handle(listing_envelope("ev-b", "192.0.2.10", "zen.spamhaus.org", True, tenant="ulixai")) is True
    assert consumer.handle(listing_envelope("ev-c", "not-an-ip", "zen.spamhaus.org", True)) is True
    assert ippool.ip("192.0.2.10").state == pb.IP_STATE_WARMING


def test_record_listing_rpc_and_relisting_during_the_cool_down(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    listed = ippool.call(
        "RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="bl.spamcop.net", listed=True)
    )
    assert listed.state == pb.IP_STATE_STANDBY
    ippool.call("RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="bl.spamcop.net", listed=False))
    ippool.clock.advance(timedelta(hours=12))
    ippool.call("RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="bl.spamcop.net", listed=True))
    ippool.clock.advance(timedelta(hours=13))
    assert jobs.standby_release(ippool.app) == 0  # listed again: the cool-down was cancelled
    assert ippool.ip("192.0.2.10").state == pb.IP_STATE_STANDBY


def test_pause_resume_retire(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    paused = ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.10", reason="maintenance"))
    assert (paused.state, paused.quota.daily, paused.warmup.step_daily_volume) == (pb.IP_STATE_PAUSED, 0, 50)
    assert "maintenance" in paused.state_reason
    again = ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.10"))
    assert again.state == pb.IP_STATE_PAUSED
    # Listed while paused: stays paused; resuming while listed goes to standby.
    ippool.call("RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=True))
    resumed = ippool.call("ResumeIp", pb.ResumeIpRequest(address="192.0.2.10"))
    assert resumed.state == pb.IP_STATE_STANDBY
    with pytest.raises(grpc.RpcError) as caught:
        ippool.call("ResumeIp", pb.ResumeIpRequest(address="192.0.2.10"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    retired = ippool.call("RetireIp", pb.RetireIpRequest(address="192.0.2.10", reason="returned to the provider"))
    assert (retired.state, retired.quota.daily) == (pb.IP_STATE_RETIRED, 0)
    with pytest.raises(grpc.RpcError) as caught:
        ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.10"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    ippool.next_day()
    assert jobs.daily_warmup(ippool.app).decided == 0  # a retired IP is never decided again

    ippool.register("192.0.2.11")
    ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.11"))
    back = ippool.call("ResumeIp", pb.ResumeIpRequest(address="192.0.2.11"))
    assert (back.state, back.quota.daily) == (pb.IP_STATE_WARMING, 50)

    changes = [(e.address, e.state) for e in outbox_events(ippool, events_pb2.IpStateChanged)]
    assert changes == [
        ("192.0.2.10", pb.IP_STATE_PAUSED),
        ("192.0.2.10", pb.IP_STATE_STANDBY),
        ("192.0.2.10", pb.IP_STATE_RETIRED),
        ("192.0.2.11", pb.IP_STATE_PAUSED),
        ("192.0.2.11", pb.IP_STATE_WARMING),
    ]
    history = ippool.decisions("192.0.2.10", LIFECYCLE)
    assert [d.action for d in reversed(history)] == ["REGISTER", "PAUSE", "LISTED", "RESUME", "RETIRE"]
    assert history[0].actor == "admin-all"
