"""The product's MailWizz client against the strict stand-in, over real HTTP on loopback."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime

import pytest
from pydantic import SecretStr

from campaign_gateway.adapters.mailwizz_api import (
    ApiKey,
    CampaignSpec,
    ListSpec,
    MailwizzAuthError,
    MailwizzBatchIncomplete,
    MailwizzClient,
    MailwizzDestinationRefused,
    MailwizzTimeout,
    MailwizzUnavailable,
    MailwizzValidationError,
    RetryPolicy,
    SignedKeyPair,
    SubscriberInput,
)
from libs.outbound import GuardedClient, OutboundPolicy
from tests.standins.mailwizz_api import Customer, MailwizzApiStandIn

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=4, first_wait=0.01, max_wait=0.05)
KEY = "k" * 40
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def guarded(deadline_seconds: float) -> GuardedClient:
    """The platform's client for user-supplied URLs, with loopback allowed as an operator allows its MailWizz."""
    return GuardedClient(OutboundPolicy(allowed_networks=LOOPBACK, deadline_seconds=deadline_seconds))


@pytest.fixture
def standin() -> Iterator[MailwizzApiStandIn]:
    server = MailwizzApiStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[GuardedClient]:
    client = guarded(5.0)
    yield client
    client.close()


@pytest.fixture
def tenant(standin: MailwizzApiStandIn) -> Customer:
    return standin.add_customer("sos-expat", api_key=KEY)


@pytest.fixture
def client(standin: MailwizzApiStandIn, tenant: Customer, http: GuardedClient) -> MailwizzClient:
    return MailwizzClient(standin.url, ApiKey(SecretStr(KEY)), http, retry=FAST)


def _list_spec(name: str = "ee-campaign-42") -> ListSpec:
    return ListSpec(
        name=name,
        description="contacts of campaign 42",
        from_name="SOS Expat",
        from_email="news@sos-expat.example",
        reply_to="reply@sos-expat.example",
    )


def _campaign_spec(list_uid: str, **changes: object) -> CampaignSpec:
    values: dict[str, object] = {
        "name": "ee-campaign-42",
        "list_uid": list_uid,
        "from_name": "SOS Expat",
        "from_email": "news@sos-expat.example",
        "reply_to": "reply@sos-expat.example",
        "subject": "Hello [FNAME]",
        "send_at": datetime(2030, 1, 2, 9, 30, 0),
        "html": "<html><body>Héllo [FNAME] ~ [UNSUBSCRIBE_URL]</body></html>",
    }
    values.update(changes)
    return CampaignSpec(**values)  # type: ignore[arg-type]


def _contacts(count: int) -> list[SubscriberInput]:
    return [
        SubscriberInput(f"user{i}@example.com", {"FNAME": f"First {i}", "LNAME": f"Last&{i}"}, status="confirmed")
        for i in range(count)
    ]


def test_a_campaign_is_built_end_to_end(standin: MailwizzApiStandIn, client: MailwizzClient, tenant: Customer) -> None:
    server_id = standin.add_delivery_server(tenant, name="ee 203.0.113.7", hostname="pmta1.example")
    list_uid = client.create_list(_list_spec())
    added = client.add_subscribers(list_uid, _contacts(25), chunk_size=10)
    template_uid = client.create_template("ee-template-7", "<p>Hi [FNAME]</p>")
    campaign_uid = client.create_campaign(
        _campaign_spec(list_uid, html=None, template_uid=template_uid, delivery_server_ids=[server_id])
    )

    assert len(added.added) == 25 and not added.rejected and not added.already_present
    assert standin.created[("sos-expat", "list")] == 1
    assert standin.created[("sos-expat", "campaign")] == 1
    assert standin.calls["subscribers.bulk"] == 3
    assert tenant.campaigns[campaign_uid].delivery_servers == [server_id]
    assert tenant.campaigns[campaign_uid].content == "<p>Hi [FNAME]</p>"
    assert tenant.lists[list_uid].subscribers["user3@example.com"].fields["LNAME"] == "Last&3"
    details = client.get_campaign(campaign_uid)
    assert (details.status, details.list_uid, details.send_at) == ("pending-sending", list_uid, "2030-01-02 09:30:00")
    assert client.find_list_by_name("ee-campaign-42").uid == list_uid  # type: ignore[union-attr]
    assert client.find_template_by_name("ee-template-7").uid == template_uid  # type: ignore[union-attr]
    assert client.find_campaign_by_name("ee-campaign-42").uid == campaign_uid  # type: ignore[union-attr]
    assert client.find_subscriber(list_uid, "user3@example.com").status == "confirmed"  # type: ignore[union-attr]
    assert client.find_subscriber(list_uid, "nobody@example.com") is None
    assert [s.server_id for s in client.list_delivery_servers()] == [server_id]
    assert client.campaign_stats(campaign_uid).status == "pending-sending"


def test_html_content_is_sent_as_base64(client: MailwizzClient, tenant: Customer) -> None:
    list_uid = client.create_list(_list_spec())
    campaign_uid = client.create_campaign(_campaign_spec(list_uid))
    assert tenant.campaigns[campaign_uid].content.startswith("<html><body>Héllo [FNAME] ~")


def test_lookups_page_through_more_than_fifty_lists(client: MailwizzClient, standin: MailwizzApiStandIn) -> None:
    for index in range(60):
        client.create_list(_list_spec(f"list-{index}"))
    assert client.find_list_by_name("list-0") is not None
    assert client.find_list_by_name("absent") is None
    assert standin.calls["lists.index"] >= 4  # two full walks of two pages


def test_a_bad_key_is_an_auth_error_that_names_no_key(standin: MailwizzApiStandIn, http: GuardedClient) -> None:
    standin.add_customer("ulixai", api_key=KEY)
    wrong = "w" * 40
    client = MailwizzClient(standin.url, ApiKey(SecretStr(wrong)), http, retry=FAST)
    with pytest.raises(MailwizzAuthError) as caught:
        client.create_list(_list_spec())
    assert caught.value.status == 400
    assert "Invalid API key" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(client)
    assert standin.calls["lists.create"] == 1  # auth failures are not retried


def test_validation_errors_name_the_fields(client: MailwizzClient) -> None:
    with pytest.raises(MailwizzValidationError) as caught:
        client.create_list(ListSpec(name="x", description="", from_name="", from_email="a", reply_to="b"))
    assert caught.value.field_errors == {
        "general.description": "Description cannot be blank.",
        "general.name": "Name is too short (minimum is 2 characters).",
    }
    with pytest.raises(MailwizzValidationError) as missing_list:
        client.create_campaign(_campaign_spec("nosuchlist1234"))
    assert "Provided list does not exist." in str(missing_list.value)


def test_reads_survive_two_server_errors(client: MailwizzClient, standin: MailwizzApiStandIn) -> None:
    list_uid = client.create_list(_list_spec())
    standin.fail_next(2, status=500, path=f"/lists/{list_uid}")
    assert client.get_list(list_uid).name == "ee-campaign-42"
    assert standin.calls["lists.view"] == 3


def test_creates_are_never_retried_blindly(client: MailwizzClient, standin: MailwizzApiStandIn) -> None:
    standin.fail_next(1, status=503, path="/lists")
    with pytest.raises(MailwizzUnavailable):
        client.create_list(_list_spec())
    assert standin.calls["lists.create"] == 1


def test_a_create_that_times_out_is_found_before_creating_again(standin: MailwizzApiStandIn, tenant: Customer) -> None:
    with closing(guarded(0.3)) as slow_http:
        client = MailwizzClient(standin.url, ApiKey(SecretStr(KEY)), slow_http, retry=FAST)
        standin.delay_next(1, 1.0, path="/lists")
        with pytest.raises(MailwizzTimeout):
            client.create_list(_list_spec())
        found = client.find_list_by_name("ee-campaign-42")
    assert found is not None
    assert standin.created[("sos-expat", "list")] == 1


def test_max_input_vars_truncation_is_detected(client: MailwizzClient, standin: MailwizzApiStandIn) -> None:
    standin.max_input_vars = 1000
    list_uid = client.create_list(_list_spec())
    contacts = _contacts(300)  # 4 fields each: 1 200 form fields, PHP keeps the first 1 000
    with pytest.raises(MailwizzBatchIncomplete) as caught:
        client.add_subscribers(list_uid, contacts, chunk_size=300)
    assert (caught.value.sent, caught.value.returned) == (300, 250)
    again = client.add_subscribers(list_uid, contacts, chunk_size=100)
    assert len(again.added) == 50 and len(again.already_present) == 250 and not again.rejected


def test_per_item_errors_are_reported_per_email(client: MailwizzClient) -> None:
    list_uid = client.create_list(_list_spec())
    result = client.add_subscribers(list_uid, [SubscriberInput("ok@example.com"), SubscriberInput("not-an-email")])
    assert [s.email for s in result.added] == ["ok@example.com"]
    assert result.rejected == {"not-an-email": {"EMAIL": "Please provide a valid email address."}}


def test_pause_and_resume_read_the_status_first(
    client: MailwizzClient, standin: MailwizzApiStandIn, tenant: Customer
) -> None:
    list_uid = client.create_list(_list_spec())
    campaign_uid = client.create_campaign(_campaign_spec(list_uid))
    standin.set_campaign_status(tenant, campaign_uid, "sending")

    assert client.pause_campaign(campaign_uid).status == "paused"
    again = client.pause_campaign(campaign_uid)
    assert (again.status, again.changed) == ("paused", False)
    assert standin.calls["campaigns.pause_unpause"] == 1
    assert client.resume_campaign(campaign_uid).status == "sending"
    assert client.resume_campaign(campaign_uid).changed is False
    assert standin.calls["campaigns.pause_unpause"] == 2


def test_a_lost_toggle_answer_is_not_toggled_back(
    standin: MailwizzApiStandIn, tenant: Customer, http: GuardedClient
) -> None:
    with closing(guarded(0.3)) as slow_http:
        client = MailwizzClient(standin.url, ApiKey(SecretStr(KEY)), slow_http, retry=FAST)
        list_uid = client.create_list(_list_spec())
        campaign_uid = client.create_campaign(_campaign_spec(list_uid))
        standin.set_campaign_status(tenant, campaign_uid, "sending")
        standin.delay_next(1, 1.0, path=f"/campaigns/{campaign_uid}/pause-unpause")
        outcome = client.pause_campaign(campaign_uid)
    assert outcome.status == "paused"
    assert tenant.campaigns[campaign_uid].status == "paused"
    assert standin.calls["campaigns.pause_unpause"] == 1


def test_v1_signed_requests_are_accepted(standin: MailwizzApiStandIn, http: GuardedClient) -> None:
    tenant = standin.add_customer("ulixai", auth="v1", public_key="p" * 40, private_key="s" * 40)
    client = MailwizzClient(standin.url, SignedKeyPair(SecretStr("p" * 40), SecretStr("s" * 40)), http, retry=FAST)
    list_uid = client.create_list(_list_spec())
    client.add_subscribers(list_uid, _contacts(3))
    assert client.find_list_by_name("ee-campaign-42") is not None
    campaign_uid = client.create_campaign(_campaign_spec(list_uid))
    assert campaign_uid in tenant.campaigns

    forged = MailwizzClient(standin.url, SignedKeyPair(SecretStr("p" * 40), SecretStr("x" * 40)), http, retry=FAST)
    with pytest.raises(MailwizzAuthError) as caught:
        forged.get_list(list_uid)
    assert "signature" in str(caught.value) and "x" * 40 not in str(caught.value)


def test_tenants_see_only_their_own_objects(
    standin: MailwizzApiStandIn, client: MailwizzClient, http: GuardedClient
) -> None:
    standin.add_customer("ulixai", api_key="u" * 40)
    other = MailwizzClient(standin.url, ApiKey(SecretStr("u" * 40)), http, retry=FAST)
    list_uid = client.create_list(_list_spec())
    assert other.find_list_by_name("ee-campaign-42") is None
    with pytest.raises(MailwizzValidationError):
        other.create_campaign(_campaign_spec(list_uid))


def test_a_mailwizz_on_a_private_address_is_refused_unless_the_operator_allows_it(
    standin: MailwizzApiStandIn, tenant: Customer
) -> None:
    with closing(GuardedClient(OutboundPolicy(deadline_seconds=5))) as public_only:
        client = MailwizzClient(standin.url, ApiKey(SecretStr(KEY)), public_only, retry=FAST)
        with pytest.raises(MailwizzDestinationRefused) as refused:
            client.find_template_by_name("cold_v1")
    assert "loopback" in refused.value.message and KEY not in refused.value.message
    assert sum(standin.calls.values()) == 0
