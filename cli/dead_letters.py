"""`emailengine dead-letters`: events a service could not apply after its retries, and replaying them (admins)."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import page_options
from cli.render import Col, Output, text, when

SERVICES = ("ip-pool", "reputation", "campaign-gateway", "notifier")


@click.group("dead-letters", cls=OperatorGroup)
def dead_letters() -> None:
    """Dead letters: events a service could not apply after its retries (admins).

    \b
    emailengine dead-letters list --admin
    emailengine dead-letters replay notifier EVENT_ID --admin
    """


COLUMNS = [
    Col("service", "service"),
    Col("event", "event_id"),
    Col("type", "event_type", lambda v: str(v or "-").rsplit(".", 1)[-1]),
    Col("from", "source"),
    Col("tenant", "tenant_id"),
    Col("failed", "failed_at", lambda v: when(v, seconds=False)),
    Col("tries", "attempts", right=True),
    Col("error", "error"),
    Col("replayed", "replayed_at", lambda v: when(v, seconds=False) if v else "-"),
]


def render_dead_letter(out: Output, letter: dict[str, Any]) -> None:
    out.fields(
        [
            ("service", letter.get("service")),
            ("event", letter.get("event_id")),
            ("type", text(letter.get("event_type"))),
            ("from", text(letter.get("source"))),
            ("tenant", text(letter.get("tenant_id"))),
            ("happened", when(letter.get("occurred_at"))),
            ("failed", when(letter.get("failed_at"))),
            ("tries", text(letter.get("attempts"))),
            ("last error", text(letter.get("error"))),
            ("replayed", when(letter["replayed_at"]) if letter.get("replayed_at") else "not yet"),
        ]
    )


@dead_letters.command("list")
@operator_options
@click.option("--service", type=click.Choice(SERVICES), help="One service's only.")
@click.option("--include-replayed", is_flag=True, help="Replayed ones too.")
@page_options
def list_(api: Api, service: str | None, include_replayed: bool, page_size: int | None, page_token: str) -> None:
    """Dead letters, newest first, from every service or one."""
    params = {
        "service": service,
        "include_replayed": include_replayed,
        "page_size": page_size,
        "page_token": page_token,
    }

    def render(out: Output, data: dict[str, Any]) -> None:
        out.table(COLUMNS, data.get("dead_letters") or [], empty="no dead letters")
        out.more(data)

    api.show(api.gateway.get("/api/v2/dead-letters", params), render)


@dead_letters.command("replay")
@operator_options
@click.argument("service", type=click.Choice(SERVICES))
@click.argument("event_id")
def replay(api: Api, service: str, event_id: str) -> None:
    """Apply a dead letter again in its service (once); a new failure keeps it, one attempt more."""
    reply = api.gateway.post(f"/api/v2/dead-letters/{segment(service)}/{segment(event_id)}:replay")
    api.show(reply, render_dead_letter)
