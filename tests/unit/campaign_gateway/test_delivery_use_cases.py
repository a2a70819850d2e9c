"""The delivery use cases on in-memory storage and fake peers: deploy outcomes and alerts, the node lease,
standby pause/resume, IP events becoming jobs, plan, bounce delivery retries, the forwarder token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from campaign_gateway import jobs
from campaign_gateway.adapters.bounce_webhook import WebhookAnswer
from campaign_gateway.adapters.ippool_peer import PoolIp
from campaign_gateway.app.accounting import AccountingSettings, AccountingUseCases
from campaign_gateway.app.bounces import BounceSettings, BounceUseCases
from campaign_gateway.app.delivery_views import NewDelivery
from campaign_gateway.app.pmta_deploy import DeploySettings, DeployUseCases
from campaign_gateway.app.pmta_nodes import NodeUseCases
from campaign_gateway.domain.pmta_nodes import NodeSpec
from emailengine.campaign.v1 import delivery_events_pb2 as events
from emailengine.ippool.v1 import events_pb2 as ippool_events
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import Aborted, InvalidArgument, PermissionDenied
from tests.unit.campaign_gateway.campaign_fakes import FakeIpPool, fake_storage
from tests.unit.campaign_gateway.delivery_fakes import FakeNodeGateway, FakeScheduler

ADMIN = Caller("admin", Role.ADMIN, "")
OPERATOR = Caller("op", Role.OPERATOR, "sos-expat")
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr6"


def pool_ip(address: str, node: str, state: str = "WARMING", daily: int = 50, hourly: int = 5) -> PoolIp:
    return PoolIp(address, "sos-expat", "marketing", "default", node, "mta.example.net", state, None, daily, hourly,
                  {"GMAIL": 20, "OTHER": 10})  # fmt: skip


class World:
    def __init__(self) -> None:
        self.store, self.uow = fake_storage()
        self.clock = FakeClock(NOW)
        self.ippool = FakeIpPool([pool_ip("192.0.2.10", "pmta-a"), pool_ip("198.51.100.7", "pmta-b")], window=(8, 20))
        self.gateway = FakeNodeGateway()
        self.scheduler = FakeScheduler()
        self.nodes = NodeUseCases(self.uow, self.clock)
        self.deploys = DeployUseCases(
            self.uow, self.clock, ippool=self.ippool, nodes=self.gateway, scheduler=self.scheduler,
            settings=DeploySettings(),
        )  # fmt: skip
        for name in ("pmta-a", "pmta-b"):
            self.token = self.nodes.create(ADMIN, NodeSpec(name=name, ssh_host=f"{name}.example.net", ssh_host_key=KEY))

    def events(self, cls: type) -> list[Any]:
        return [event for _tenant, event in self.store.published if isinstance(event, cls)]


@pytest.fixture
def world() -> World:
    return World()


def test_a_deploy_applies_then_leaves_an_unchanged_node_alone(world: World) -> None:
    first = world.deploys.deploy_node("pmta-a", "hourly")
    assert first is not None and first.outcome.value == "APPLIED"
    assert "smtp-source-host 192.0.2.10 mta.example.net" in world.gateway.files["pmta-a"]
    assert "198.51.100.7" not in world.gateway.files["pmta-a"]
    # The tenant's window (08-20, 12 h) spreads the provider caps: 20 a day to Gmail is 20/12h.
    assert "max-msg-rate 20/12h" in world.gateway.files["pmta-a"]
    again = world.deploys.deploy_node("pmta-a", "hourly")
    assert again is not None and again.outcome.value == "UNCHANGED"
    assert world.events(events.PmtaDeployFailed) == []


def test_a_refused_reload_and_an_unreachable_node_are_recorded_and_alerted(world: World) -> None:
    world.deploys.deploy_node("pmta-a", "hourly")
    world.ippool.ips.append(pool_ip("192.0.2.11", "pmta-a"))
    world.gateway.fail_reload.add("pmta-a")
    rolled = world.deploys.deploy_node("pmta-a", "ip-event")
    assert rolled is not None and rolled.outcome.value == "ROLLED_BACK" and "Error in line 3" in rolled.detail
    world.gateway.refuse.add("pmta-b")
    down = world.deploys.deploy_node("pmta-b", "hourly")
    assert down is not None and down.outcome.value == "UNREACHABLE" and down.consecutive_failures == 1
    alerts = world.events(events.PmtaDeployFailed)
    assert [(a.node, a.outcome, a.consecutive_failures) for a in alerts] == [
        ("pmta-a", "ROLLED_BACK", 1),
        ("pmta-b", "UNREACHABLE", 1),
    ]
    # What the node runs is still the last good deploy; the next success resets the count.
    with world.uow() as uow:
        assert "192.0.2.11" not in uow.pmta_nodes.get("pmta-a").deployed_text
    ok = world.deploys.deploy_node("pmta-a", "hourly")
    assert ok is not None and ok.outcome.value == "APPLIED" and ok.consecutive_failures == 0


def test_a_node_being_deployed_is_not_deployed_twice_at_once(world: World) -> None:
    with world.uow() as uow:
        uow.leases.acquire("pmta-a", "deploy", "someone-else", now=NOW, until=NOW + timedelta(minutes=5))
        uow.commit()
    assert world.deploys.deploy_node("pmta-a", "hourly") is None
    with pytest.raises(Aborted):
        world.deploys.deploy(ADMIN, "pmta-a", force=False)
    world.clock.advance(timedelta(minutes=6))  # the holder crashed: its lease runs out
    assert world.deploys.deploy_node("pmta-a", "hourly") is not None


def test_ip_events_become_jobs_and_standby_pauses_then_redeploys(world: World) -> None:
    world.deploys.on_ip_quota_changed(None, None, ippool_events.IpQuotaChanged(address="192.0.2.10"))  # type: ignore[arg-type]
    world.deploys.on_ip_state_changed(None, None, ippool_events.IpStateChanged(address="192.0.2.10", state=3))  # type: ignore[arg-type]
    assert world.scheduler.jobs == [
        ("deploy_ip_node", "192.0.2.10", "ip-event"),
        ("apply_ip_state", "192.0.2.10", "STANDBY"),
    ]
    world.deploys.deploy_node("pmta-a", "hourly")
    world.ippool.ips[0] = pool_ip("192.0.2.10", "pmta-a", state="STANDBY", daily=0, hourly=0)
    assert world.deploys.apply_ip_state("192.0.2.10", "STANDBY").done == "pause"
    assert world.gateway.calls[-2:] == [("pause", "vmta-192-0-2-10"), ("deploy", "pmta-a")]
    assert "virtual-mta vmta-192-0-2-10\n" not in world.gateway.files["pmta-a"].split("<virtual-mta-pool")[-1]
    assert world.deploys.apply_ip_state("192.0.2.10", "STANDBY").done == "pause"  # idempotent
    assert world.gateway.paused == {"vmta-192-0-2-10"}
    world.ippool.ips[0] = pool_ip("192.0.2.10", "pmta-a")
    assert world.deploys.apply_ip_state("192.0.2.10", "WARM").done == "resume"
    assert world.gateway.paused == set()
    # A VMTA the node does not have yet has nothing queued: nothing to pause, no alert.
    assert "no such VMTA" in world.deploys.apply_ip_state("198.51.100.7", "PAUSED").done
    assert world.events(events.PmtaQueueCommandFailed) == []


def test_a_lost_pause_or_resume_is_made_good_by_the_next_deploy(world: World) -> None:
    """The IP pool is the truth: an IP that may not send has its queues paused by any deploy of its node, one that
    may send again has the pause this service put on it lifted, whether or not the `apply_ip_state` job ran."""
    world.deploys.deploy_node("pmta-a", "hourly")
    world.ippool.ips[0] = pool_ip("192.0.2.10", "pmta-a", state="STANDBY", daily=0, hourly=0)
    world.deploys.deploy_node("pmta-a", "hourly")  # the job of the IpStateChanged event was lost
    assert world.gateway.paused == {"vmta-192-0-2-10"}
    calls = len(world.gateway.calls)
    world.deploys.deploy_node("pmta-a", "hourly")
    assert ("pause", "vmta-192-0-2-10") not in world.gateway.calls[calls:]  # held already: not sent again
    world.ippool.ips[0] = pool_ip("192.0.2.10", "pmta-a")
    world.deploys.deploy_node("pmta-a", "hourly")  # the job of the return to WARMING was lost too
    assert world.gateway.paused == set()
    world.gateway.paused.add("vmta-192-0-2-11")  # an operator's own pause is not this service's to lift
    world.deploys.deploy_node("pmta-a", "hourly")
    assert world.gateway.paused == {"vmta-192-0-2-11"}


def test_a_job_that_could_not_reach_its_node_raises_for_the_runner_to_try_it_again(world: World) -> None:
    """Recorded and reported first; then the job fails, so an RQ worker retries it with backoff."""
    app = SimpleNamespace(deploys=world.deploys)
    world.deploys.deploy_node("pmta-a", "hourly")
    world.gateway.refuse.add("pmta-a")
    world.ippool.ips[0] = pool_ip("192.0.2.10", "pmta-a", state="STANDBY", daily=0, hourly=0)
    with pytest.raises(jobs.NodeNotReached, match="pmta-a"):
        jobs.deploy_node(app, "pmta-a", "ip-event")  # type: ignore[arg-type]
    with pytest.raises(jobs.NodeNotReached, match=r"192\.0\.2\.10"):
        jobs.apply_ip_state(app, "192.0.2.10", "STANDBY")  # type: ignore[arg-type]
    assert [e.command for e in world.events(events.PmtaQueueCommandFailed)] == ["pause"]
    assert world.events(events.PmtaDeployFailed)[-1].outcome == "UNREACHABLE"
    world.gateway.refuse.discard("pmta-a")  # the node is back: the retry does it
    assert jobs.apply_ip_state(app, "192.0.2.10", "STANDBY") == "pause"  # type: ignore[arg-type]
    assert world.gateway.paused == {"vmta-192-0-2-10"}
    # A failure the node answered (a refused reload) is not retried: the same file would be refused again.
    world.ippool.ips.append(pool_ip("192.0.2.11", "pmta-a"))
    world.gateway.fail_reload.add("pmta-a")
    refused = jobs.deploy_node(app, "pmta-a", "ip-event")  # type: ignore[arg-type]
    assert refused is not None and refused.outcome.value == "ROLLED_BACK"


def test_plan_diffs_against_the_node_or_the_last_deploy(world: World) -> None:
    world.gateway.files["pmta-a"] = "# hand-written\n"
    plan = world.deploys.plan(ADMIN, ["pmta-a"])[0]
    assert plan.changed and plan.compared_with == "node" and "-# hand-written" in plan.diff
    assert world.gateway.calls == []  # nothing deployed
    world.gateway.configured = False
    plan = world.deploys.plan(ADMIN, [])[1]
    assert plan.node == "pmta-b" and plan.compared_with == "last-deploy" and "SSH client key" in plan.error
    with pytest.raises(PermissionDenied):
        world.deploys.plan(OPERATOR, [])


def test_node_registration_rules(world: World) -> None:
    with pytest.raises(InvalidArgument) as bad:
        world.nodes.create(ADMIN, NodeSpec(name="-bad", ssh_host="10.0.0.1", ssh_host_key="nope", ssh_port=99999))
    fields = {v.field for v in bad.value.violations}
    assert {"pmta_node.name", "pmta_node.ssh_host_key", "pmta_node.ssh_port", "pmta_node.hostname"} <= fields
    view = world.nodes.get(ADMIN, "pmta-a")
    assert view.record.spec.hostname == "pmta-a.example.net" and view.record.spec.smtp_port == 25
    assert view.forwarder_token == ""
    rotated = world.nodes.rotate_token(ADMIN, "pmta-a")
    assert world.nodes.check_forwarder_token("pmta-a", rotated.forwarder_token)
    assert not world.nodes.check_forwarder_token("pmta-a", "guess")
    assert not world.nodes.check_forwarder_token("pmta-z", rotated.forwarder_token)


def test_a_push_with_a_wrong_token_is_refused_before_anything_is_read(world: World) -> None:
    accounting = AccountingUseCases(
        world.uow, world.clock, ippool=world.ippool, nodes=world.gateway, scheduler=world.scheduler,
        settings=AccountingSettings(), check_token=world.nodes.check_forwarder_token,
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        accounting.push("pmta-a", "wrong", b'{"type":"d"}')


class FlakyWebhook:
    def __init__(self, answers: list[int]):
        self.answers = answers
        self.sent: list[str] = []

    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, now: datetime) -> WebhookAnswer:
        status = self.answers.pop(0) if self.answers else 200
        self.sent.append(delivery_id)
        return WebhookAnswer(200 <= status < 300, status, "" if status == 200 else f"HTTP {status}")


def test_a_bounce_delivery_is_retried_with_backoff_until_delivered(world: World) -> None:
    hook = FlakyWebhook([500, 502, 500])
    bounces = BounceUseCases(world.uow, world.clock, webhooks=hook, settings=BounceSettings())
    route = bounces.create_route(OPERATOR, "sos-expat", url="https://hooks.example.com/b", secret="s" * 16, events=[])
    with world.uow() as uow:
        uow.bounce_deliveries.add_many([NewDelivery("bnc_1", route.route.route_id, "sos-expat", b"{}", NOW)])
        uow.commit()
    delays = []
    for _ in range(3):
        assert bounces.deliver_due() == 0
        with world.uow() as uow:
            delays.append(uow.bounce_deliveries.rows["bnc_1"].next_attempt_at - world.clock.now())
        assert bounces.deliver_due() == 0  # not due yet: nothing sent
        world.clock.advance(delays[-1])
    assert delays == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert bounces.deliver_due() == 1
    assert hook.sent == ["bnc_1"] * 4
    assert bounces.get_route(OPERATOR, "sos-expat", route.route.route_id).counts.delivered == 1


def test_a_gone_webhook_gives_up_and_a_deleted_route_fails_its_deliveries(world: World) -> None:
    hook = FlakyWebhook([410])
    bounces = BounceUseCases(world.uow, world.clock, webhooks=hook, settings=BounceSettings())
    route = bounces.create_route(OPERATOR, "sos-expat", url="https://hooks.example.com/b", secret="s" * 16, events=[])
    rid = route.route.route_id
    with world.uow() as uow:
        uow.bounce_deliveries.add_many([NewDelivery(f"bnc_{n}", rid, "sos-expat", b"{}", NOW) for n in range(2)])
        uow.commit()
    bounces._settings = BounceSettings(batch=1)  # one at a time: the first meets the 410
    assert bounces.deliver_due() == 0
    bounces.delete_route(OPERATOR, "sos-expat", rid)
    with world.uow() as uow:
        assert {r.state for r in uow.bounce_deliveries.rows.values()} == {"FAILED"}


def test_a_change_during_a_deploy_is_deployed_by_the_lease_holder(world: World) -> None:
    deploy = world.gateway.deploy

    def slow_deploy(spec: NodeSpec, text: str, *, force: bool) -> Any:
        result = deploy(spec, text, force=force)
        if not any(ip.address == "192.0.2.11" for ip in world.ippool.ips):
            # Meanwhile ip-pool registers another IP on the node; its own deploy job finds the lease held.
            world.ippool.ips.append(pool_ip("192.0.2.11", "pmta-a"))
            assert world.deploys.deploy_node("pmta-a", "ip-event") is None
        return result

    world.gateway.deploy = slow_deploy  # type: ignore[method-assign]
    final = world.deploys.deploy_node("pmta-a", "hourly")
    assert final is not None and final.outcome.value == "APPLIED"
    assert "smtp-source-host 192.0.2.11" in world.gateway.files["pmta-a"]
    assert [c for c in world.gateway.calls if c[0] == "deploy"] == [("deploy", "pmta-a")] * 2


def test_without_an_ssh_key_ip_events_deploy_nothing_and_alert_nothing(world: World) -> None:
    # The embedded default (dry-run): nodes are registered for MailWizz's delivery servers and planned, never
    # contacted, so the jobs IP events start do nothing rather than record failed deploys and alert.
    world.gateway.configured = False
    assert world.deploys.deploy_ip_node("192.0.2.10", "ip-event") is None
    assert world.deploys.apply_ip_state("192.0.2.10", "STANDBY").done.startswith("dry-run")
    assert world.gateway.calls == [] and world.events(events.PmtaDeployFailed) == []
    with world.uow() as uow:
        assert uow.deployments.latest("pmta-a") is None
