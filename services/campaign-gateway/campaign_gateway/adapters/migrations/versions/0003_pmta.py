"""PowerMTA nodes and deploys, accounting state and bounce forwarding. Hard bounces and complaints go on the
suppression list 0002_mailwizz made, whose `source` is widened for their "pmta:<node>".

Revision ID: campaign_0003_pmta
Revises: campaign_0002_mailwizz
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0003_pmta"
down_revision = "campaign_0002_mailwizz"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "pmta_nodes",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("ssh_host", sa.String(253), nullable=False),
        sa.Column("ssh_port", sa.Integer, nullable=False),
        sa.Column("ssh_user", sa.String(64), nullable=False),
        sa.Column("ssh_host_key", sa.Text, nullable=False),
        sa.Column("config_path", sa.String(1024), nullable=False),
        sa.Column("pmta_command", sa.String(1024), nullable=False),
        sa.Column("accounting_directory", sa.String(1024), nullable=False),
        sa.Column("accounting_move_to", sa.JSON, nullable=False),
        sa.Column("accounting_pattern", sa.String(200), nullable=False),
        sa.Column("accounting_pull", sa.Boolean, nullable=False),
        sa.Column("http_monitor_url", sa.Text, nullable=False),
        sa.Column("smtp_host", sa.String(253), nullable=False),
        sa.Column("smtp_port", sa.Integer, nullable=False),
        sa.Column("forwarder_token_sha256", sa.String(64), nullable=False),
        _when("create_time"),
        _when("update_time"),
        sa.Column("deployed_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("deployed_text", sa.Text, nullable=False, server_default=""),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "pmta_deployments",
        sa.Column("deployment_id", sa.String(36), primary_key=True),
        sa.Column("node", sa.String(63), nullable=False),
        _when("time"),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("config_sha256", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
    )
    op.create_index("ix_pmta_deployments_node_time", "pmta_deployments", ["node", "time"])
    op.create_table(
        "node_leases",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("purpose", sa.String(20), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        _when("expires_at"),
    )
    op.create_table(
        "accounting_cursors",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("line", sa.BigInteger, nullable=False),
        sa.Column("columns", sa.JSON, nullable=True),
        _when("last_ingest_time", nullable=True),
        _count("records_counted"),
        _count("duplicates"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "accounting_totals",
        sa.Column("address", sa.String(45), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("provider", sa.String(16), primary_key=True),
        *(
            _count(name)
            for name in (
                "sent",
                "delivered",
                "bounced_hard",
                "bounced_soft",
                "bounced_other",
                "complained",
                "deferred",
                "throttled",
                "version",
                "pushed_version",
            )
        ),
    )
    op.create_table(
        "accounting_seen",
        sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_accounting_seen_node_hour", "accounting_seen", ["node", "hour"])
    op.create_table(
        "accounting_origins",
        sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("created_day", sa.Date, nullable=False),
        sa.Column("slots", sa.JSON, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_accounting_origins_part_day", "accounting_origins", ["part", "created_day"])
    op.create_table(
        "accounting_pending",
        sa.Column("identity", sa.LargeBinary(16), primary_key=True),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        _when("received_at"),
    )
    op.create_table(
        "accounting_problems",
        sa.Column("problem_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(63), nullable=False, index=True),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("line", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        _when("time"),
    )
    op.create_table(
        "bounce_routes",
        sa.Column("route_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        _when("create_time"),
    )
    op.create_table(
        "bounce_deliveries",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("route_id", sa.String(36), nullable=False, index=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _when("created_at"),
        _when("next_attempt_at"),
        _when("last_attempt_at", nullable=True),
        _when("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=False),
        _when("lease_until", nullable=True),
    )
    op.create_index("ix_bounce_deliveries_due", "bounce_deliveries", ["state", "next_attempt_at"])
    _suppression_source(before=63, after=100)


def downgrade() -> None:
    for table in (
        "bounce_deliveries",
        "bounce_routes",
        "accounting_problems",
        "accounting_pending",
        "accounting_origins",
        "accounting_seen",
        "accounting_totals",
        "accounting_cursors",
        "node_leases",
        "pmta_deployments",
        "pmta_nodes",
    ):
        op.drop_table(table)
    _suppression_source(before=100, after=63)


def _suppression_source(*, before: int, after: int) -> None:
    # Batch mode: SQLite cannot change a column's type in place, so it copies the table (it has no foreign keys);
    # PostgreSQL alters the column. Narrowing cuts longer sources first, as PostgreSQL would refuse them.
    if after < before:
        op.execute(f"UPDATE suppressions SET source = substr(source, 1, {after}) WHERE length(source) > {after}")
    with op.batch_alter_table("suppressions") as batch:
        batch.alter_column("source", existing_type=sa.String(before), type_=sa.String(after), existing_nullable=False)
