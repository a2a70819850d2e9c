"""The campaign use cases over in-memory fakes: one call makes one list, its subscribers and one campaign on the
allocated delivery servers; the same request_id creates nothing; preflight refusals name their check; bad
contacts are reported and skipped; MailWizz cutting a bulk call short or failing is retried without duplicates;
a creation that stopped is resumed where it stopped. Also reads, lists, pause and resume, and suppression lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaign_gateway.app.campaigns import CampaignPolicy, CampaignRequest, CampaignUseCases
from campaign_gateway.app.ports import TenantMailwizz
from campaign_gateway.domain.campaign import CampaignStage, CampaignState
from campaign_gateway.domain.contacts import Contact, ProblemKind
from campaign_gateway.domain.preflight import Verdict
from campaign_gateway.domain.recipients import MailHost, RecipientDomain
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from tests.fakes import FakeStore
from tests.unit.campaign_gateway.campaign_fakes import (
    IPS,
    TENANT,
    VIEW,
    FakeCampaignUnitOfWork,
    FakeDirectory,
    FakeIpPool,
    FakeMailwizzApi,
    FakeReputation,
    FakeResolver,
    FakeServerTable,
    pool_ip,
)

SOS = Caller("sos-operator", Role.OPERATOR, TENANT)
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")
ADMIN = Caller("admin", Role.ADMIN, "")


class World:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.clock = FakeClock()
        self.api = FakeMailwizzApi()
        self.table = FakeServerTable()
        self.server_ids = [self.table.add(address) for address in IPS]
        self.directory = FakeDirectory({TENANT: TenantMailwizz(VIEW, self.api, self.table)})
        self.ippool = FakeIpPool([pool_ip(address) for address in IPS], capacity_per_ip=300)
        self.reputation = FakeReputation()
        self.resolver = FakeResolver()
        self.sleeps: list[float] = []
        self.campaigns = CampaignUseCases(
            lambda: FakeCampaignUnitOfWork(self.store),
            self.clock,
            policy=CampaignPolicy(max_contacts=10_000, max_reported_problems=50, attempts=4),
            directory=self.directory,
            ippool=self.ippool,
            reputation=self.reputation,
            resolver=self.resolver,
            sleep=self.sleeps.append,
        )

    def create(self, contacts: list[Contact], **options: object) -> object:
        request = CampaignRequest(tenant=TENANT, template_id="cold_v1", contacts=contacts, **options)  # type: ignore[arg-type]
        return self.campaigns.create(SOS, request)


def people(count: int, domain: str = "example.org") -> list[Contact]:
    return [Contact(f"person{i}@{domain}", f"First{i}", f"Last{i}") for i in range(count)]


@pytest.fixture
def world() -> World:
    return World()


def test_one_call_makes_one_list_its_subscribers_and_one_campaign_on_the_allocated_servers(world: World) -> None:
    report = world.create(people(500), request_id="r-1")
    campaign = report.campaign  # type: ignore[attr-defined]
    assert campaign.state is CampaignState.SENDING and campaign.stage is CampaignStage.CAMPAIGN_CREATED
    assert (len(world.api.lists), len(world.api.campaigns)) == (1, 1)
    (list_uid,) = world.api.lists
    assert len(world.api.subscribers[list_uid]) == 500
    assert world.api.bulk_sizes == [100] * 5  # the binding's chunk size
    name, spec, _ = world.api.campaigns[campaign.mailwizz.campaign_uid]
    assert spec.list_uid == list_uid and spec.template_uid == "tpl00000000001"
    assert sorted(spec.delivery_server_ids) == sorted(world.server_ids)
    assert name.endswith(f"[ee {campaign.campaign_id}]")
    plan = campaign.plan
    assert plan.allocated_today == 500 and [ip.volume for ip in plan.ips] == [300, 200]
    assert world.ippool.allocations == [(500, True), (500, False)]  # one preview, one reservation
    assert [s.step for s in report.steps] == ["accept", "allocate", "list", "subscribers", "campaign"]  # type: ignore[attr-defined]
    # MailWizz's own timezone: the send time is Paris time, as MailWizz reads it.
    assert spec.send_at.hour == (world.clock.now() + timedelta(hours=1)).hour


def test_the_same_request_id_again_returns_the_same_campaign_and_creates_nothing(world: World) -> None:
    first = world.create(people(50), request_id="r-1").campaign  # type: ignore[attr-defined]
    calls = sum(world.api.calls.values())
    again = world.create(people(50), request_id="r-1").campaign  # type: ignore[attr-defined]
    assert again.campaign_id == first.campaign_id
    assert (len(world.api.lists), len(world.api.campaigns)) == (1, 1)
    assert sum(world.api.calls.values()) == calls  # not even a lookup
    assert len(world.ippool.allocations) == 2
    with pytest.raises(AlreadyExists) as reused:
        world.create(people(51), request_id="r-1")
    assert "different request" in reused.value.message


def test_malformed_duplicate_suppressed_and_mailless_contacts_are_reported_and_skipped(world: World) -> None:
    world.campaigns.add_suppressions(SOS, tenant=TENANT, entries=[("Blocked@Example.org", "hard bounce")])
    world.resolver.answers["nomail.example"] = RecipientDomain("nomail.example", MailHost.NONE, detail="NXDOMAIN")
    world.resolver.answers["null.example"] = RecipientDomain("null.example", MailHost.NULL_MX, ("",))
    world.resolver.answers["flaky.example"] = RecipientDomain("flaky.example", MailHost.UNKNOWN, detail="Timeout")
    contacts = [
        Contact("ann@example.org"),
        Contact("not-an-address"),
        Contact("ann@EXAMPLE.org"),  # the same address: domains have no case
        Contact("Ann@example.org"),  # another one: the local part keeps its case
        Contact("blocked@example.org"),
        Contact("x@nomail.example"),
        Contact("y@null.example"),
        Contact("z@flaky.example"),  # DNS trouble never drops anyone
    ]
    report = world.create(contacts)
    kinds = {p.index: p.kind for p in report.problems}  # type: ignore[attr-defined]
    assert kinds == {
        1: ProblemKind.MALFORMED,
        2: ProblemKind.DUPLICATE,
        4: ProblemKind.SUPPRESSED,
        5: ProblemKind.NO_MAIL_HOST,
        6: ProblemKind.NO_MAIL_HOST,
    }
    (list_uid,) = world.api.lists
    assert sorted(world.api.subscribers[list_uid]) == ["Ann@example.org", "ann@example.org", "z@flaky.example"]
    assert report.campaign.contact_count == 3 and report.campaign.received == 8  # type: ignore[attr-defined]


def test_no_contact_left_is_invalid_and_creates_nothing(world: World) -> None:
    with pytest.raises(InvalidArgument) as error:
        world.create([Contact("nope"), Contact("also nope")])
    assert error.value.violations[0].field == "contacts" and "2 malformed" in error.value.message
    assert world.api.lists == {} and world.ippool.allocations == []


def test_bad_request_fields_are_named_together(world: World) -> None:
    with pytest.raises(InvalidArgument) as error:
        world.campaigns.create(
            SOS,
            CampaignRequest(tenant="", template_id="", contacts=[], request_id="no spaces", from_email="x"),
        )
    assert {v.field for v in error.value.violations} == {
        "tenant",
        "template_id",
        "contacts",
        "request_id",
        "from_email",
    }


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        ("domain_fail", "domains"),
        ("domain_unknown", "domains"),
        ("no_domains", "domains"),
        ("from_elsewhere", "domains"),
        ("listed", "listings"),
        ("no_capacity", "capacity"),
        ("too_much", "capacity"),
        ("no_server", "delivery_servers"),
        ("all_inactive", "delivery_servers"),
        ("another_customer", "delivery_servers"),
    ],
)
def test_a_failing_preflight_names_its_check_and_reserves_and_creates_nothing(
    world: World, breakage: str, check: str
) -> None:
    options: dict[str, object] = {}
    if breakage == "domain_fail":
        world.reputation.verdicts["spf"] = Verdict.FAIL
    elif breakage == "domain_unknown":
        world.reputation.verdicts["dmarc"] = Verdict.UNKNOWN
    elif breakage == "no_domains":
        world.reputation.sending_domains = ()
    elif breakage == "from_elsewhere":
        options["from_email"] = "news@elsewhere.example"
    elif breakage == "listed":
        world.reputation.listed[IPS[0]] = ("zen.spamhaus.org",)
    elif breakage == "no_capacity":
        world.ippool.ips = [pool_ip(a, state="STANDBY", daily=0) for a in IPS]
    elif breakage == "too_much":
        world.ippool.capacity_per_ip = 10
    elif breakage == "no_server":
        del world.table.rows_by_id[world.server_ids[0]]
    elif breakage in ("all_inactive", "another_customer"):
        world.table.rows_by_id.clear()
        for address in IPS:
            if breakage == "all_inactive":
                world.table.add(address, status="inactive")
            else:
                world.table.add(address, customer_id=2)
    with pytest.raises(FailedPrecondition) as refused:
        world.create(people(100), **options)
    assert refused.value.metadata["check"] == check and f"'{check}'" in refused.value.message
    assert world.api.lists == {} and world.api.campaigns == {}
    assert all(validate_only for _, validate_only in world.ippool.allocations)
    assert world.store.tables.get("campaigns", {}) == {}


def test_a_server_mailwizz_would_drop_is_left_out_of_the_campaign(world: World) -> None:
    row = world.table.rows_by_id[world.server_ids[1]]
    world.table.rows_by_id[world.server_ids[1]] = type(row)(**{**row.__dict__, "status": "inactive"})
    report = world.create(people(500))
    _, spec, _ = world.api.campaigns[report.campaign.mailwizz.campaign_uid]  # type: ignore[attr-defined]
    assert list(spec.delivery_server_ids) == [world.server_ids[0]]
    allocate = next(s for s in report.steps if s.step == "allocate")  # type: ignore[attr-defined]
    assert f"{IPS[1]} (it is inactive now)" in allocate.detail


def test_domains_never_checked_are_checked_now(world: World) -> None:
    calls = {"n": 0}
    original = world.reputation.tenant_domains

    def unchecked(tenant: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        found = original(tenant)
        return type(found)(found.sending_domains, (), ())

    world.reputation.tenant_domains = unchecked  # type: ignore[method-assign]
    world.create(people(10))
    assert world.reputation.checked_now == 1


def test_an_unknown_template_is_not_found_naming_it(world: World) -> None:
    with pytest.raises(NotFound) as missing:
        world.campaigns.create(SOS, CampaignRequest(tenant=TENANT, template_id="warm_v9", contacts=people(3)))
    assert "warm_v9" in missing.value.message
    assert world.api.lists == {} and world.ippool.allocations == []


def test_a_refused_key_names_the_tenant_and_never_the_key(world: World) -> None:
    world.api.refuse_key = True
    with pytest.raises(FailedPrecondition) as refused:
        world.create(people(3))
    assert refused.value.reason == "MAILWIZZ_KEY_REFUSED" and TENANT in refused.value.message
    assert world.ippool.allocations == []


def test_mailwizz_unreachable_is_unavailable_and_nothing_is_half_made(world: World) -> None:
    world.api.offline = True
    with pytest.raises(Unavailable):
        world.create(people(3), request_id="r-9")
    assert world.api.lists == {} and world.ippool.allocations == []
    assert world.store.tables.get("campaigns", {}) == {}


def test_a_bulk_call_cut_short_is_resent_smaller_until_every_subscriber_lands(world: World) -> None:
    world.api.keep_per_call = 30  # as max_input_vars would cut a form of 100 subscribers
    report = world.create(people(250))
    (list_uid,) = world.api.lists
    assert len(world.api.subscribers[list_uid]) == 250
    assert world.api.bulk_sizes[0] == 100 and world.api.bulk_sizes[-1] <= 30
    assert report.campaign.mailwizz.chunk_size <= 30  # type: ignore[attr-defined]
    assert any(s.outcome.value == "RETRIED" and "cut it short" in s.detail for s in report.steps)  # type: ignore[attr-defined]


def test_500_twice_then_success_makes_exactly_one_list_and_one_campaign(world: World) -> None:
    world.api.fail_creates.update({"list": 2, "campaign": 2})
    report = world.create(people(20))
    assert (len(world.api.lists), len(world.api.campaigns)) == (1, 1)
    assert report.campaign.state is CampaignState.SENDING  # type: ignore[attr-defined]
    assert world.api.calls["create_list"] == 3 and world.api.calls["create_campaign"] == 3
    assert len(world.sleeps) == 4


def test_a_create_whose_answer_was_lost_is_found_not_made_again(world: World) -> None:
    world.api.lost_answers.update({"list": 1, "campaign": 1})
    world.create(people(20))
    assert (len(world.api.lists), len(world.api.campaigns)) == (1, 1)
    assert world.api.calls["create_list"] == 1 and world.api.calls["find_list"] == 1


def test_a_creation_that_stops_half_way_is_failed_and_resumed_by_the_same_request(world: World) -> None:
    world.api.fail_creates["campaign"] = 10  # MailWizz keeps failing once the list is made
    with pytest.raises(Unavailable) as stopped:
        world.create(people(40), request_id="r-2")
    assert "SUBSCRIBED" in stopped.value.message and "same request_id" in stopped.value.message
    failed = world.campaigns.get(SOS, stopped.value.metadata["campaign_id"]).campaign
    assert failed.state is CampaignState.FAILED and failed.stage is CampaignStage.SUBSCRIBED
    world.api.fail_creates["campaign"] = 0
    resumed = world.create(people(40), request_id="r-2").campaign  # type: ignore[attr-defined]
    assert resumed.campaign_id == failed.campaign_id and resumed.state is CampaignState.SENDING
    assert (len(world.api.lists), len(world.api.campaigns)) == (1, 1)
    assert len([a for a in world.ippool.allocations if not a[1]]) == 1  # reserved once
    assert world.api.calls["find_campaign"] >= 1  # looked up before creating again


def test_contacts_mailwizz_refuses_are_reported(world: World) -> None:
    world.api.rejected_emails = {"person3@example.org"}
    report = world.create(people(10))
    assert [(p.index, p.kind) for p in report.problems] == [(3, ProblemKind.REJECTED)]  # type: ignore[attr-defined]
    assert report.campaign.contact_count == 9  # type: ignore[attr-defined]


def test_pause_and_resume_follow_mailwizz_and_a_pause_twice_stays_paused(world: World) -> None:
    campaign = world.create(people(5)).campaign  # type: ignore[attr-defined]
    assert world.campaigns.pause(SOS, campaign.campaign_id).campaign.state is CampaignState.PAUSED
    assert world.campaigns.pause(SOS, campaign.campaign_id).campaign.state is CampaignState.PAUSED
    assert world.campaigns.resume(SOS, campaign.campaign_id).campaign.state is CampaignState.SENDING
    with pytest.raises(PermissionDenied):
        world.campaigns.pause(Caller("viewer", Role.VIEWER, TENANT), campaign.campaign_id)


def test_a_tenant_without_mailwizz_is_a_failed_precondition(world: World) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        world.campaigns.create(ULIXAI, CampaignRequest(tenant="ulixai", template_id="cold_v1", contacts=people(1)))
    assert refused.value.reason == "NO_MAILWIZZ_BINDING"


def test_an_operator_may_not_create_for_another_tenant(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.campaigns.create(ULIXAI, CampaignRequest(tenant=TENANT, template_id="cold_v1", contacts=people(1)))
    assert world.api.calls == {}


def test_another_tenants_campaign_reads_exactly_like_a_missing_one(world: World) -> None:
    mine = world.create(people(2)).campaign  # type: ignore[attr-defined]
    with pytest.raises(NotFound) as foreign:
        world.campaigns.get(ULIXAI, mine.campaign_id)
    with pytest.raises(NotFound) as missing:
        world.campaigns.get(ULIXAI, "00000000-0000-4000-8000-000000000000")
    assert type(foreign.value) is type(missing.value)
    assert world.campaigns.get(ADMIN, mine.campaign_id).campaign == mine


def test_lists_page_newest_first_within_the_callers_tenant_and_filter_by_state(world: World) -> None:
    made = []
    for _ in range(5):
        made.append(world.create(people(2)).campaign)  # type: ignore[attr-defined]
        world.clock.advance(timedelta(minutes=1))
    world.campaigns.pause(SOS, made[0].campaign_id)
    first, token = world.campaigns.list(SOS, tenant="", size=3, token="")
    rest, last = world.campaigns.list(SOS, tenant="", size=3, token=token)
    assert [c.campaign_id for c in first + rest] == [c.campaign_id for c in reversed(made)]
    assert last == ""
    paused, _ = world.campaigns.list(SOS, tenant="", size=10, token="", state=CampaignState.PAUSED)
    assert [c.campaign_id for c in paused] == [made[0].campaign_id]
    with pytest.raises(PermissionDenied):
        world.campaigns.list(SOS, tenant="ulixai", size=3, token="")


def test_a_page_token_this_api_did_not_hand_out_is_a_clear_error(world: World) -> None:
    for token in ("garbage", "eyJ0IjoxfQ", "eyJ0Ijoibm90IGEgdGltZSIsImkiOiJ4In0"):
        with pytest.raises(InvalidArgument) as error:
            world.campaigns.list(SOS, tenant="", size=3, token=token)
        assert error.value.violations[0].field == "page_token"


def test_suppressions_are_added_once_listed_and_validated(world: World) -> None:
    added = world.campaigns.add_suppressions(
        SOS, tenant=TENANT, entries=[("a@example.org", "bounce"), ("A@EXAMPLE.ORG", "again"), ("b@example.org", "x")]
    )
    assert added == (2, 0)
    assert world.campaigns.add_suppressions(SOS, tenant=TENANT, entries=[("b@example.org", "y")]) == (0, 1)
    listed, _ = world.campaigns.list_suppressions(SOS, tenant="", size=10, token="")
    assert sorted(s.email for s in listed) == ["a@example.org", "b@example.org"]
    with pytest.raises(InvalidArgument) as error:
        world.campaigns.add_suppressions(SOS, tenant=TENANT, entries=[("ok@example.org", ""), ("bad", "")])
    assert error.value.violations[0].field == "entries[1].email"
    with pytest.raises(PermissionDenied):
        world.campaigns.add_suppressions(ULIXAI, tenant=TENANT, entries=[("c@example.org", "")])


def test_suppressions_are_removed_without_case_and_only_by_the_tenant_s_writers(world: World) -> None:
    world.campaigns.add_suppressions(SOS, tenant=TENANT, entries=[("Ann@example.org", "hard-bounce")])
    world.campaigns.add_suppressions(SOS, tenant=TENANT, entries=[("b@example.org", "complaint")])
    assert world.campaigns.remove_suppressions(SOS, tenant=TENANT, emails=["ANN@Example.org", "nobody@x.org"]) == (1, 1)
    listed, _ = world.campaigns.list_suppressions(SOS, tenant=TENANT, size=10, token="")
    assert [s.email for s in listed] == ["b@example.org"]
    with pytest.raises(InvalidArgument) as error:
        world.campaigns.remove_suppressions(SOS, tenant=TENANT, emails=["b@example.org", "not an address"])
    assert error.value.violations[0].field == "emails[1]"
    with pytest.raises(InvalidArgument) as error:
        world.campaigns.remove_suppressions(SOS, tenant="", emails=[])
    assert {v.field for v in error.value.violations} == {"tenant", "emails"}
    for caller in (ULIXAI, Caller("viewer", Role.VIEWER, TENANT)):
        with pytest.raises(PermissionDenied):
            world.campaigns.remove_suppressions(caller, tenant=TENANT, emails=["b@example.org"])
    assert world.campaigns.remove_suppressions(ADMIN, tenant=TENANT, emails=["b@example.org"]) == (1, 0)
