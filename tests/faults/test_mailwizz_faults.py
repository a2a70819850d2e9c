"""Faults: the tenant's MailWizz answering 5xx or too late during a campaign creation, and its database failing
during a quota sync (MailWizz has no API for quotas: the sync writes its MySQL `delivery_server` table, so that is
where its faults are)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.faults.world import PMTA_NODES, FaultWorld, describe

pytestmark = pytest.mark.e2e

DATABASE = "mailwizz_faults"


def _create(world: FaultWorld, request_id: str, count: int = 30) -> Any:
    contacts = [{"email": f"{request_id}-{n}@r{n % 5 + 1}.test", "first_name": f"P{n}"} for n in range(count)]
    body = {"tenant": "sos-expat", "contacts": contacts, "template_id": "cold_v1", "request_id": request_id}
    return world.rest("POST", "/api/v2/campaigns", "sos", json=body, timeout=60)


def _made_in_mailwizz(world: FaultWorld, campaign_id: str) -> tuple[int, int]:
    """(lists, campaigns) the stand-in holds for this campaign (their names carry its id)."""
    marker = f"[ee {campaign_id}]"
    lists = sum(1 for m in world.customer.lists.values() if marker in m.general["name"])
    campaigns = sum(1 for c in world.customer.campaigns.values() if marker in c.attributes["name"])
    return lists, campaigns


def _reservations(world: FaultWorld, since: datetime) -> int:
    query = "SELECT count(*) FROM allocations WHERE tenant_id = 'sos-expat' AND create_time >= :since"
    return world.rows("ip-pool", query, since=since)[0][0]


def test_mailwizz_timing_out_and_answering_5xx_during_a_campaign_creation_makes_one_list_and_one_campaign(
    fault_world: FaultWorld,
) -> None:
    """The list's creation answers after the gateway's deadline (MailWizz made it: it is found by its name, not
    made again); the campaign's creation then answers 503 for good: the call answers 503 and leaves the campaign
    FAILED after its subscribers, saying the same request resumes it. MailWizz recovers; the same request (same
    request_id) completes it. Afterwards: exactly one list, one MailWizz campaign, one ip-pool reservation, every
    subscriber once, the system consistent."""
    world, standin = fault_world, fault_world.mailwizz
    since = world.now()  # the services' clock (a test may have moved it days ahead)
    standin.delay_next(1, 3.0, path="/lists")  # made, but answered past EE_OUTBOUND_DEADLINE_SECONDS: lost
    standin.fail_next(100, status=503, path="/campaigns")
    try:
        refused = _create(world, "mw-fault-1")
        assert refused.status_code == 503, refused.text
        error = refused.json()
        assert error["code"] == 14 and "the same request with the same request_id resumes it" in error["message"]
        [failed] = [
            c
            for c in world.rest("GET", "/api/v2/campaigns?tenant=sos-expat&page_size=5", "sos").json()["campaigns"]
            if c["request_id"] == "mw-fault-1"
        ]
        assert (failed["state"], failed["stage"]) == ("CAMPAIGN_STATE_FAILED", "CAMPAIGN_STAGE_SUBSCRIBED")
    finally:
        standin.clear_faults()
    done = _create(world, "mw-fault-1")
    assert done.status_code == 200, done.text
    campaign = done.json()
    assert campaign["campaign_id"] == failed["campaign_id"] and campaign["state"] == "CAMPAIGN_STATE_SENDING"
    assert _made_in_mailwizz(world, campaign["campaign_id"]) == (1, 1), "one list and one campaign in MailWizz"
    assert standin.calls["lists.create"] >= 1 and campaign["mailwizz"]["subscribers_added"] == 30
    [mailwizz_list] = [m for m in world.customer.lists.values() if campaign["campaign_id"] in m.general["name"]]
    assert len(mailwizz_list.subscribers) == 30
    retried = [(s["step"], s["detail"]) for s in campaign["steps"] if s["outcome"] == "RETRIED"]
    assert retried[0] == (
        "list",
        f"MailWizz at {standin.url.split('/')[2]} did not answer POST lists in time; trying again",
    )
    assert _reservations(world, since) == 1, "the volume was reserved once"
    again = _create(world, "mw-fault-1")
    assert again.json()["campaign_id"] == campaign["campaign_id"] and _made_in_mailwizz(
        world, campaign["campaign_id"]
    ) == (1, 1)
    found = world.consistent()
    assert not found, describe(found)


class _ActiveWithZero:
    """Reads the delivery_server table all along; remembers any row ever seen active with a quota of 0 (which
    MailWizz reads as unlimited)."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self.seen: list[tuple] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._engine.connect() as connection:
                    rows = connection.execute(
                        sa.text(
                            "SELECT server_id, status, hourly_quota, daily_quota FROM mw_delivery_server"
                            " WHERE status = 'active' AND (hourly_quota = 0 OR daily_quota = 0)"
                        )
                    ).all()
                self.samples += 1
                self.seen += [tuple(r) for r in rows]
            except sa.exc.DBAPIError:
                pass  # the table is away for the fault
            time.sleep(0.02)

    def __enter__(self) -> _ActiveWithZero:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_mailwizz_database_failing_during_a_quota_sync_converges_and_never_leaves_a_row_active_with_0(
    fault_world: FaultWorld,
) -> None:
    """MailWizz's delivery_server table is gone (an operator's mistake, a failed migration) while an IP is paused:
    the quota sync answers 503 naming the MailWizz database, the binding shows the failure, a campaign's
    preflight answers 503 without making anything, and the rows stay as they were. The table comes back: the next
    sync converges (a plan shows nothing left to write; the paused IP's row inactive, the others active with their
    quota), then the IP resumes and its row is active again. All along, no row was ever active with a quota of 0."""
    world = fault_world
    address = "192.0.2.42"
    made = world.rest(
        "POST", "/api/v2/ips", "sos", json={"address": address, "tenant_id": "sos-expat", "pmta_node": PMTA_NODES[0]}
    )
    assert made.status_code == 200, made.text

    def rows() -> dict[str, tuple[str, int, int]]:
        with world.mailwizz_engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT hostname, meta_data, status, hourly_quota, daily_quota FROM mw_delivery_server")
            ).all()
        return {
            ip: (r.status, r.hourly_quota, r.daily_quota)
            for r in found
            for ip in (f"192.0.2.{n}" for n in range(40, 43))
            if f"vmta-{ip.replace('.', '-')}".encode() in (r.meta_data or b"")
        }

    def sync() -> Any:
        return world.rest("POST", "/api/v2/mailwizz/bindings/sos-expat:syncQuotas", "sos", json={})

    def converged() -> bool:
        plan = world.rest("POST", "/api/v2/mailwizz/bindings/sos-expat:planQuotaSync", "sos", json={}).json()
        return not [c for c in plan["changes"] if c["kind"] in ("QUOTA_CHANGE_KIND_CREATE", "QUOTA_CHANGE_KIND_UPDATE")]

    with _ActiveWithZero(world.mailwizz_engine) as watch:
        assert sync().status_code == 200
        assert rows()[address][0] == "active" and converged()
        since = world.now()  # the services' clock (a test may have moved it days ahead)
        lists_before = len(world.customer.lists)

        world.mariadb.execute("RENAME TABLE mw_delivery_server TO mw_delivery_server_away", database=DATABASE)
        try:
            paused = world.rest("POST", f"/api/v2/ips/{address}:pause", "sos", json={"reason": "mailwizz db fault"})
            assert paused.status_code == 200, paused.text
            failed = sync()
            assert failed.status_code == 503 and failed.json()["code"] == 14, failed.text
            assert "MailWizz database" in failed.json()["message"]
            binding = world.rest("GET", "/api/v2/mailwizz/bindings/sos-expat", "sos").json()
            assert "MailWizz database" in binding["last_sync_outcome"]
            refused = _create(world, "mw-db-fault")
            assert refused.status_code == 503, refused.text
            assert len(world.customer.lists) == lists_before and _reservations(world, since) == 0
        finally:
            world.mariadb.execute("RENAME TABLE mw_delivery_server_away TO mw_delivery_server", database=DATABASE)
        assert rows()[address][0] == "active", "untouched while the sync could not write (its old quota, not 0)"

        assert sync().status_code == 200
        assert converged(), "the sync converged: nothing left to write"
        after = rows()
        assert after[address][0] == "inactive"
        assert all(
            status == "active" and hourly > 0 and daily > 0
            for ip, (status, hourly, daily) in after.items()
            if ip != address
        )
        resumed = world.rest("POST", f"/api/v2/ips/{address}:resume", "sos", json={"reason": "mailwizz db back"})
        assert resumed.status_code == 200, resumed.text
        assert sync().status_code == 200 and converged()
        assert rows()[address][0] == "active"
    assert watch.samples > 10 and not watch.seen, f"rows seen active with a quota of 0: {watch.seen}"
    found = world.consistent()
    assert not found, describe(found)
