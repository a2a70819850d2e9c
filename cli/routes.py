"""`emailengine routes`: where alerts go (notifier). Webhook secrets are write-only: never shown again."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import enum_choice, page_options, tenant_id_option
from cli.render import Col, Output, enum_text, when

SEVERITIES = ("info", "warning", "critical")


@click.group(cls=OperatorGroup)
def routes() -> None:
    """Alert routes: a tenant's Telegram chats and webhooks (admins: routes for every tenant).

    \b
    emailengine routes list --tenant sos-expat
    emailengine routes add --tenant sos-expat --webhook-url https://hooks.example.com/ee --webhook-secret -
    emailengine routes delete ROUTE_ID --tenant sos-expat
    """


def _target(route: dict[str, Any]) -> str:
    return route.get("telegram_chat_id") or route.get("webhook_origin") or "-"


def _quiet(route: dict[str, Any]) -> str:
    quiet = route.get("quiet_hours") or {}
    if not quiet.get("start"):
        return "-"
    mode = enum_text(quiet.get("mode"))
    zone = quiet.get("time_zone") or "UTC"
    return f"{quiet['start']}-{quiet.get('end', '')} {zone} ({'defer' if mode == '-' else mode})"


ROUTE_COLUMNS = [
    Col("route", "route_id"),
    Col("tenant", lambda r: "(admin: all)" if r.get("admin") else r.get("tenant_id")),
    Col("channel", "channel", enum_text),
    Col("to", _target),
    Col("from severity", "min_severity", enum_text),
    Col("quiet hours", _quiet),
    Col("problem", "problem"),
]


def render_route(out: Output, route: dict[str, Any]) -> None:
    out.fields(
        [
            ("route", route.get("route_id")),
            ("takes", "every tenant's alerts and the platform's" if route.get("admin") else route.get("tenant_id")),
            ("channel", enum_text(route.get("channel"))),
            ("to", _target(route)),
            ("signed", "yes (secret set)" if route.get("has_webhook_secret") else None),
            ("from severity", enum_text(route.get("min_severity"))),
            ("quiet hours", _quiet(route)),
            ("problem", route.get("problem") or None),
            ("created", when(route.get("create_time"))),
        ]
    )


def render_routes(out: Output, data: dict[str, Any]) -> None:
    out.table(ROUTE_COLUMNS, data.get("routes") or [], empty="no routes")
    out.more(data)


@routes.command("list")
@operator_options
@tenant_id_option(help="Whose routes (an admin without it sees every route).")
@page_options
def list_(api: Api, tenant: str, page_size: int | None, page_token: str) -> None:
    """Routes and what each takes."""
    params = {"tenant_id": tenant, "page_size": page_size, "page_token": page_token}
    api.show(api.gateway.get("/api/v2/alert-routes", params), render_routes)


@routes.command("add")
@operator_options
@tenant_id_option(help="The tenant whose alerts it takes (not with --admin-route).")
@click.option("--route-id", help="Letters, digits, '_', '.', ':', '-' (default: generated).")
@click.option("--admin-route", is_flag=True, help="The API's `admin`: takes every tenant's alerts (admins only).")
@click.option("--channel", type=enum_choice(("telegram", "webhook")), help="Default: from the target given.")
@click.option("--telegram-chat-id", help="A chat id or @channel an admin allowed for the tenant.")
@click.option("--webhook-url", help="http(s) URL on a public address.")
@click.option(
    "--webhook-secret", help="Signing key, at least 16 bytes; '-' reads it from stdin (keeps it out of history)."
)
@click.option("--min-severity", type=enum_choice(SEVERITIES), help="Alerts below it are not sent here (default info).")
@click.option("--quiet-hours-start", help='Quiet hours for info alerts, local "HH:MM".')
@click.option("--quiet-hours-end", help='End of the quiet hours, "HH:MM".')
@click.option("--quiet-hours-time-zone", help="IANA zone of the quiet hours (default UTC).")
@click.option("--quiet-hours-mode", type=enum_choice(("defer", "silent")), help="Defer info alerts, or send silently.")
def add(
    api: Api,
    tenant: str,
    route_id: str | None,
    admin_route: bool,
    channel: str | None,
    telegram_chat_id: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    min_severity: str | None,
    quiet_hours_start: str | None,
    quiet_hours_end: str | None,
    quiet_hours_time_zone: str | None,
    quiet_hours_mode: str | None,
) -> None:
    """Add a route: a Telegram chat or a signed webhook."""
    if webhook_secret == "-":
        webhook_secret = sys.stdin.readline().rstrip("\r\n")
    body: dict[str, Any] = {
        "route_id": route_id,
        "tenant_id": None if admin_route else tenant,
        "admin": admin_route,
        "channel": f"ROUTE_CHANNEL_{channel.upper()}" if channel else None,
        "telegram_chat_id": telegram_chat_id,
        "webhook_url": webhook_url,
        "webhook_secret": webhook_secret,
        "min_severity": f"ALERT_SEVERITY_{min_severity.upper()}" if min_severity else None,
    }
    quiet = {
        "start": quiet_hours_start,
        "end": quiet_hours_end,
        "time_zone": quiet_hours_time_zone,
        "mode": f"QUIET_MODE_{quiet_hours_mode.upper()}" if quiet_hours_mode else None,
    }
    if any(quiet.values()):
        body["quiet_hours"] = {k: v for k, v in quiet.items() if v}
    api.show(api.gateway.post("/api/v2/alert-routes", {k: v for k, v in body.items() if v}), render_route)


@routes.command("delete")
@operator_options
@click.argument("route_id")
def delete(api: Api, route_id: str) -> None:
    """Delete a route; its deliveries not yet sent are marked failed ("route deleted")."""
    reply = api.gateway.delete(f"/api/v2/alert-routes/{segment(route_id)}")
    api.show(reply, lambda out, _: out.line(f"route {route_id} deleted"))
