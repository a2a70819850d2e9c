"""The campaign-gateway among real peers, for its integration tests and benchmark: ip-pool, reputation and the
gateway each started in this process by its real ServiceHost (gRPC, interceptor, outbox, consumer, jobs) on one
FakeClock and one data directory (so the services' own tokens are accepted between them), events relayed in
process as `make run` does; a real nsd (the sending domain's SPF, DKIM, DMARC and MX; recipient domains) and
rbldnsd (blocklists) for reputation's checks and the gateway's MX lookups; a real MariaDB holding MailWizz's
`delivery_server` table; the strict MailWizz API stand-in reading that table for the customer's servers; and the
PowerMTA node `pmta1` registered in the gateway (never contacted: no SSH key).

    with running_world(tmp_path, mariadb) as world:
        world.register("192.0.2.10")
        reply = world.create(contacts, request_id="r-1")
        world.rows()   # the delivery_server rows
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pymysql
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from campaign_gateway.bootstrap import DEFINITION as GATEWAY
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from emailengine.campaign.v1 import delivery_service_pb2 as delivery_pb
from emailengine.campaign.v1 import delivery_service_pb2_grpc as delivery_pb_grpc
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from libs.auth import Role
from libs.clock import FakeClock
from tests.harness.dns_servers import Nsd, Rbldnsd, txt_rdata
from tests.harness.in_process import InProcessService, environment, in_process_service
from tests.harness.mariadb import MariadbServer
from tests.integration.ippool.conftest import IpPoolService, running_ippool
from tests.integration.reputation.service import ReputationService, rbl_env, running_reputation, start_rbldnsd
from tests.standins.mailwizz_api import Customer, MailwizzApiStandIn, Template, delivery_servers_from_table

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "sos-expat"
KEY = "k" * 40
SENDING_DOMAIN = "sos-mail.test"
RECIPIENT_DOMAINS = tuple(f"r{n}.test" for n in range(1, 6))
NO_MAIL_DOMAIN = "nomail.test"
NULL_MX_DOMAIN = "nullmx.test"
TEMPLATE_HTML = "<html><body>Bonjour [FNAME] — [UNSUBSCRIBE_URL]</body></html>"
# The PowerMTA node the tenant's IPs live on, as registered (CreatePmtaNode, or POST /api/v2/pmta-nodes): its SMTP
# listener is where MailWizz's delivery servers for those IPs send. The gateway has no SSH key here (dry-run), so
# the node is never contacted.
PMTA_NODE = {
    "name": "pmta1",
    "ssh_host": "pmta1.internal",
    "ssh_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr6",
    "smtp_host": "pmta1.internal",
    "smtp_port": 2525,
}
_databases = itertools.count()


def _dkim_key() -> str:
    key = rsa.generate_private_key(65537, 2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def start_zones() -> Nsd:
    """nsd serving the tenant's sending domain (passing every check for 192.0.2.0/24) and recipient domains."""
    server = Nsd()
    server.add_zone(
        SENDING_DOMAIN,
        [
            '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"',
            f"s2048._domainkey TXT {txt_rdata(f'v=DKIM1; k=rsa; p={_dkim_key()}')}",
            f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{SENDING_DOMAIN}"',
            f"@ MX 10 mx.{SENDING_DOMAIN}.",
            "mx A 192.0.2.25",
        ],
    )
    for domain in RECIPIENT_DOMAINS:
        server.add_zone(domain, [f"@ MX 10 mx.{domain}.", "mx A 198.51.100.25"])
    server.add_zone(NO_MAIL_DOMAIN, ["www A 198.51.100.80"])  # no MX, no A at the apex: nobody receives
    server.add_zone(NULL_MX_DOMAIN, ["@ MX 0 ."])
    return server.start()


def contacts(count: int, *, offset: int = 0) -> list[pb.Contact]:
    return [
        pb.Contact(
            email=f"person{n}@{RECIPIENT_DOMAINS[n % len(RECIPIENT_DOMAINS)]}",
            first_name=f"Prénom{n}",
            last_name="Test",
        )
        for n in range(offset, offset + count)
    ]


def create_customer(mariadb: MariadbServer, database: str, customer_id: int, email: str) -> None:
    mariadb.execute(
        "INSERT INTO mw_customer (customer_id, customer_uid, email, password, timezone, status, date_added,"
        f" last_updated) VALUES ({customer_id}, 'cust{customer_id:09d}', '{email}', '{'x' * 34}', 'Europe/Paris',"
        " 'active', NOW(), NOW())",
        database=database,
    )


def mailwizz_settings(base_url: str, database_url: str, /, **overrides: Any) -> dict[str, Any]:
    values = {
        "base_url": base_url,
        "api_key": KEY,
        "database_url": database_url,
        "table_prefix": "mw_",
        "timezone": "Europe/Paris",
        "customer_id": 1,
        "from_name": "SOS Expat",
        "from_email": f"news@{SENDING_DOMAIN}",
        "reply_to": f"reply@{SENDING_DOMAIN}",
        "subject": "Des nouvelles de SOS Expat",
        "chunk_size": 200,
    }
    values.update(overrides)
    return values


@dataclass
class World:
    clock: FakeClock
    ippool: IpPoolService
    reputation: ReputationService
    gateway: InProcessService
    stub: pb_grpc.CampaignServiceStub
    standin: MailwizzApiStandIn
    customer: Customer
    mariadb: MariadbServer
    database: str
    engine: sa.Engine

    # ---- calls

    def token(self, tenant: str = TENANT) -> str:
        return self.gateway.token(tenant)

    def call(self, method: str, request: Any, token: str | None = None, timeout: float = 120) -> Any:
        metadata = (("authorization", f"Bearer {token or self.token()}"),)
        return getattr(self.stub, method)(request, metadata=metadata, timeout=timeout)

    def create(self, people: Sequence[pb.Contact], **fields: Any) -> pb.Campaign:
        fields.setdefault("tenant", TENANT)
        fields.setdefault("template_id", "cold_v1")
        return self.call("CreateCampaign", pb.CreateCampaignRequest(contacts=list(people), **fields))

    @property
    def app(self) -> Any:
        return self.gateway.host.runtime.app

    # ---- ip-pool

    def register(self, address: str, *, schedule: str = "fast", node: str = "pmta1") -> ippool_pb.Ip:
        return self.ippool.register(address, TENANT, pmta_node=node, schedule_id=schedule)

    def register_node(self, values: dict[str, Any]) -> delivery_pb.PmtaNode:
        """A PowerMTA node in the gateway's registry (an admin's CreatePmtaNode)."""
        metadata = (("authorization", f"Bearer {self.gateway.token(role=Role.ADMIN)}"),)
        request = delivery_pb.CreatePmtaNodeRequest(pmta_node=delivery_pb.PmtaNode(**values))
        return delivery_pb_grpc.DeliveryServiceStub(self.gateway.channel).CreatePmtaNode(
            request, metadata=metadata, timeout=30
        )

    # ---- the MailWizz database

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.text(
                    "SELECT server_id, customer_id, type, hostname, port, status, hourly_quota, daily_quota,"
                    " warmup_plan_id, meta_data FROM mw_delivery_server ORDER BY server_id"
                )
            )
            return [dict(row._mapping) for row in result]

    def query(self, sql: str, *args: object) -> list[tuple]:
        with pymysql.connect(host="127.0.0.1", port=self.mariadb.port, user="root", database=self.database) as conn:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                rows = list(cursor.fetchall())
            conn.commit()
        return rows


@contextmanager
def running_world(
    data_dir: Path,
    mariadb: MariadbServer,
    *,
    zones: Nsd | None = None,
    rbl: Rbldnsd | None = None,
    gateway_env: dict[str, str] | None = None,
    platform_env: dict[str, str] | None = None,
    mailwizz: dict[str, Any] | None = None,
) -> Iterator[World]:
    """Everything above, started; `zones` and `rbl` may be shared (module fixtures), else started here.
    `gateway_env` holds EE_CAMPAIGN_GATEWAY_* settings, `platform_env` the gateway's platform ones (EE_OUTBOUND_*)."""
    clock = FakeClock(START)
    with ExitStack() as stack:
        if zones is None:
            zones = start_zones()
            stack.callback(zones.cleanup)
        if rbl is None:
            rbl = start_rbldnsd()
            stack.callback(rbl.cleanup)
        database = f"mailwizz_{next(_databases)}_{data_dir.name[-8:]}".replace("-", "_")
        database_url = mariadb.create_mailwizz_database(database)
        create_customer(mariadb, database, 1, "sos@example.test")
        create_customer(mariadb, database, 2, "ulixai@example.test")
        engine = sa.create_engine(database_url)
        stack.callback(engine.dispose)
        standin = MailwizzApiStandIn().start()
        stack.callback(standin.stop)
        customer = standin.add_customer(TENANT, api_key=KEY, servers_from=delivery_servers_from_table(engine, "mw_"))
        customer.templates["tplcoldv100001"] = Template("tplcoldv100001", "cold_v1", TEMPLATE_HTML)

        ippool = stack.enter_context(running_ippool(data_dir, clock=clock))
        ippool.call(
            "CreateSchedule",
            ippool_pb.CreateScheduleRequest(
                tenant_id=TENANT,
                schedule=ippool_pb.Schedule(
                    schedule_id="fast", steps=[ippool_pb.WarmupStep(daily_volume=20_000, sending_days=0)]
                ),
            ),
        )
        reputation = stack.enter_context(
            running_reputation(data_dir, rbl_env(f"{rbl.nameserver},{zones.nameserver}"), clock=clock)
        )
        reputation.call(
            "SetTenantDomains",
            reputation_pb.SetTenantDomainsRequest(
                tenant_id=TENANT,
                sending_domains=[reputation_pb.SendingDomain(domain=SENDING_DOMAIN, dkim_selectors=["s2048"])],
            ),
        )
        settings = {TENANT: mailwizz_settings(standin.url, database_url, **(mailwizz or {}))}
        addresses = {
            "EE_IPPOOL_ADDRESS": ippool.settings.grpc_address("ip-pool"),
            "EE_REPUTATION_ADDRESS": reputation.settings.grpc_address("reputation"),
            "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
            **(platform_env or {}),
        }
        env = {
            "EE_CAMPAIGN_GATEWAY_MAILWIZZ": json.dumps(settings),
            "EE_CAMPAIGN_GATEWAY_QUOTA_SYNC_SECONDS": "3600",  # the tests run the job themselves
            "EE_CAMPAIGN_GATEWAY_MAILWIZZ_FIRST_WAIT_SECONDS": "0.05",
            "EE_CAMPAIGN_GATEWAY_MAILWIZZ_MAX_WAIT_SECONDS": "0.2",
            "EE_DNS_NAMESERVERS": zones.nameserver,
            "EE_DNS_TIMEOUT": "1",
            **(gateway_env or {}),
        }
        # The gateway's platform settings (peers' addresses, outbound allow-list) are read when its host is made.
        stack.enter_context(environment(addresses))
        gateway = stack.enter_context(in_process_service(GATEWAY, data_dir, clock=clock, env=env))
        world = World(
            clock=clock,
            ippool=ippool,
            reputation=reputation,
            gateway=gateway,
            stub=pb_grpc.CampaignServiceStub(gateway.channel),
            standin=standin,
            customer=customer,
            mariadb=mariadb,
            database=database,
            engine=engine,
        )
        world.register_node(PMTA_NODE)
        yield world


def rpc_error(call: Any) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call did not fail")
