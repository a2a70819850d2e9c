"""`emailengine health`: is every service up? Exit 0 when all serve, 3 when any does not."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorCommand, operator_options
from cli.errors import CliError, ExitCode
from cli.render import Col, Output, styled_enum


def render_health(out: Output, data: dict[str, Any]) -> None:
    out.fields([("product", styled_enum(data.get("status"))), ("version", data.get("version") or "-")])
    out.line()
    out.table(
        [Col("service", "service"), Col("status", "status", styled_enum), Col("detail", "detail")],
        data.get("services") or [],
    )


@click.command(cls=OperatorCommand)
@operator_options
def health(api: Api) -> None:
    """Each service's status through the gateway (no token needed). Exit code 3 unless every one is SERVING."""
    reply = api.gateway.get("/api/v2/health", auth=False)
    api.show(reply, render_health)
    if reply.data.get("status") != "SERVING":
        raise CliError(f"the product is {reply.data.get('status', 'not serving')}", ExitCode.UNAVAILABLE)
