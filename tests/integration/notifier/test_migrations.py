"""The outbox migration on a database of the first version: its alerts keep working."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from libs.config import Settings
from libs.db import connect, migrate
from notifier.adapters.tables import alerts
from notifier.bootstrap import DEFINITION

pytestmark = pytest.mark.integration


def test_alerts_of_the_first_version_survive_the_upgrade(tmp_path: Path) -> None:
    db = connect(Settings(data_dir=tmp_path), "notifier")
    with db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(DEFINITION.migrations))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "notifier_0001")
        conn.execute(
            sa.text(
                "INSERT INTO alerts (alert_id, tenant_id, severity, dedup_key, title, text, source, delivery_state,"
                " create_time, attempts, last_error) VALUES ('old', 'sos-expat', 'INFO', 'k', 't', 'x', 'api',"
                " 'PENDING', :t, 0, '')"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    migrate(db, DEFINITION.migrations)
    with db.transaction() as session:
        row = session.execute(sa.select(alerts)).one()
    assert (row.delivery_state, row.labels, row.resolved, row.suppressed_count) == ("UNROUTED", "{}", False, 0)
    assert row.occurred_at == row.create_time == datetime(2026, 1, 1, tzinfo=UTC)
    db.dispose()
