"""`emailengine schedules`: warmup schedules (ip-pool). The built-in "default" comes first; a tenant's own are
immutable once made."""

from __future__ import annotations

import re
from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import page_options, tenant_id_option
from cli.render import Col, Output, number, text, when


class Steps(click.ParamType):
    """Warmup steps as DAILY_VOLUME:SENDING_DAYS, comma-separated or repeated; the last one open-ended (:0)."""

    name = "VOLUME:DAYS,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[dict[str, int]]:
        if isinstance(value, list):
            return value
        steps = []
        for item in str(value).replace(" ", "").split(","):
            match = re.fullmatch(r"(\d+)(?::(\d+))?", item)
            if not match:
                self.fail(f"{item!r} is not VOLUME:DAYS (e.g. 50:7)", param, ctx)
            steps.append({"daily_volume": int(match.group(1)), "sending_days": int(match.group(2) or 0)})
        return steps


@click.group(cls=OperatorGroup)
def schedules() -> None:
    """Warmup schedules: the daily volume of each step and how many healthy sending days it lasts.

    \b
    emailengine schedules list --tenant sos-expat
    emailengine schedules create gentle --tenant sos-expat --steps 20:3,50:7,200:7,1000:7,5000:0
    """


def _steps(schedule: dict[str, Any]) -> str:
    parts = []
    for step in schedule.get("steps") or []:
        days = step.get("sending_days", 0)
        parts.append(f"{number(step.get('daily_volume'))}" + (f" x{days}d" if days else " then on"))
    return ", ".join(parts) or "-"


def render_schedule(out: Output, schedule: dict[str, Any]) -> None:
    out.fields(
        [
            ("schedule", schedule.get("schedule_id")),
            ("name", text(schedule.get("display_name"))),
            ("tenant", "built in" if schedule.get("built_in") else text(schedule.get("tenant_id"))),
            ("created", when(schedule["create_time"]) if schedule.get("create_time") else None),
        ]
    )
    out.line()
    steps = [{"n": n, **step} for n, step in enumerate(schedule.get("steps") or [], start=1)]
    out.table(
        [
            Col("step", "n", right=True),
            Col("per day", "daily_volume", number, right=True),
            Col("sending days", lambda s: str(s.get("sending_days") or "open-ended"), right=True),
        ],
        steps,
    )


def render_schedules(out: Output, data: dict[str, Any]) -> None:
    out.table(
        [
            Col("schedule", "schedule_id"),
            Col("name", "display_name"),
            Col("built in", "built_in"),
            Col("steps (per day x healthy sending days)", _steps),
        ],
        data.get("schedules") or [],
    )
    out.more(data)


@schedules.command("list")
@operator_options
@tenant_id_option(help="Whose schedules.")
@page_options
def list_(api: Api, tenant: str, page_size: int | None, page_token: str) -> None:
    """The built-in default schedule, then the tenant's own."""
    path = f"/api/v2/tenants/{segment(api.need_tenant())}/schedules"
    api.show(api.gateway.get(path, {"page_size": page_size, "page_token": page_token}), render_schedules)


@schedules.command("show")
@operator_options
@click.argument("schedule_id")
@tenant_id_option(help="Whose schedule.")
def show(api: Api, schedule_id: str, tenant: str) -> None:
    """One schedule, step by step."""
    path = f"/api/v2/tenants/{segment(api.need_tenant())}/schedules/{segment(schedule_id)}"
    api.show(api.gateway.get(path), render_schedule)


@schedules.command("create")
@operator_options
@click.argument("schedule_id")
@tenant_id_option(help="Whose schedule.")
@click.option("--display-name", help="Name shown for the schedule.")
@click.option(
    "--steps",
    type=Steps(),
    multiple=True,
    required=True,
    help="Steps as DAILY_VOLUME:SENDING_DAYS, e.g. 50:7,200:7,10000:0 (the last one open-ended).",
)
def create(
    api: Api, schedule_id: str, tenant: str, display_name: str | None, steps: tuple[list[dict[str, int]], ...]
) -> None:
    """A tenant's own schedule (a-z, 0-9 and '-'; immutable once made)."""
    schedule: dict[str, Any] = {"schedule_id": schedule_id, "steps": [step for group in steps for step in group]}
    if display_name:
        schedule["display_name"] = display_name
    path = f"/api/v2/tenants/{segment(api.need_tenant())}/schedules"
    api.show(api.gateway.post(path, schedule), render_schedule)
