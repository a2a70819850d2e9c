"""The MailWizz migration on a campaign-gateway database of the first version, on SQLite and PostgreSQL: the
campaigns stored before keep reading, new ones use the new columns, and it goes down and up again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from campaign_gateway.adapters.repositories import SqlCampaignRepository
from campaign_gateway.bootstrap import DEFINITION
from campaign_gateway.domain.campaign import Campaign, CampaignStage, CampaignState
from campaign_gateway.domain.contacts import Contact
from libs.config import Settings
from libs.db import Database, connect, migrate
from tests.harness.servers import PostgresServer

pytestmark = pytest.mark.integration

OLD_ID = "11111111-1111-4111-8111-111111111111"


def _to(db: Database, revision: str, *, down: bool = False) -> None:
    with db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(DEFINITION.migrations))
        cfg.attributes["connection"] = conn
        cfg.attributes["version_table"] = "alembic_version"
        cfg.attributes["schema"] = db.schema
        (command.downgrade if down else command.upgrade)(cfg, revision)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = connect(Settings(data_dir=tmp_path), "campaign-gateway")
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"cg_migration_{uuid.uuid4().hex[:8]}"
        postgres.create_database(name)
        db = connect(Settings(data_dir=tmp_path, database_url=postgres.url_for(name)), "campaign-gateway")
    yield db
    db.dispose()


def test_campaigns_of_the_first_version_survive_the_upgrade_and_it_goes_down_and_up(database: Database) -> None:
    _to(database, "campaign_0001")
    created = datetime(2026, 1, 1, 12, tzinfo=UTC)
    with database.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO campaigns (campaign_id, tenant, name, template_id, state, state_reason, contact_count,"
                " create_time) VALUES (:id, 'sos-expat', 'old', 'cold_v1', 'PENDING', 'accepted', 2, :t)"
            ),
            {"id": OLD_ID, "t": created},
        )
        for email in ("a@x.org", "B@x.org"):
            conn.execute(
                sa.text(
                    "INSERT INTO campaign_contacts (campaign_id, email, first_name, last_name, fields)"
                    " VALUES (:id, :email, '', '', '{}')"
                ),
                {"id": OLD_ID, "email": email},
            )
    migrate(database, DEFINITION.migrations)
    with database.transaction() as session:
        repository = SqlCampaignRepository(session)
        old = repository.get(OLD_ID)
        assert old is not None
        assert (old.state, old.stage, old.received, old.contact_count, old.request_id) == (
            CampaignState.PENDING,
            None,
            2,
            2,
            "",
        )
        assert [c.email for _, c in repository.contacts(OLD_ID)] == ["B@x.org", "a@x.org"]
        new = Campaign(
            campaign_id=str(uuid.uuid4()),
            tenant="sos-expat",
            name="new",
            template_id="cold_v1",
            state=CampaignState.PENDING,
            state_reason="accepted",
            contact_count=1,
            create_time=created,
            request_id="r-1",
            fingerprint="f" * 64,
            stage=CampaignStage.ACCEPTED,
        )
        repository.add(new, [Contact("c@x.org")], [0])
        assert repository.by_request("sos-expat", "r-1") == new
    with pytest.raises(sa.exc.IntegrityError), database.transaction() as session:
        SqlCampaignRepository(session).add(
            Campaign(**{**new.__dict__, "campaign_id": str(uuid.uuid4())}), [Contact("d@x.org")]
        )
    _to(database, "campaign_0001", down=True)
    with database.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("campaigns", schema=database.schema)}
        assert "request_id" not in columns and "stage" not in columns
        assert conn.execute(sa.text("SELECT count(*) FROM campaigns")).scalar_one() == 2
    migrate(database, DEFINITION.migrations)
