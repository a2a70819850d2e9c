"""The whole chain 0001 -> 0002_mailwizz -> 0003_pmta on a database of the first version, with rows at each step,
on SQLite and PostgreSQL: the campaigns and the suppression list stay, the PowerMTA tables work, a suppression
accounting adds (source "pmta:<node>", wider than 0002 allowed) is kept whole, and it goes down again step by
step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from campaign_gateway.adapters.tables import campaigns
from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.bootstrap import DEFINITION
from campaign_gateway.domain.accounting import DayTotals, Origin, TotalsKey
from campaign_gateway.domain.contacts import Suppression
from campaign_gateway.domain.providers import ProviderGroup
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from tests.harness.servers import PostgresServer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _alembic(conn: sa.Connection, db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(DEFINITION.migrations))
    cfg.attributes["connection"] = conn
    cfg.attributes["schema"] = db.schema
    return cfg


def _upgrade_from_first_version(db: Database) -> None:
    with db.engine.begin() as conn:
        command.upgrade(_alembic(conn, db), "campaign_0001")
        conn.execute(
            sa.text(
                "INSERT INTO campaigns (campaign_id, tenant, name, template_id, state, state_reason, contact_count,"
                " create_time) VALUES ('c1', 'sos-expat', 'n', 't', 'PENDING', 'accepted', 2, :t)"
            ),
            {"t": NOW},
        )
    with db.engine.begin() as conn:
        command.upgrade(_alembic(conn, db), "campaign_0002_mailwizz")
        conn.execute(
            sa.text(
                "INSERT INTO suppressions (tenant, address_key, email, reason, source, create_time)"
                " VALUES ('sos-expat', 'ann@x.example', 'Ann@x.example', 'manual', 'api', :t)"
            ),
            {"t": NOW},
        )
    migrate(db, DEFINITION.migrations)
    with db.transaction() as session:
        assert session.execute(sa.select(campaigns.c.campaign_id)).scalars().all() == ["c1"]
    uow = SqlCampaignUnitOfWork(db, source="test", clock=FakeClock(NOW))
    key = TotalsKey("192.0.2.10", date(2026, 1, 5), ProviderGroup.GMAIL)
    node = "pmta-" + "n" * 58  # the longest node name
    with uow:
        uow.accounting.add_totals({key: DayTotals(sent=2, delivered=1, bounced_hard=1)})
        uow.accounting.add_totals({key: DayTotals(sent=1, delivered=1)})
        uow.accounting.add_origins([("m\x1fmsg-1@x", Origin("192.0.2.10", date(2026, 1, 5), "GMAIL"))], day=NOW.date())
        uow.accounting.add_seen("pmta-a", {490000: [b"0123456789abcdef"]})
        bounced = Suppression("sos-expat", "Bob@x.example", "hard-bounce", f"pmta:{node}", NOW)
        assert uow.suppressions.add([bounced, replace(bounced, email="ANN@x.example")]) == 1
        assert uow.leases.acquire("pmta-a", "deploy", "one", now=NOW, until=NOW.replace(hour=10))
        uow.commit()
    with uow:
        assert uow.accounting.totals() == {key: DayTotals(sent=3, delivered=2, bounced_hard=1)}
        assert uow.accounting.find_origins(["m\x1fmsg-1@x", "m\x1fother"], since=NOW.date()) == {
            "m\x1fmsg-1@x": Origin("192.0.2.10", date(2026, 1, 5), "GMAIL")
        }
        assert uow.accounting.load_seen("pmta-a", {490000}) == {b"0123456789abcdef"}
        listed = {s.email: s.source for s in uow.suppressions.list(tenant="sos-expat", limit=10, after=None)}
        assert listed == {"Ann@x.example": "api", "Bob@x.example": f"pmta:{node}"}
        assert not uow.leases.acquire("pmta-a", "deploy", "two", now=NOW, until=NOW.replace(hour=10))
    with db.engine.begin() as conn:
        command.downgrade(_alembic(conn, db), "campaign_0002_mailwizz")
        assert sa.inspect(conn).get_table_names(schema=db.schema).count("pmta_nodes") == 0
        kept = conn.execute(sa.text("SELECT email, source FROM suppressions ORDER BY email")).all()
        assert [tuple(row) for row in kept] == [("Ann@x.example", "api"), ("Bob@x.example", f"pmta:{node}"[:63])]
        command.downgrade(_alembic(conn, db), "campaign_0001")
        assert sa.inspect(conn).get_table_names(schema=db.schema).count("suppressions") == 0
    db.dispose()


def test_upgrade_from_the_first_version_on_sqlite(tmp_path: Path) -> None:
    _upgrade_from_first_version(connect(Settings(data_dir=tmp_path), "campaign-gateway"))


def test_upgrade_from_the_first_version_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    name = f"cg_migration_{tmp_path.name[-12:].replace('-', '_')}".lower()
    postgres.create_database(name)
    settings = Settings(data_dir=tmp_path, database_url=postgres.url_for(name))
    _upgrade_from_first_version(connect(settings, "campaign-gateway"))
