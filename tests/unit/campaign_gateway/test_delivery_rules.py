"""Pure rules of the delivery side: node defaults, sending windows, provider groups for ip-pool, what the
aggregator collects for forwarding and storage, bounce deliveries (ids, bodies, suppressions, retries)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from campaign_gateway.domain.accounting import (
    AccountingAggregator,
    AccountingRecord,
    NotableKind,
    RecordType,
    identity_hour,
    local_day,
    record_identity,
)
from campaign_gateway.domain.bounce_forwarding import (
    RetryPlan,
    bounce_body,
    delivery_id,
    event_from,
    next_attempt,
    suppression_of,
    wants,
)
from campaign_gateway.domain.contacts import Suppression
from campaign_gateway.domain.pmta_config import IpState, NodeIp, PmtaNode, render_node_config
from campaign_gateway.domain.pmta_nodes import NodeSpec, sending_window_hours, with_defaults
from campaign_gateway.domain.providers import ProviderGroup, ip_pool_group

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def record(kind: RecordType, n: int, rcpt: str, **fields: str) -> AccountingRecord:
    late = kind in (RecordType.REMOTE_BOUNCE, RecordType.FEEDBACK)
    values = {
        "orig": f"b+{n}@x.example",
        "vmta": "" if late else "vmta-192-0-2-10",
        "dsn_status": "",
        "dsn_diag": "",
        "bounce_cat": "",
        "env_id": "",
        "job_id": "",
        "message_id": "" if kind is RecordType.REMOTE_BOUNCE else f"m{n}@x",
    }
    values.update(fields)
    return AccountingRecord(
        kind, T0 + timedelta(minutes=n + 1), None if late else T0 + timedelta(minutes=n), rcpt=rcpt, **values
    )  # type: ignore[arg-type]


def test_node_defaults_and_windows() -> None:
    spec = with_defaults(NodeSpec(name="pmta-1", ssh_host="PMTA1.example.net", ssh_host_key="k"))
    assert (spec.hostname, spec.ssh_port, spec.ssh_user, spec.config_path) == (
        "pmta1.example.net",
        22,
        "root",
        "/etc/pmta/config",
    )
    assert (spec.smtp_host, spec.smtp_port, spec.accounting_pattern) == ("PMTA1.example.net", 25, "acct*.csv")
    assert with_defaults(NodeSpec(name="n", ssh_host="192.0.2.1", ssh_host_key="k")).hostname == ""
    assert [sending_window_hours(8, 20), sending_window_hours(22, 6), sending_window_hours(0, 0)] == [12, 8, 24]


def test_fine_groups_sum_into_ip_pools_four() -> None:
    assert [ip_pool_group(g) for g in ProviderGroup] == [
        "GMAIL", "MICROSOFT", "YAHOO", "OTHER", "OTHER", "OTHER", "OTHER", "OTHER", "OTHER", "OTHER",
    ]  # fmt: skip


def test_an_ip_renders_with_its_tenants_window() -> None:
    ip = NodeIp("192.0.2.10", "mta.example.net", "t", IpState.WARM, 240, 20, {ProviderGroup.GMAIL: 120}, 12)
    text = render_node_config(node=PmtaNode("n", "n.example.net"), ips=[ip]).text
    assert "max-msg-rate 120/12h" in text


def test_the_aggregator_collects_fresh_identities_and_what_to_forward() -> None:
    aggregator = AccountingAggregator(timezone_for=lambda _a: ZoneInfo("Europe/Paris"), collect=True)
    d = record(RecordType.DELIVERED, 0, "a@gmail.com")
    hard = record(RecordType.BOUNCED, 1, "b@yahoo.fr", bounce_cat="bad-mailbox")
    soft = record(RecordType.BOUNCED, 2, "c@yahoo.fr", bounce_cat="quota-issues")
    late = record(RecordType.REMOTE_BOUNCE, 3, "a@gmail.com", bounce_cat="inactive-mailbox", orig="b+0@x.example")
    complaint = record(RecordType.FEEDBACK, 4, "redacted@example.invalid", message_id="m0@x", orig="")
    aggregator.add_all([d, hard, soft, late, complaint, d])
    assert [(n.kind, n.record.rcpt, n.address, n.provider) for n in aggregator.notable] == [
        (NotableKind.HARD_BOUNCE, "b@yahoo.fr", "192.0.2.10", "YAHOO"),
        (NotableKind.HARD_BOUNCE, "a@gmail.com", "192.0.2.10", "GMAIL"),
        (NotableKind.COMPLAINT, "redacted@example.invalid", "192.0.2.10", "GMAIL"),
    ]
    fresh = aggregator.fresh_identities
    assert sum(len(items) for items in fresh.values()) == 5  # the duplicate d is not fresh
    assert set(fresh) == {identity_hour(T0 + timedelta(minutes=1))}
    assert len(aggregator.origins.fresh_items()) == 3 * 2  # type: ignore[attr-defined]  # d and b: m + o keys


def test_a_local_day_cache_by_quarter_hour_matches_the_zone() -> None:
    aggregator = AccountingAggregator(timezone_for=lambda _a: ZoneInfo("Asia/Kathmandu"))  # UTC+05:45
    for minute in range(0, 24 * 60, 7):
        moment = datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=minute)
        assert aggregator._day("192.0.2.1", moment) == local_day(moment, ZoneInfo("Asia/Kathmandu"))


def test_bounce_deliveries_are_stable_signed_bodies() -> None:
    aggregator = AccountingAggregator(timezone_for=lambda _a: UTC, collect=True)
    hard = record(RecordType.BOUNCED, 1, "B@Yahoo.fr", bounce_cat="bad-mailbox")
    aggregator.add(hard)
    event = event_from(aggregator.notable[0], tenant_id="sos-expat", node="pmta-a")
    key = delivery_id("route-1", record_identity(hard))
    assert key == delivery_id("route-1", record_identity(hard)) != delivery_id("route-2", record_identity(hard))
    assert key.startswith("bnc_") and len(key) == 44
    body = json.loads(bounce_body(event, delivery_id=key))
    assert body["delivery_id"] == key and body["event"]["kind"] == "HARD_BOUNCE"
    assert body["event"]["day"] == "2026-01-05" and body["event"]["ip"] == "192.0.2.10"
    # The recipient as campaigns send to it (domain without case, local part kept), keyed without case.
    suppression = suppression_of(event, source="pmta:pmta-a", create_time=T0)
    assert suppression == Suppression("sos-expat", "B@yahoo.fr", "hard-bounce", "pmta:pmta-a", T0)
    assert suppression.key == "b@yahoo.fr"
    for unsuppressable in ("redacted@example.invalid", "<Redacted@Example.INVALID>", "x y@a.b", ""):
        redacted = replace(event, recipient=unsuppressable)
        assert suppression_of(redacted, source="pmta:pmta-a", create_time=T0) is None
    assert wants((), "COMPLAINT") and not wants(("HARD_BOUNCE",), "COMPLAINT")


def test_retries_back_off_then_give_up() -> None:
    plan = RetryPlan(first_delay=timedelta(seconds=5), max_delay=timedelta(minutes=10))
    start = T0
    delays = [next_attempt(plan, attempts=n, first_attempt_at=start, now=start, status_code=500) for n in (1, 2, 3, 9)]
    assert [d - start for d in delays if d] == [timedelta(seconds=s) for s in (5, 10, 20, 600)]
    assert next_attempt(plan, attempts=1, first_attempt_at=start, now=start, status_code=410) is None
    late = start + timedelta(days=7)
    assert next_attempt(plan, attempts=50, first_attempt_at=start, now=late, status_code=503) is None
    assert date(2026, 1, 5) == start.date()
