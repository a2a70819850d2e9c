"""`emailengine tenants`: the companies that send, and their policies (ip-pool).

The policy flags are made from the API's `Tenant` message, so each is its field path in kebab case
(`health.max_bounce_rate_to_advance` is `--health-max-bounce-rate-to-advance`) and a field added to the contract
gets its flag without a change here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import click
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import page_options
from cli.render import Col, Output, duration, percent, text, when

# Set by the service, never by a request.
_READ_ONLY = {"tenant_id", "create_time", "update_time"}
# What each flag sets, in the contract's words; a field without a line here is helped by its path.
HELP = {
    "display_name": "Name shown for the tenant.",
    "time_zone": "IANA time zone of the tenant's sending day, e.g. Europe/Paris.",
    "sending_window_start_hour": "Local hour the sending window opens (0-24).",
    "sending_window_end_hour": "Local hour the sending window closes (0-24).",
    "default_schedule_id": "Warmup schedule of new IPs registered without one.",
    "health.min_delivered_share": "Advance only if the day delivered at least this share of its target (90%).",
    "health.max_bounce_rate_to_advance": "Advance only below this bounce rate (2%).",
    "health.max_complaint_rate_to_advance": "Advance only below this complaint rate (0.1%).",
    "health.step_back_bounce_rate": "Step back one step at or above this bounce rate (5%).",
    "health.step_back_complaint_rate": "Step back one step at or above this complaint rate (0.3%).",
    "health.min_sample": "A rate counts only when it rests on at least this many messages (100).",
    "health.idle_rewarm_days": "An IP idle this many days restarts its warmup (30).",
    "health.standby_cooldown": "After delisting, a standby IP waits this long before it sends again (24h).",
    "provider_shares.gmail": "Gmail's cap, as a share of an IP's daily quota (40%).",
    "provider_shares.microsoft": "Microsoft's cap (30%).",
    "provider_shares.yahoo": "Yahoo's cap (20%).",
    "provider_shares.other": "Every other receiver's cap (100%).",
    "rotation.enabled": "Rest warm IPs now and then (off).",
    "rotation.full_use_days": "Rest an IP after this many full-use days at WARM (28).",
    "rotation.rest_days": "Days of rest (2).",
    "rotation.warm_capacity_floor": "Messages per day the warm, non-resting IPs must always offer together (0).",
    "rotation.rewarm_steps_back": "Steps a rested IP goes down before it re-warms (1).",
}


@dataclass(frozen=True)
class PolicyField:
    path: str  # "health.min_sample"
    kind: str  # "string", "int", "share", "bool", "duration"
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.path.replace(".", "-").replace("_", "-")

    @property
    def param(self) -> str:
        return self.path.replace(".", "__")


class Share(click.ParamType):
    """A rate or share: 0.02 or 2%."""

    name = "SHARE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        raw = str(value).strip()
        try:
            return float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            self.fail(f"{value!r} is not a share (0.02 or 2%)", param, ctx)


class Duration(click.ParamType):
    """A duration: 90s, 30m, 24h, 2d; sent as google.protobuf.Duration's JSON ("86400s")."""

    name = "DURATION"
    _UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        match = re.fullmatch(r"(\d+)\s*([smhd]?)", str(value).strip())
        if not match:
            self.fail(f"{value!r} is not a duration (90s, 30m, 24h, 2d)", param, ctx)
        return f"{int(match.group(1)) * self._UNITS[match.group(2) or 's']}s"


def _kind(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return "duration"  # the one message-typed leaf of the policy (google.protobuf.Duration)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "bool"
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return "share"
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        return "int"
    return "string"


def policy_fields() -> list[PolicyField]:
    """Every field of `Tenant` a request may set, nested parts (health, provider_shares, rotation) flattened."""
    from emailengine.ippool.v1 import ippool_service_pb2 as pb

    found: list[PolicyField] = []

    def walk(message: Descriptor, prefix: str) -> None:
        for field in message.fields:
            if not prefix and field.name in _READ_ONLY:
                continue
            path = f"{prefix}{field.name}"
            nested = field.message_type
            if nested is not None and nested.full_name != "google.protobuf.Duration":
                walk(nested, f"{path}.")
            else:
                found.append(PolicyField(path, _kind(field), HELP.get(path, f"Set {path}.")))

    walk(pb.Tenant.DESCRIPTOR, "")
    return found


POLICY = policy_fields()
PARTS = sorted({f.path.split(".")[0] for f in POLICY if "." in f.path})


def policy_options(command: Any, *, reset: bool = True) -> Any:
    """One option per policy field, and --reset FIELD."""
    types: dict[str, Any] = {"int": int, "share": Share(), "duration": Duration(), "string": str}
    for field in reversed(POLICY):
        if field.kind == "bool":
            no = "--no-" + field.flag[2:]
            command = click.option(f"{field.flag}/{no}", field.param, default=None, help=field.help)(command)
        else:
            command = click.option(field.flag, field.param, type=types[field.kind], help=field.help)(command)
    if not reset:
        return command
    return click.option(
        "--reset",
        multiple=True,
        type=click.Choice([f.path for f in POLICY] + PARTS),
        metavar="FIELD",
        help="Put this field (e.g. health.min_sample) or part (health) back to its default; repeatable.",
    )(command)


def tenant_body(values: dict[str, Any], resets: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """The Tenant JSON of the flags given, and the update mask naming them and the fields reset."""
    body: dict[str, Any] = {}
    mask: list[str] = []
    for field in POLICY:
        value = values.get(field.param)
        if value is None:
            continue
        *parents, leaf = field.path.split(".")
        target = body
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
        mask.append(field.path)
    mask += [path for path in resets if path not in mask]
    return body, mask


@click.group(cls=OperatorGroup)
def tenants() -> None:
    """Tenants (sending companies) and their policies: time zone, sending window, health gates, provider shares,
    rotation.

    \b
    emailengine tenants show sos-expat
    emailengine tenants update sos-expat --time-zone Europe/Paris --health-max-bounce-rate-to-advance 1.5%
    emailengine tenants update sos-expat --reset health
    """


def _window_cell(tenant: dict[str, Any]) -> str:
    return _window(tenant)


TENANT_COLUMNS = [
    Col("tenant", "tenant_id"),
    Col("name", "display_name"),
    Col("time zone", "time_zone"),
    Col("sending window", _window_cell),
    Col("schedule", "default_schedule_id"),
    Col("rotation", "rotation.enabled"),
    Col("created", "create_time", lambda v: when(v, seconds=False)),
]


def _window(tenant: dict[str, Any]) -> str:
    return f"{tenant.get('sending_window_start_hour', 0):02d}:00-{tenant.get('sending_window_end_hour', 24):02d}:00"


def render_tenant(out: Output, tenant: dict[str, Any]) -> None:
    health = tenant.get("health") or {}
    shares = tenant.get("provider_shares") or {}
    rotation = tenant.get("rotation") or {}
    out.fields(
        [
            ("tenant", tenant.get("tenant_id")),
            ("name", text(tenant.get("display_name"))),
            ("time zone", text(tenant.get("time_zone"))),
            ("sending window", f"{_window(tenant)} local time"),
            ("default schedule", text(tenant.get("default_schedule_id"))),
            ("created", when(tenant.get("create_time"))),
            ("updated", when(tenant.get("update_time"))),
        ]
    )
    out.line()
    out.fields(
        [
            ("advance if delivered share >=", percent(health.get("min_delivered_share"))),
            ("advance if bounce rate <", percent(health.get("max_bounce_rate_to_advance"))),
            ("advance if complaint rate <", percent(health.get("max_complaint_rate_to_advance"))),
            ("step back at bounce rate >=", percent(health.get("step_back_bounce_rate"))),
            ("step back at complaint rate >=", percent(health.get("step_back_complaint_rate"))),
            ("rates count from", f"{text(health.get('min_sample'))} messages"),
            ("idle IP re-warms after", f"{text(health.get('idle_rewarm_days'))} days"),
            ("standby cool-down", duration(health.get("standby_cooldown"))),
        ],
        title="health gates",
    )
    out.line()
    out.fields(
        [(name, percent(shares.get(name))) for name in ("gmail", "microsoft", "yahoo", "other")],
        title="provider shares (of an IP's daily quota)",
    )
    out.line()
    out.fields(
        [
            ("enabled", text(bool(rotation.get("enabled")))),
            ("rest after", f"{text(rotation.get('full_use_days'))} full-use days"),
            ("rest for", f"{text(rotation.get('rest_days'))} days"),
            ("warm capacity floor", f"{text(rotation.get('warm_capacity_floor'))}/day"),
            ("re-warm steps back", text(rotation.get("rewarm_steps_back"))),
        ],
        title="rotation",
    )


def render_tenants(out: Output, data: dict[str, Any]) -> None:
    out.table(TENANT_COLUMNS, data.get("tenants") or [], empty="no tenants")
    out.more(data)


@tenants.command("list")
@operator_options
@page_options
def list_(api: Api, page_size: int | None, page_token: str) -> None:
    """Tenants (an operator sees its own)."""
    api.show(api.gateway.get("/api/v2/tenants", {"page_size": page_size, "page_token": page_token}), render_tenants)


@tenants.command("show")
@operator_options
@click.argument("tenant", metavar="TENANT_ID")
def show(api: Api, tenant: str) -> None:
    """A tenant and its whole policy."""
    api.show(api.gateway.get(f"/api/v2/tenants/{segment(tenant)}"), render_tenant)


@tenants.command("update")
@operator_options
@click.argument("tenant", metavar="TENANT_ID")
@policy_options
def update(api: Api, tenant: str, reset: tuple[str, ...], **values: Any) -> None:
    """Change the policy fields given (rates as 0.02 or 2%, durations as 24h); --reset puts one back to its
    default."""
    body, mask = tenant_body(values, reset)
    if not mask:
        raise click.UsageError("nothing to change: give a policy flag (see --help) or --reset FIELD")
    reply = api.gateway.patch(f"/api/v2/tenants/{segment(tenant)}", body, {"update_mask": ",".join(mask)})
    api.show(reply, render_tenant)


@tenants.command("create")
@operator_options
@click.argument("tenant", metavar="TENANT_ID")
@functools.partial(policy_options, reset=False)
def create(api: Api, tenant: str, **values: Any) -> None:
    """Admin: a new tenant (a slug such as sos-expat), with the policy fields given and defaults for the rest."""
    body, _ = tenant_body(values, ())
    body["tenant_id"] = tenant
    api.show(api.gateway.post("/api/v2/tenants", body), render_tenant)
