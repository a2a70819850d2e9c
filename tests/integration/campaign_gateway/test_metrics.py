"""campaign-gateway's scrape-time gauges over real rows: a PowerMTA node's accounting pulled over SFTP (every
provider, bounces and a complaint), a deploy refused by PowerMTA and rolled back, a MailWizz quota sync that worked
and one that failed; the exact samples, and no label is an IP address. The delivery half runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from campaign_gateway import jobs
from emailengine.campaign.v1 import campaign_service_pb2 as campaign_pb
from emailengine.campaign.v1 import delivery_events_pb2 as events
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from tests.harness.mariadb import MariadbServer
from tests.harness.metrics_samples import Samples, assert_no_address_label, sample, samples
from tests.harness.servers import PostgresServer
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.delivery_fixtures import Delivery, running_delivery, wait_for
from tests.integration.campaign_gateway.gateway_world import TENANT, World, running_world
from tests.integration.campaign_gateway.test_accounting_pull import _nasty_file

pytestmark = pytest.mark.integration

IP = "192.0.2.10"  # the address the accounting file's VMTA names


@pytest.fixture(params=["sqlite", "postgresql"])
def delivery(
    request: pytest.FixtureRequest, tmp_path: Path, pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> Iterator[Delivery]:
    urls = {"database_url": "", "ippool_database_url": ""}
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        suffix = tmp_path.name[-20:].replace("-", "_").lower()
        for key, name in (("database_url", f"gateway_{suffix}"), ("ippool_database_url", f"ippool_{suffix}")):
            postgres.create_database(name)
            urls[key] = postgres.url_for(name)
    with running_delivery(tmp_path, pmta_nodes, ssh_client_key, **urls) as running:
        running.ippool.call(
            "UpdateTenant",
            ippool_pb.UpdateTenantRequest(
                tenant=ippool_pb.Tenant(tenant_id="sos-expat", time_zone="Europe/Paris"),
                update_mask={"paths": ["time_zone"]},
            ),
        )
        for node in pmta_nodes:
            running.register_node(node)
        yield running


def gateway_metrics(delivery: Delivery) -> Samples:
    return samples(delivery.gateway.host.runtime.metrics, "emailengine_gateway_")


def per_provider(provider: str, sent: int, delivered: int, bounced: int, complained: int) -> Samples:
    labels = {"tenant": "sos-expat", "provider": provider}
    found: Samples = {}
    for name, value in (("sent", sent), ("delivered", delivered), ("bounced", bounced), ("complained", complained)):
        found |= sample(f"emailengine_gateway_accounting_{name}", value, **labels)
    if sent:
        found |= sample("emailengine_gateway_bounce_rate", bounced / sent, **labels)
    if delivered:
        found |= sample("emailengine_gateway_complaint_rate", complained / delivered, **labels)
    return found


def deploys_recorded(delivery: Delivery, node: str) -> dict[str, int]:
    """Deploys per outcome, as the node's deployment history (the API) lists them."""
    listed = delivery.call("ListPmtaDeployments", pb.ListPmtaDeploymentsRequest(name=node, page_size=100))
    counts: dict[str, int] = {}
    for deployment in listed.deployments:
        outcome = pb.DeployOutcome.Name(deployment.outcome).removeprefix("DEPLOY_OUTCOME_")
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def test_metrics_of_accounting_deploys_and_nodes(delivery: Delivery) -> None:
    node_a, node_b = delivery.nodes
    delivery.register_ip(IP, node_a.name)
    wait_for(lambda: "vmta-192-0-2-10" in node_a.active_config(), "node A deployed")

    # The accounting of January 5th and 6th (Paris) from node A (the accounting pull's test file): Gmail 4 sent,
    # 3 delivered, 2 bounced; Microsoft 1 delivered and complained of; Yahoo 1 bounced; Orange 1 delivered.
    (node_a.accounting_dir / "acct.csv").write_bytes(b"".join(_nasty_file()))
    for _ in range(50):
        if jobs.ingest_node(delivery.app, node_a.name).batches == 0:
            break
    counted = delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node_a.name)).accounting.records_counted
    assert counted == 10
    # Then PowerMTA refuses node A's next configuration: rolled back, one failure in a row.
    node_a.fail_next_reload("argument missing")
    delivery.ippool.call("PauseIp", ippool_pb.PauseIpRequest(address=IP, reason="test"))
    wait_for(lambda: delivery.events_of(events.PmtaDeployFailed), "the refused reload")
    delivery.clock.advance(timedelta(minutes=10))
    assert deploys_recorded(delivery, node_a.name) == {"APPLIED": 1, "ROLLED_BACK": 1}
    assert deploys_recorded(delivery, node_b.name) == {}

    found = gateway_metrics(delivery)
    assert_no_address_label(found)
    expected: Samples = {
        **per_provider("GMAIL", sent=4, delivered=3, bounced=2, complained=0),
        **per_provider("MICROSOFT", sent=1, delivered=1, bounced=0, complained=1),
        **per_provider("YAHOO", sent=1, delivered=0, bounced=1, complained=0),  # no complaint rate of 0 delivered
        **per_provider("ORANGE", sent=1, delivered=1, bounced=0, complained=0),
        **sample("emailengine_gateway_accounting_records_total", counted, node=node_a.name),
        **sample("emailengine_gateway_accounting_records_total", 0, node=node_b.name),
        **sample("emailengine_gateway_accounting_last_ingest_age_seconds", 600.0, node=node_a.name),
        **sample("emailengine_gateway_accounting_node_error", 0, node=node_a.name),
        **sample("emailengine_gateway_accounting_node_error", 0, node=node_b.name),
        **sample("emailengine_gateway_pmta_deploys_last_day", 1, node=node_a.name, outcome="APPLIED"),
        **sample("emailengine_gateway_pmta_deploys_last_day", 1, node=node_a.name, outcome="ROLLED_BACK"),
        **sample("emailengine_gateway_pmta_consecutive_failures", 1, node=node_a.name),
        **sample("emailengine_gateway_pmta_consecutive_failures", 0, node=node_b.name),
    }
    assert found == expected
    assert samples(delivery.gateway.host.runtime.metrics, "emailengine_metrics_read_failures") == {}

    # Three days on, the deploys (a day) and the totals (two days, the last on January 6th) have left their
    # windows; the nodes' state has not.
    delivery.clock.advance(timedelta(days=3))
    later = gateway_metrics(delivery)
    assert {key[0] for key in later} == {
        "emailengine_gateway_accounting_records_total",
        "emailengine_gateway_accounting_last_ingest_age_seconds",
        "emailengine_gateway_accounting_node_error",
        "emailengine_gateway_pmta_consecutive_failures",
    }


# -- the MailWizz quota sync (MariaDB and the MailWizz stand-in; the gateway on SQLite) ----------------------


@pytest.fixture
def world(tmp_path: Path, mariadb: MariadbServer) -> Iterator[World]:
    with running_world(tmp_path, mariadb) as running:
        yield running


def sync_metrics(world: World) -> Samples:
    found = samples(world.gateway.host.runtime.metrics, "emailengine_gateway_mailwizz_")
    assert_no_address_label(found)
    return found


def test_metrics_of_a_mailwizz_sync_that_worked_then_failed(world: World) -> None:
    assert jobs.sync_quotas(world.app) == 1
    outcome = world.call("GetMailwizzBinding", campaign_pb.GetMailwizzBindingRequest(tenant=TENANT))
    assert outcome.last_sync_outcome.startswith("OK")
    world.clock.advance(timedelta(minutes=5))
    assert sync_metrics(world) == {
        **sample("emailengine_gateway_mailwizz_sync_ok", 1, tenant=TENANT),
        **sample("emailengine_gateway_mailwizz_sync_conflicts", 0, tenant=TENANT),
        **sample("emailengine_gateway_mailwizz_sync_age_seconds", 300.0, tenant=TENANT),
    }

    # MailWizz's table gone: the next sync fails and says so; the age restarts from that attempt.
    world.query("RENAME TABLE mw_delivery_server TO mw_delivery_server_away")
    try:
        jobs.sync_quotas(world.app)
    finally:
        world.query("RENAME TABLE mw_delivery_server_away TO mw_delivery_server")
    outcome = world.call("GetMailwizzBinding", campaign_pb.GetMailwizzBindingRequest(tenant=TENANT))
    assert "failed" in outcome.last_sync_outcome
    world.clock.advance(timedelta(minutes=1))
    assert sync_metrics(world) == {
        **sample("emailengine_gateway_mailwizz_sync_ok", 0, tenant=TENANT),
        **sample("emailengine_gateway_mailwizz_sync_conflicts", 0, tenant=TENANT),
        **sample("emailengine_gateway_mailwizz_sync_age_seconds", 60.0, tenant=TENANT),
    }
