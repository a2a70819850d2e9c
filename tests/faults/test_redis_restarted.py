"""Fault: Redis restarted. The test Redis keeps nothing on disk, so the restart loses the event stream, its consumer
groups and whatever they had not read yet."""

from __future__ import annotations

import pytest

from tests.faults.world import LOAD_TENANT, FaultWorld, describe
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e

IP = "198.51.100.60"


def _toggle(world: FaultWorld, address: str, verb: str) -> None:
    reply = world.rest("POST", f"/api/v2/ips/{address}:{verb}", "acme", json={"reason": f"redis fault: {verb}"})
    assert reply.status_code == 200, reply.text


def test_redis_restarted_with_an_unread_backlog_loses_no_event_and_applies_none_twice(fault_world: FaultWorld) -> None:
    """The notifier is down while ip-pool relays state changes it wants; then Redis restarts empty, losing the
    stream with those unread entries (and every consumer group). Writes go on during the outage. Afterwards: every
    event reached every consumer group that wants it exactly once (each IP state change is one notifier alert), the
    outboxes are empty and the groups read the new stream, with no service restarted but the notifier."""
    world = fault_world
    made = world.rest("POST", "/api/v2/ips", "acme", json={"address": IP, "tenant_id": LOAD_TENANT})
    assert made.status_code == 200, made.text
    assert not (found := world.consistent()), describe(found)

    for replica in world.stack.replicas_of("notifier"):
        world.stack.kill(replica)
    for verb in ("pause", "resume", "pause"):
        _toggle(world, IP, verb)
    # Relayed, and applied by reputation and campaign-gateway; the notifier's group has them unread.
    wait_until(lambda: not world.inconsistency().unrelayed, 15, "events relayed")

    world.redis.halt()
    _toggle(world, IP, "resume")  # accepted while Redis is down: its event waits in ip-pool's outbox
    world.redis.start_again()
    _toggle(world, IP, "pause")
    # Nothing restarted: the groups that were up read the new stream.
    wait_until(lambda: set(world.consistent(timeout=0).unapplied) <= {"notifier"}, 60, "the running groups caught up")
    for replica in world.stack.replicas_of("notifier"):
        world.stack.start_service(replica)

    found = world.consistent(timeout=60)
    assert not found, "after the Redis restart:\n" + describe(found)
    changes = world.events("ip-pool", "emailengine.ippool.v1.IpStateChanged")
    mine = [e for e in changes if IP.encode() in e[2]]
    assert len(mine) == 5, "one state change per toggle"
    alerts = world.alerts_by_key(LOAD_TENANT, f"ip-state:{IP}")[f"ip-state:{IP}"]
    assert sum(alerts.values()) == 5, f"one notifier alert per state change, none lost or doubled: {alerts}"
