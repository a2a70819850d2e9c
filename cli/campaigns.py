"""`emailengine campaigns` and `emailengine suppressions`: campaigns made in the tenant's MailWizz, and the
addresses no campaign may send to (campaign-gateway).

`campaigns create` reads its contacts from a CSV or JSON file (`cli.contacts`). A small file goes in one REST call;
a file over `STREAM_ABOVE_BYTES` streams over gRPC `UploadCampaign`, through the same gateway and with the same
token, chunk by chunk with a progress bar, so neither the CLI nor the gateway holds the whole list in one message.
Every creation carries a `request_id` (one is made when none is given): the same command again with it returns
the same campaign and creates nothing twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.contacts import ContactFile
from cli.errors import CliError, ExitCode
from cli.gateway import Reply, segment
from cli.options import enum_choice, page_options, tenant_id_option
from cli.render import Col, Output, enum_text, number, styled_enum, text, when

STREAM_ABOVE_BYTES = 2 * 1024 * 1024  # about 50 000 CSV contacts; REST takes up to EE_MAX_REQUEST_BYTES
CHUNK_CONTACTS = 5_000
CAMPAIGN_STATES = ("pending", "sending", "paused", "sent", "failed")
SHOWN_PROBLEMS = 10


@click.group(cls=OperatorGroup)
def campaigns() -> None:
    """Campaigns: one command makes the MailWizz list, its subscribers and the campaign on the tenant's IPs.

    \b
    emailengine campaigns create contacts.csv --tenant sos-expat --template-id cold_v1
    emailengine campaigns list --tenant sos-expat
    emailengine campaigns show CAMPAIGN_ID --tenant sos-expat
    emailengine campaigns pause CAMPAIGN_ID --tenant sos-expat

    The CSV has a header row: email (required), first_name, last_name, and any other column as a list field.
    """


def _contacts_cell(campaign: dict[str, Any]) -> str:
    report = campaign.get("contacts_report") or {}
    received = report.get("received")
    accepted = campaign.get("contact_count", 0)
    return f"{number(accepted)} of {number(received)}" if received else number(accepted)


CAMPAIGN_COLUMNS = [
    Col("campaign", "campaign_id"),
    Col("tenant", "tenant"),
    Col("name", "name"),
    Col("template", "template_id"),
    Col("state", "state", styled_enum),
    Col("stage", "stage", enum_text),
    Col("contacts", _contacts_cell, right=True),
    Col("created", "create_time", lambda v: when(v, seconds=False)),
]


def render_campaign(out: Output, campaign: dict[str, Any]) -> None:
    state = styled_enum(campaign.get("state"))
    if campaign.get("state_reason"):
        state.append(f"  ({campaign['state_reason']})", style="")
    mailwizz = campaign.get("mailwizz") or {}
    out.fields(
        [
            ("campaign", campaign.get("campaign_id")),
            ("tenant", campaign.get("tenant")),
            ("name", text(campaign.get("name"))),
            ("template", text(campaign.get("template_id"))),
            ("state", state),
            ("last step done", enum_text(campaign.get("stage"))),
            ("contacts sent to", _contacts_cell(campaign)),
            ("subject", text(campaign.get("subject"))),
            ("from", f"{text(campaign.get('from_name'))} <{text(campaign.get('from_email'))}>"),
            ("reply to", text(campaign.get("reply_to"))),
            ("send time", when(campaign["send_time"]) if campaign.get("send_time") else "as soon as created"),
            (
                "MailWizz",
                f"campaign {text(mailwizz.get('campaign_uid'))} ({text(mailwizz.get('status'))}), "
                f"list {text(mailwizz.get('list_uid'))}, servers {text(mailwizz.get('delivery_server_ids'))}"
                if mailwizz
                else "-",
            ),
            ("request id", text(campaign.get("request_id"))),
            ("created", when(campaign.get("create_time"))),
            ("updated", when(campaign.get("update_time"))),
        ]
    )
    preflight = campaign.get("preflight") or []
    if preflight:
        out.line()
        out.table(
            [
                Col("check", "check"),
                Col("result", "passed", lambda ok: styled_enum("PASS" if ok else "FAIL")),
                Col("detail", "detail"),
            ],
            preflight,
            title="preflight",
        )
    plan = campaign.get("send_plan") or {}
    if plan:
        out.line()
        out.line(
            f"send plan: {number(plan.get('allocated_today'))} of {number(plan.get('requested'))} today "
            f"({text(plan.get('day'))}), {number(plan.get('remainder'))} on the following days"
            + (f", {number(plan['unplanned'])} beyond the plan" if plan.get("unplanned") else ""),
            style="bold",
        )
        out.table(
            [
                Col("IP", "address"),
                Col("today", "volume", number, right=True),
                Col("MailWizz server", "delivery_server_id", right=True),
                Col("virtual MTA", "vmta"),
            ],
            plan.get("ips") or [],
            empty="no IP sends today",
        )
        if plan.get("later_days"):
            out.table([Col("day", "day"), Col("volume", "volume", number, right=True)], plan["later_days"])
        if plan.get("excluded"):
            out.table([Col("left out", "address"), Col("why", "reason")], plan["excluded"])
    report = campaign.get("contacts_report") or {}
    problems = report.get("problems") or []
    if report.get("problem_counts"):
        out.line()
        counts = ", ".join(f"{number(c.get('count'))} {enum_text(c.get('kind'))}" for c in report["problem_counts"])
        out.line(f"contacts not sent to: {counts}", style="bold")
        out.table(
            [
                Col("#", "index", right=True),
                Col("email", "email"),
                Col("problem", "kind", enum_text),
                Col("detail", "detail"),
            ],
            problems[:SHOWN_PROBLEMS],
        )
        hidden = int(report.get("problems_total") or len(problems)) - min(len(problems), SHOWN_PROBLEMS)
        if hidden > 0:
            out.note(f"{hidden} more problems: see --json")
    steps = campaign.get("steps") or []
    if steps:
        out.line()
        out.table(
            [
                Col("time", "time", when),
                Col("step", "step"),
                Col("outcome", "outcome", styled_enum),
                Col("detail", "detail"),
            ],
            steps,
            title="steps",
        )


def render_campaigns(out: Output, data: dict[str, Any]) -> None:
    out.table(CAMPAIGN_COLUMNS, data.get("campaigns") or [], empty="no campaigns")
    out.more(data)


def _send_time(value: str | None) -> str | None:
    """An ISO 8601 time (a time without a zone is the operator's local time) as RFC 3339 in UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (2026-01-05T09:00, or with +01:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@campaigns.command("create")
@operator_options
@click.argument("contacts_file", metavar="CONTACTS_FILE", type=click.Path(dir_okay=False, path_type=Path))
@tenant_id_option(help="The tenant sending it.", field="tenant")
@click.option("--template-id", required=True, help="The template's name in the tenant's MailWizz, e.g. cold_v1.")
@click.option("--name", help="The campaign's name (default: the template's).")
@click.option("--request-id", help="Idempotency key: the same command with it returns the same campaign.")
@click.option("--subject", help="Default: the tenant's MailWizz default.")
@click.option("--from-name", help="Default: the tenant's MailWizz default.")
@click.option("--from-email", help="Default: the tenant's MailWizz default (its domain must be a sending domain).")
@click.option("--reply-to", help="Default: the tenant's MailWizz default.")
@click.option("--send-time", help="When MailWizz may start, ISO 8601 (your time zone unless given); default now.")
@click.option(
    "--stream/--no-stream",
    default=None,
    help=f"Upload over gRPC in chunks (default: for files over {STREAM_ABOVE_BYTES // (1024 * 1024)} MiB).",
)
@click.option(
    "--timeout",
    type=click.IntRange(10, 86400),
    default=900,
    show_default=True,
    help="Seconds a streamed upload may take (a REST call ends at the gateway's 60 s).",
)
def create(
    api: Api,
    contacts_file: Path,
    tenant: str,
    template_id: str,
    name: str | None,
    request_id: str | None,
    subject: str | None,
    from_name: str | None,
    from_email: str | None,
    reply_to: str | None,
    send_time: str | None,
    stream: bool | None,
    timeout: int,
) -> None:
    """Create a campaign from a CSV or JSON file of contacts: checks, preflight, then the list, its subscribers and
    the campaign in the tenant's MailWizz. Contacts that cannot be sent to are reported and skipped.

    The CSV's header row names the columns: email (required), first_name, last_name, and any other column is a
    list field; separated by commas, semicolons or tabs, in UTF-8. JSON: a list of contacts as the API takes them
    ({"email", "first_name", "last_name", "fields"}), or {"contacts": [...]}."""
    source = ContactFile.open(contacts_file)
    header = {
        "tenant": api.need_tenant("--tenant"),
        "template_id": template_id,
        "name": name,
        "request_id": request_id or f"cli-{uuid.uuid4().hex[:20]}",
        "subject": subject,
        "from_name": from_name,
        "from_email": from_email,
        "reply_to": reply_to,
        "send_time": _send_time(send_time),
    }
    header = {k: v for k, v in header.items() if v}
    try:
        if stream if stream is not None else source.size > STREAM_ABOVE_BYTES:
            reply = upload(api, source, header, timeout)
        else:
            contacts = list(source.contacts())
            if not contacts:
                raise CliError(f"{contacts_file}: no contacts in it", ExitCode.BAD_INPUT)
            with api.out.working(f"creating the campaign: MailWizz imports {len(contacts):,} contacts"):
                reply = api.gateway.post("/api/v2/campaigns", {**header, "contacts": contacts})
    except CliError as error:
        if error.rpc_code == 4 or "upstream request timeout" in error.message:
            raise CliError(
                "the gateway stopped waiting while the campaign is being made; the same command with --request-id "
                f"{header['request_id']} returns it once made (it creates nothing twice)",
                ExitCode.UNAVAILABLE,
            ) from None
        raise
    api.show(reply, render_campaign)


def upload(api: Api, source: ContactFile, header: dict[str, Any], timeout: int) -> Reply:
    """UploadCampaign over gRPC through the gateway: the request, then the contacts in chunks, with progress."""
    import grpc
    from google.protobuf import json_format
    from grpc_status import rpc_status
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from emailengine.campaign.v1 import campaign_service_pb2 as pb
    from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc

    gateway = api.gateway
    token = gateway.token()
    target, tls = gateway.grpc_target
    failure: list[CliError] = []  # a bad line met while streaming: reported instead of gRPC's cancellation
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=api.out.err,
        disable=not api.out.err.is_terminal,
    )
    size = f"{source.size / 1e6:.1f} MB"
    uploading = progress.add_task("uploading", total=source.size, detail=f"0.0/{size}, 0 contacts")

    def read(count: int) -> None:
        progress.advance(uploading, count)

    def requests() -> Iterator[pb.UploadCampaignRequest]:
        yield pb.UploadCampaignRequest(header=json_format.ParseDict(header, pb.CreateCampaignRequest()))
        chunk: list[pb.Contact] = []
        sent = 0
        try:
            for contact in source.contacts(read):
                chunk.append(json_format.ParseDict(contact, pb.Contact()))
                if len(chunk) == CHUNK_CONTACTS:
                    sent += len(chunk)
                    done = progress.tasks[uploading].completed / 1e6
                    progress.update(uploading, detail=f"{done:.1f}/{size}, {sent:,} contacts")
                    yield pb.UploadCampaignRequest(contacts=pb.ContactChunk(contacts=chunk))
                    chunk = []
        except CliError as error:
            failure.append(error)
            raise
        if chunk:
            sent += len(chunk)
            yield pb.UploadCampaignRequest(contacts=pb.ContactChunk(contacts=chunk))
        progress.update(uploading, completed=source.size, detail=f"{size}, {sent:,} contacts")
        # The stream is closed: the campaign is being made (its time is mostly MailWizz importing the subscribers).
        progress.add_task(f"MailWizz is importing {sent:,} contacts", total=None, detail="")

    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials()) if tls else grpc.insecure_channel(target)
    try:
        with progress, channel:
            stub = pb_grpc.CampaignServiceStub(channel)
            campaign = stub.UploadCampaign(
                requests(), metadata=(("authorization", f"Bearer {token}"),), timeout=timeout
            )
    except grpc.RpcError as error:
        if failure:
            raise failure[0] from None
        raise _grpc_error(api, error, rpc_status) from None
    # The campaign as the REST API shows it (proto field names, every field), compact like the gateway's JSON.
    data = json_format.MessageToDict(
        campaign, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return Reply(json.dumps(data, separators=(",", ":"), ensure_ascii=False), data)


def _grpc_error(api: Api, error: Any, rpc_status: Any) -> CliError:
    from google.protobuf import json_format
    from google.rpc import error_details_pb2  # noqa: F401  (registers the detail types the Status may carry)

    code = error.code().value[0]
    status = rpc_status.from_call(error)
    details = json_format.MessageToDict(status, preserving_proto_field_name=True).get("details", []) if status else []
    message = error.details() or ""
    if code == 14 and not details and ("connect" in message.lower() or "refused" in message.lower()):
        reason = "connection refused" if "refused" in message.lower() else message
        return CliError(f"cannot reach the gateway at {api.gateway.url}: {reason}", ExitCode.UNAVAILABLE, rpc_code=14)
    return api.gateway.status_error(code, message, details)


@campaigns.command("show")
@operator_options
@click.argument("campaign_id")
def show(api: Api, campaign_id: str) -> None:
    """One campaign: state, preflight, send plan per IP, contacts not sent to, MailWizz ids, steps."""
    api.show(api.gateway.get(f"/api/v2/campaigns/{segment(campaign_id)}"), render_campaign)


@campaigns.command("list")
@operator_options
@tenant_id_option(help="Whose campaigns (an admin without it sees every tenant's).", field="tenant")
@click.option("--state", type=enum_choice(CAMPAIGN_STATES), help="Only campaigns in this state.")
@page_options
def list_(api: Api, tenant: str, state: str | None, page_size: int | None, page_token: str) -> None:
    """Campaigns, newest first."""
    params = {
        "tenant": tenant,
        "state": f"CAMPAIGN_STATE_{state.upper()}" if state else None,
        "page_size": page_size,
        "page_token": page_token,
    }
    api.show(api.gateway.get("/api/v2/campaigns", params), render_campaigns)


@campaigns.command("pause")
@operator_options
@click.argument("campaign_id")
def pause(api: Api, campaign_id: str) -> None:
    """Pause the campaign in MailWizz (pausing a paused one leaves it paused)."""
    api.show(api.gateway.post(f"/api/v2/campaigns/{segment(campaign_id)}:pause"), render_campaign)


@campaigns.command("resume")
@operator_options
@click.argument("campaign_id")
def resume(api: Api, campaign_id: str) -> None:
    """Resume a paused campaign in MailWizz (a sending one is left as it is)."""
    api.show(api.gateway.post(f"/api/v2/campaigns/{segment(campaign_id)}:resume"), render_campaign)


# -- suppressions ------------------------------------------------------------------------------------------


@click.group(cls=OperatorGroup)
def suppressions() -> None:
    """A tenant's suppression list: addresses dropped from every later campaign (matched without case).

    \b
    emailengine suppressions add bounced@example.com --tenant sos-expat --reason "hard bounce"
    emailengine suppressions list --tenant sos-expat
    """


@suppressions.command("add")
@operator_options
@click.argument("emails", metavar="EMAIL...", nargs=-1, required=True)
@tenant_id_option(help="Whose list.", field="tenant")
@click.option("--reason", default="", help='Why, e.g. "hard bounce", "complaint", "unsubscribed elsewhere".')
def add(api: Api, emails: tuple[str, ...], tenant: str, reason: str) -> None:
    """Add addresses (adding one again keeps its first entry)."""
    entries = [{"email": email, "reason": reason} for email in emails]
    reply = api.gateway.post(
        "/api/v2/suppressions:batchAdd", {"tenant": api.need_tenant("--tenant"), "entries": entries}
    )

    def render(out: Output, data: dict[str, Any]) -> None:
        out.line(f"{number(data.get('added'))} added, {number(data.get('already_present'))} already on the list")

    api.show(reply, render)


@suppressions.command("list")
@operator_options
@tenant_id_option(help="Whose list.", field="tenant")
@page_options
def list_suppressions(api: Api, tenant: str, page_size: int | None, page_token: str) -> None:
    """The suppression list, with why and who added each address."""
    params = {"tenant": tenant, "page_size": page_size, "page_token": page_token}

    def render(out: Output, data: dict[str, Any]) -> None:
        out.table(
            [
                Col("email", "email"),
                Col("reason", "reason"),
                Col("added by", "source"),
                Col("added", "create_time", lambda v: when(v, seconds=False)),
            ],
            data.get("suppressions") or [],
            empty="the list is empty",
        )
        out.more(data)

    api.show(api.gateway.get("/api/v2/suppressions", params), render)
