"""The ip-pool's migrations from its first revision, with rows in the tables, on SQLite and on PostgreSQL: the
rows written at revision 0001 (with the tables as they were then) read back through today's repositories."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.ip_today import ips_today
from ippool.bootstrap import DEFINITION, SERVICE
from ippool.domain.health import DEFAULT_HEALTH_POLICY
from ippool.domain.lifecycle import IpState
from ippool.domain.schedule import WarmupPosition
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from tests.harness.servers import PostgresServer

pytestmark = pytest.mark.integration

REGISTERED = datetime(2025, 12, 1, 8, 30, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def upgrade_to_first_revision(db: Database) -> None:
    with db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(DEFINITION.migrations))
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = db.schema
        command.upgrade(cfg, "ippool_0001")


def insert_first_revision_rows(db: Database) -> None:
    """A tenant and two IPs as revision 0001 stored them (`step_sending_days`: days done in the step)."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tenants (tenant_id, display_name, time_zone, sending_window_start_hour,"
                " sending_window_end_hour, create_time) VALUES ('sos-expat', 'SOS Expat', 'Europe/Paris', 8, 20, :t)"
            ),
            {"t": REGISTERED},
        )
        for address, state, step, days_done in (("192.0.2.10", "WARMING", 2, 3), ("192.0.2.11", "PAUSED", 0, 0)):
            conn.execute(
                sa.text(
                    "INSERT INTO ips (address, tenant_id, purpose, pool, pmta_node, helo_hostname, state,"
                    " state_reason, schedule_id, step_index, step_sending_days, sending_day, create_time, update_time)"
                    " VALUES (:address, 'sos-expat', 'marketing', 'default', 'pmta-1', 'mta1.example.com', :state,"
                    " 'registered', 'default', :step, :days_done, 10, :t, :t)"
                ),
                {"address": address, "state": state, "step": step, "days_done": days_done, "t": REGISTERED},
            )


def check_rows_read_back(db: Database) -> None:
    def unit_of_work() -> SqlIpPoolUnitOfWork:
        return SqlIpPoolUnitOfWork(db, source=SERVICE, clock=FakeClock(NOW))

    with unit_of_work() as uow:
        tenant = uow.tenants.get("sos-expat")
        assert tenant is not None
        assert (tenant.display_name, tenant.policy.window.time_zone, tenant.policy.window.start_hour) == (
            "SOS Expat",
            "Europe/Paris",
            8,
        )
        assert tenant.policy.health == DEFAULT_HEALTH_POLICY and tenant.policy.schedule_id == "default"
        assert tenant.create_time == REGISTERED and tenant.update_time is None
        warming = uow.ips.get("192.0.2.10", lock=True)
        assert warming is not None
        assert warming.position == WarmupPosition(step_index=2, sending_day_in_step=4)
        assert (warming.state, warming.sending_day, warming.decided_day) == (IpState.WARMING, 10, date(2025, 12, 1))
        assert warming.create_time == REGISTERED and warming.standby_since is None and warming.released_at is None
        assert [ip.address for ip in uow.ips.of_tenant("sos-expat")] == ["192.0.2.10", "192.0.2.11"]
        assert uow.ips.undecided("sos-expat", date(2026, 1, 5)) == ["192.0.2.10", "192.0.2.11"]
        shown = ips_today(uow, uow.ips.list(tenant_id="sos-expat", state=None, after="", limit=10), NOW)
        assert [(s.ip.address, s.quota.daily) for s in shown] == [("192.0.2.10", 500), ("192.0.2.11", 0)]
        # And the new tables take writes next to the old rows.
        assert uow.listings.add("192.0.2.10", "zen.spamhaus.org", since=NOW, reason="test")
        uow.commit()
    with unit_of_work() as uow:
        assert uow.listings.zones("192.0.2.10") == ["zen.spamhaus.org"]


def upgrade_from_the_first_revision_and_read_back(db: Database) -> None:
    try:
        upgrade_to_first_revision(db)
        insert_first_revision_rows(db)
        migrate(db, DEFINITION.migrations)
        check_rows_read_back(db)
    finally:
        db.dispose()


def test_rows_of_the_first_revision_survive_the_upgrade_on_sqlite(tmp_path: Path) -> None:
    upgrade_from_the_first_revision_and_read_back(connect(Settings(data_dir=tmp_path), SERVICE))


def test_rows_of_the_first_revision_survive_the_upgrade_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    name = f"ippool_migrations_{tmp_path.name[-12:].replace('-', '_')}".lower()
    postgres.create_database(name)
    db = connect(Settings(data_dir=tmp_path), SERVICE, url=postgres.url_for(name))
    assert db.is_postgres
    upgrade_from_the_first_revision_and_read_back(db)
