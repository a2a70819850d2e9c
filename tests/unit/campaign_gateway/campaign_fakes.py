"""In-memory stand-ins for the use cases' ports: storage (the fake unit of work, with every repository of the
service; the delivery side's are in `delivery_fakes.py`), one tenant's MailWizz (API and delivery_server table),
ip-pool, reputation and recipient DNS. They keep what the tests assert on
(objects created, calls made) and can be told to fail the way the real peers do."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from campaign_gateway.adapters.ippool_peer import AllocatedIp, AllocationResult, PoolIp, TenantDay
from campaign_gateway.adapters.mailwizz_api import (
    BulkResult,
    CampaignSpec,
    CampaignSummary,
    ListSpec,
    MailwizzAuthError,
    MailwizzBatchIncomplete,
    MailwizzError,
    MailwizzList,
    MailwizzUnavailable,
    SubscriberInput,
    SubscriberRef,
    TemplateRef,
    ToggleOutcome,
)
from campaign_gateway.adapters.mailwizz_db import ApplyReport, ServerRow
from campaign_gateway.app.ports import BindingView, TenantDomains, TenantMailwizz
from campaign_gateway.app.unit_of_work import MailwizzSyncState
from campaign_gateway.domain.campaign import Campaign, CampaignState, CampaignStep
from campaign_gateway.domain.contacts import Contact, ContactProblem, Suppression
from campaign_gateway.domain.pmta_config import vmta_name
from campaign_gateway.domain.preflight import DomainCheck, IpListing, Verdict
from campaign_gateway.domain.quota_sync import ChangeKind, CurrentServer, ServerSettings, ServerStatus, SyncPlan
from campaign_gateway.domain.recipients import MailHost, RecipientDomain
from libs.pagination import TimePosition
from tests.fakes import FakeStore, FakeUnitOfWork
from tests.unit.campaign_gateway.delivery_fakes import (
    FakeAccountingState,
    FakeDeliveries,
    FakeDeployments,
    FakeLeases,
    FakeNodes,
    FakeQueueHolds,
    FakeRoutes,
)

TENANT = "sos-expat"
IPS = ("192.0.2.10", "192.0.2.11")


# --------------------------------------------------------------------------- storage


class FakeCampaigns:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, Campaign] = tables.setdefault("campaigns", {})
        self._contacts: dict[str, list[tuple[int, Contact]]] = tables.setdefault("contacts", {})
        self._problems: dict[str, list[ContactProblem]] = tables.setdefault("problems", {})
        self._steps: dict[str, list[CampaignStep]] = tables.setdefault("steps", {})
        self._leases: dict[str, tuple[str, datetime]] = tables.setdefault("leases", {})

    def add(self, campaign: Campaign, contacts: list[Contact], positions: Sequence[int] = ()) -> None:
        self._rows[campaign.campaign_id] = campaign
        self._contacts[campaign.campaign_id] = list(zip(positions or range(len(contacts)), contacts, strict=True))

    def get(self, campaign_id: str) -> Campaign | None:
        return self._rows.get(campaign_id)

    def by_request(self, tenant: str, request_id: str) -> Campaign | None:
        return next((c for c in self._rows.values() if c.tenant == tenant and c.request_id == request_id), None)

    def save(self, campaign: Campaign) -> None:
        self._rows[campaign.campaign_id] = campaign

    def list(
        self, *, tenant: str, limit: int, after: TimePosition | None, state: CampaignState | None = None
    ) -> list[Campaign]:
        rows = sorted(self._rows.values(), key=lambda c: (c.create_time, c.campaign_id), reverse=True)
        rows = [c for c in rows if (not tenant or c.tenant == tenant) and (state is None or c.state is state)]
        if after is not None:
            rows = [c for c in rows if (c.create_time, c.campaign_id) < (after.time, after.id)]
        return rows[:limit]

    def contacts(self, campaign_id: str) -> list[tuple[int, Contact]]:
        return list(self._contacts.get(campaign_id, []))

    def claim(self, campaign_id: str, *, owner: str, until: datetime, now: datetime) -> bool:
        held = self._leases.get(campaign_id)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._leases[campaign_id] = (owner, until)
        return True

    def release(self, campaign_id: str, *, owner: str) -> None:
        if self._leases.get(campaign_id, ("",))[0] == owner:
            del self._leases[campaign_id]

    def add_problems(self, campaign_id: str, problems: Iterable[ContactProblem]) -> None:
        self._problems.setdefault(campaign_id, []).extend(problems)

    def problems(self, campaign_id: str, *, limit: int) -> tuple[list[ContactProblem], dict[str, int]]:
        found = sorted(self._problems.get(campaign_id, []), key=lambda p: p.index)
        return found[:limit], dict(Counter(p.kind.value for p in found))

    def add_step(self, campaign_id: str, step: CampaignStep) -> None:
        self._steps.setdefault(campaign_id, []).append(step)

    def steps(self, campaign_id: str) -> list[CampaignStep]:
        return list(self._steps.get(campaign_id, []))


class FakeSuppressions:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[tuple[str, str], Suppression] = tables.setdefault("suppressions", {})

    def add(self, entries: Sequence[Suppression]) -> int:
        added = 0
        for entry in entries:
            if (entry.tenant, entry.key) not in self._rows:
                self._rows[(entry.tenant, entry.key)] = entry
                added += 1
        return added

    def add_uncounted(self, entries: Sequence[Suppression]) -> None:
        self.add(entries)

    def remove(self, tenant: str, keys: Iterable[str]) -> int:
        return sum(self._rows.pop((tenant, key), None) is not None for key in set(keys))

    def matching(self, tenant: str, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if (tenant, key) in self._rows}

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Suppression]:
        rows = sorted(self._rows.values(), key=lambda s: (s.create_time, s.key), reverse=True)
        rows = [s for s in rows if not tenant or s.tenant == tenant]
        if after is not None:
            rows = [s for s in rows if (s.create_time, s.key) < (after.time, after.id)]
        return rows[:limit]


class FakeSyncStates:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, MailwizzSyncState] = tables.setdefault("sync", {})

    def get(self, tenant: str) -> MailwizzSyncState | None:
        return self._rows.get(tenant)

    def save(self, state: MailwizzSyncState) -> None:
        self._rows[state.tenant] = state


class FakeCampaignUnitOfWork(FakeUnitOfWork):
    campaigns: FakeCampaigns
    suppressions: FakeSuppressions
    mailwizz_sync: FakeSyncStates
    pmta_nodes: FakeNodes
    deployments: FakeDeployments
    leases: FakeLeases
    queue_holds: FakeQueueHolds
    accounting: FakeAccountingState
    bounce_routes: FakeRoutes
    bounce_deliveries: FakeDeliveries

    def _bind(self, tables: dict[str, Any]) -> None:
        self.campaigns = FakeCampaigns(tables)
        self.suppressions = FakeSuppressions(tables)
        self.mailwizz_sync = FakeSyncStates(tables)
        self.pmta_nodes = FakeNodes(tables)
        self.deployments = FakeDeployments(tables)
        self.leases = FakeLeases(tables)
        self.queue_holds = FakeQueueHolds(tables)
        self.accounting = FakeAccountingState(tables)
        self.bounce_routes = FakeRoutes(tables)
        self.bounce_deliveries = FakeDeliveries(tables)


def fake_storage() -> tuple[FakeStore, Callable[[], FakeCampaignUnitOfWork]]:
    store = FakeStore()
    return store, lambda: FakeCampaignUnitOfWork(store)


# --------------------------------------------------------------------------- MailWizz


@dataclass
class FakeMailwizzApi:
    """One customer's MailWizz: lists, subscribers, templates, campaigns; faults on demand.

    `fail_creates[kind]` is a number of Unavailable answers before a create of that kind works
    (`lost_answers[kind]`: the create happens but its answer is lost, as on a timeout);
    `keep_per_call` cuts every bulk call to that many records (PHP's max_input_vars);
    `offline` makes every call Unavailable, `refuse_key` every call an auth error.
    """

    templates: dict[str, str] = field(default_factory=lambda: {"cold_v1": "tpl00000000001"})
    lists: dict[str, str] = field(default_factory=dict)  # uid -> name
    subscribers: dict[str, dict[str, SubscriberInput]] = field(default_factory=dict)
    campaigns: dict[str, tuple[str, CampaignSpec, str]] = field(default_factory=dict)  # uid -> (name, spec, status)
    fail_creates: Counter[str] = field(default_factory=Counter)
    lost_answers: Counter[str] = field(default_factory=Counter)
    keep_per_call: int | None = None
    offline: bool = False
    refuse_key: bool = False
    rejected_emails: set[str] = field(default_factory=set)
    calls: Counter[str] = field(default_factory=Counter)
    bulk_sizes: list[int] = field(default_factory=list)
    _uids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _enter(self, call: str) -> None:
        self.calls[call] += 1
        if self.refuse_key:
            raise MailwizzAuthError(
                "MailWizz at mw.example refused GET templates (400): Invalid API key.",
                status=400,
            )
        if self.offline:
            raise MailwizzUnavailable(f"MailWizz at mw.example could not be reached for {call}: ConnectError")

    def _create(self, kind: str) -> bool:
        """True when the create must be made and its answer lost."""
        self._enter(f"create_{kind}")
        if self.fail_creates[kind] > 0:
            self.fail_creates[kind] -= 1
            raise MailwizzUnavailable(f"MailWizz at mw.example answered 500 to POST {kind}s", status=500)
        if self.lost_answers[kind] > 0:
            self.lost_answers[kind] -= 1
            return True
        return False

    def _uid(self) -> str:
        return f"uid{next(self._uids):010d}"

    def find_template_by_name(self, name: str) -> TemplateRef | None:
        self._enter("find_template")
        uid = self.templates.get(name)
        return TemplateRef(uid, name) if uid else None

    def create_list(self, spec: ListSpec) -> str:
        lost = self._create("list")
        uid = self._uid()
        self.lists[uid] = spec.name
        self.subscribers[uid] = {}
        if lost:
            raise MailwizzUnavailable("MailWizz at mw.example did not answer POST lists in time")
        return uid

    def find_list_by_name(self, name: str) -> MailwizzList | None:
        self._enter("find_list")
        uid = next((u for u, n in self.lists.items() if n == name), None)
        return MailwizzList(uid, name, "", None, None) if uid else None

    def add_subscribers(self, list_uid: str, subscribers: Sequence[SubscriberInput], *, chunk_size: int) -> BulkResult:
        result = BulkResult()
        for start in range(0, len(subscribers), chunk_size):
            self._enter("bulk")
            chunk = subscribers[start : start + chunk_size]
            self.bulk_sizes.append(len(chunk))
            kept = chunk[: self.keep_per_call] if self.keep_per_call is not None else chunk
            confirmed = BulkResult()
            for item in kept:
                held = self.subscribers[list_uid]
                if item.email in self.rejected_emails:
                    confirmed = confirmed.merged(
                        BulkResult(rejected={item.email: {"EMAIL": "Please provide a valid email address."}})
                    )
                elif item.email in held:
                    confirmed = confirmed.merged(BulkResult(already_present=(item.email,)))
                else:
                    held[item.email] = item
                    confirmed = confirmed.merged(
                        BulkResult(added=(SubscriberRef(self._uid(), item.email, "confirmed"),))
                    )
            if len(kept) < len(chunk):
                raise MailwizzBatchIncomplete(
                    f"answered {len(kept)} records for {len(chunk)}",
                    sent=len(chunk),
                    returned=len(kept),
                    chunk_size=chunk_size,
                    completed=result.merged(confirmed),
                )
            result = result.merged(confirmed)
        return result

    def create_campaign(self, spec: CampaignSpec) -> str:
        if spec.list_uid not in self.lists:
            raise MailwizzError("Provided list does not exist.", status=422)
        lost = self._create("campaign")
        uid = self._uid()
        self.campaigns[uid] = (spec.name, spec, "pending-sending")
        if lost:
            raise MailwizzUnavailable("MailWizz at mw.example did not answer POST campaigns in time")
        return uid

    def find_campaign_by_name(self, name: str) -> CampaignSummary | None:
        self._enter("find_campaign")
        found = next(((u, c) for u, c in self.campaigns.items() if c[0] == name), None)
        return CampaignSummary(found[0], name, found[1][2]) if found else None

    def pause_campaign(self, campaign_uid: str) -> ToggleOutcome:
        self._enter("pause")
        name, spec, status = self.campaigns[campaign_uid]
        if status in ("sending", "processing", "pending-sending"):
            self.campaigns[campaign_uid] = (name, spec, "paused")
            return ToggleOutcome("paused", True)
        return ToggleOutcome(status, False)

    def resume_campaign(self, campaign_uid: str) -> ToggleOutcome:
        self._enter("resume")
        name, spec, status = self.campaigns[campaign_uid]
        if status == "paused":
            self.campaigns[campaign_uid] = (name, spec, "sending")
            return ToggleOutcome("sending", True)
        return ToggleOutcome(status, False)


@dataclass
class FakeServerTable:
    """A delivery_server table: rows by id, applied plans kept."""

    rows_by_id: dict[int, ServerRow] = field(default_factory=dict)
    applied: list[SyncPlan] = field(default_factory=list)

    def add(
        self, address: str, *, status: str = "active", warmup_plan_id: int | None = None, customer_id: int = 1
    ) -> int:
        server_id = len(self.rows_by_id) + 1
        self.rows_by_id[server_id] = ServerRow(
            server_id,
            customer_id,
            f"ee {address}",
            "pmta1.example",
            25,
            status,
            50,
            500,
            warmup_plan_id,
            vmta_name(address),
        )
        return server_id

    def rows(self) -> list[ServerRow]:
        return list(self.rows_by_id.values())

    def current_servers(self) -> list[CurrentServer]:
        return [
            CurrentServer(
                r.server_id,
                r.vmta or "",
                ServerSettings(ServerStatus(r.status), r.hourly_quota, r.daily_quota),
                r.warmup_plan_id,
            )
            for r in self.rows_by_id.values()
        ]

    @contextmanager
    def exclusive(self) -> Iterator[FakeServerTable]:
        yield self

    def apply(self, plan: SyncPlan, *, defaults: Any) -> ApplyReport:
        self.applied.append(plan)
        written, created = [], []
        for change in plan.writes():
            assert change.after is not None
            if change.kind is ChangeKind.UPDATE and change.server_id is not None:
                row = self.rows_by_id[change.server_id]
                self.rows_by_id[change.server_id] = replace(
                    row,
                    status=change.after.status.value,
                    hourly_quota=change.after.hourly_quota,
                    daily_quota=change.after.daily_quota,
                )
                written.append(change.server_id)
            elif change.kind is ChangeKind.CREATE:
                chosen = defaults(change) if callable(defaults) else defaults
                if chosen is None:
                    continue
                server_id = len(self.rows_by_id) + 1
                self.rows_by_id[server_id] = ServerRow(
                    server_id,
                    chosen.customer_id,
                    f"ee {change.address}",
                    chosen.hostname,
                    chosen.port,
                    "inactive",
                    change.after.hourly_quota,
                    change.after.daily_quota,
                    None,
                    change.vmta,
                )
                created.append(server_id)
        return ApplyReport(tuple(written), tuple(created), ())


VIEW = BindingView(
    tenant=TENANT,
    api_origin="https://mw.example",
    auth="api-key",
    database="db.example:3306/mailwizz",
    table_prefix="mw_",
    time_zone="Europe/Paris",
    customer_id=1,
    from_name="SOS Expat",
    from_email="news@sos-mail.example",
    reply_to="reply@sos-mail.example",
    subject="",
    chunk_size=100,
)


@dataclass
class FakeDirectory:
    bindings: dict[str, TenantMailwizz] = field(default_factory=dict)

    def tenants(self) -> list[str]:
        return sorted(self.bindings)

    def binding(self, tenant: str) -> TenantMailwizz | None:
        return self.bindings.get(tenant)


# --------------------------------------------------------------------------- peers


@dataclass
class FakeIpPool:
    """ip-pool as both sides ask it: the IPs, the tenant's day, allocations, and the delivery totals it took."""

    ips: list[PoolIp] = field(default_factory=list)
    capacity_per_ip: int = 100_000
    allocations: list[tuple[int, bool]] = field(default_factory=list)  # (volume, validate_only)
    time_zone: str = "Europe/Paris"
    window: tuple[int, int] = (0, 24)  # the tenant's sending hours
    recorded: list[Any] = field(default_factory=list)  # each RecordDeliveryStats call's totals

    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]:
        return [
            ip for ip in self.ips if (not tenant_id or ip.tenant_id == tenant_id) and (not state or ip.state == state)
        ]

    def tenant_day(self, tenant_id: str) -> TenantDay:
        return TenantDay(tenant_id, self.time_zone, *self.window)

    def record_delivery_stats(self, totals: Any) -> int:
        self.recorded.append(list(totals))
        return len(totals)

    def allocate(
        self, *, tenant_id: str, volume: int, by_provider: dict[str, int], validate_only: bool
    ) -> AllocationResult:
        self.allocations.append((volume, validate_only))
        sending = [ip for ip in self.list_ips(tenant_id=tenant_id) if ip.state in ("WARMING", "WARM")]
        shares: list[AllocatedIp] = []
        left = volume
        for ip in sending:
            take = min(left, self.capacity_per_ip)
            if take:
                shares.append(AllocatedIp(ip.address, take, {"OTHER": take}))
            left -= take
        today = volume - left
        return AllocationResult(
            allocation_id="" if validate_only else f"alloc-{len(self.allocations)}",
            day=date(2026, 1, 5),
            requested=volume,
            allocations=tuple(shares),
            allocated_today=today,
            remainder=left,
            plan=(),
            unplanned=left,
            excluded=(),
        )


def pool_ip(
    address: str, *, state: str = "WARM", daily: int = 10_000, hourly: int = 500, node: str = "pmta1"
) -> PoolIp:
    return PoolIp(
        address, TENANT, "marketing", "default", node, "mail.sos-mail.example", state, date(2026, 1, 5), daily, hourly
    )


@dataclass
class FakeReputation:
    sending_domains: tuple[str, ...] = ("sos-mail.example",)
    verdicts: dict[str, Verdict] = field(
        default_factory=lambda: {"spf": Verdict.PASS, "dkim": Verdict.PASS, "dmarc": Verdict.PASS}
    )
    listed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checked_now: int = 0

    def _domains(self) -> TenantDomains:
        checks = tuple(
            DomainCheck(domain, "sending", check, domain, verdict, f"{check} {verdict}")
            for domain in self.sending_domains
            for check, verdict in self.verdicts.items()
        )
        return TenantDomains(self.sending_domains, (), checks)

    def tenant_domains(self, tenant: str) -> TenantDomains:
        return self._domains()

    def check_tenant_domains(self, tenant: str) -> TenantDomains:
        self.checked_now += 1
        return self._domains()

    def ip_listing(self, address: str, *, tenant: str) -> IpListing:
        zones = self.listed.get(address, ())
        return IpListing(address, bool(zones), zones)


@dataclass
class FakeResolver:
    answers: dict[str, RecipientDomain] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)

    def lookup(self, domains: Sequence[str]) -> dict[str, RecipientDomain]:
        self.asked.append(list(domains))
        return {d: self.answers.get(d, RecipientDomain(d, MailHost.MX, (f"mx.{d}",))) for d in domains}
