"""`emailengine ips`: sending IPs, their warmup, quotas and history (ip-pool)."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import enum_choice, page_options, tenant_id_option
from cli.render import Col, Output, enum_text, number, styled_enum, text, when

IP_STATES = ("warming", "warm", "standby", "paused", "retired")
DECISION_KINDS = ("warmup", "lifecycle", "rotation")


@click.group(cls=OperatorGroup)
def ips() -> None:
    """Sending IPs: register, list, pause, resume, retire, and each one's warmup history.

    \b
    emailengine ips add 192.0.2.10 --tenant-id sos-expat --pmta-node pmta1
    emailengine ips list --tenant sos-expat --state warming
    emailengine ips show 192.0.2.10 --tenant sos-expat
    emailengine ips decisions 192.0.2.10 --tenant sos-expat
    """


def _step(ip: dict[str, Any]) -> str:
    warmup = ip.get("warmup") or {}
    if not warmup:
        return "-"
    return f"{int(warmup.get('step_index', 0)) + 1} ({number(warmup.get('step_daily_volume'))}/day)"


IP_COLUMNS = [
    Col("address", "address"),
    Col("tenant", "tenant_id"),
    Col("state", "state", styled_enum),
    Col("warmup step", _step),
    Col("quota today", "quota.daily", number, right=True),
    Col("used", "quota.used_today", number, right=True),
    Col("left", "quota.remaining_today", number, right=True),
    Col("pmta node", "pmta_node"),
    Col("listed on", "active_listings"),
]


def render_ip(out: Output, ip: dict[str, Any]) -> None:
    warmup = ip.get("warmup") or {}
    quota = ip.get("quota") or {}
    state = styled_enum(ip.get("state"))
    if ip.get("state_reason"):
        state.append(f"  ({ip['state_reason']})", style="")
    out.fields(
        [
            ("address", ip.get("address")),
            ("tenant", ip.get("tenant_id")),
            ("state", state),
            ("purpose", text(ip.get("purpose"))),
            ("pool", text(ip.get("pool"))),
            ("pmta node", text(ip.get("pmta_node"))),
            ("helo hostname", text(ip.get("helo_hostname"))),
            ("schedule", text(warmup.get("schedule_id"))),
            ("warmup step", _step(ip)),
            (
                "sending day",
                f"{warmup.get('sending_day', 0)} (day {warmup.get('sending_day_in_step', 0)} of this step)"
                if warmup
                else "-",
            ),
            ("last sent", text(warmup.get("last_sending_day"))),
            ("resting until", warmup.get("resting_until") or None),
            (
                f"quota {quota.get('day', 'today')}",
                f"{number(quota.get('daily'))}/day, {number(quota.get('hourly'))} this hour, "
                f"{number(quota.get('used_today'))} used, {number(quota.get('remaining_today'))} left",
            ),
            ("listed on", text(ip.get("active_listings"))),
            ("standby since", when(ip["standby_since"]) if ip.get("standby_since") else None),
            ("delisted at", when(ip["delisted_at"]) if ip.get("delisted_at") else None),
            ("released", when(ip["release_time"]) if ip.get("release_time") else None),
            ("created", when(ip.get("create_time"))),
            ("updated", when(ip.get("update_time"))),
        ]
    )
    by_provider = quota.get("by_provider") or []
    if by_provider:
        out.line()
        out.table(
            [
                Col("provider", "provider", enum_text),
                Col("cap today", "cap", number, right=True),
                Col("used", "used_today", number, right=True),
                Col("left", "remaining_today", number, right=True),
            ],
            by_provider,
        )


def render_ips(out: Output, data: dict[str, Any]) -> None:
    out.table(IP_COLUMNS, data.get("ips") or [], empty="no IPs")
    out.more(data)


def _change(before_key: str, after_key: str, fmt: Any = text) -> Any:
    def cell(row: dict[str, Any]) -> str:
        before, after = fmt(row.get(before_key)), fmt(row.get(after_key))
        return before if before == after else f"{before} -> {after}"

    return cell


def render_decisions(out: Output, data: dict[str, Any]) -> None:
    out.table(
        [
            Col("time", "time", lambda v: when(v, seconds=False)),
            Col("day", "day"),
            Col("kind", "kind", enum_text),
            Col("action", "action"),
            Col("rule", "rule"),
            Col("state", _change("state_before", "state_after", enum_text)),
            Col("quota", _change("quota_before", "quota_after", number)),
            Col("reason", "reason"),
            Col("by", "actor"),
        ],
        data.get("decisions") or [],
        empty="no decisions",
    )
    out.more(data)


@ips.command("add")
@operator_options
@click.argument("address")
@tenant_id_option(help="The tenant the IP sends for.")
@click.option("--purpose", type=click.Choice(["marketing", "transactional"]), help="Default: marketing.")
@click.option("--pool", help="Pool name (default: default).")
@click.option("--pmta-node", help="The PowerMTA node whose virtual MTA sends from this IP.")
@click.option("--helo-hostname", help="The IP's HELO name (its PTR should name it).")
@click.option("--schedule-id", help="Warmup schedule (default: the tenant's).")
def add(
    api: Api,
    address: str,
    tenant: str,
    purpose: str | None,
    pool: str | None,
    pmta_node: str | None,
    helo_hostname: str | None,
    schedule_id: str | None,
) -> None:
    """Register an IP for a tenant; its warmup starts at once (state warming, day 1)."""
    body = {
        "address": address,
        "tenant_id": api.need_tenant(),
        "purpose": purpose,
        "pool": pool,
        "pmta_node": pmta_node,
        "helo_hostname": helo_hostname,
        "schedule_id": schedule_id,
    }
    reply = api.gateway.post("/api/v2/ips", {k: v for k, v in body.items() if v})
    api.show(reply, render_ip)


@ips.command("list")
@operator_options
@tenant_id_option(help="Whose IPs (an admin without it sees every tenant's).")
@click.option("--state", type=enum_choice(IP_STATES), help="Only IPs in this state.")
@page_options
def list_(api: Api, tenant: str, state: str | None, page_size: int, page_token: str) -> None:
    """IPs by address, with today's quota."""
    params = {
        "tenant_id": tenant,
        "state": f"IP_STATE_{state.upper()}" if state else None,
        "page_size": page_size,
        "page_token": page_token,
    }
    api.show(api.gateway.get("/api/v2/ips", params), render_ips)


@ips.command("show")
@operator_options
@click.argument("address")
def show(api: Api, address: str) -> None:
    """One IP: state and why, warmup position, today's quota per provider, listings."""
    api.show(api.gateway.get(f"/api/v2/ips/{segment(address)}"), render_ip)


def _lifecycle(name: str, verb: str, doc: str) -> None:
    @ips.command(name, help=doc)
    @operator_options
    @click.argument("address")
    @click.option("--reason", help="Why, in words (kept in the IP's history).")
    def command(api: Api, address: str, reason: str | None) -> None:
        reply = api.gateway.post(f"/api/v2/ips/{segment(address)}:{verb}", {"reason": reason} if reason else {})
        api.show(reply, render_ip)


_lifecycle("pause", "pause", "Stop all volume on the IP until it is resumed.")
_lifecycle("resume", "resume", "Send from a paused IP again, at its warmup position (standby while still listed).")
_lifecycle("retire", "retire", "Take the IP out of service for good.")
_lifecycle(
    "release",
    "release",
    "Admin: free the address from its tenant (retired there), so that any tenant may register it again.",
)


@ips.command("transfer")
@operator_options
@click.argument("address")
@click.option("--tenant-id", "to_tenant", required=True, help="The tenant the address goes to.")
@click.option("--reason", help="Why, in words.")
def transfer(api: Api, address: str, to_tenant: str, reason: str | None) -> None:
    """Admin: move the address to another tenant at once; its warmup starts again there."""
    body = {"tenant_id": to_tenant, **({"reason": reason} if reason else {})}
    api.show(api.gateway.post(f"/api/v2/ips/{segment(address)}:transfer", body), render_ip)


@ips.command("decisions")
@operator_options
@click.argument("address")
@click.option("--kind", type=enum_choice(DECISION_KINDS), help="Only this kind of decision.")
@page_options
def decisions(api: Api, address: str, kind: str | None, page_size: int, page_token: str) -> None:
    """The IP's history, newest first: each warmup decision with its rule and figures, each state change."""
    params = {
        "kind": f"DECISION_KIND_{kind.upper()}" if kind else None,
        "page_size": page_size,
        "page_token": page_token,
    }
    api.show(api.gateway.get(f"/api/v2/ips/{segment(address)}/decisions", params), render_decisions)
