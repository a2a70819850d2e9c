"""A MailWizz campaign from one gRPC call, among real peers (gateway_world.py): ip-pool and reputation running in
process, nsd and rbldnsd for the DNS, MariaDB holding MailWizz's delivery_server table, the strict MailWizz
stand-in. Acceptance 1 (25 000 contacts), 2 (a bulk call cut short; 500 twice then success; a lost answer),
4 (bad input), and the streaming upload, pause/resume and the binding view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from grpc_status import rpc_status

from campaign_gateway.adapters.mailwizz_db import headers_from_meta
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from tests.harness.dns_servers import Nsd, Rbldnsd
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import wait_until
from tests.integration.campaign_gateway.gateway_world import (
    KEY,
    NO_MAIL_DOMAIN,
    NULL_MX_DOMAIN,
    TENANT,
    World,
    contacts,
    rpc_error,
    running_world,
    start_zones,
)
from tests.integration.reputation.service import start_rbldnsd

pytestmark = pytest.mark.integration

IP_A, IP_B = "192.0.2.20", "192.0.2.21"


@pytest.fixture(scope="module")
def zones() -> Iterator[Nsd]:
    server = start_zones()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def rbl() -> Iterator[Rbldnsd]:
    server = start_rbldnsd()
    yield server
    server.cleanup()


@pytest.fixture
def world(tmp_path: Path, mariadb: MariadbServer, zones: Nsd, rbl: Rbldnsd) -> Iterator[World]:
    with running_world(tmp_path, mariadb, zones=zones, rbl=rbl) as running:
        running.register(IP_A)
        running.register(IP_B)
        yield running


def created(world: World, kind: str) -> int:
    return world.standin.created[(TENANT, kind)]


def server_ids(world: World) -> dict[str, int]:
    """address -> server id, from the rows' X-Virtual-MTA header."""
    found = {}
    for row in world.rows():
        vmta = dict(headers_from_meta(row["meta_data"]) or [])["X-Virtual-MTA"]
        found[vmta.removeprefix("vmta-").replace("-", ".")] = row["server_id"]
    return found


def ippool_allocations(world: World) -> int:
    with world.ippool.db.engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM allocations")).scalar_one())


def test_25000_contacts_make_one_list_checked_bulk_calls_one_campaign_and_the_same_request_creates_nothing(
    world: World,
) -> None:
    campaign = world.create(contacts(25_000), request_id="launch-1")
    assert campaign.state == pb.CAMPAIGN_STATE_SENDING and campaign.stage == pb.CAMPAIGN_STAGE_CAMPAIGN_CREATED
    # one list, every subscriber in it, through chunked bulk calls each checked against its records
    assert created(world, "list") == 1 and created(world, "campaign") == 1
    (mail_list,) = world.customer.lists.values()
    assert mail_list.uid == campaign.mailwizz.list_uid
    assert len(mail_list.subscribers) == 25_000 == campaign.mailwizz.subscribers_added
    assert world.standin.calls["subscribers.bulk"] == 25_000 // 200
    assert world.standin.dropped_input_vars == 0
    assert mail_list.subscribers["person7@r3.test"].fields == {"FNAME": "Prénom7", "LNAME": "Test"}
    # one campaign, on the allocated IPs' delivery servers, with the template
    mailwizz_campaign = world.customer.campaigns[campaign.mailwizz.campaign_uid]
    servers = server_ids(world)
    allocated = {share.address for share in campaign.send_plan.ips}
    assert allocated == {IP_A, IP_B}
    assert sorted(mailwizz_campaign.delivery_servers) == sorted(servers[a] for a in allocated)
    assert sorted(campaign.mailwizz.delivery_server_ids) == sorted(mailwizz_campaign.delivery_servers)
    assert mailwizz_campaign.list_uid == mail_list.uid and "Bonjour [FNAME]" in mailwizz_campaign.content
    assert mailwizz_campaign.attributes["send_at"] == "2026-01-05 10:00:00"  # 09:00 UTC in MailWizz's Paris
    assert campaign.send_plan.allocated_today == 25_000 and campaign.send_plan.allocation_id
    assert [s.step for s in campaign.steps] == ["accept", "allocate", "list", "subscribers", "campaign"]
    # the quotas landed in the table: both rows active with today's quotas
    for row in world.rows():
        assert (row["status"], row["daily_quota"], row["type"]) == ("active", 20_000, "smtp-pmta")
        assert row["hourly_quota"] == 834  # ceil(20 000 / 24): the whole day is the tenant's window
    # the same request_id again: the same campaign, nothing created, nothing reserved
    calls = sum(world.standin.calls.values())
    reservations = ippool_allocations(world)
    again = world.create(contacts(25_000), request_id="launch-1")
    assert again.campaign_id == campaign.campaign_id
    assert (created(world, "list"), created(world, "campaign"), created(world, "subscriber")) == (1, 1, 25_000)
    assert sum(world.standin.calls.values()) == calls
    assert ippool_allocations(world) == reservations == 1
    read = world.call("GetCampaign", pb.GetCampaignRequest(campaign_id=campaign.campaign_id))
    assert read.mailwizz.campaign_uid == campaign.mailwizz.campaign_uid


def test_a_bulk_call_cut_short_by_max_input_vars_is_resent_smaller_and_every_subscriber_lands(world: World) -> None:
    world.standin.max_input_vars = 500  # 200 subscribers x 4 fields do not fit: PHP drops the rest silently
    campaign = world.create(contacts(3_000))
    (mail_list,) = world.customer.lists.values()
    assert len(mail_list.subscribers) == 3_000
    assert world.standin.dropped_input_vars > 0
    assert campaign.mailwizz.chunk_size == 100
    retried = [s for s in campaign.steps if s.outcome == "RETRIED"]
    assert len(retried) == 1 and "came back with 125 records" in retried[0].detail
    assert created(world, "list") == 1 and created(world, "campaign") == 1


def test_500_twice_then_success_makes_exactly_one_list_and_one_campaign(world: World) -> None:
    world.standin.fail_next(2, status=500, path="/lists")
    world.standin.fail_next(2, status=500, path="/campaigns")
    campaign = world.create(contacts(500))
    assert campaign.state == pb.CAMPAIGN_STATE_SENDING
    assert created(world, "list") == 1 and created(world, "campaign") == 1
    assert len(world.customer.lists) == 1 and len(world.customer.campaigns) == 1
    assert len([s for s in campaign.steps if s.outcome == "RETRIED"]) >= 2


def test_a_create_whose_answer_is_lost_is_found_instead_of_made_twice(
    tmp_path: Path, mariadb: MariadbServer, zones: Nsd, rbl: Rbldnsd
) -> None:
    with running_world(
        tmp_path, mariadb, zones=zones, rbl=rbl, platform_env={"EE_OUTBOUND_DEADLINE_SECONDS": "1"}
    ) as world:
        world.register(IP_A)
        world.standin.delay_next(1, 2.0, path="/lists")  # the list is made, the answer comes too late
        world.standin.delay_next(1, 2.0, path="/campaigns")
        campaign = world.create(contacts(50))
        assert campaign.state == pb.CAMPAIGN_STATE_SENDING
        assert created(world, "list") == 1 and created(world, "campaign") == 1
        assert world.standin.calls["lists.create"] == 1 and world.standin.calls["campaigns.create"] == 1


def test_bad_contacts_are_reported_one_by_one_and_skipped(world: World) -> None:
    world.call(
        "AddSuppressions",
        pb.AddSuppressionsRequest(tenant=TENANT, entries=[pb.SuppressionEntry(email="gone@r1.test", reason="bounce")]),
    )
    people = [
        pb.Contact(email="ok@r1.test"),
        pb.Contact(email="not an address"),
        pb.Contact(email="OK@R1.TEST"),  # another mailbox: the local part keeps its case
        pb.Contact(email="ok@R1.test"),  # the same as the first: the domain has no case
        pb.Contact(email="GONE@r1.test"),
        pb.Contact(email=f"someone@{NO_MAIL_DOMAIN}"),
        pb.Contact(email=f"someone@{NULL_MX_DOMAIN}"),
    ]
    campaign = world.create(people)
    report = campaign.contacts_report
    assert (report.received, report.accepted, report.problems_total) == (7, 2, 5)
    assert [(p.index, pb.ContactProblemKind.Name(p.kind)) for p in report.problems] == [
        (1, "CONTACT_PROBLEM_KIND_MALFORMED"),
        (3, "CONTACT_PROBLEM_KIND_DUPLICATE"),
        (4, "CONTACT_PROBLEM_KIND_SUPPRESSED"),
        (5, "CONTACT_PROBLEM_KIND_NO_MAIL_HOST"),
        (6, "CONTACT_PROBLEM_KIND_NO_MAIL_HOST"),
    ]
    assert "null MX" in report.problems[4].detail
    (mail_list,) = world.customer.lists.values()
    assert sorted(mail_list.subscribers) == ["OK@r1.test", "ok@r1.test"]


def test_an_unknown_template_is_not_found_naming_it(world: World) -> None:
    error = rpc_error(lambda: world.create(contacts(3), template_id="warm_v9"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "warm_v9" in error.details()
    assert created(world, "list") == 0 and ippool_allocations(world) == 0


def test_a_key_mailwizz_refuses_names_the_tenant_never_the_key(world: World) -> None:
    world.customer.api_key = "another-key-" + "z" * 28
    error = rpc_error(lambda: world.create(contacts(3)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert TENANT in error.details() and KEY not in error.details()
    status = rpc_status.from_call(error)
    assert status is not None and KEY not in str(status)
    assert ippool_allocations(world) == 0


def test_mailwizz_unreachable_is_unavailable_and_nothing_is_half_made(world: World) -> None:
    world.standin.offline = True
    error = rpc_error(lambda: world.create(contacts(30), request_id="r-offline"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and TENANT in error.details()
    assert (created(world, "list"), created(world, "campaign")) == (0, 0)
    assert ippool_allocations(world) == 0
    listed = world.call("ListCampaigns", pb.ListCampaignsRequest(tenant=TENANT))
    assert list(listed.campaigns) == []
    world.standin.offline = False  # back: the same request goes through, once
    assert world.create(contacts(30), request_id="r-offline").state == pb.CAMPAIGN_STATE_SENDING
    assert created(world, "list") == 1


def test_mailwizz_failing_half_way_leaves_a_failed_campaign_the_same_request_resumes(world: World) -> None:
    world.standin.fail_next(50, status=503, path="/campaigns")
    error = rpc_error(lambda: world.create(contacts(400), request_id="r-half"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "SUBSCRIBED" in error.details()
    (failed,) = world.call("ListCampaigns", pb.ListCampaignsRequest(tenant=TENANT)).campaigns
    assert failed.state == pb.CAMPAIGN_STATE_FAILED and failed.stage == pb.CAMPAIGN_STAGE_SUBSCRIBED
    world.standin.clear_faults()
    resumed = world.create(contacts(400), request_id="r-half")
    assert resumed.campaign_id == failed.campaign_id and resumed.state == pb.CAMPAIGN_STATE_SENDING
    assert (created(world, "list"), created(world, "campaign"), created(world, "subscriber")) == (1, 1, 400)
    assert ippool_allocations(world) == 1


def test_a_failing_preflight_is_failed_precondition_naming_the_check(world: World) -> None:
    error = rpc_error(lambda: world.create(contacts(10), from_email="news@elsewhere.test"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "'domains'" in error.details()
    world.ippool.call(
        "CreateSchedule",
        ippool_pb.CreateScheduleRequest(
            tenant_id=TENANT,
            schedule=ippool_pb.Schedule(
                schedule_id="tiny", steps=[ippool_pb.WarmupStep(daily_volume=10, sending_days=0)]
            ),
        ),
    )
    world.ippool.call("RetireIp", ippool_pb.RetireIpRequest(address=IP_A))
    world.ippool.call("RetireIp", ippool_pb.RetireIpRequest(address=IP_B))
    world.register("192.0.2.22", schedule="tiny")  # 10 a day: 600 within ip-pool's 60-day horizon
    error = rpc_error(lambda: world.create(contacts(1_000)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "'capacity'" in error.details()
    assert ippool_allocations(world) == 0 and created(world, "list") == 0


def test_a_large_list_streams_over_grpc(world: World) -> None:
    header = pb.CreateCampaignRequest(tenant=TENANT, template_id="cold_v1", request_id="stream-1")
    people = contacts(6_000)
    stream = [pb.UploadCampaignRequest(header=header)] + [
        pb.UploadCampaignRequest(contacts=pb.ContactChunk(contacts=people[i : i + 1000])) for i in range(0, 6000, 1000)
    ]
    campaign = world.stub.UploadCampaign(
        iter(stream), metadata=(("authorization", f"Bearer {world.token()}"),), timeout=120
    )
    assert campaign.contact_count == 6_000 and campaign.state == pb.CAMPAIGN_STATE_SENDING
    assert len(next(iter(world.customer.lists.values())).subscribers) == 6_000
    unauthenticated = rpc_error(lambda: world.stub.UploadCampaign(iter(stream), timeout=30))
    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED
    headless = rpc_error(
        lambda: world.stub.UploadCampaign(
            iter(stream[1:]), metadata=(("authorization", f"Bearer {world.token()}"),), timeout=30
        )
    )
    assert headless.code() == grpc.StatusCode.INVALID_ARGUMENT and "header" in headless.details()


def test_pause_and_resume_reach_mailwizz_and_pausing_twice_keeps_it_paused(world: World) -> None:
    campaign = world.create(contacts(20))
    uid = campaign.mailwizz.campaign_uid
    world.standin.set_campaign_status(world.customer, uid, "sending")
    paused = world.call("PauseCampaign", pb.PauseCampaignRequest(campaign_id=campaign.campaign_id))
    again = world.call("PauseCampaign", pb.PauseCampaignRequest(campaign_id=campaign.campaign_id))
    assert paused.state == again.state == pb.CAMPAIGN_STATE_PAUSED
    assert world.customer.campaigns[uid].status == "paused"
    resumed = world.call("ResumeCampaign", pb.ResumeCampaignRequest(campaign_id=campaign.campaign_id))
    assert resumed.state == pb.CAMPAIGN_STATE_SENDING and world.customer.campaigns[uid].status == "sending"
    paused_only = world.call("ListCampaigns", pb.ListCampaignsRequest(tenant=TENANT, state=pb.CAMPAIGN_STATE_PAUSED))
    assert list(paused_only.campaigns) == []


def test_the_binding_view_shows_where_mailwizz_is_never_a_key(world: World) -> None:
    binding = world.call("GetMailwizzBinding", pb.GetMailwizzBindingRequest(tenant=TENANT))
    assert binding.api_origin == world.standin.url.removesuffix("/api") and binding.auth == "api-key"
    assert binding.database == f"127.0.0.1:{world.mariadb.port}/{world.database}"
    assert (binding.time_zone, binding.customer_id, binding.chunk_size) == ("Europe/Paris", 1, 200)
    assert KEY not in str(binding)
    other = rpc_error(
        lambda: world.call("GetMailwizzBinding", pb.GetMailwizzBindingRequest(tenant=TENANT), world.token("ulixai"))
    )
    assert other.code() == grpc.StatusCode.NOT_FOUND


def test_a_caller_that_gives_up_does_not_stop_the_creation_and_the_same_request_finds_it(world: World) -> None:
    world.standin.delay_next(4, 1.0)  # a slow MailWizz: the caller's deadline passes first
    request = pb.CreateCampaignRequest(
        tenant=TENANT, template_id="cold_v1", contacts=contacts(2_000), request_id="impatient"
    )
    metadata = (("authorization", f"Bearer {world.token()}"),)
    error = rpc_error(lambda: world.stub.CreateCampaign(request, metadata=metadata, timeout=1.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    def listed() -> list[pb.Campaign]:
        return list(world.call("ListCampaigns", pb.ListCampaignsRequest(tenant=TENANT)).campaigns)

    wait_until(lambda: len(listed()) == 1, 20, "the campaign stored")
    meanwhile = world.call("CreateCampaign", request)  # while it is being made: the same campaign, as it stands
    assert meanwhile.campaign_id == listed()[0].campaign_id
    wait_until(lambda: listed()[0].state == pb.CAMPAIGN_STATE_SENDING, 30, "the creation carried on")
    done = world.call("CreateCampaign", request)
    assert done.campaign_id == meanwhile.campaign_id and done.state == pb.CAMPAIGN_STATE_SENDING
    assert (created(world, "list"), created(world, "campaign"), created(world, "subscriber")) == (1, 1, 2_000)
