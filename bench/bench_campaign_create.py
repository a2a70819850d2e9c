"""Benchmark: a 100 000-contact campaign created in MailWizz from one call, against the strict MailWizz stand-in.

Prints wall times for:
  - the stand-in alone: the same bulk calls with bodies encoded beforehand and answers unread (its own cost);
  - baseline: the raw MailWizz bulk calls alone -- the client's checked `add_subscribers` of the 100 000 contacts
    into one list, in calls of 200 (what any correct import costs against this MailWizz);
  - the use case over gRPC: `CreateCampaign` to the campaign gateway (contact checks, MX lookups of the recipient
    domains, preflight with reputation and ip-pool, allocation, quota sync, list, checked bulk import, campaign);
  - the same over REST through Envoy: `POST /api/v2/campaigns` to the production-like stack (four services as
    processes on PostgreSQL and Redis), unless `--skip-envoy`.

Every peer is real and on loopback except MailWizz: nsd and rbldnsd (DNS), MariaDB (MailWizz's delivery_server
table), ip-pool and reputation (in process for the gRPC figure, processes behind Envoy for the REST one). The
stand-in runs in its own process (as MailWizz would), so its PHP-style parsing does not share this process's
GIL with the gateway being measured. The contacts are spread over 5 recipient domains.

    .venv/bin/python bench/bench_campaign_create.py [--contacts 100000] [--skip-envoy]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from benchkit import Report
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from campaign_gateway.adapters.mailwizz_api import (  # noqa: E402
    ApiKey,
    ListSpec,
    MailwizzClient,
    SubscriberInput,
)
from campaign_gateway.domain.contacts import Contact, list_fields  # noqa: E402
from emailengine.campaign.v1 import campaign_service_pb2 as pb  # noqa: E402
from libs.outbound import GuardedClient, OutboundPolicy, parse_networks  # noqa: E402
from tests.harness.mariadb import MariadbServer  # noqa: E402
from tests.harness.servers import PostgresServer, RedisServer, production_stack, wait_until  # noqa: E402
from tests.integration.campaign_gateway.gateway_world import (  # noqa: E402
    KEY,
    PMTA_NODE,
    SENDING_DOMAIN,
    TEMPLATE_HTML,
    contacts,
    create_customer,
    mailwizz_settings,
    running_world,
    start_zones,
)
from tests.integration.reputation.service import ZONE_NAMES, start_rbldnsd  # noqa: E402

# The stand-in in a process of its own: customer sos-expat, template cold_v1, delivery servers read from the table.
STANDIN = """
import sys, time
import sqlalchemy as sa
from tests.standins.mailwizz_api import MailwizzApiStandIn, Template, delivery_servers_from_table
engine = sa.create_engine(sys.argv[1])
standin = MailwizzApiStandIn().start()
customer = standin.add_customer("sos-expat", api_key=sys.argv[2], servers_from=delivery_servers_from_table(engine))
customer.templates["tplcoldv100001"] = Template("tplcoldv100001", "cold_v1", sys.argv[3])
print(standin.url, flush=True)
while True:
    time.sleep(3600)
"""


@contextmanager
def standin_process(database_url: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STANDIN, database_url, KEY, TEMPLATE_HTML],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the MailWizz stand-in did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def subscribers_in(url: str, campaign_uid: str) -> int:
    """The list's confirmed subscribers, as MailWizz's campaign view counts them."""
    answer = httpx.get(f"{url}/campaigns/{campaign_uid}", headers={"X-API-KEY": KEY}, timeout=30).json()
    return int(answer["data"]["record"]["list"]["subscribers_count"])


def standin_alone(url: str, count: int) -> float:
    """The stand-in's own cost: the same bulk calls, bodies encoded beforehand, answers not even read."""
    from campaign_gateway.adapters.mailwizz_api import http_build_query

    people = contacts(count, offset=20_000_000)
    bodies = [
        http_build_query(
            {
                "subscribers": [
                    SubscriberInput(c.email, {"FNAME": c.first_name, "LNAME": c.last_name}, "confirmed").form()
                    for c in people[start : start + 200]
                ]
            }
        )
        for start in range(0, count, 200)
    ]
    form = {"X-API-KEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(timeout=60) as http:
        list_uid = http.post(
            f"{url}/lists",
            content=http_build_query(
                {
                    "general": {"name": "bench bare", "description": "bare bulk calls"},
                    "defaults": {
                        "from_name": "SOS Expat",
                        "from_email": f"news@{SENDING_DOMAIN}",
                        "reply_to": f"news@{SENDING_DOMAIN}",
                    },
                }
            ),
            headers=form,
        ).json()["list_uid"]
        started = time.perf_counter()
        for body in bodies:
            assert http.post(f"{url}/lists/{list_uid}/subscribers/bulk", content=body, headers=form).status_code == 201
        return time.perf_counter() - started


def baseline(url: str, count: int) -> float:
    http = GuardedClient(OutboundPolicy(allowed_networks=parse_networks("127.0.0.0/8"), max_response_bytes=32 << 20))
    client = MailwizzClient(url, ApiKey(SecretStr(KEY)), http)
    people = [Contact(c.email, c.first_name, c.last_name) for c in contacts(count, offset=10_000_000)]
    subscribers = [SubscriberInput(c.email, list_fields(c), status="confirmed") for c in people]
    list_uid = client.create_list(
        ListSpec(
            name="bench baseline",
            description="raw bulk calls",
            from_name="SOS Expat",
            from_email=f"news@{SENDING_DOMAIN}",
            reply_to=f"news@{SENDING_DOMAIN}",
        )
    )
    started = time.perf_counter()
    result = client.add_subscribers(list_uid, subscribers, chunk_size=200)
    took = time.perf_counter() - started
    assert len(result.added) == count
    http.close()
    return took


def through_grpc(work: Path, mariadb: MariadbServer, count: int, run: int = 1) -> tuple[float, float, float]:
    name = f"mailwizz_bench_grpc_{run}"
    database_url = mariadb.create_mailwizz_database(name)
    create_customer(mariadb, name, 1, "sos@example.test")
    overrides = {"database_url": database_url}
    with (
        standin_process(database_url) as url,
        running_world(work, mariadb, mailwizz={"base_url": url, **overrides}) as world,
    ):
        for address in ("192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23"):
            world.register(address)
        people = contacts(count)
        alone = standin_alone(url, count)
        base = baseline(url, count)
        started = time.perf_counter()
        campaign = world.create(people, request_id=f"bench-{run}")
        took = time.perf_counter() - started
        assert campaign.state == pb.CAMPAIGN_STATE_SENDING
        assert subscribers_in(url, campaign.mailwizz.campaign_uid) == count
    return alone, base, took


def through_envoy(work: Path, mariadb: MariadbServer, count: int) -> float:
    database_url = mariadb.create_mailwizz_database("mailwizz_bench_envoy")
    create_customer(mariadb, "mailwizz_bench_envoy", 1, "sos@example.test")
    rbl = start_rbldnsd()
    zones = start_zones()
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    try:
        with standin_process(database_url) as url:
            extra = {
                "EE_DNS_NAMESERVERS": f"{rbl.nameserver},{zones.nameserver}",
                "EE_DNS_TIMEOUT": "1",
                "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
                "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
                "EE_CAMPAIGN_GATEWAY_MAILWIZZ": json.dumps({"sos-expat": mailwizz_settings(url, database_url)}),
            }
            with production_stack(work / "stack", postgres, redis_server, extra) as stack:
                token = stack.token("--tenant", "sos-expat")
                admin = stack.token("--admin")
                headers = {"Authorization": f"Bearer {token}"}
                node = httpx.post(
                    f"{stack.gateway}/api/v2/pmta-nodes",
                    json=PMTA_NODE,
                    headers={"Authorization": f"Bearer {admin}"},
                    timeout=30,
                )
                assert node.status_code == 200, node.text
                schedule = {"schedule_id": "fast", "steps": [{"daily_volume": 50_000, "sending_days": 0}]}
                httpx.post(f"{stack.gateway}/api/v2/tenants/sos-expat/schedules", json=schedule, headers=headers)
                addresses = ["192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23"]
                for address in addresses:
                    body = {"address": address, "tenant_id": "sos-expat", "pmta_node": "pmta1", "schedule_id": "fast"}
                    made = httpx.post(f"{stack.gateway}/api/v2/ips", json=body, headers=headers, timeout=30)
                    assert made.status_code == 200, made.text
                for address in addresses:
                    wait_until(
                        lambda a=address: (
                            httpx.get(
                                f"{stack.gateway}/api/v2/reputation/ips/{a}",
                                headers={"Authorization": f"Bearer {admin}"},
                            ).status_code
                            == 200
                        ),
                        15,
                        "reputation watching the IPs",
                    )
                domains = {"sending_domains": [{"domain": SENDING_DOMAIN, "dkim_selectors": ["s2048"]}]}
                httpx.put(f"{stack.gateway}/api/v2/reputation/tenants/sos-expat/domains", json=domains, headers=headers)
                body = {
                    "tenant": "sos-expat",
                    "template_id": "cold_v1",
                    "contacts": [
                        {"email": c.email, "first_name": c.first_name, "last_name": c.last_name}
                        for c in contacts(count)
                    ],
                }
                started = time.perf_counter()
                reply = httpx.post(f"{stack.gateway}/api/v2/campaigns", json=body, headers=headers, timeout=600)
                took = time.perf_counter() - started
                assert reply.status_code == 200, reply.text[:500]
                assert subscribers_in(url, reply.json()["mailwizz"]["campaign_uid"]) == count
                return took
    finally:
        redis_server.stop()
        postgres.stop()
        zones.cleanup()
        rbl.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of the gRPC figures (each on fresh databases)")
    parser.add_argument("--skip-envoy", action="store_true")
    args = parser.parse_args()
    count = args.contacts
    report = Report("campaign-create", f"A {count:,}-contact campaign created in MailWizz (strict stand-in)")
    print(f"a {count}-contact campaign, MailWizz stand-in in its own process, bulk calls of 200, {args.runs} runs")
    mariadb = MariadbServer().start()
    work = Path(tempfile.mkdtemp(prefix="ee-bench-campaign-"))
    try:
        runs = [through_grpc(work / f"grpc-{run}", mariadb, count, run) for run in range(1, args.runs + 1)]
        base = "baseline: the raw checked bulk calls alone"
        report.add("the stand-in alone (bare pre-encoded bulk POSTs)", [count / r[0] for r in runs], "contacts/s")
        report.add(base, [count / r[1] for r in runs], "contacts/s")
        report.add(
            "CreateCampaign over gRPC (the whole use case)", [count / r[2] for r in runs], "contacts/s", baseline=base
        )
        if not args.skip_envoy:
            rest_took = through_envoy(work / "envoy", mariadb, count)
            report.add(
                "POST /api/v2/campaigns through Envoy (production stack)",
                [count / rest_took],
                "contacts/s",
                baseline=base,
            )
        report.finish()
    finally:
        mariadb.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
