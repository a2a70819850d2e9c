"""Fault: `kill -9` of a service under load. Each service runs two replicas behind Envoy; one is SIGKILLed while
readers and writers call the gateway, then started again.

What each test checks afterwards:
* no read failed: Envoy sends a read the killed replica did not answer to the other one;
* no accepted write is lost (each is visible afterwards) and none is done twice: a write that got a 503 was sent
  again with the same request (same pause, same alert dedup key, same campaign request_id) until accepted;
* the events those writes caused were relayed and applied once by every group that wants them, and the system is
  consistent (outboxes empty, nothing pending in the stream, no dead letter).
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from tests.faults.load import Answer, Load
from tests.faults.world import LOAD_TENANT, ULIXAI_CHAT, FaultWorld, describe, restart
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e


def _register(world: FaultWorld, *addresses: str) -> None:
    for address in addresses:
        made = world.rest("POST", "/api/v2/ips", "acme", json={"address": address, "tenant_id": LOAD_TENANT})
        assert made.status_code == 200, made.text
        wait_until(
            lambda a=address: world.rest("GET", f"/api/v2/reputation/ips/{a}", "acme").status_code == 200,
            15,
            f"reputation watching {address}",
        )


def _toggles(address: str):
    """Pause, resume, pause, ... of one IP: each write changes its state once, however often it is sent."""

    def make(n: int) -> tuple[str, str, str, dict]:
        verb = "pause" if n % 2 == 0 else "resume"
        return f"{address}#{n}", "POST", f"/api/v2/ips/{address}:{verb}", {"reason": f"kill -9 load #{n}"}

    return make


def _kill_under_load(world: FaultWorld, load: Load, service: str) -> None:
    """Load on both replicas, then the first SIGKILLed, the other carrying the load alone, then the first started
    again and the load on both."""
    load.wait_for_answers(30)
    world.stack.kill(service)
    load.wait_for_answers(60)
    restart(world, service)
    load.wait_for_answers(60)


def _check_toggles(world: FaultWorld, load: Load, address: str) -> None:
    writes = load.accepted(address)
    assert writes and len(writes) == len(load.writes[address]), f"every toggle of {address} was accepted"
    state = world.rest("GET", f"/api/v2/ips/{address}", "acme").json()["state"]
    expected = "IP_STATE_PAUSED" if len(writes) % 2 else "IP_STATE_WARMING"
    assert state == expected, f"{address}: the last accepted of {len(writes)} toggles holds"
    changes = [e for e in world.events("ip-pool", "emailengine.ippool.v1.IpStateChanged") if address.encode() in e[2]]
    assert len(changes) == len(writes), (
        f"{address}: one state change per accepted toggle, none lost, none doubled by a toggle sent again "
        f"({len(load.refused_attempts(address))} attempts answered without being accepted)"
    )


def _check_consistent(world: FaultWorld, load: Load, *addresses: str) -> None:
    found = world.consistent(timeout=60)
    assert not found, "after the kill:\n" + describe(found)
    for address in addresses:
        alerts = world.alerts_by_key(LOAD_TENANT, f"ip-state:{address}").get(f"ip-state:{address}", Counter())
        assert sum(alerts.values()) == len(load.accepted(address)), (
            f"{address}: the notifier applied each state change once (one alert each): {alerts}"
        )


def _no_failed_read(load: Load) -> None:
    failed = load.failed_reads()
    assert load.reads and not failed, (
        f"{len(failed)} of {len(load.reads)} reads failed while the other replica answered: "
        + "; ".join(f"{a.call} {a.status} {a.body[:120]}" for a in failed[:5])
    )


def test_ip_pool_killed_under_load_loses_no_accepted_write_and_fails_no_read(fault_world: FaultWorld) -> None:
    """ip-pool SIGKILLed while IPs are paused and resumed and the tenant renamed, and IPs and the tenant read.
    Afterwards: every read was served, each IP is in the state of its last accepted toggle with exactly one state
    change per toggle (none lost, none doubled by a retry), the tenant has its last accepted name, and every state
    change reached reputation, campaign-gateway and the notifier once."""
    world = fault_world
    ips = ("198.51.100.101", "198.51.100.102")
    _register(world, *ips)
    load = Load(world)
    for address in ips:
        load.reader("acme", f"/api/v2/ips/{address}", f"/api/v2/tenants/{LOAD_TENANT}", "/api/v2/ips?page_size=5")
        load.writer(address, "acme", _toggles(address))
    load.writer(
        "rename",
        "acme",
        lambda n: (
            f"name-{n}",
            "PATCH",
            f"/api/v2/tenants/{LOAD_TENANT}?update_mask=display_name",
            {"display_name": f"Acme #{n}"},
        ),
    )
    with load:
        _kill_under_load(world, load, "ip-pool")
    assert not load.errors, load.errors
    _no_failed_read(load)
    for address in ips:
        _check_toggles(world, load, address)
    renames = load.accepted("rename")
    tenant = world.rest("GET", f"/api/v2/tenants/{LOAD_TENANT}", "acme").json()
    assert tenant["display_name"] == renames[-1].body["display_name"], "the last accepted rename holds"
    _check_consistent(world, load, *ips)


def test_reputation_killed_under_load_loses_no_accepted_write_and_fails_no_read(fault_world: FaultWorld) -> None:
    """reputation SIGKILLed while a tenant's zones are set over and over and IP state changes stream in for it to
    apply, and its IPs, zones and the tenant's zones are read. Afterwards: every read was served, the tenant has the
    zones of its last accepted write, and every event reached every group once."""
    world = fault_world
    address = "198.51.100.111"
    _register(world, address)
    choices = (["spamhaus-zen"], ["spamcop", "spamhaus-zen"], ["barracuda"])
    load = Load(world)
    load.reader(
        "acme",
        f"/api/v2/reputation/ips/{address}",
        "/api/v2/reputation/zones",
        f"/api/v2/reputation/tenants/{LOAD_TENANT}/zones",
    )
    load.reader("acme", f"/api/v2/reputation/tenants/{LOAD_TENANT}/zones", f"/api/v2/reputation/ips/{address}")
    load.writer(
        "zones",
        "acme",
        lambda n: (
            f"zones-{n}",
            "PUT",
            f"/api/v2/reputation/tenants/{LOAD_TENANT}/zones",
            {"ip_zones": choices[n % 3]},
        ),
    )
    load.writer(address, "acme", _toggles(address), pause=0.1)
    with load:
        _kill_under_load(world, load, "reputation")
    assert not load.errors, load.errors
    _no_failed_read(load)
    last = load.accepted("zones")[-1].body["ip_zones"]
    zones = world.rest("GET", f"/api/v2/reputation/tenants/{LOAD_TENANT}/zones", "acme").json()
    assert zones["ip_zones"] == last, "the last accepted zones hold"
    _check_toggles(world, load, address)
    _check_consistent(world, load, address)


def test_campaign_gateway_killed_under_load_makes_each_campaign_once_and_fails_no_read(fault_world: FaultWorld) -> None:
    """campaign-gateway SIGKILLed while campaigns are created in MailWizz (each with its request_id, asked again
    after a 503 or while PENDING until it is SENDING), suppressions added and IP state changes stream in for it.
    Afterwards: every read was served; each request made exactly one campaign, one MailWizz list, one MailWizz
    campaign and one ip-pool reservation (a creation the kill cut is taken over when its lease ends, never made
    again); every accepted suppression is listed; every event reached every group once."""
    world = fault_world
    address = "198.51.100.121"
    _register(world, address)
    since = world.now()  # the services' clock (a test may have moved it days ahead)
    lists_before, campaigns_before = set(world.customer.lists), set(world.customer.campaigns)
    load = Load(world)
    load.reader("sos", "/api/v2/campaigns?tenant=sos-expat&page_size=5", "/api/v2/mailwizz/bindings/sos-expat")
    load.reader("sos", "/api/v2/suppressions?tenant=sos-expat&page_size=5", "/api/v2/campaigns?tenant=sos-expat")

    def campaign(n: int) -> tuple[str, str, str, dict]:
        contacts = [{"email": f"kill{n}a@r1.test"}, {"email": f"kill{n}b@r2.test"}]
        body = {"tenant": "sos-expat", "contacts": contacts, "template_id": "cold_v1", "request_id": f"kill-cg-{n}"}
        return f"kill-cg-{n}", "POST", "/api/v2/campaigns", body

    def sending(answer: Answer) -> bool:
        return answer.json()["state"] == "CAMPAIGN_STATE_SENDING"  # PENDING: asked again until it is made

    load.writer("campaigns", "sos", campaign, done=sending, pause=0.3)
    load.writer(
        "suppressions",
        "sos",
        lambda n: (
            f"s{n}",
            "POST",
            "/api/v2/suppressions:batchAdd",
            {"tenant": "sos-expat", "entries": [{"email": f"gone{n}@r3.test", "reason": "kill -9 load"}]},
        ),
    )
    load.writer(address, "acme", _toggles(address), pause=0.1)
    with load:
        _kill_under_load(world, load, "campaign-gateway")
    assert not load.errors, load.errors
    _no_failed_read(load)

    made = [w.accepted.json() for w in load.accepted("campaigns")]  # type: ignore[union-attr]
    assert made and len(made) == len(load.writes["campaigns"])
    ids = [c["campaign_id"] for c in made]
    assert len(set(ids)) == len(ids)
    rows = world.rows(
        "campaign-gateway",
        "SELECT request_id, count(*) FROM campaigns WHERE request_id LIKE 'kill-cg-%' GROUP BY request_id",
    )
    assert {r[0]: r[1] for r in rows} == {c["request_id"]: 1 for c in made}, "one campaign per request"
    new_lists = [m.general["name"] for uid, m in world.customer.lists.items() if uid not in lists_before]
    new_campaigns = [c.attributes["name"] for uid, c in world.customer.campaigns.items() if uid not in campaigns_before]
    for found, what in ((new_lists, "list"), (new_campaigns, "campaign")):
        per_campaign = Counter(re.search(r"\[ee ([0-9a-f-]{36})\]", name).group(1) for name in found)  # type: ignore[union-attr]
        assert per_campaign == Counter(ids), f"one MailWizz {what} per campaign, none made twice, none orphaned"
    reservations = world.rows(
        "ip-pool",
        "SELECT count(*) FROM allocations WHERE tenant_id = 'sos-expat' AND create_time >= :since",
        since=since,
    )[0][0]
    assert reservations == len(ids), "one ip-pool reservation per campaign"
    own = world.rest("GET", "/api/v2/ips?tenant_id=sos-expat&page_size=100", "sos").json()["ips"]
    assert {ip["address"] for c in made for ip in c["send_plan"]["ips"]} <= {ip["address"] for ip in own}

    listed = world.rows("campaign-gateway", "SELECT email FROM suppressions WHERE email LIKE 'gone%'")
    accepted = {w.body["entries"][0]["email"] for w in load.accepted("suppressions")}
    assert accepted <= {r[0] for r in listed}, "every accepted suppression is kept"
    _check_toggles(world, load, address)
    _check_consistent(world, load, address)


def test_notifier_killed_under_load_delivers_every_accepted_alert_and_fails_no_read(fault_world: FaultWorld) -> None:
    """notifier SIGKILLed while alerts pour in for a tenant with a Telegram route (each alert sent again with its
    dedup key after a 503, until accepted), IP state changes stream in for it, and alerts and routes are read.
    Afterwards: every read was served; each dedup key has exactly one alert that counts (a retry of an accepted one
    is a suppressed duplicate), each reached the chat (at least once: only a message in flight when the process
    died may be sent again, as a delivery is recorded after Telegram answers), and every event was applied once."""
    world = fault_world
    address = "198.51.100.131"
    _register(world, address)
    marker = f"kill9-{int(time.time())}"
    load = Load(world)
    load.reader("ulixai", "/api/v2/alerts?page_size=5", "/api/v2/alert-routes", "/api/v2/alert-settings/ulixai")
    load.reader("ulixai", "/api/v2/alert-routes/ulixai", "/api/v2/alerts?page_size=5")
    load.writer(
        "alerts",
        "ulixai",
        lambda n: (
            f"{marker}-{n}",
            "POST",
            "/api/v2/alerts",
            {"severity": "ALERT_SEVERITY_WARNING", "dedup_key": f"{marker}-{n}", "text": f"{marker}-{n} bounces"},
        ),
        pause=0.05,
    )
    load.writer(address, "acme", _toggles(address), pause=0.1)
    with load:
        _kill_under_load(world, load, "notifier")
    assert not load.errors, load.errors
    _no_failed_read(load)

    keys = [w.key for w in load.accepted("alerts")]
    assert keys and len(keys) == len(load.writes["alerts"])
    stored = world.alerts_by_key("ulixai", marker)
    counted = {key: sum(n for state, n in states.items() if state != "SUPPRESSED") for key, states in stored.items()}
    assert counted == dict.fromkeys(keys, 1), "one alert per dedup key; a retry of an accepted one is suppressed"

    def texts() -> Counter[str]:
        found = (re.search(rf"{marker}-\d+", m.text) for m in world.telegram.messages(ULIXAI_CHAT))
        return Counter(match.group(0) for match in found if match)

    deadline = time.monotonic() + 30
    while set(texts()) < set(keys) and time.monotonic() < deadline:
        time.sleep(0.2)
    sent = texts()
    assert set(sent) == set(keys), f"every accepted alert reached the chat; missing: {sorted(set(keys) - set(sent))}"
    again = {key: n for key, n in sent.items() if n > 1}
    assert sum(again.values()) - len(again) <= 1, f"only a message in flight at the kill may go twice: {again}"
    _check_toggles(world, load, address)
    _check_consistent(world, load, address)
