"""`emailengine reputation`: blocklist scans of the sending IPs and the zones they are checked against."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import tenant_id_option
from cli.render import Col, Output, enum_text, styled_enum, text, when


@click.group(cls=OperatorGroup)
def reputation() -> None:
    """Blocklist scans: one IP now, a tenant's IPs now, the latest results and the zones.

    \b
    emailengine reputation check 192.0.2.10 --tenant sos-expat
    emailengine reputation show 192.0.2.10 --tenant sos-expat
    emailengine reputation scan --tenant sos-expat
    emailengine reputation zones --tenant sos-expat
    """


def _why(zone: dict[str, Any]) -> str:
    return zone.get("reason") or zone.get("meaning") or zone.get("detail") or ""


ZONE_RESULT_COLUMNS = [
    Col("zone", "zone"),
    Col("status", "status", styled_enum),
    Col("answer", "answers"),
    Col("severity", "listing_severity", enum_text),
    Col("why", _why),
]


def _listed(value: Any) -> Any:
    from rich.text import Text

    return Text("listed", style="red") if value else Text("clean", style="green")


def render_ip_reputation(out: Output, data: dict[str, Any]) -> None:
    latest = data.get("latest") or {}
    out.fields(
        [
            ("address", data.get("address")),
            ("tenant", text(data.get("tenant_id"))),
            ("now", _listed(data.get("listed"))),
            ("listed on", text([z.get("zone") for z in data.get("current_listings") or []])),
            ("watched", text(bool(data.get("watched")))),
            (
                "last scan",
                f"{when(latest.get('scan_time'))} ({text(latest.get('trigger'))}"
                f"{'' if latest.get('complete') else ', incomplete: some zones gave no verdict'})"
                if latest
                else "never",
            ),
        ]
    )
    if latest.get("zones"):
        out.line()
        out.table(ZONE_RESULT_COLUMNS, latest["zones"])
    history = data.get("history") or []
    if history:
        out.line()
        out.table(
            [
                Col("scanned", "scan_time", when),
                Col("trigger", "trigger"),
                Col("result", "listed", _listed),
                Col("complete", "complete"),
                Col(
                    "listed on",
                    lambda s: [z["zone"] for z in s.get("zones") or [] if enum_text(z.get("status")) == "listed"],
                ),
            ],
            history,
            title="history",
        )


def render_scan(out: Output, data: dict[str, Any]) -> None:
    out.fields(
        [
            ("tenant", data.get("tenant_id")),
            ("IPs scanned", text(data.get("scanned"))),
            ("listed", text(data.get("listed"))),
            ("incomplete", text(data.get("incomplete"))),
            ("changes published", text(data.get("changes"))),
        ]
    )
    out.line()
    out.table(
        [
            Col("address", "address"),
            Col("result", "listed", _listed),
            Col("complete", "latest.complete"),
            Col("listed on", lambda ip: [z.get("zone") for z in ip.get("current_listings") or []]),
        ],
        data.get("ips") or [],
        empty="no watched IPs",
    )


def render_zones(out: Output, data: dict[str, Any]) -> None:
    out.table(
        [
            Col("key", "key"),
            Col("zone", "zone"),
            Col("name", "name"),
            Col("kind", "kind"),
            Col("default", "default"),
            Col("health", "health", styled_enum),
            Col("checked", "health_checked_at", lambda v: when(v, seconds=False)),
            Col("detail", "health_detail"),
        ],
        data.get("zones") or [],
    )


def render_tenant_zones(out: Output, data: dict[str, Any]) -> None:
    default = " (the installation's defaults)"
    out.fields(
        [
            ("tenant", data.get("tenant_id")),
            ("IP zones", text(data.get("ip_zones")) + (default if data.get("default_ip_zones") else "")),
            ("domain zones", text(data.get("domain_zones")) + (default if data.get("default_domain_zones") else "")),
            ("updated", when(data["update_time"]) if data.get("update_time") else None),
        ]
    )


@reputation.command("check")
@operator_options
@click.argument("address")
def check(api: Api, address: str) -> None:
    """Scan one IP against its tenant's blocklists now."""
    with api.out.working(f"asking the blocklists about {address}"):
        reply = api.gateway.post(f"/api/v2/reputation/ips/{segment(address)}:check")
    api.show(reply, render_ip_reputation)


@reputation.command("show")
@operator_options
@click.argument("address")
@click.option("--history-size", type=click.IntRange(1, 500), default=None, help="Earlier scans shown (default 20).")
def show(api: Api, address: str, history_size: int | None) -> None:
    """The latest scan of an IP, its current listings and its history."""
    reply = api.gateway.get(f"/api/v2/reputation/ips/{segment(address)}", {"history_size": history_size})
    api.show(reply, render_ip_reputation)


@reputation.command("scan")
@operator_options
@tenant_id_option(help="Whose IPs.")
def scan(api: Api, tenant: str) -> None:
    """Scan every watched IP of a tenant now (as the periodic scan does)."""
    name = api.need_tenant()
    with api.out.working(f"scanning {name}'s IPs on every zone"):
        reply = api.gateway.post(f"/api/v2/reputation/tenants/{segment(name)}:scan")
    api.show(reply, render_scan)


@reputation.command("zones")
@operator_options
def zones(api: Api) -> None:
    """The blocklist zones the product knows, with their last known health."""
    api.show(api.gateway.get("/api/v2/reputation/zones"), render_zones)


@reputation.command("tenant-zones")
@operator_options
@tenant_id_option(help="Whose zone choice.")
@click.option("--ip-zones", multiple=True, help="Zone key or DNS name of an IP list; repeatable.")
@click.option("--domain-zones", multiple=True, help="Zone key or DNS name of a domain list; repeatable.")
@click.option("--use-defaults", is_flag=True, help="Forget the tenant's choice: the installation's default zones.")
def tenant_zones(
    api: Api, tenant: str, ip_zones: tuple[str, ...], domain_zones: tuple[str, ...], use_defaults: bool
) -> None:
    """The zones a tenant's IPs and domains are checked against; with --ip-zones / --domain-zones /
    --use-defaults, replace them (a list not given becomes the defaults)."""
    path = f"/api/v2/reputation/tenants/{segment(api.need_tenant())}/zones"
    if ip_zones or domain_zones or use_defaults:
        reply = api.gateway.put(path, {"ip_zones": list(ip_zones), "domain_zones": list(domain_zones)})
    else:
        reply = api.gateway.get(path)
    api.show(reply, render_tenant_zones)
