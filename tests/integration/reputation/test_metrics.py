"""reputation's scrape-time gauges over real rows, on SQLite and PostgreSQL: IPs of two tenants scanned against a
real rbldnsd (one zone listing the world, one dead), listings per tenant and zone, each zone's health, scans
overdue; no label is an IP address."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reputation import jobs
from tests.harness.dns_servers import Rbldnsd
from tests.harness.metrics_samples import Samples, assert_no_address_label, sample, samples
from tests.harness.servers import PostgresServer
from tests.integration.reputation.service import (
    CLEAN_IP,
    CLEAN_V6,
    DEAD,
    LISTED_IP,
    LISTED_V6,
    WORLD,
    ZONE_NAMES,
    ReputationService,
    rbl_env,
    running_reputation,
    start_rbldnsd,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, rbl: Rbldnsd, tmp_path: Path) -> Iterator[ReputationService]:
    database_url = ""
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"reputation_{tmp_path.name[-20:].replace('-', '_')}".lower()
        postgres.create_database(name)
        database_url = postgres.url_for(name)
    names = {**ZONE_NAMES, "spamcop": WORLD, "psbl": DEAD}
    env = rbl_env(rbl.nameserver, EE_REPUTATION_ZONE_NAMES=json.dumps(names))
    with running_reputation(tmp_path, env, database_url=database_url) as running:
        yield running


# What the collector reads from the database (the process's own counters and gauges are ReputationMetrics').
COLLECTED = (
    "emailengine_reputation_listed_ips",
    "emailengine_reputation_zone_status",
    "emailengine_reputation_overdue",
)


def metrics(service: ReputationService) -> Samples:
    found = samples(service.host.runtime.metrics, "emailengine_reputation_")
    return {key: value for key, value in found.items() if key[0].startswith(COLLECTED)}


IP_ZONES = (
    "barracuda", "junkemailfilter", "mailspike", "manitu", "psbl", "spamcop", "spamhaus-zen", "spamrats",
    "uceprotect-1",
)  # fmt: skip
UNHEALTHY = {"spamcop", "psbl"}  # retargeted to a zone listing the world and to a dead one


def zone_status() -> Samples:
    found: Samples = {}
    for zone in IP_ZONES:
        current = "unhealthy" if zone in UNHEALTHY else "healthy"
        for status in ("healthy", "unhealthy", "unreachable", "unchecked"):
            found |= sample("emailengine_reputation_zone_status", int(status == current), zone=zone, status=status)
    return found


def overdue(**by_tenant: int) -> Samples:
    found: Samples = {}
    for tenant, count in by_tenant.items():
        found |= sample("emailengine_reputation_overdue_scans", count, tenant=tenant.replace("_", "-"))
    return found


def test_metrics_of_listings_zone_health_and_overdue_scans(service: ReputationService) -> None:
    service.watch(LISTED_IP, "sos-expat")
    service.watch(CLEAN_IP, "sos-expat")
    service.watch(LISTED_V6, "ulixai")
    service.watch(CLEAN_V6, "ulixai")
    assert metrics(service) == overdue(sos_expat=0, ulixai=0)  # no zone checked yet, nothing listed

    # No scan has run two hours after they were registered: all four are late, though none was ever planned.
    service.clock.advance(timedelta(hours=2))
    assert metrics(service) == overdue(sos_expat=2, ulixai=2)

    assert jobs.scan_watched_ips(service.app) == 4
    listed = {
        # LISTED_IP: Spamhaus XBL (its SpamCop listing is ignored: that zone lists the world); LISTED_V6: Spamhaus CSS.
        **sample("emailengine_reputation_listed_ips", 1, tenant="sos-expat", zone="spamhaus-zen"),
        **sample("emailengine_reputation_listed_ips", 1, tenant="ulixai", zone="spamhaus-zen"),
    }
    found = metrics(service)
    assert_no_address_label(found)
    assert found == {**listed, **zone_status(), **overdue(sos_expat=0, ulixai=0)}

    # A day on with no scan: every IP still watched is late; the retired one is no longer watched.
    service.retire(CLEAN_V6, "ulixai")
    service.clock.advance(timedelta(days=1))
    found = metrics(service)
    assert_no_address_label(found)
    assert found == {**listed, **zone_status(), **overdue(sos_expat=2, ulixai=1)}
    assert samples(service.host.runtime.metrics, "emailengine_metrics_read_failures") == {}
