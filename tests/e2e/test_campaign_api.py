"""`POST /api/v2/campaigns` exactly as the customer's brief writes it, through the real Envoy to the production-like
stack (four services as processes on PostgreSQL and Redis), with the tenant's MailWizz being the strict stand-in
and a real MariaDB holding its delivery_server table, nsd and rbldnsd as the DNS. Then the campaign read, paused
and resumed over REST, and the errors a user gets as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from tests.harness.dns_servers import Nsd, Rbldnsd
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import PostgresServer, RedisServer, Stack, production_stack, wait_until
from tests.integration.campaign_gateway.gateway_world import (
    KEY,
    PMTA_NODE,
    SENDING_DOMAIN,
    TEMPLATE_HTML,
    create_customer,
    mailwizz_settings,
    start_zones,
)
from tests.integration.reputation.service import ZONE_NAMES, start_rbldnsd
from tests.standins.mailwizz_api import Customer, MailwizzApiStandIn, Template, delivery_servers_from_table

pytestmark = pytest.mark.e2e

IPS = ("192.0.2.40", "192.0.2.41")


def rest(stack: Stack, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{stack.gateway}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs
    )


@pytest.fixture(scope="module")
def dns() -> Iterator[tuple[Rbldnsd, Nsd]]:
    rbl = start_rbldnsd()
    zones = start_zones()
    yield rbl, zones
    zones.cleanup()
    rbl.cleanup()


@pytest.fixture(scope="module")
def mailwizz(mariadb: MariadbServer) -> Iterator[tuple[MailwizzApiStandIn, Customer, str, sa.Engine]]:
    database_url = mariadb.create_mailwizz_database("mailwizz_e2e")
    create_customer(mariadb, "mailwizz_e2e", 1, "sos@example.test")
    engine = sa.create_engine(database_url)
    standin = MailwizzApiStandIn().start()
    customer = standin.add_customer("sos-expat", api_key=KEY, servers_from=delivery_servers_from_table(engine))
    customer.templates["tplcoldv100001"] = Template("tplcoldv100001", "cold_v1", TEMPLATE_HTML)
    yield standin, customer, database_url, engine
    standin.stop()
    engine.dispose()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    redis_server: RedisServer,
    dns: tuple[Rbldnsd, Nsd],
    mailwizz: tuple[MailwizzApiStandIn, Customer, str, sa.Engine],
) -> Iterator[Stack]:
    rbl, zones = dns
    standin, _, database_url, _ = mailwizz
    extra = {
        "EE_DNS_NAMESERVERS": f"{rbl.nameserver},{zones.nameserver}",
        "EE_DNS_TIMEOUT": "1",
        "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
        "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
        "EE_CAMPAIGN_GATEWAY_MAILWIZZ": json.dumps({"sos-expat": mailwizz_settings(standin.url, database_url)}),
    }
    with production_stack(tmp_path_factory.mktemp("campaignstack"), postgres, redis_server, extra) as running:
        yield running


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    operator = stack.token("--tenant", "sos-expat")
    admin = stack.token("--admin")
    node = rest(stack, "POST", "/api/v2/pmta-nodes", admin, json=PMTA_NODE)  # where MailWizz hands the mail
    assert node.status_code == 200, node.text
    for address in IPS:
        made = rest(
            stack,
            "POST",
            "/api/v2/ips",
            operator,
            json={"address": address, "purpose": "marketing", "tenant_id": "sos-expat", "pmta_node": "pmta1"},
        )
        assert made.status_code == 200, made.text
    for address in IPS:  # reputation learns the IPs from ip-pool's events (its SPF check is per IP)
        wait_until(
            lambda a=address: rest(stack, "GET", f"/api/v2/reputation/ips/{a}", admin).status_code == 200,
            15,
            f"reputation watching {address}",
        )
    domains = rest(
        stack,
        "PUT",
        "/api/v2/reputation/tenants/sos-expat/domains",
        operator,
        json={"sending_domains": [{"domain": SENDING_DOMAIN, "dkim_selectors": ["s2048"]}]},
    )
    assert domains.status_code == 200, domains.text
    return operator


def test_post_campaigns_as_the_brief_writes_it_creates_the_campaign_in_mailwizz(
    stack: Stack, token: str, mailwizz: tuple[MailwizzApiStandIn, Customer, str, sa.Engine]
) -> None:
    standin, customer, _, engine = mailwizz
    body = {
        "tenant": "sos-expat",
        "contacts": [
            {"email": "marie@r1.test", "first_name": "Marie"},
            {"email": "jean@r2.test", "first_name": "Jean"},
            {"email": "pas-une-adresse"},
        ],
        "template_id": "cold_v1",
    }
    made = rest(stack, "POST", "/api/v2/campaigns", token, json=body)
    assert made.status_code == 200, made.text
    campaign = made.json()
    assert campaign["state"] == "CAMPAIGN_STATE_SENDING" and campaign["contact_count"] == 2
    assert campaign["contacts_report"]["problems"][0]["kind"] == "CONTACT_PROBLEM_KIND_MALFORMED"
    assert {ip["address"] for ip in campaign["send_plan"]["ips"]} <= set(IPS)
    assert campaign["send_plan"]["allocated_today"] == 2
    mailwizz_campaign = customer.campaigns[campaign["mailwizz"]["campaign_uid"]]
    assert sorted(mailwizz_campaign.delivery_servers) == sorted(campaign["mailwizz"]["delivery_server_ids"])
    assert len(customer.lists[campaign["mailwizz"]["list_uid"]].subscribers) == 2
    with engine.connect() as connection:
        statuses = connection.execute(sa.text("SELECT status FROM mw_delivery_server")).scalars().all()
    assert statuses == ["active", "active"]

    read = rest(stack, "GET", f"/api/v2/campaigns/{campaign['campaign_id']}", token).json()
    assert read["mailwizz"]["campaign_uid"] == campaign["mailwizz"]["campaign_uid"]
    standin.set_campaign_status(customer, campaign["mailwizz"]["campaign_uid"], "sending")
    paused = rest(stack, "POST", f"/api/v2/campaigns/{campaign['campaign_id']}:pause", token, json={})
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "CAMPAIGN_STATE_PAUSED"
    listed = rest(stack, "GET", "/api/v2/campaigns?tenant=sos-expat&state=CAMPAIGN_STATE_PAUSED", token).json()
    assert [c["campaign_id"] for c in listed["campaigns"]] == [campaign["campaign_id"]]
    resumed = rest(stack, "POST", f"/api/v2/campaigns/{campaign['campaign_id']}:resume", token, json={})
    assert resumed.json()["state"] == "CAMPAIGN_STATE_SENDING"


def test_rest_errors_name_what_is_wrong(stack: Stack, token: str) -> None:
    unknown = rest(
        stack,
        "POST",
        "/api/v2/campaigns",
        token,
        json={"tenant": "sos-expat", "contacts": [{"email": "a@r1.test"}], "template_id": "warm_v9"},
    )
    assert unknown.status_code == 404 and "warm_v9" in unknown.json()["message"]
    binding = rest(stack, "GET", "/api/v2/mailwizz/bindings/sos-expat", token)
    assert binding.status_code == 200 and KEY not in binding.text
    assert binding.json()["auth"] == "api-key"


def test_a_large_list_streams_over_grpc_through_envoy(
    stack: Stack, token: str, mailwizz: tuple[MailwizzApiStandIn, Customer, str, sa.Engine]
) -> None:
    _, customer, _, _ = mailwizz
    header = pb.CreateCampaignRequest(tenant="sos-expat", template_id="cold_v1", request_id="stream-e2e")
    people = [pb.Contact(email=f"stream{n}@r{n % 5 + 1}.test") for n in range(3_000)]
    stream = [pb.UploadCampaignRequest(header=header)] + [
        pb.UploadCampaignRequest(contacts=pb.ContactChunk(contacts=people[i : i + 1000])) for i in range(0, 3000, 1000)
    ]
    stub = pb_grpc.CampaignServiceStub(grpc.insecure_channel(stack.grpc_target))
    campaign = stub.UploadCampaign(iter(stream), metadata=(("authorization", f"Bearer {token}"),), timeout=120)
    assert campaign.state == pb.CAMPAIGN_STATE_SENDING and campaign.contact_count == 3_000
    assert len(customer.lists[campaign.mailwizz.list_uid].subscribers) == 3_000
