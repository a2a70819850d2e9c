"""The reputation database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The IPs under watch, learnt from ip-pool's IpRegistered / IpStateChanged events.
monitored_ips = sa.Table(
    "monitored_ips",
    metadata,
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("helo_hostname", sa.String(253), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # When a scan result of the IP was last recorded (its row is also the lock scans take).
    sa.Column("last_scan_at", sa.DateTime(timezone=True), nullable=True),
    # The IP's next periodic scan (reputation.domain.scan_schedule); NULL: at the next tick. Moved by a
    # compare-and-set: whoever moves it from the value it read has the scan.
    sa.Column("next_scan_at", sa.DateTime(timezone=True), nullable=True),
)

# History: one row per scan of an IP.
scan_results = sa.Table(
    "scan_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(45), nullable=False),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("scan_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("listed", sa.Boolean, nullable=False),
    # A serialized emailengine.reputation.v1.ScanResult.
    sa.Column("result", sa.LargeBinary, nullable=False),
)

# What the service believes about each IP (reputation.domain.scan.ListingState), changed only by apply_scan.
ip_listings = sa.Table(
    "ip_listings",
    metadata,
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    # JSON {zone key: {zone_name, codes: [[address, kind, meaning, severity]], severity, reason, since}}.
    sa.Column("listings", sa.Text, nullable=False),
    # finished_at of the scan the belief comes from: an older scan recorded later does not change it.
    sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
)

# Last known health of each zone (RFC 5782 test points), keyed by catalogue key.
zone_health = sa.Table(
    "zone_health",
    metadata,
    sa.Column("zone_key", sa.String(63), primary_key=True),
    # "healthy", "unhealthy" or "unreachable".
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# A tenant's own choice of zones (JSON lists of zone keys; no row = the installation's defaults).
tenant_zones = sa.Table(
    "tenant_zones",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("ip_zones", sa.Text, nullable=False),
    sa.Column("domain_zones", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False),
)

# A tenant's own scan interval (no row: the installation's default).
tenant_scan_settings = sa.Table(
    "tenant_scan_settings",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("scan_interval_seconds", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False),
)

# A tenant's sending domains (JSON [{"domain", "dkim_selectors", "return_path_domain"}]), tracking domains (JSON
# list) and check policy (JSON {setting: verdict}, only the settings that differ from the defaults); the row is
# also the lock a check run of the tenant's domains takes while it records.
tenant_domains = sa.Table(
    "tenant_domains",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("sending_domains", sa.Text, nullable=False),
    sa.Column("tracking_domains", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False),
    # When the domains were last checked; NULL since they were set (the next tick checks them).
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("check_policy", sa.Text, nullable=False, server_default="{}"),
)

# What the service believes about each check of a tenant's domains (domain.tenant_domains.fold_verdict).
domain_check_state = sa.Table(
    "domain_check_state",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("domain", sa.String(253), primary_key=True),
    sa.Column("check_kind", sa.String(16), primary_key=True),
    # The IP (spf), the selector (dkim) or the domain (dmarc, mx, blocklist).
    sa.Column("subject", sa.String(253), primary_key=True),
    sa.Column("domain_role", sa.String(16), nullable=False),
    # "pass", "warn", "fail"; "unknown" while no check could judge yet.
    sa.Column("verdict", sa.String(16), nullable=False),
    # A serialized emailengine.reputation.v1.DomainCheck: the check that gave the believed verdict.
    sa.Column("result", sa.LargeBinary, nullable=False),
    # When the believed verdict was last confirmed (NULL while unknown) and when it last changed.
    sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    # The latest check that could not judge, if the latest one could not: why, and when.
    sa.Column("unknown_reason", sa.Text, nullable=False),
    sa.Column("unknown_at", sa.DateTime(timezone=True), nullable=True),
)
