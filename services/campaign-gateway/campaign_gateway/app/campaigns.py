"""Use cases on campaigns: create one in a tenant's MailWizz from one call, read, list, pause, resume; and the
tenants' suppression lists.

    campaigns.create(caller, CampaignRequest(...)) -> CampaignReport
    campaigns.get(caller, campaign_id) -> CampaignReport
    campaigns.list(caller, tenant=, state=, size=, token=) -> (list[Campaign], next token)
    campaigns.pause(caller, campaign_id) / campaigns.resume(caller, campaign_id) -> CampaignReport
    campaigns.add_suppressions(caller, tenant=, entries=[(email, reason)], source="api") -> (added, already there)
    campaigns.list_suppressions(caller, tenant=, size=, token=) -> (list[Suppression], next token)
    campaigns.remove_suppressions(caller, tenant=, emails=[...]) -> (removed, not on the list)

How a campaign is created
-------------------------
Nothing is reserved or created until everything that can refuse the request has been asked:

 1. the request is checked (InvalidArgument naming every bad field) and the caller may write for the tenant;
 2. the tenant's MailWizz binding exists and the template is found in its MailWizz (NotFound naming it; a key
    MailWizz refuses is an error naming the tenant, never the key; MailWizz unreachable is UNAVAILABLE);
 3. the contacts are checked (`domain/contacts.py`: malformed and duplicate ones, the suppression list;
    `domain/recipients.py`: domains without a mail host), each problem reported, the others kept;
 4. preflight (`domain/preflight.py`): the tenant's domain checks from reputation, capacity from ip-pool
    (AllocateVolume, validate_only), blocklistings of the IPs it would use, then a quota sync of the tenant so
    every such IP has its MailWizz delivery server with today's quotas. A failing check is FAILED_PRECONDITION
    naming it.

Then the campaign is stored (stage ACCEPTED) and taken forward one stage at a time, each recorded with its
outcome as it completes: ALLOCATED (ip-pool reserves the volume), LIST_CREATED, SUBSCRIBED (checked bulk calls,
resent smaller when MailWizz cuts one short), CAMPAIGN_CREATED (on the allocated IPs' delivery servers; state
SENDING). MailWizz 5xx, timeouts and lost connections are retried with backoff; a create whose answer was lost
is looked up by its name (`domain/campaign.mailwizz_name`) before it is made again, so nothing is made twice.
When a stage cannot complete, the campaign is left FAILED at the last stage that did, with the reason, and the
error is returned; the same request (same `request_id`) resumes it there. A lease on the row keeps two callers
from working on one campaign at once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from campaign_gateway.adapters.mailwizz_api import (
    BulkResult,
    CampaignSpec,
    ListSpec,
    MailwizzAuthError,
    MailwizzBatchIncomplete,
    MailwizzDestinationRefused,
    MailwizzError,
    MailwizzProtocolError,
    MailwizzUnavailable,
    SubscriberInput,
)
from campaign_gateway.adapters.mailwizz_db import MailwizzDbError
from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync
from campaign_gateway.app.ports import IpPool, MailwizzDirectory, RecipientResolver, Reputation, TenantMailwizz
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.campaign import (
    Campaign,
    CampaignReport,
    CampaignStage,
    CampaignState,
    CampaignStep,
    IpShare,
    MailwizzRefs,
    SendPlan,
    StepOutcome,
    mailwizz_name,
    request_fingerprint,
)
from campaign_gateway.domain.contacts import (
    Contact,
    ContactCheck,
    ContactProblem,
    ProblemKind,
    Suppression,
    check_contacts,
    drop_suppressed,
    list_fields,
    normalized_email,
    suppression_key,
)
from campaign_gateway.domain.pmta_config import address_from_vmta, vmta_name
from campaign_gateway.domain.preflight import (
    PreflightCheck,
    ServerUse,
    campaign_server_refusal,
    check_capacity,
    check_delivery_servers,
    check_domains,
    check_listings,
    first_failure,
)
from campaign_gateway.domain.providers import recipient_domain
from campaign_gateway.domain.recipients import RecipientDomain, drop_unreachable, volume_by_provider
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceError,
    Unavailable,
    Violations,
)
from libs.pagination import TimePosition, page_size

PLAN_HORIZON_DAYS = 60  # ip-pool's default plan horizon, which AllocateVolume is called with
SENDING_IP_STATES = ("WARMING", "WARM")
MAX_SUPPRESSIONS_PER_CALL = 10_000
_REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
# Bulk calls between two lease renewals (and progress records) of a long upload.
_CHUNKS_PER_SLAB = 25


@dataclass(frozen=True)
class CampaignRequest:
    tenant: str
    template_id: str
    contacts: Sequence[Contact]
    name: str = ""
    request_id: str = ""
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    reply_to: str = ""
    send_time: datetime | None = None


@dataclass(frozen=True)
class CampaignPolicy:
    max_contacts: int = 100_000
    max_reported_problems: int = 1000
    attempts: int = 4  # tries of a MailWizz create (and of a bulk upload) on 5xx and timeouts
    first_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0
    lease_seconds: float = 300.0
    check_recipient_domains: bool = True


class _Stop(Exception):
    """A stage could not complete: the campaign is recorded FAILED with `error` (what the caller gets)."""

    def __init__(self, error: ServiceError):
        super().__init__(error.message)
        self.error = error


class CampaignUseCases:
    def __init__(
        self,
        unit_of_work: Callable[[], CampaignUnitOfWork],
        clock: Clock,
        *,
        max_contacts: int = 100_000,
        policy: CampaignPolicy | None = None,
        directory: MailwizzDirectory | None = None,
        ippool: IpPool | None = None,
        reputation: Reputation | None = None,
        resolver: RecipientResolver | None = None,
        quota_sync: MailwizzQuotaSync | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._policy = policy or CampaignPolicy(max_contacts=max_contacts)
        self._directory = directory
        self._ippool = ippool
        self._reputation = reputation
        self._resolver = resolver
        self._quota_sync = quota_sync
        self._sleep = sleep

    # ------------------------------------------------------------------ create

    def create(self, caller: Caller, request: CampaignRequest) -> CampaignReport:
        self._validate(request)
        caller.require_write(request.tenant)
        mailwizz = self._binding(request.tenant)
        fingerprint = request_fingerprint(
            tenant=request.tenant,
            template_id=request.template_id,
            name=request.name,
            subject=request.subject,
            from_name=request.from_name,
            from_email=request.from_email,
            reply_to=request.reply_to,
            send_time=request.send_time,
            contacts=request.contacts,
        )
        if request.request_id:
            with self._uow() as uow:
                existing = uow.campaigns.by_request(request.tenant, request.request_id)
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise AlreadyExists(
                        "campaign request", request.request_id, "it was used for a different request; use a new one"
                    )
                audit.note(tenant_id=existing.tenant, resource=f"campaigns/{existing.campaign_id}")
                return self._continue(existing, mailwizz)
        template_uid = self._template(mailwizz, request.template_id)
        check, domains = self._checked_contacts(request)
        if not check.accepted:
            kinds = Counter(p.kind.value for p in check.problems)
            summary = ", ".join(f"{count} {kind.lower()}" for kind, count in sorted(kinds.items()))
            raise InvalidArgument("contacts", f"no contact is left to send to ({summary})")
        campaign = self._accepted(request, mailwizz, fingerprint, template_uid, check, domains)
        checks, allocation_ips = self._preflight(campaign, mailwizz)
        failed = first_failure(checks)
        if failed is not None:
            raise FailedPrecondition(
                f"preflight check {failed.check!r} failed: {failed.detail}",
                reason="PREFLIGHT_FAILED",
                metadata={"check": failed.check, "tenant": campaign.tenant},
            )
        campaign = replace(campaign, preflight=tuple(checks), plan=replace(campaign.plan, ips=allocation_ips))
        owner = uuid.uuid4().hex
        audit.note(tenant_id=campaign.tenant, resource=f"campaigns/{campaign.campaign_id}")
        with self._uow() as uow:
            uow.campaigns.add(campaign, list(check.accepted), check.positions)
            uow.campaigns.add_problems(campaign.campaign_id, check.problems)
            uow.campaigns.claim(campaign.campaign_id, owner=owner, until=self._lease_end(), now=self._clock.now())
            uow.campaigns.add_step(
                campaign.campaign_id,
                self._step(
                    "accept",
                    StepOutcome.OK,
                    f"{len(check.accepted)} of {len(request.contacts)} contacts kept, {len(check.problems)} skipped; "
                    "preflight passed: " + "; ".join(f"{c.check}: {c.detail}" for c in checks),
                ),
            )
            uow.commit()
        return self._run(campaign, mailwizz, owner=owner, resuming=False)

    def _validate(self, request: CampaignRequest) -> None:
        problems = Violations()
        if not request.tenant:
            problems.add("tenant", "is required")
        if not request.template_id:
            problems.add("template_id", "is required")
        elif len(request.template_id) > 200:
            problems.add("template_id", "is longer than 200 characters")
        if request.request_id and (len(request.request_id) > 100 or not set(request.request_id) <= _REQUEST_ID_CHARS):
            problems.add("request_id", "must be 1-100 letters, digits, '-', '_', '.' or ':'")
        if not request.contacts:
            problems.add("contacts", "at least one contact is required")
        elif len(request.contacts) > self._policy.max_contacts:
            problems.add("contacts", f"at most {self._policy.max_contacts} contacts per request")
        for name in ("from_email", "reply_to"):
            value = getattr(request, name)
            if value and normalized_email(value) is None:
                problems.add(name, f"{value!r} is not an email address")
        if len(request.subject) > 255:
            problems.add("subject", "is longer than 255 characters")
        if len(request.name) > 200:
            problems.add("name", "is longer than 200 characters")
        problems.raise_if_any()

    def _binding(self, tenant: str) -> TenantMailwizz:
        found = self._directory.binding(tenant) if self._directory is not None else None
        if found is None:
            raise FailedPrecondition(
                f"tenant {tenant!r} has no MailWizz binding (EE_CAMPAIGN_GATEWAY_MAILWIZZ)",
                reason="NO_MAILWIZZ_BINDING",
                metadata={"tenant": tenant},
            )
        return found

    def _template(self, mailwizz: TenantMailwizz, template_id: str) -> str:
        try:
            found = mailwizz.api.find_template_by_name(template_id)
        except MailwizzError as failure:
            raise mailwizz_error(failure, mailwizz.view.tenant, "the template lookup") from None
        if found is None:
            raise NotFound("MailWizz template", template_id)
        return found.uid

    def _checked_contacts(self, request: CampaignRequest) -> tuple[ContactCheck, dict[str, RecipientDomain]]:
        check = check_contacts(contacts=request.contacts)
        with self._uow() as uow:
            suppressed = uow.suppressions.matching(request.tenant, (suppression_key(c.email) for c in check.accepted))
        check = drop_suppressed(check=check, suppressed_keys=suppressed)
        domains: dict[str, RecipientDomain] = {}
        if self._policy.check_recipient_domains and self._resolver is not None and check.accepted:
            domains = self._resolver.lookup(sorted({recipient_domain(c.email) for c in check.accepted}))
            check = drop_unreachable(check=check, domains=domains)
        return check, domains

    def _accepted(
        self,
        request: CampaignRequest,
        mailwizz: TenantMailwizz,
        fingerprint: str,
        template_uid: str,
        check: ContactCheck,
        domains: dict[str, RecipientDomain],
    ) -> Campaign:
        view = mailwizz.view
        now = self._clock.now()
        by_provider = volume_by_provider(contacts=check.accepted, domains=domains)
        return Campaign(
            campaign_id=str(uuid.uuid4()),
            tenant=request.tenant,
            name=request.name or request.template_id,
            template_id=request.template_id,
            state=CampaignState.PENDING,
            state_reason="accepted; being created in MailWizz",
            contact_count=len(check.accepted),
            create_time=now,
            request_id=request.request_id,
            fingerprint=fingerprint,
            stage=CampaignStage.ACCEPTED,
            subject=request.subject or view.subject or request.name or request.template_id,
            from_name=request.from_name or view.from_name,
            from_email=normalized_email(request.from_email) if request.from_email else view.from_email,  # type: ignore[arg-type]
            reply_to=(normalized_email(request.reply_to) if request.reply_to else None) or view.reply_to,
            send_time=request.send_time,
            received=len(request.contacts),
            plan=SendPlan(requested=len(check.accepted), requested_by_provider=by_provider),
            mailwizz=MailwizzRefs(template_uid=template_uid, chunk_size=view.chunk_size),
            update_time=now,
        )

    # ------------------------------------------------------------------ preflight

    def _preflight(
        self, campaign: Campaign, mailwizz: TenantMailwizz
    ) -> tuple[list[PreflightCheck], tuple[IpShare, ...]]:
        assert self._reputation is not None and self._ippool is not None
        tenant = campaign.tenant
        checks: list[PreflightCheck] = []
        domains = self._reputation.tenant_domains(tenant)
        if domains.sending_domains and not domains.checks:
            domains = self._reputation.check_tenant_domains(tenant)
        checks.append(
            check_domains(
                from_email=campaign.from_email, sending_domains=domains.sending_domains, checks=domains.checks
            )
        )
        if first_failure(checks):
            return checks, ()
        preview = self._ippool.allocate(
            tenant_id=tenant,
            volume=campaign.contact_count,
            by_provider=campaign.plan.requested_by_provider,
            validate_only=True,
        )
        checks.append(
            check_capacity(
                requested=campaign.contact_count,
                allocated_today=preview.allocated_today,
                planned_later=sum(volume for _, volume in preview.plan),
                unplanned=preview.unplanned,
                horizon_days=PLAN_HORIZON_DAYS,
            )
        )
        if first_failure(checks):
            return checks, ()
        addresses = [a.address for a in preview.allocations] or self._sending_ips(tenant)
        checks.append(
            check_listings(listings=[self._reputation.ip_listing(address, tenant=tenant) for address in addresses])
        )
        if first_failure(checks):
            return checks, ()
        if self._quota_sync is not None:
            # The rows of the IPs it will use exist, with today's quotas, before the campaign is created.
            self._quota_sync.sync_tenant(tenant)
        servers = self._servers(mailwizz)
        uses = [servers.get(address) or ServerUse(address, None) for address in addresses]
        checks.append(check_delivery_servers(servers=uses))
        shares = tuple(
            IpShare(a.address, a.volume, dict(a.by_provider), _usable_id(servers.get(a.address)), vmta_name(a.address))
            for a in preview.allocations
        )
        return checks, shares

    def _sending_ips(self, tenant: str) -> list[str]:
        assert self._ippool is not None
        return [ip.address for ip in self._ippool.list_ips(tenant_id=tenant) if ip.state in SENDING_IP_STATES]

    def _servers(self, mailwizz: TenantMailwizz) -> dict[str, ServerUse]:
        """Each IP's delivery server (the row whose X-Virtual-MTA names its VMTA), and whether MailWizz would take
        it for a campaign now."""
        try:
            rows = mailwizz.servers.rows()
        except MailwizzDbError as failure:
            raise Unavailable(f"the MailWizz database of tenant {mailwizz.view.tenant!r} failed: {failure}") from None
        found: dict[str, ServerUse] = {}
        for row in rows:
            address = address_from_vmta(row.vmta) if row.vmta else None
            if address is None or row.status in ("disabled", "pending-delete") or address in found:
                continue
            refusal = campaign_server_refusal(
                status=row.status,
                use_for=row.use_for,
                customer_id=row.customer_id,
                tenant_customer_id=mailwizz.view.customer_id,
            )
            found[address] = ServerUse(address, row.server_id, refusal)
        return found

    # ------------------------------------------------------------------ the stages

    def _continue(self, campaign: Campaign, mailwizz: TenantMailwizz) -> CampaignReport:
        """The same request again: the campaign as it is, or resumed where it stopped."""
        if campaign.state in (CampaignState.SENDING, CampaignState.PAUSED, CampaignState.SENT):
            return self._report(campaign)
        owner = uuid.uuid4().hex
        with self._uow() as uow:
            claimed = uow.campaigns.claim(
                campaign.campaign_id, owner=owner, until=self._lease_end(), now=self._clock.now()
            )
            uow.commit()
        if not claimed:
            return self._report(campaign)  # another call is working on it now
        return self._run(campaign, mailwizz, owner=owner, resuming=True)

    def _run(self, campaign: Campaign, mailwizz: TenantMailwizz, *, owner: str, resuming: bool) -> CampaignReport:
        stage = campaign.stage or CampaignStage.ACCEPTED
        try:
            if not stage.reached(CampaignStage.ALLOCATED):
                campaign = self._allocate(campaign, mailwizz, owner)
            if not campaign.stage.reached(CampaignStage.LIST_CREATED):  # type: ignore[union-attr]
                campaign = self._create_list(campaign, mailwizz, owner, resuming)
            if not campaign.stage.reached(CampaignStage.SUBSCRIBED):  # type: ignore[union-attr]
                campaign = self._subscribe(campaign, mailwizz, owner)
            if not campaign.stage.reached(CampaignStage.CAMPAIGN_CREATED):  # type: ignore[union-attr]
                campaign = self._create_campaign(campaign, mailwizz, owner, resuming)
        except _Stop as stop:
            self._fail(campaign, owner, stop.error)
            raise stop.error from None
        except Exception:
            # Whatever it was, the campaign must not stay PENDING under a lease: a retry resumes it.
            self._fail(campaign, owner, Unavailable("the creation stopped on an unexpected error"))
            raise
        with self._uow() as uow:
            uow.campaigns.release(campaign.campaign_id, owner=owner)
            uow.commit()
        return self._report(campaign)

    def _fail(self, campaign: Campaign, owner: str, error: ServiceError) -> None:
        stage = campaign.stage.value if campaign.stage else "none"
        error.metadata.setdefault("campaign_id", campaign.campaign_id)
        error.message = (
            f"{error.message} (campaign {campaign.campaign_id} stopped after stage {stage}; "
            "the same request with the same request_id resumes it)"
        )
        error.args = (error.message,)
        failed = replace(
            campaign, state=CampaignState.FAILED, state_reason=error.message, update_time=self._clock.now()
        )
        with self._uow() as uow:
            uow.campaigns.save(failed)
            uow.campaigns.add_step(campaign.campaign_id, self._step("stop", StepOutcome.FAILED, error.message))
            uow.campaigns.release(campaign.campaign_id, owner=owner)
            uow.commit()

    def _advance(self, campaign: Campaign, owner: str, step: str, detail: str) -> Campaign:
        """Records a completed stage, with its step, and renews the lease."""
        now = self._clock.now()
        campaign = replace(campaign, update_time=now)
        with self._uow() as uow:
            uow.campaigns.save(campaign)
            uow.campaigns.add_step(campaign.campaign_id, self._step(step, StepOutcome.OK, detail))
            uow.campaigns.claim(campaign.campaign_id, owner=owner, until=self._lease_end(), now=now)
            uow.commit()
        return campaign

    def _note(self, campaign: Campaign, step: str, outcome: StepOutcome, detail: str) -> None:
        with self._uow() as uow:
            uow.campaigns.add_step(campaign.campaign_id, self._step(step, outcome, detail))
            uow.commit()

    def _allocate(self, campaign: Campaign, mailwizz: TenantMailwizz, owner: str) -> Campaign:
        assert self._ippool is not None
        try:
            result = self._ippool.allocate(
                tenant_id=campaign.tenant,
                volume=campaign.contact_count,
                by_provider=campaign.plan.requested_by_provider,
                validate_only=False,
            )
            servers = self._servers(mailwizz)
            fallback = [] if result.allocations else self._sending_ips(campaign.tenant)
        except ServiceError as failure:
            raise _Stop(failure) from None
        shares = tuple(
            IpShare(a.address, a.volume, dict(a.by_provider), _usable_id(servers.get(a.address)), vmta_name(a.address))
            for a in result.allocations
        )
        # Nothing can go today: MailWizz still needs the servers the following days' volume goes through.
        shares += tuple(
            IpShare(address, 0, {}, _usable_id(servers.get(address)), vmta_name(address)) for address in fallback
        )
        plan = replace(
            campaign.plan,
            allocation_id=result.allocation_id,
            day=result.day,
            allocated_today=result.allocated_today,
            ips=shares,
            remainder=result.remainder,
            later_days=result.plan,
            unplanned=result.unplanned,
            excluded=result.excluded,
        )
        missing = [
            f"{ip.address} ({servers[ip.address].refusal if ip.address in servers else 'no delivery server'})"
            for ip in shares
            if ip.delivery_server_id is None
        ]
        if not plan.delivery_server_ids:
            # MailWizz, given no server it takes, would send through any server of the customer.
            raise _Stop(
                FailedPrecondition(
                    "no allocated IP has a delivery server MailWizz would take now: " + ", ".join(missing),
                    reason="NO_DELIVERY_SERVER",
                )
            )
        detail = (
            f"allocation {result.allocation_id}: {result.allocated_today} today over "
            + ", ".join(f"{ip.address} ({ip.volume})" for ip in shares)
            + f"; {result.remainder} on the following days"
        )
        if missing:
            detail += f"; left out of the MailWizz campaign: {', '.join(missing)}"
        campaign = replace(campaign, stage=CampaignStage.ALLOCATED, plan=plan)
        return self._advance(campaign, owner, "allocate", detail)

    def _create_list(self, campaign: Campaign, mailwizz: TenantMailwizz, owner: str, resuming: bool) -> Campaign:
        api = mailwizz.api
        name = mailwizz_name(campaign_id=campaign.campaign_id, name=campaign.name)
        spec = ListSpec(
            name=name,
            description=f"email-engine campaign {campaign.campaign_id}",
            from_name=campaign.from_name,
            from_email=campaign.from_email,
            reply_to=campaign.reply_to,
            subject=campaign.subject,
        )

        def find() -> str | None:
            found = api.find_list_by_name(name)
            return found.uid if found is not None else None

        uid = self._create_once(campaign, mailwizz, "list", lambda: api.create_list(spec), find, resuming)
        refs = replace(campaign.mailwizz, list_uid=uid)
        campaign = replace(campaign, stage=CampaignStage.LIST_CREATED, mailwizz=refs)
        return self._advance(campaign, owner, "list", f"MailWizz list {uid} ({name})")

    def _subscribe(self, campaign: Campaign, mailwizz: TenantMailwizz, owner: str) -> Campaign:
        with self._uow() as uow:
            stored = uow.campaigns.contacts(campaign.campaign_id)
        position_of = {contact.email: position for position, contact in stored}
        remaining = [SubscriberInput(c.email, list_fields(c), status="confirmed") for _, c in stored]
        chunk = campaign.mailwizz.chunk_size or mailwizz.view.chunk_size
        total = BulkResult()
        outages = 0
        while remaining:
            slab = remaining[: chunk * _CHUNKS_PER_SLAB]
            try:
                result = mailwizz.api.add_subscribers(campaign.mailwizz.list_uid, slab, chunk_size=chunk)
            except MailwizzBatchIncomplete as short:
                total = total.merged(short.completed)
                remaining = _without(remaining, short.completed)
                if chunk == 1:
                    raise _Stop(mailwizz_error(short, campaign.tenant, "the subscribers")) from None
                smaller = max(1, min(chunk, short.sent) // 2)
                self._note(
                    campaign,
                    "subscribers",
                    StepOutcome.RETRIED,
                    f"a bulk call of {short.sent} subscribers came back with {short.returned} records (MailWizz "
                    f"cut it short): resending the {len(remaining)} left in calls of {smaller}",
                )
                chunk = smaller
                continue
            except MailwizzUnavailable as failure:
                outages += 1
                if outages >= self._policy.attempts:
                    raise _Stop(mailwizz_error(failure, campaign.tenant, "the subscribers")) from None
                self._note(campaign, "subscribers", StepOutcome.RETRIED, f"{failure.message}; trying again")
                self._sleep(self._wait(outages))
                continue
            except MailwizzError as failure:
                raise _Stop(mailwizz_error(failure, campaign.tenant, "the subscribers")) from None
            total = total.merged(result)
            remaining = remaining[len(slab) :]
            outages = 0
            campaign = replace(
                campaign,
                mailwizz=replace(
                    campaign.mailwizz,
                    subscribers_added=campaign.mailwizz.subscribers_added + len(result.added),
                    subscribers_already_present=len(total.already_present),
                    chunk_size=chunk,
                ),
            )
            if remaining:
                self._advance_quietly(campaign, owner)
        rejected = [
            ContactProblem(position_of.get(email, -1), email, ProblemKind.REJECTED, _why(errors))
            for email, errors in total.rejected.items()
        ]
        landed = len({ref.email for ref in total.added} | set(total.already_present))
        refs = replace(
            campaign.mailwizz,
            subscribers_added=len(total.added),
            subscribers_already_present=len(total.already_present),
            chunk_size=chunk,
        )
        campaign = replace(
            campaign,
            stage=CampaignStage.SUBSCRIBED,
            mailwizz=refs,
            contact_count=campaign.contact_count - len(rejected),
        )
        if rejected:
            with self._uow() as uow:
                uow.campaigns.add_problems(campaign.campaign_id, [p for p in rejected if p.index >= 0])
                uow.commit()
        return self._advance(
            campaign,
            owner,
            "subscribers",
            f"{landed} subscribers in list {refs.list_uid} ({len(total.added)} added, "
            f"{len(total.already_present)} already there, {len(rejected)} refused by MailWizz), "
            f"in bulk calls of {chunk}",
        )

    def _advance_quietly(self, campaign: Campaign, owner: str) -> None:
        """Progress of a long upload: the counts so far, and the lease renewed."""
        now = self._clock.now()
        with self._uow() as uow:
            uow.campaigns.save(replace(campaign, update_time=now))
            uow.campaigns.claim(campaign.campaign_id, owner=owner, until=self._lease_end(), now=now)
            uow.commit()

    def _create_campaign(self, campaign: Campaign, mailwizz: TenantMailwizz, owner: str, resuming: bool) -> Campaign:
        api = mailwizz.api
        name = mailwizz_name(campaign_id=campaign.campaign_id, name=campaign.name)
        zone = ZoneInfo(mailwizz.view.time_zone)
        start = (campaign.send_time or self._clock.now()).astimezone(zone).replace(tzinfo=None, microsecond=0)
        servers = campaign.plan.delivery_server_ids
        spec = CampaignSpec(
            name=name,
            list_uid=campaign.mailwizz.list_uid,
            from_name=campaign.from_name,
            from_email=campaign.from_email,
            reply_to=campaign.reply_to,
            subject=campaign.subject,
            send_at=start,
            template_uid=campaign.mailwizz.template_uid,
            delivery_server_ids=servers,
        )
        status = "pending-sending"

        def find() -> str | None:
            nonlocal status
            found = api.find_campaign_by_name(name)
            if found is None:
                return None
            status = found.status
            return found.uid

        uid = self._create_once(campaign, mailwizz, "campaign", lambda: api.create_campaign(spec), find, resuming)
        refs = replace(campaign.mailwizz, campaign_uid=uid, status=status)
        campaign = replace(
            campaign,
            stage=CampaignStage.CAMPAIGN_CREATED,
            state=CampaignState.SENDING,
            state_reason=f"handed to MailWizz ({status}) on delivery servers {', '.join(map(str, servers))}",
            mailwizz=refs,
        )
        return self._advance(
            campaign,
            owner,
            "campaign",
            f"MailWizz campaign {uid} on delivery servers {', '.join(map(str, servers))}, sending from "
            f"{start:%Y-%m-%d %H:%M:%S} {mailwizz.view.time_zone}",
        )

    def _create_once(
        self,
        campaign: Campaign,
        mailwizz: TenantMailwizz,
        what: str,
        create: Callable[[], str],
        find: Callable[[], str | None],
        resuming: bool,
    ) -> str:
        """Creates one MailWizz object, retrying 5xx and timeouts with backoff, and looking it up by its name
        before any attempt that follows one whose outcome is unknown, so it is never made twice."""
        look_first = resuming
        for attempt in range(1, self._policy.attempts + 1):
            try:
                if look_first:
                    found = find()
                    if found is not None:
                        return found
                return create()
            except MailwizzUnavailable as failure:
                if attempt == self._policy.attempts:
                    raise _Stop(mailwizz_error(failure, campaign.tenant, f"the {what}")) from None
                self._note(campaign, what, StepOutcome.RETRIED, f"{failure.message}; trying again")
                look_first = True
                self._sleep(self._wait(attempt))
            except MailwizzError as failure:
                raise _Stop(mailwizz_error(failure, campaign.tenant, f"the {what}")) from None
        raise AssertionError("unreachable")

    def _wait(self, attempt: int) -> float:
        return min(self._policy.max_wait_seconds, self._policy.first_wait_seconds * 2 ** (attempt - 1))

    def _lease_end(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._policy.lease_seconds)

    def _step(self, step: str, outcome: StepOutcome, detail: str) -> CampaignStep:
        return CampaignStep(step, outcome, detail, self._clock.now())

    # ------------------------------------------------------------------ reads, pause and resume

    def _report(self, campaign: Campaign) -> CampaignReport:
        with self._uow() as uow:
            problems, counts = uow.campaigns.problems(campaign.campaign_id, limit=self._policy.max_reported_problems)
            steps = uow.campaigns.steps(campaign.campaign_id)
        return CampaignReport(campaign, tuple(problems), counts, sum(counts.values()), tuple(steps))

    def _visible(self, caller: Caller, campaign_id: str) -> Campaign:
        try:
            uuid.UUID(campaign_id)
        except ValueError:
            raise InvalidArgument("campaign_id", f"{campaign_id!r} is not a campaign id") from None
        with self._uow() as uow:
            found = uow.campaigns.get(campaign_id)
        if found is None or not caller.may_read(found.tenant):
            # Another tenant's campaign is answered exactly like a missing one.
            raise NotFound("campaign", campaign_id)
        return found

    def get(self, caller: Caller, campaign_id: str) -> CampaignReport:
        return self._report(self._visible(caller, campaign_id))

    def list(
        self, caller: Caller, *, tenant: str, size: int, token: str, state: CampaignState | None = None
    ) -> tuple[list[Campaign], str]:
        visible = caller.visible_tenant(tenant)
        limit = page_size(size)
        after = TimePosition.decode(token)
        with self._uow() as uow:
            found = uow.campaigns.list(tenant=visible, limit=limit + 1, after=after, state=state)
        page = found[:limit]
        next_token = TimePosition(page[-1].create_time, page[-1].campaign_id).encode() if len(found) > limit else ""
        return page, next_token

    def pause(self, caller: Caller, campaign_id: str) -> CampaignReport:
        return self._toggle(caller, campaign_id, pause=True)

    def resume(self, caller: Caller, campaign_id: str) -> CampaignReport:
        return self._toggle(caller, campaign_id, pause=False)

    def _toggle(self, caller: Caller, campaign_id: str, *, pause: bool) -> CampaignReport:
        campaign = self._visible(caller, campaign_id)
        caller.require_write(campaign.tenant)
        audit.note(tenant_id=campaign.tenant, resource=f"campaigns/{campaign_id}")
        uid = campaign.mailwizz.campaign_uid
        if not uid:
            stage = campaign.stage.value if campaign.stage else "none"
            raise FailedPrecondition(
                f"campaign {campaign_id} is not in MailWizz yet (stage {stage}, state {campaign.state})",
                reason="NOT_IN_MAILWIZZ",
            )
        mailwizz = self._binding(campaign.tenant)
        try:
            outcome = mailwizz.api.pause_campaign(uid) if pause else mailwizz.api.resume_campaign(uid)
        except MailwizzError as failure:
            raise mailwizz_error(failure, campaign.tenant, "the campaign") from None
        state = {"paused": CampaignState.PAUSED, "sent": CampaignState.SENT}.get(outcome.status, CampaignState.SENDING)
        verb = "pause" if pause else "resume"
        detail = f"MailWizz campaign {uid} is {outcome.status}" + ("" if outcome.changed else " (nothing to change)")
        campaign = replace(
            campaign,
            state=state,
            state_reason=detail,
            mailwizz=replace(campaign.mailwizz, status=outcome.status),
            update_time=self._clock.now(),
        )
        with self._uow() as uow:
            uow.campaigns.save(campaign)
            uow.campaigns.add_step(campaign_id, self._step(verb, StepOutcome.OK, detail))
            uow.commit()
        return self._report(campaign)

    # ------------------------------------------------------------------ suppression lists

    def add_suppressions(
        self, caller: Caller, *, tenant: str, entries: Sequence[tuple[str, str]], source: str = "api"
    ) -> tuple[int, int]:
        problems = Violations()
        if not tenant:
            problems.add("tenant", "is required")
        if not entries:
            problems.add("entries", "at least one entry is required")
        elif len(entries) > MAX_SUPPRESSIONS_PER_CALL:
            problems.add("entries", f"at most {MAX_SUPPRESSIONS_PER_CALL} entries per call")
        for index, (email, _) in enumerate(entries[:MAX_SUPPRESSIONS_PER_CALL]):
            if normalized_email(email) is None:
                problems.add(f"entries[{index}].email", f"{email!r} is not an email address")
        problems.raise_if_any()
        caller.require_write(tenant)
        now = self._clock.now()
        rows = [Suppression(tenant, normalized_email(email) or email, reason, source, now) for email, reason in entries]
        audit.note(tenant_id=tenant, resource=f"tenants/{tenant}/suppressions")
        with self._uow() as uow:
            added = uow.suppressions.add(rows)
            uow.commit()
        return added, len({r.key for r in rows}) - added

    def remove_suppressions(self, caller: Caller, *, tenant: str, emails: Sequence[str]) -> tuple[int, int]:
        """Takes the addresses off the tenant's list; returns (removed, not on the list)."""
        problems = Violations()
        if not tenant:
            problems.add("tenant", "is required")
        if not emails:
            problems.add("emails", "at least one address is required")
        elif len(emails) > MAX_SUPPRESSIONS_PER_CALL:
            problems.add("emails", f"at most {MAX_SUPPRESSIONS_PER_CALL} addresses per call")
        for index, email in enumerate(emails[:MAX_SUPPRESSIONS_PER_CALL]):
            if normalized_email(email) is None:
                problems.add(f"emails[{index}]", f"{email[:80]!r} is not an email address")
        problems.raise_if_any()
        caller.require_write(tenant)
        keys = {suppression_key(email) for email in emails}
        audit.note(tenant_id=tenant, resource=f"tenants/{tenant}/suppressions")
        with self._uow() as uow:
            removed = uow.suppressions.remove(tenant, keys)
            uow.commit()
        return removed, len(keys) - removed

    def list_suppressions(self, caller: Caller, *, tenant: str, size: int, token: str) -> tuple[list[Suppression], str]:
        visible = caller.visible_tenant(tenant)
        limit = page_size(size)
        after = TimePosition.decode(token)
        with self._uow() as uow:
            found = uow.suppressions.list(tenant=visible, limit=limit + 1, after=after)
        page = found[:limit]
        next_token = TimePosition(page[-1].create_time, page[-1].key).encode() if len(found) > limit else ""
        return page, next_token


def _usable_id(server: ServerUse | None) -> int | None:
    return server.server_id if server is not None and not server.refusal else None


def _without(remaining: list[SubscriberInput], done: BulkResult) -> list[SubscriberInput]:
    finished = {ref.email for ref in done.added} | set(done.already_present) | set(done.rejected)
    return [s for s in remaining if s.email not in finished]


def _why(errors: dict[str, str] | object) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {message}" for field, message in errors.items())
    return str(errors)


def mailwizz_error(failure: MailwizzError, tenant: str, what: str) -> ServiceError:
    """A MailWizz failure as the caller gets it: names the tenant and MailWizz's host, never a key."""
    if isinstance(failure, MailwizzAuthError):
        return FailedPrecondition(
            f"MailWizz refused the API key configured for tenant {tenant!r}: {failure.message}",
            reason="MAILWIZZ_KEY_REFUSED",
            metadata={"tenant": tenant},
        )
    if isinstance(failure, MailwizzDestinationRefused):
        return FailedPrecondition(
            f"the MailWizz URL of tenant {tenant!r} is not allowed: {failure.message}",
            reason="MAILWIZZ_DESTINATION_REFUSED",
            metadata={"tenant": tenant},
        )
    if isinstance(failure, MailwizzUnavailable | MailwizzProtocolError):
        return Unavailable(
            f"MailWizz of tenant {tenant!r} is unavailable for {what}: {failure.message}",
            metadata={"tenant": tenant},
        )
    return FailedPrecondition(
        f"MailWizz of tenant {tenant!r} refused {what}: {failure.message}",
        reason="MAILWIZZ_REFUSED",
        metadata={"tenant": tenant},
    )
