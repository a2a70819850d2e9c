"""Through the running service: the daily job on a FakeClock decides each IP's day from
the delivery stats recorded through the API, and every decision is readable in the IP's history."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from libs import events
from libs.tables import event_outbox
from tests.integration.ippool.conftest import IpPoolService

pytestmark = pytest.mark.integration

WARMUP = pb.DECISION_KIND_WARMUP


def outbox_events(service: IpPoolService, cls: type) -> list:
    with service.db.transaction() as session:
        rows = session.execute(
            sa.select(event_outbox.c.envelope)
            .where(event_outbox.c.event_type == cls.DESCRIPTOR.full_name)
            .order_by(event_outbox.c.seq)
        ).all()
    found = []
    for row in rows:
        envelope = events.event_pb2.EventEnvelope.FromString(row.envelope)
        found.append(events.unpack(envelope))
    return found


def healthy(address: str, quota: int) -> pb.DeliveryStats:
    return pb.DeliveryStats(address=address, sent=quota, delivered=quota)


def test_45_healthy_days_follow_the_default_schedule_through_the_daily_job(ippool: IpPoolService) -> None:
    created = ippool.register("192.0.2.10", purpose="marketing")
    assert created.state == pb.IP_STATE_WARMING
    assert (created.warmup.sending_day, created.quota.daily) == (1, 50)
    quotas, states = [], []
    for day in range(1, 46):
        ip = ippool.ip("192.0.2.10")
        assert ip.warmup.sending_day == day
        assert ip.quota.day == ippool.clock.now().date().isoformat()
        quotas.append(ip.quota.daily)
        states.append(ip.state)
        ippool.stats(healthy("192.0.2.10", ip.quota.daily))
        ippool.next_day()
        assert jobs.daily_warmup(ippool.app).decided == 1
    assert quotas == [50] * 7 + [200] * 7 + [500] * 7 + [1500] * 7 + [5000] * 7 + [10000] * 10
    assert states == [pb.IP_STATE_WARMING] * 35 + [pb.IP_STATE_WARM] * 10

    history = ippool.decisions("192.0.2.10", WARMUP)
    assert len(history) == 45
    assert {(d.action, d.rule) for d in history} == {("ADVANCE", "HEALTHY")}
    # Exactly one state change (WARMING -> WARM) and one quota event per step change (+1 at registration).
    changed = outbox_events(ippool, events_pb2.IpStateChanged)
    assert [(e.previous_state, e.state, e.daily_quota) for e in changed] == [
        (pb.IP_STATE_WARMING, pb.IP_STATE_WARM, 10000)
    ]
    quota_events = [(e.previous_daily_quota, e.daily_quota) for e in outbox_events(ippool, events_pb2.IpQuotaChanged)]
    assert quota_events == [(0, 50), (50, 200), (200, 500), (500, 1500), (1500, 5000), (5000, 10000)]


def test_running_the_job_again_the_same_day_changes_nothing(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    ippool.stats(healthy("192.0.2.10", 50))
    ippool.next_day()
    assert jobs.daily_warmup(ippool.app).decided == 1
    ippool.clock.advance(timedelta(hours=5))
    assert jobs.daily_warmup(ippool.app).decided == 0
    assert ippool.ip("192.0.2.10").warmup.sending_day_in_step == 2


def test_days_missed_by_the_job_are_caught_up_one_by_one(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    for _ in range(3):  # three healthy days, the job never runs
        ippool.stats(healthy("192.0.2.10", 50))
        ippool.next_day()
    assert jobs.daily_warmup(ippool.app).decided == 3
    ip = ippool.ip("192.0.2.10")
    assert (ip.warmup.sending_day_in_step, ip.warmup.sending_day) == (4, 4)
    assert [d.day for d in ippool.decisions("192.0.2.10", WARMUP)] == ["2026-01-08", "2026-01-07", "2026-01-06"]


def test_the_day_follows_the_tenants_time_zone(ippool: IpPoolService) -> None:
    # Europe/Paris is UTC+1 in January: its day starts at 23:00 UTC.
    ippool.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="ulixai", time_zone="Europe/Paris", sending_window_start_hour=8, sending_window_end_hour=20
            ),
            update_mask={"paths": ["time_zone", "sending_window_start_hour", "sending_window_end_hour"]},
        ),
    )
    ippool.register("198.51.100.7", tenant="ulixai")
    ip = ippool.ip("198.51.100.7")
    assert ip.quota.day == "2026-01-05"
    assert ip.quota.hourly == 5  # 10:00 Paris: inside 08-20, ceil(50 / 12)
    ippool.stats(healthy("198.51.100.7", 50))
    ippool.clock.set(ippool.clock.now().replace(hour=22, minute=59))
    assert jobs.daily_warmup(ippool.app).decided == 0
    assert ippool.ip("198.51.100.7").quota.hourly == 0  # 23:59 Paris: outside the window
    ippool.clock.advance(timedelta(minutes=2))  # 00:01 Paris on the 6th
    assert jobs.daily_warmup(ippool.app).decided == 1
    assert ippool.ip("198.51.100.7").quota.day == "2026-01-06"


def _fast_schedule(ippool: IpPoolService) -> None:
    ippool.call(
        "CreateSchedule",
        pb.CreateScheduleRequest(
            tenant_id="sos-expat",
            schedule=pb.Schedule(
                schedule_id="fast",
                steps=[
                    pb.WarmupStep(daily_volume=1000, sending_days=1),
                    pb.WarmupStep(daily_volume=2000, sending_days=3),
                    pb.WarmupStep(daily_volume=4000),
                ],
            ),
        ),
    )


def test_bad_days_hold_or_step_back_and_the_history_shows_rule_and_figures(ippool: IpPoolService) -> None:
    _fast_schedule(ippool)
    addresses = {"hold": "192.0.2.21", "bounce": "192.0.2.22", "complaint": "192.0.2.23"}
    for address in addresses.values():
        ippool.register(address, schedule_id="fast")
        ippool.stats(healthy(address, 1000))
    ippool.register("192.0.2.24")  # default schedule, 50/day: the small-sample case
    ippool.stats(pb.DeliveryStats(address="192.0.2.24", sent=20, delivered=18, bounced=2))
    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    assert {ippool.ip(a).quota.daily for a in addresses.values()} == {2000}
    ippool.stats(
        pb.DeliveryStats(address=addresses["hold"], sent=2000, delivered=1940, bounced=60),
        pb.DeliveryStats(address=addresses["bounce"], sent=2000, delivered=1880, bounced=120),
        pb.DeliveryStats(address=addresses["complaint"], sent=2000, delivered=2000, complained=7),
    )
    ippool.next_day()
    jobs.daily_warmup(ippool.app)

    hold = ippool.decisions(addresses["hold"], WARMUP)[0]
    assert (hold.action, hold.rule, hold.quota_before, hold.quota_after) == ("HOLD", "BOUNCE_HOLD", 2000, 2000)
    assert hold.figures.bounce_rate == pytest.approx(0.03) and hold.figures.bounce_rate_counted
    assert (hold.figures.sent, hold.figures.bounced, hold.figures.day) == (2000, 60, "2026-01-06")
    assert "3.00%" in hold.reason
    assert ippool.ip(addresses["hold"]).quota.daily == 2000

    bounce = ippool.decisions(addresses["bounce"], WARMUP)[0]
    assert (bounce.action, bounce.rule, bounce.quota_after) == ("STEP_BACK", "BOUNCE_STEP_BACK", 1000)
    assert bounce.figures.bounce_rate == pytest.approx(0.06)
    assert "6.00%" in bounce.reason and (bounce.step_index_before, bounce.step_index_after) == (1, 0)
    assert ippool.ip(addresses["bounce"]).quota.daily == 1000

    complaint = ippool.decisions(addresses["complaint"], WARMUP)[0]
    assert (complaint.action, complaint.rule, complaint.quota_after) == ("STEP_BACK", "COMPLAINT_STEP_BACK", 1000)
    assert complaint.figures.complaint_rate == pytest.approx(0.0035) and complaint.figures.complaint_rate_counted
    assert "0.35%" in complaint.reason

    few = ippool.decisions("192.0.2.24", WARMUP)[-1]  # its first decision: the day with 2 bounces of 20
    assert (few.action, few.rule) == ("ADVANCE", "HEALTHY")
    assert few.figures.bounce_rate == pytest.approx(0.10) and not few.figures.bounce_rate_counted
    assert any("not counted" in note for note in few.notes)


def test_throttling_and_no_sending_hold(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.31")
    ippool.register("192.0.2.32")
    ippool.stats(
        pb.DeliveryStats(address="192.0.2.31", provider=pb.PROVIDER_GROUP_GMAIL, sent=20, delivered=20, throttled=3),
        pb.DeliveryStats(address="192.0.2.31", provider=pb.PROVIDER_GROUP_OTHER, sent=30, delivered=30),
    )
    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    throttled = ippool.decisions("192.0.2.31", WARMUP)[0]
    assert (throttled.action, throttled.rule) == ("HOLD", "PROVIDER_THROTTLED")
    assert list(throttled.figures.throttled_providers) == ["GMAIL"]
    assert throttled.figures.sent == 50  # the providers' figures add up
    idle = ippool.decisions("192.0.2.32", WARMUP)[0]
    assert (idle.action, idle.rule) == ("HOLD", "NO_SENDING")


def test_an_ip_idle_for_30_days_restarts_its_warmup(ippool: IpPoolService) -> None:
    _fast_schedule(ippool)
    ippool.register("192.0.2.41", schedule_id="fast")
    ippool.stats(healthy("192.0.2.41", 1000))
    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    assert ippool.ip("192.0.2.41").quota.daily == 2000
    ippool.clock.advance(timedelta(days=31))
    jobs.daily_warmup(ippool.app)
    ip = ippool.ip("192.0.2.41")
    assert (ip.quota.daily, ip.warmup.step_index, ip.warmup.sending_day) == (1000, 0, 1)
    restart = [d for d in ippool.decisions("192.0.2.41", WARMUP) if d.action == "RESTART"]
    assert [d.rule for d in restart] == ["IDLE_RESTART"]
