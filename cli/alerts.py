"""`emailengine alerts`: alerts to people, with how each delivery went (notifier)."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import enum_choice, page_options, tenant_id_option
from cli.render import Col, Output, enum_text, styled_enum, text, when

SEVERITIES = ("info", "warning", "critical")


@click.group(cls=OperatorGroup)
def alerts() -> None:
    """Alerts: what was sent to whom (Telegram, webhooks), and sending one by hand.

    \b
    emailengine alerts list --tenant sos-expat
    emailengine alerts send --tenant sos-expat --severity warning --title "Maintenance at 22:00"
    """


ALERT_COLUMNS = [
    Col("alert", "alert_id"),
    Col("time", "create_time", lambda v: when(v, seconds=False)),
    Col("tenant", "tenant_id", lambda v: v or "(platform)"),
    Col("severity", "severity", styled_enum),
    Col("title", "title"),
    Col("source", "source"),
    Col("delivery", "delivery_state", styled_enum),
    Col("tries", "attempts", right=True),
]


def render_alert(out: Output, alert: dict[str, Any]) -> None:
    labels = alert.get("labels") or {}
    out.fields(
        [
            ("alert", alert.get("alert_id")),
            ("tenant", alert.get("tenant_id") or "(platform)"),
            ("severity", styled_enum(alert.get("severity"))),
            ("title", text(alert.get("title"))),
            ("text", text(alert.get("text"))),
            ("source", text(alert.get("source"))),
            ("resolved", "yes" if alert.get("resolved") else None),
            ("link", alert.get("url") or None),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or None),
            ("delivery", styled_enum(alert.get("delivery_state"))),
            ("last error", alert.get("last_error") or None),
            ("duplicate of", alert.get("duplicate_of") or None),
            ("duplicates suppressed", text(alert.get("suppressed_count")) if alert.get("suppressed_count") else None),
            ("happened", when(alert["occur_time"]) if alert.get("occur_time") else None),
            ("accepted", when(alert.get("create_time"))),
            ("delivered", when(alert["delivery_time"]) if alert.get("delivery_time") else None),
        ]
    )
    deliveries = alert.get("deliveries") or []
    if deliveries:
        out.line()
        out.table(
            [
                Col("route", "route_id"),
                Col("channel", "channel", enum_text),
                Col("to", "destination"),
                Col("state", "state", styled_enum),
                Col("tries", "attempts", right=True),
                Col("next try", "next_attempt_time", lambda v: when(v, seconds=False) if v else "-"),
                Col("error", "last_error"),
            ],
            deliveries,
            title="deliveries",
        )


def render_alerts(out: Output, data: dict[str, Any]) -> None:
    out.table(ALERT_COLUMNS, data.get("alerts") or [], empty="no alerts")
    out.more(data)


@alerts.command("list")
@operator_options
@tenant_id_option(help="Whose alerts (an admin without it sees every alert, the platform's too).")
@page_options
def list_(api: Api, tenant: str, page_size: int | None, page_token: str) -> None:
    """Alerts, newest first, with their delivery state."""
    params = {"tenant_id": tenant, "page_size": page_size, "page_token": page_token}
    api.show(api.gateway.get("/api/v2/alerts", params), render_alerts)


@alerts.command("show")
@operator_options
@click.argument("alert_id")
def show(api: Api, alert_id: str) -> None:
    """One alert and each of its deliveries."""
    api.show(api.gateway.get(f"/api/v2/alerts/{segment(alert_id)}"), render_alert)


class Label(click.ParamType):
    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, label_value = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, label_value


@alerts.command("send")
@operator_options
@tenant_id_option(help="The tenant it is about (an admin without it: a platform alert).")
@click.option("--severity", type=enum_choice(SEVERITIES), default="info", show_default=True)
@click.option("--title", help="Headline (default: the first line of --text).")
@click.option("--text", "text_", help="The message.")
@click.option("--dedup-key", help="The same key again within the dedup window is suppressed.")
@click.option("--source", help='Who raises it (default "api").')
@click.option("--labels", type=Label(), multiple=True, help="KEY=VALUE; repeatable.")
@click.option("--url", help="An http(s) link shown under the text.")
@click.option("--resolved", is_flag=True, help="The condition is over.")
def send(
    api: Api,
    tenant: str,
    severity: str,
    title: str | None,
    text_: str | None,
    dedup_key: str | None,
    source: str | None,
    labels: tuple[tuple[str, str], ...],
    url: str | None,
    resolved: bool,
) -> None:
    """Send an alert to the routes that take it; it is stored before this answers and delivered at least once."""
    if not title and not text_:
        raise click.UsageError("give --title or --text")
    body: dict[str, Any] = {
        "tenant_id": tenant,
        "severity": f"ALERT_SEVERITY_{severity.upper()}",
        "title": title,
        "text": text_,
        "dedup_key": dedup_key,
        "source": source,
        "labels": dict(labels),
        "url": url,
        "resolved": resolved,
    }
    api.show(api.gateway.post("/api/v2/alerts", {k: v for k, v in body.items() if v}), render_alert)
