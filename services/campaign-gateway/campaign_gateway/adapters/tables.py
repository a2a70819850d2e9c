"""The campaign-gateway database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("template_id", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_reason", sa.Text, nullable=False),
    sa.Column("contact_count", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    # Added by 0002_mailwizz: the creation in MailWizz, step by step.
    sa.Column("request_id", sa.String(100), nullable=True),
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("stage", sa.String(20), nullable=True),
    sa.Column("subject", sa.String(255), nullable=False, server_default=""),
    sa.Column("from_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("from_email", sa.String(100), nullable=False, server_default=""),
    sa.Column("reply_to", sa.String(100), nullable=False, server_default=""),
    sa.Column("send_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received", sa.Integer, nullable=False, server_default="0"),
    sa.Column("preflight", sa.JSON, nullable=True),
    sa.Column("send_plan", sa.JSON, nullable=True),
    sa.Column("mailwizz_list_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_campaign_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_template_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_status", sa.String(20), nullable=False, server_default=""),
    sa.Column("subscribers_added", sa.Integer, nullable=False, server_default="0"),
    sa.Column("subscribers_already_present", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chunk_size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Index("uq_campaigns_tenant_request", "tenant", "request_id", unique=True),
)

campaign_contacts = sa.Table(
    "campaign_contacts",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=False),
    sa.Column("last_name", sa.String(200), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("position", sa.Integer, nullable=True),  # in the request (0002_mailwizz)
)

# --- 0002_mailwizz ---------------------------------------------------------------------------------------------

campaign_problems = sa.Table(
    "campaign_problems",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

campaign_steps = sa.Table(
    "campaign_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), nullable=False, index=True),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("address_key", sa.String(320), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    # "api", or "pmta:<node>" for a recipient accounting suppressed (widened from 63 by 0003_pmta).
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

mailwizz_sync_state = sa.Table(
    "mailwizz_sync_state",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("last_sync_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_outcome", sa.Text, nullable=False),
    sa.Column("conflicts", sa.JSON, nullable=False),
)


# --- 0003_pmta: PowerMTA nodes, deploys, accounting, bounces -------------------------------------------------

pmta_nodes = sa.Table(
    "pmta_nodes",
    metadata,
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
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    # What the node runs, as far as this service deployed it.
    sa.Column("deployed_sha256", sa.String(64), nullable=False),
    sa.Column("deployed_text", sa.Text, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
)

pmta_deployments = sa.Table(
    "pmta_deployments",
    metadata,
    sa.Column("deployment_id", sa.String(36), primary_key=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("config_sha256", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
)

# One row per (node, kind of work): who holds it and until when (a crashed holder's lease runs out).
node_leases = sa.Table(
    "node_leases",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("purpose", sa.String(20), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

accounting_cursors = sa.Table(
    "accounting_cursors",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("inode", sa.BigInteger, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("line", sa.BigInteger, nullable=False),
    sa.Column("columns", sa.JSON, nullable=True),
    sa.Column("last_ingest_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("records_counted", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
)

# Absolute running totals per (IP, tenant-local day, fine provider group). `version` grows with every change;
# `pushed_version` is the version ip-pool last acknowledged.
accounting_totals = sa.Table(
    "accounting_totals",
    metadata,
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("sent", sa.BigInteger, nullable=False),
    sa.Column("delivered", sa.BigInteger, nullable=False),
    sa.Column("bounced_hard", sa.BigInteger, nullable=False),
    sa.Column("bounced_soft", sa.BigInteger, nullable=False),
    sa.Column("bounced_other", sa.BigInteger, nullable=False),
    sa.Column("complained", sa.BigInteger, nullable=False),
    sa.Column("deferred", sa.BigInteger, nullable=False),
    sa.Column("throttled", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("pushed_version", sa.BigInteger, nullable=False),
)

# Identities of the records counted, packed 16 bytes each, one row per (node, hour of timeLogged) and batch:
# a record seen again has the same timeLogged, so only the hours a batch touches are ever read back.
accounting_seen = sa.Table(
    "accounting_seen",
    metadata,
    sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("hour", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# The originals rb/f records are attributed by: 8-byte digests of each d/b record's keys with the index of its
# (address, day, provider) in `slots`, packed, one row per (partition = first digest byte) and batch.
accounting_origins = sa.Table(
    "accounting_origins",
    metadata,
    sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("part", sa.Integer, nullable=False),
    sa.Column("created_day", sa.Date, nullable=False),
    sa.Column("slots", sa.JSON, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

accounting_pending = sa.Table(
    "accounting_pending",
    metadata,
    sa.Column("identity", sa.LargeBinary(16), primary_key=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

accounting_problems = sa.Table(
    "accounting_problems",
    metadata,
    sa.Column("problem_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("line", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)

bounce_routes = sa.Table(
    "bounce_routes",
    metadata,
    sa.Column("route_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

# The transactional outbox of bounce forwarding: one row per (bounce, route), written with the accounting batch
# that counted the bounce. An attempt is recorded (and leased) before the request is made.
bounce_deliveries = sa.Table(
    "bounce_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("route_id", sa.String(36), nullable=False),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("lease_owner", sa.String(100), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
)


# --- 0004_queue_holds: the VMTAs whose queues this service paused on a node (`pause queue */<vmta>`) ---------

pmta_queue_holds = sa.Table(
    "pmta_queue_holds",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("vmta", sa.String(100), primary_key=True),
    sa.Column("address", sa.String(45), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
