"""The notifier's migrations, on SQLite and on PostgreSQL: a database of the first version, with rows in it,
upgraded to head, and read back through today's repositories."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from notifier.adapters.unit_of_work import SqlNotifierUnitOfWork
from notifier.bootstrap import DEFINITION
from notifier.domain.alert import Severity
from notifier.domain.routing import Channel
from notifier.domain.status import AlertStatus
from tests.harness.servers import PostgresServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = connect(Settings(data_dir=tmp_path), "notifier")
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"ee_notifier_{uuid.uuid4().hex[:10]}"
        postgres.create_database(name)
        db = connect(
            Settings(data_dir=tmp_path), "notifier", url=Settings(DATABASE_URL=postgres.url_for(name)).database_url
        )
    yield db
    db.dispose()


def upgrade_to(db: Database, revision: str, *rows: tuple[str, dict[str, object]]) -> None:
    """The service's tables at `revision`, then `rows` (SQL, parameters) written as that version wrote them."""
    with db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(DEFINITION.migrations))
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = db.schema
        command.upgrade(cfg, revision)
        for statement, parameters in rows:
            conn.execute(sa.text(statement), parameters)


def test_a_first_version_database_with_rows_upgrades_to_head_and_reads_back(empty_db: Database) -> None:
    upgrade_to(
        empty_db,
        "notifier_0001",
        (
            "INSERT INTO alerts (alert_id, tenant_id, severity, dedup_key, title, text, source, delivery_state,"
            " create_time, attempts, last_error) VALUES ('old-pending', 'sos-expat', 'CRITICAL', 'k1', 'IP listed',"
            " 'on zen', 'api', 'PENDING', :t, 0, '')",
            {"t": T0},
        ),
        (
            "INSERT INTO alerts (alert_id, tenant_id, severity, dedup_key, title, text, source, delivery_state,"
            " create_time, attempts, last_error) VALUES ('old-platform', '', 'INFO', 'k2', 'Envoy up', '', 'api',"
            " 'DELIVERED', :t, 1, '')",
            {"t": T0},
        ),
    )
    upgrade_to(
        empty_db,
        "notifier_0002",
        (
            "INSERT INTO routes (route_id, tenant_id, channel, target, secret, min_severity, create_time)"
            " VALUES ('sos', 'sos-expat', 'telegram', '@SOS_Alerts', NULL, 2, :t),"
            " ('hook', 'sos-expat', 'webhook', 'http://h:99999/x', 'secret-secret-secret', 1, :t)",
            {"t": T0},
        ),
    )
    migrate(empty_db, DEFINITION.migrations)

    with SqlNotifierUnitOfWork(empty_db, source="notifier", clock=FakeClock(T0)) as uow:
        pending = uow.alerts.get("old-pending")
        assert pending is not None and pending.summary.state is AlertStatus.UNROUTED  # never routed by version 1
        assert pending.alert.severity is Severity.CRITICAL and pending.alert.occurred_at == T0
        assert (pending.alert.labels, pending.alert.resolved, pending.suppressed_count) == ({}, False, 0)
        listed = uow.alerts.list(tenant=None, limit=10, after=None)
        assert {a.alert_id for a in listed} == {"old-pending", "old-platform"}
        assert uow.alerts.list(tenant="", limit=10, after=None)[0].summary.state is AlertStatus.DELIVERED
        assert uow.deliveries.for_alerts(["old-pending"]) == {"old-pending": []}

        telegram = uow.routes.get("sos")
        assert telegram is not None and telegram.route is not None and telegram.route.channel is Channel.TELEGRAM
        assert telegram.route.min_severity is Severity.WARNING
        # The chats routes already used stay allowed for their tenants (usernames compare without case).
        assert uow.tenant_settings.get("sos-expat").allows_chat("@sos_alerts")
        broken = uow.routes.get("hook")
        assert broken is not None and broken.route is None and "port" in broken.problem
        assert [r.route_id for r in uow.routes.list(tenant="sos-expat", limit=10, after_id="")] == ["hook", "sos"]
