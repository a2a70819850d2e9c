"""The reputation migrations on a database of the first version, on SQLite and on a real PostgreSQL: rows written
at each revision (as the code of that revision wrote them) are read back through today's repositories, and the
use cases carry on from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.db import Database, migrate
from libs.tables import event_outbox
from reputation.adapters.unit_of_work import SqlReputationUnitOfWork
from reputation.app.scanning import IpScans
from reputation.app.zones import ZoneUseCases
from reputation.bootstrap import DEFINITION
from reputation.domain.check_policy import CheckPolicy
from reputation.domain.checks import CheckKind, Verdict
from reputation.domain.dnsbl import HealthStatus, ListingStatus
from reputation.domain.scan_schedule import ScheduledIp, TenantScanInterval
from reputation.domain.tenant_domains import SendingDomain
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import Severity
from tests.integration.reputation.service import storage_only

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LISTED = "192.0.2.10"
RETIRED = "192.0.2.11"


def upgrade_to(db: Database, revision: str) -> None:
    with db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(DEFINITION.migrations))
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = db.schema
        command.upgrade(cfg, revision)


def insert(db: Database, sql: str, *rows: dict[str, object]) -> None:
    with db.engine.begin() as conn:
        for row in rows:
            conn.execute(sa.text(sql), row)


def first_version_scan(when: datetime, listed: bool) -> bytes:
    """A ScanResult as the first version stored it: zones named, a coarse severity, no zone key."""
    zone = pb.ZoneResult(zone="zen.spamhaus.org", status=pb.LISTING_STATUS_NOT_LISTED)
    if listed:
        zone = pb.ZoneResult(
            zone="zen.spamhaus.org",
            status=pb.LISTING_STATUS_LISTED,
            answers=["127.0.0.4"],
            meaning="Spamhaus XBL",
            severity=pb.SEVERITY_CRITICAL,
        )
    message = pb.ScanResult(listed=listed, zones=[zone], complete=True, trigger="periodic")
    message.scan_time.FromDatetime(when)
    return message.SerializeToString()


def write_each_revision(db: Database) -> None:
    upgrade_to(db, "reputation_0001")
    insert(
        db,
        "INSERT INTO monitored_ips (address, tenant_id, helo_hostname, registered_at, active)"
        " VALUES (:a, :t, :h, :r, :active)",
        {"a": LISTED, "t": "sos-expat", "h": "mta1.sos.example", "r": T0, "active": True},
        {"a": RETIRED, "t": "sos-expat", "h": "", "r": T0, "active": False},
    )
    insert(
        db,
        "INSERT INTO scan_results (address, tenant_id, scan_time, listed, result) VALUES (:a, 'sos-expat', :t, :l, :r)",
        {"a": LISTED, "t": T0, "l": False, "r": first_version_scan(T0, False)},
        {"a": LISTED, "t": T0 + timedelta(hours=4), "l": True, "r": first_version_scan(T0 + timedelta(hours=4), True)},
    )

    upgrade_to(db, "reputation_0002")
    since = (T0 + timedelta(hours=4)).isoformat()
    listing = {"zone_name": "zen.spamhaus.org", "codes": [["127.0.0.4", "block", "Spamhaus XBL", 5]]}
    insert(
        db,
        "INSERT INTO ip_listings (address, tenant_id, listings, scanned_at, changed_at) VALUES (:a, :t, :l, :s, :s)",
        {
            "a": LISTED,
            "t": "sos-expat",
            "l": json.dumps({"spamhaus-zen": {**listing, "severity": 5, "reason": "", "since": since}}),
            "s": T0 + timedelta(hours=4),
        },
    )
    insert(
        db,
        "INSERT INTO zone_health (zone_key, status, reason, checked_at, changed_at) VALUES (:k, :s, :r, :t, :t)",
        {"k": "spamhaus-zen", "s": "healthy", "r": "", "t": T0},
        {"k": "psbl", "s": "unhealthy", "r": "does not list its test point", "t": T0},
    )
    insert(
        db,
        "INSERT INTO tenant_zones (tenant_id, ip_zones, domain_zones, updated_at, updated_by)"
        " VALUES ('ulixai', :ip, '[]', :t, 'operator')",
        {"ip": json.dumps(["spamhaus-zen", "spamcop"]), "t": T0},
    )

    upgrade_to(db, "reputation_0003")
    insert(
        db,
        "INSERT INTO tenant_domains (tenant_id, sending_domains, tracking_domains, updated_at, updated_by, checked_at)"
        " VALUES ('sos-expat', :s, :tr, :t, 'operator', :t)",
        {
            "s": json.dumps([{"domain": "mail.sos.example", "dkim_selectors": ["s1"]}]),
            "tr": json.dumps(["click.sos.example"]),
            "t": T0,
        },
    )
    check = pb.DomainCheck(
        check="dmarc", subject="mail.sos.example", verdict=pb.CHECK_VERDICT_FAIL, reason="no DMARC record"
    )
    insert(
        db,
        "INSERT INTO domain_check_state (tenant_id, domain, check_kind, subject, domain_role, verdict, result,"
        " verdict_at, changed_at, unknown_reason, unknown_at)"
        " VALUES ('sos-expat', 'mail.sos.example', 'dmarc', 'mail.sos.example', 'sending', 'fail', :r, :t, :t, '',"
        " NULL)",
        {"r": check.SerializeToString(), "t": T0},
    )

    upgrade_to(db, "reputation_0004")
    insert(
        db,
        "INSERT INTO tenant_domains (tenant_id, sending_domains, tracking_domains, updated_at, updated_by, checked_at,"
        " check_policy) VALUES ('ulixai', :s, '[]', :t, 'operator', NULL, :p)",
        {
            "s": json.dumps(
                [{"domain": "ulixai.example", "dkim_selectors": ["k1"], "return_path_domain": "bounces.ulixai.example"}]
            ),
            "t": T0,
            "p": json.dumps({"generic_ptr": "fail"}),
        },
    )

    upgrade_to(db, "reputation_0005")
    insert(
        db,
        "INSERT INTO tenant_scan_settings (tenant_id, scan_interval_seconds, updated_at, updated_by)"
        " VALUES ('ulixai', 3600, :t, 'admin')",
        {"t": T0},
    )


def test_rows_of_every_revision_are_read_back_by_todays_repositories(empty_db: Database) -> None:
    db = empty_db
    write_each_revision(db)
    migrate(db, DEFINITION.migrations)  # the platform tables and the service's own to head, as a start does
    clock = FakeClock(T0 + timedelta(days=1))
    with SqlReputationUnitOfWork(db, source="reputation", clock=clock) as uow:
        assert uow.ips.get(LISTED) == WatchedIp(LISTED, "sos-expat", "mta1.sos.example", True)
        assert [ip.address for ip in uow.ips.active("sos-expat")] == [LISTED]
        assert uow.ips.get(RETIRED) == WatchedIp(RETIRED, "sos-expat", "", False)
        assert uow.ips.never_scanned() == []

        newest, oldest = uow.scans.latest(LISTED, 10)
        assert (newest.scan_time, newest.listed, newest.trigger) == (T0 + timedelta(hours=4), True, "periodic")
        zen = newest.zones[0]
        assert (zen.zone, zen.status, zen.answers) == ("zen.spamhaus.org", ListingStatus.LISTED, ("127.0.0.4",))
        assert zen.severity is Severity.CRITICAL  # from the coarse severity the first version kept
        assert oldest.scan_time == T0 and not oldest.listed

        listings = uow.listings.get(LISTED)
        assert listings is not None and list(listings.listed) == ["spamhaus-zen"]
        assert listings.listed["spamhaus-zen"].since == T0 + timedelta(hours=4)
        assert listings.state.zones == {"spamhaus-zen"}

        health = uow.zone_health.all()
        assert health["spamhaus-zen"].status is HealthStatus.HEALTHY and health["spamhaus-zen"].checked_at == T0
        assert health["psbl"].status is HealthStatus.UNHEALTHY

        ulixai = uow.tenant_zones.get("ulixai")
        assert ulixai.ip_zone_keys == ("spamhaus-zen", "spamcop") and ulixai.updated_at == T0
        assert uow.tenant_zones.get("sos-expat").empty

        domains = uow.tenant_domains.get("sos-expat")
        assert domains.sending == (SendingDomain("mail.sos.example", ("s1",)),)  # no Return-Path: the domain itself
        assert domains.tracking == ("click.sos.example",) and domains.checked_at == T0
        assert domains.check_policy == CheckPolicy()  # written before there was a policy: the defaults
        ulixai_domains = uow.tenant_domains.get("ulixai")
        assert ulixai_domains.sending == (SendingDomain("ulixai.example", ("k1",), "bounces.ulixai.example"),)
        assert ulixai_domains.check_policy == CheckPolicy(generic_ptr=Verdict.FAIL)
        # From before the schedule: due at the next tick, then at its own moment.
        # Never scheduled: due since it was first watched (its registration, from the first revision's row).
        assert uow.ips.scan_schedule() == [ScheduledIp(LISTED, "sos-expat", None, registered_at=T0)]
        intervals = uow.scan_settings.get_many(["ulixai", "sos-expat"])
        assert intervals["ulixai"] == TenantScanInterval("ulixai", timedelta(hours=1), T0)
        assert intervals["sos-expat"] == TenantScanInterval("sos-expat")
        (state,) = uow.domain_checks.of_tenant("sos-expat").values()
        assert state.key == ("mail.sos.example", "dmarc", "mail.sos.example") and state.verdict is Verdict.FAIL
        assert state.result.check is CheckKind.DMARC and state.result.reason == "no DMARC record"


def test_the_use_cases_carry_on_from_the_upgraded_rows(empty_db: Database) -> None:
    db = empty_db
    write_each_revision(db)
    migrate(db, DEFINITION.migrations)
    clock = FakeClock(T0 + timedelta(days=1))
    context = storage_only(db, clock)
    operator = Caller("sos-operator", Role.OPERATOR, "sos-expat")
    reply = IpScans(context).get(operator, LISTED, history_size=5)
    assert reply.listed and [z.zone_key for z in reply.current_listings] == ["spamhaus-zen"]
    assert reply.latest is not None and reply.latest.listed and [h.listed for h in reply.history] == [False]

    ZoneUseCases(context).set_for_tenant(operator, "sos-expat", ["spamcop"], [])  # ZEN no longer checked
    after = IpScans(context).get(operator, LISTED)
    assert not after.listed
    with db.transaction() as session:
        types = session.execute(sa.select(event_outbox.c.event_type)).scalars().all()
    assert types == ["emailengine.reputation.v1.IpListingChanged"]
