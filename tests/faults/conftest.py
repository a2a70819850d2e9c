"""One running system for every fault test (see world.py), started once for the package: each test breaks it,
repairs it, and leaves it consistent for the next."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reputation.domain.zones import DEFAULT_CATALOGUE
from tests.faults.world import CAMPAIGN_IPS, LOAD_TENANT, PMTA_NODES, REPLICAS, ULIXAI_CHAT, FaultWorld
from tests.harness.mariadb import MariadbServer
from tests.harness.servers import PostgresServer, RedisServer, production_stack, wait_until
from tests.harness.ssh_server import generate_key, running_nodes
from tests.integration.campaign_gateway.gateway_world import (
    KEY,
    SENDING_DOMAIN,
    TEMPLATE_HTML,
    create_customer,
    mailwizz_settings,
    start_zones,
)
from tests.integration.reputation.service import ZONE_NAMES, start_rbldnsd
from tests.standins.mailwizz_api import MailwizzApiStandIn, Template, delivery_servers_from_table
from tests.standins.telegram_bot_api import TelegramBotApiStandIn


@pytest.fixture(scope="package")
def fault_world(tmp_path_factory: pytest.TempPathFactory, mariadb: MariadbServer) -> Iterator[FaultWorld]:
    # PostgreSQL and Redis of its own: the tests stop and start them.
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    rbl, zones = start_rbldnsd(), start_zones()
    telegram = TelegramBotApiStandIn()
    telegram.add_chat(ULIXAI_CHAT, title="ulixai alerts")
    telegram.start()
    database_url = mariadb.create_mailwizz_database("mailwizz_faults")
    create_customer(mariadb, "mailwizz_faults", 1, "sos@example.test")
    mailwizz_engine = sa.create_engine(database_url)
    ssh_key = generate_key(tmp_path_factory.mktemp("faults-ssh") / "id_ed25519", comment="email-engine")
    nodes_context = running_nodes(tmp_path_factory.mktemp("faults-pmta"), PMTA_NODES, ssh_key)
    nodes = nodes_context.__enter__()
    clock_file = tmp_path_factory.mktemp("faults-clock") / "offset"
    mailwizz = MailwizzApiStandIn().start()
    customer = mailwizz.add_customer(
        "sos-expat", api_key=KEY, servers_from=delivery_servers_from_table(mailwizz_engine)
    )
    customer.templates["tplcoldv100001"] = Template("tplcoldv100001", "cold_v1", TEMPLATE_HTML)
    extra = {
        "EE_IPPOOL_SEED_TENANTS": f"sos-expat,ulixai,{LOAD_TENANT}",
        "EE_DNS_NAMESERVERS": f"{rbl.nameserver},{zones.nameserver}",
        "EE_DNS_TIMEOUT": "1",
        "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
        "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
        "EE_OUTBOUND_DEADLINE_SECONDS": "2",  # a MailWizz answer held longer is lost (the fault tests hold one)
        "EE_CAMPAIGN_GATEWAY_MAILWIZZ": json.dumps({"sos-expat": mailwizz_settings(mailwizz.url, database_url)}),
        "EE_CAMPAIGN_GATEWAY_MAILWIZZ_FIRST_WAIT_SECONDS": "0.1",
        "EE_CAMPAIGN_GATEWAY_MAILWIZZ_MAX_WAIT_SECONDS": "0.5",
        # A creation whose replica died is taken over by the same request once its lease has run out.
        "EE_CAMPAIGN_GATEWAY_CAMPAIGN_LEASE_SECONDS": "10",
        "EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE": str(ssh_key.private_path),
        "EE_CAMPAIGN_GATEWAY_PMTA_CONNECT_TIMEOUT_SECONDS": "2",
        "EE_TELEGRAM_BOT_TOKEN": telegram.token,
        "EE_TELEGRAM_API_BASE": telegram.base_url,
        "EE_NOTIFIER_DELIVERY_POLL_SECONDS": "0.2",
        "EE_NOTIFIER_RETRY_MAX_DELAY_SECONDS": "1",
        "EE_NOTIFIER_LEASE_SECONDS": "3",
        # The events a SIGKILLed replica had read are taken over by the other in 3 s, not the default 30 s.
        "EE_EVENT_CLAIM_IDLE_SECONDS": "3",
        "EE_NOTIFIER_MIN_SPACING_SECONDS": "0",
        "EE_NOTIFIER_STORM_THRESHOLD": "1000",
        # The closed loop: days driven by the clock file, scans every 2 s against the test's own rbldnsd (no daily
        # query budget), standby releases and warmup days looked for every second, accounting pulled every 5 s.
        # None of it runs unless a scheduler does (the closed-loop test starts one).
        "EE_CLOCK_OFFSET_FILE": str(clock_file),
        "EE_REPUTATION_MIN_SCAN_INTERVAL_SECONDS": "1",
        "EE_REPUTATION_SCAN_TICK_SECONDS": "1",
        "EE_REPUTATION_ZONE_BUDGETS": json.dumps(
            {zone.key: {"max_queries_per_day": 0} for zone in DEFAULT_CATALOGUE.ip_zones()}
        ),
        "EE_IPPOOL_STANDBY_JOB_SECONDS": "1",
        "EE_IPPOOL_WARMUP_JOB_SECONDS": "1",
        "EE_CAMPAIGN_GATEWAY_ACCOUNTING_PULL_INTERVAL_SECONDS": "5",
    }
    try:
        with production_stack(
            tmp_path_factory.mktemp("faults"), postgres, redis_server, extra, replicas=REPLICAS
        ) as stack:
            stack.start_worker("campaign-gateway")  # its jobs: quota syncs, PowerMTA deploys and queue commands
            world = FaultWorld(
                stack,
                postgres,
                redis_server,
                mariadb,
                telegram,
                mailwizz,
                customer,
                mailwizz_engine,
                nodes,
                rbl=rbl,
                clock_file=clock_file,
            )
            world.tokens.update(
                admin=stack.token("--admin"),
                sos=stack.token("--tenant", "sos-expat"),
                ulixai=stack.token("--tenant", "ulixai"),
                acme=stack.token("--tenant", LOAD_TENANT),
            )
            _set_up(world)
            yield world
            world.dispose()
    finally:
        nodes_context.__exit__(None, None, None)
        mailwizz.stop()
        mailwizz_engine.dispose()
        telegram.stop()
        zones.cleanup()
        rbl.cleanup()
        redis_server.stop()
        postgres.stop()


def _set_up(world: FaultWorld) -> None:
    # The nodes first: an IP's MailWizz server is made with its node's SMTP address.
    for node in world.pmta_nodes:
        registered = world.rest("POST", "/api/v2/pmta-nodes", json=node.registration(accounting_push_only=True))
        assert registered.status_code == 200, registered.text
    for address in CAMPAIGN_IPS:
        made = world.rest(
            "POST",
            "/api/v2/ips",
            "sos",
            json={"address": address, "purpose": "marketing", "tenant_id": "sos-expat", "pmta_node": PMTA_NODES[0]},
        )
        assert made.status_code == 200, made.text
        wait_until(
            lambda a=address: world.rest("GET", f"/api/v2/reputation/ips/{a}").status_code == 200,
            15,
            f"reputation watching {address}",
        )
    domains = world.rest(
        "PUT",
        "/api/v2/reputation/tenants/sos-expat/domains",
        "sos",
        json={"sending_domains": [{"domain": SENDING_DOMAIN, "dkim_selectors": ["s2048"]}]},
    )
    assert domains.status_code == 200, domains.text
    allowed = world.rest(
        "PATCH", "/api/v2/alert-settings/ulixai", json={"allowed_telegram_chat_ids": [str(ULIXAI_CHAT)]}
    )
    assert allowed.status_code == 200, allowed.text
    route = world.rest(
        "POST", "/api/v2/alert-routes", "ulixai", json={"route_id": "ulixai", "telegram_chat_id": str(ULIXAI_CHAT)}
    )
    assert route.status_code == 200, route.text
