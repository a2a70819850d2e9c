"""campaign-gateway's proto <-> dataclass mapping for the CampaignService (the servicer stays a list of calls)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from campaign_gateway.app.campaigns import CampaignRequest
from campaign_gateway.app.mailwizz_sync import BindingStatus, QuotaSyncReport
from campaign_gateway.domain.campaign import Campaign, CampaignReport, CampaignState
from campaign_gateway.domain.contacts import Contact, Suppression
from campaign_gateway.domain.quota_sync import ChangeKind, ServerChange, ServerSettings
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from libs.timestamps import datetime_from


def _stamp(target: Timestamp, moment: datetime | None) -> None:
    if moment is not None:
        target.FromDatetime(moment.astimezone(UTC))


def contacts_from(messages: object) -> list[Contact]:
    return [Contact(c.email, c.first_name, c.last_name, dict(c.fields)) for c in messages]  # type: ignore[attr-defined]


def request_from(message: pb.CreateCampaignRequest, contacts: list[Contact] | None = None) -> CampaignRequest:
    return CampaignRequest(
        tenant=message.tenant,
        template_id=message.template_id,
        contacts=contacts if contacts is not None else contacts_from(message.contacts),
        name=message.name,
        request_id=message.request_id,
        subject=message.subject,
        from_name=message.from_name,
        from_email=message.from_email,
        reply_to=message.reply_to,
        send_time=datetime_from(message.send_time, field="send_time") if message.HasField("send_time") else None,
    )


def state_from(value: int) -> CampaignState | None:
    if value == pb.CAMPAIGN_STATE_UNSPECIFIED:
        return None
    return CampaignState(pb.CampaignState.Name(value).removeprefix("CAMPAIGN_STATE_"))


def campaign_to_proto(campaign: Campaign) -> pb.Campaign:
    message = pb.Campaign(
        campaign_id=campaign.campaign_id,
        tenant=campaign.tenant,
        template_id=campaign.template_id,
        state=pb.CampaignState.Value(f"CAMPAIGN_STATE_{campaign.state.value}"),
        contact_count=campaign.contact_count,
        state_reason=campaign.state_reason,
        name=campaign.name,
        request_id=campaign.request_id,
        stage=pb.CampaignStage.Value(f"CAMPAIGN_STAGE_{campaign.stage.value}") if campaign.stage else 0,
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        reply_to=campaign.reply_to,
        preflight=[pb.PreflightCheck(check=c.check, passed=c.passed, detail=c.detail) for c in campaign.preflight],
    )
    _stamp(message.create_time, campaign.create_time)
    _stamp(message.update_time, campaign.update_time)
    _stamp(message.send_time, campaign.send_time)
    plan = campaign.plan
    message.send_plan.CopyFrom(
        pb.SendPlan(
            allocation_id=plan.allocation_id,
            day=plan.day.isoformat() if plan.day else "",
            requested=plan.requested,
            requested_by_provider=_volumes(plan.requested_by_provider),
            allocated_today=plan.allocated_today,
            ips=[
                pb.IpShare(
                    address=ip.address,
                    volume=ip.volume,
                    by_provider=_volumes(ip.by_provider),
                    delivery_server_id=ip.delivery_server_id or 0,
                    vmta=ip.vmta,
                )
                for ip in plan.ips
            ],
            remainder=plan.remainder,
            later_days=[pb.PlannedDay(day=day.isoformat(), volume=volume) for day, volume in plan.later_days],
            unplanned=plan.unplanned,
            excluded=[pb.ExcludedIp(address=address, reason=reason) for address, reason in plan.excluded],
        )
    )
    refs = campaign.mailwizz
    message.mailwizz.CopyFrom(
        pb.MailwizzCampaign(
            list_uid=refs.list_uid,
            campaign_uid=refs.campaign_uid,
            template_uid=refs.template_uid,
            status=refs.status,
            delivery_server_ids=list(plan.delivery_server_ids),
            subscribers_added=refs.subscribers_added,
            subscribers_already_present=refs.subscribers_already_present,
            chunk_size=refs.chunk_size,
        )
    )
    message.contacts_report.received = campaign.received
    message.contacts_report.accepted = campaign.contact_count
    return message


def report_to_proto(report: CampaignReport) -> pb.Campaign:
    message = campaign_to_proto(report.campaign)
    contacts = message.contacts_report
    contacts.problem_counts.extend(
        pb.ProblemCount(kind=pb.ContactProblemKind.Value(f"CONTACT_PROBLEM_KIND_{kind}"), count=count)
        for kind, count in sorted(report.problem_counts.items())
    )
    contacts.problems.extend(
        pb.ContactProblem(
            index=p.index,
            email=p.email,
            kind=pb.ContactProblemKind.Value(f"CONTACT_PROBLEM_KIND_{p.kind.value}"),
            detail=p.detail,
        )
        for p in report.problems
    )
    contacts.problems_total = report.problems_total
    for step in report.steps:
        item = message.steps.add(step=step.step, outcome=step.outcome.value, detail=step.detail)
        _stamp(item.time, step.time)
    return message


def _volumes(volumes: dict[str, int]) -> list[pb.ProviderVolume]:
    return [pb.ProviderVolume(provider=group, volume=count) for group, count in sorted(volumes.items())]


def suppression_to_proto(entry: Suppression) -> pb.Suppression:
    message = pb.Suppression(tenant=entry.tenant, email=entry.email, reason=entry.reason, source=entry.source)
    _stamp(message.create_time, entry.create_time)
    return message


def binding_to_proto(status: BindingStatus) -> pb.MailwizzBinding:
    view = status.mailwizz.view
    message = pb.MailwizzBinding(
        tenant=view.tenant,
        api_origin=view.api_origin,
        auth=view.auth,
        database=view.database,
        table_prefix=view.table_prefix,
        time_zone=view.time_zone,
        customer_id=view.customer_id or 0,
        from_name=view.from_name,
        from_email=view.from_email,
        reply_to=view.reply_to,
        chunk_size=view.chunk_size,
    )
    if status.state is not None:
        _stamp(message.last_sync_time, status.state.last_sync_time)
        message.last_sync_outcome = status.state.last_outcome
        message.conflicts.extend(
            pb.DeliveryServerConflict(server_id=c.server_id, vmta=c.vmta, address=c.address, reason=c.reason)
            for c in status.state.conflicts
        )
    return message


def _settings(settings: ServerSettings | None) -> pb.ServerSettings | None:
    if settings is None:
        return None
    return pb.ServerSettings(
        status=settings.status.value, hourly_quota=settings.hourly_quota, daily_quota=settings.daily_quota
    )


def _change(change: ServerChange, blocked: bool) -> pb.QuotaChange:
    kind = "BLOCKED" if blocked else change.kind.value
    message = pb.QuotaChange(
        kind=pb.QuotaChangeKind.Value(f"QUOTA_CHANGE_KIND_{kind}"),
        vmta=change.vmta,
        address=change.address or "",
        server_id=change.server_id or 0,
        reason="the IP's PowerMTA node is not registered (CreatePmtaNode): its SMTP host is unknown"
        if blocked
        else change.reason,
    )
    for name, value in (("before", _settings(change.before)), ("after", _settings(change.after))):
        if value is not None:
            getattr(message, name).CopyFrom(value)
    return message


def sync_report_to_proto(report: QuotaSyncReport) -> pb.QuotaSyncReport:
    blocked = {c.vmta for c in report.blocked}
    message = pb.QuotaSyncReport(
        tenant=report.tenant,
        dry_run=report.dry_run,
        changes=[_change(c, c.kind is ChangeKind.CREATE and c.vmta in blocked) for c in report.changes],
        written=list(report.written),
        created=list(report.created),
    )
    _stamp(message.time, report.time)
    return message
