"""A sandbox to try campaigns on one machine: what a tenant's MailWizz and DNS would be, on loopback.

    .venv/bin/python -m tests.standins.sandbox            # Ctrl-C stops it; it writes var/sandbox.env
    . var/sandbox.env && make run                          # in another terminal: the product, pointed at it

It starts, each on a free loopback port:

- the strict MailWizz API stand-in (`tests.standins.mailwizz_api`), one MailWizz customer per tenant, each with
  its API key and the templates asked for (`cold_v1` by default);
- a real MariaDB holding MailWizz's `delivery_server` table (the quota sync writes it, the stand-in reads it);
- a real nsd serving each tenant's sending domain `<tenant>.sandbox.test` (SPF for the documentation networks
  192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24, DKIM selector `s1`, DMARC, MX) and a recipient domain
  `inbox.sandbox.test`;
- a real rbldnsd answering for every blocklist zone with its test points only, so no IP or domain is listed.

and writes the settings that point the product at them (`EE_CAMPAIGN_GATEWAY_MAILWIZZ` with each tenant's
binding, `EE_DNS_NAMESERVERS`, `EE_REPUTATION_ZONE_NAMES`, `EE_OUTBOUND_ALLOW_NETWORKS` for the loopback
MailWizz) as `export` lines to source before `make run`. The PowerMTA node `pmta1` is registered through the API
like any node (README "Command line"); nothing answers on its SSH, so its deploys stay dry-runs. In production
these settings name the tenant's real MailWizz and your own resolver instead (README "Campaigns and MailWizz",
"Reputation and DNS"). Nothing here is ever contacted by anything but this machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from libs.config import REPO_ROOT
from tests.harness.dns_servers import Nsd, Rbldnsd, txt_rdata
from tests.harness.mariadb import MariadbServer
from tests.integration.reputation.service import DOMAIN_DATA, IP_DATA, ZONE_NAMES, test_name
from tests.standins.mailwizz_api import Customer, MailwizzApiStandIn, Template, delivery_servers_from_table

SANDBOX_DOMAIN = "sandbox.test"
RECIPIENT_DOMAIN = f"inbox.{SANDBOX_DOMAIN}"
DKIM_SELECTOR = "s1"
PMTA_NODE = "pmta1"
SENDING_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")  # RFC 5737: never on the Internet
TEMPLATE_HTML = "<html><body><p>Hello [FNAME],</p><p>News from the sandbox.</p>[UNSUBSCRIBE_URL]</body></html>"
DATABASE = "mailwizz"


def sending_domain(tenant: str) -> str:
    return f"{tenant}.{SANDBOX_DOMAIN}"


def _dkim_public_key() -> str:
    key = rsa.generate_private_key(65537, 2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _zones(tenants: Sequence[str]) -> Nsd:
    server = Nsd()
    spf = "v=spf1 " + " ".join(f"ip4:{network}" for network in SENDING_NETWORKS) + " -all"
    for tenant in tenants:
        domain = sending_domain(tenant)
        server.add_zone(
            domain,
            [
                f'@ TXT "{spf}"',
                f"{DKIM_SELECTOR}._domainkey TXT {txt_rdata(f'v=DKIM1; k=rsa; p={_dkim_public_key()}')}",
                f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"',
                f"@ MX 10 mx.{domain}.",
                "mx A 192.0.2.25",
            ],
        )
    server.add_zone(RECIPIENT_DOMAIN, [f"@ MX 10 mx.{RECIPIENT_DOMAIN}.", "mx A 198.51.100.25"])
    return server.start()


def _clean_blocklists() -> Rbldnsd:
    """Every catalogue zone with its RFC 5782 test points (so its health check passes) and nothing else."""
    server = Rbldnsd()
    for key, lines in IP_DATA.items():
        server.add_dataset(test_name(key), "ip4set", key, [line for line in lines if line.startswith("127.")])
    for key, lines in DOMAIN_DATA.items():
        test_points = [line for line in lines if line.split()[0] in ("dbltest.com", "test.surbl.org", "test.uribl.com")]
        server.add_dataset(test_name(key), "dnset", key, test_points)
    return server.start()


@dataclass
class Sandbox:
    tenants: tuple[str, ...]
    templates: tuple[str, ...]
    mailwizz: MailwizzApiStandIn
    customers: dict[str, Customer]
    api_keys: dict[str, str]
    database_url: str
    engine: sa.Engine
    nameservers: str
    extra: dict[str, str] = field(default_factory=dict)

    def binding(self, tenant: str) -> dict[str, Any]:
        """The tenant's MailWizz binding, as README "Campaigns and MailWizz" documents it."""
        domain = sending_domain(tenant)
        return {
            "base_url": self.mailwizz.url,
            "api_key": self.api_keys[tenant],
            "database_url": self.database_url,
            "table_prefix": "mw_",
            "timezone": "UTC",
            "customer_id": self.customers[tenant].customer_id,
            "from_name": tenant,
            "from_email": f"news@{domain}",
            "reply_to": f"reply@{domain}",
            "subject": f"News from {tenant}",
            "chunk_size": 200,
        }

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the product at the sandbox."""
        return {
            "EE_CAMPAIGN_GATEWAY_MAILWIZZ": json.dumps({t: self.binding(t) for t in self.tenants}),
            "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
            "EE_DNS_NAMESERVERS": self.nameservers,
            "EE_DNS_TIMEOUT": "1",
            "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
            **self.extra,
        }

    def env_file_text(self) -> str:
        lines = ["# email-engine sandbox: source it before `make run` (. var/sandbox.env). Secrets: local only."]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in self.env.items()]
        return "\n".join(lines) + "\n"


@contextmanager
def running_sandbox(
    tenants: Sequence[str] = ("sos-expat",),
    templates: Sequence[str] = ("cold_v1",),
    *,
    mariadb: MariadbServer | None = None,
    database: str = DATABASE,
) -> Iterator[Sandbox]:
    """Everything above, started (on `mariadb` when given, a test's session server, in its own `database`)."""
    with ExitStack() as stack:
        if mariadb is None:
            mariadb = MariadbServer().start()
            stack.callback(mariadb.stop)
        database_url = mariadb.create_mailwizz_database(database)
        engine = sa.create_engine(database_url)
        stack.callback(engine.dispose)
        zones = _zones(tenants)
        stack.callback(zones.cleanup)
        blocklists = _clean_blocklists()
        stack.callback(blocklists.cleanup)
        standin = MailwizzApiStandIn().start()
        stack.callback(standin.stop)
        customers: dict[str, Customer] = {}
        keys: dict[str, str] = {}
        for tenant in tenants:
            keys[tenant] = secrets.token_hex(20)
            customer = standin.add_customer(
                tenant, api_key=keys[tenant], servers_from=delivery_servers_from_table(engine)
            )
            mariadb.execute(
                "INSERT INTO mw_customer (customer_id, customer_uid, email, password, timezone, status, date_added,"
                f" last_updated) VALUES ({customer.customer_id}, 'cust{customer.customer_id:09d}',"
                f" 'admin@{sending_domain(tenant)}', '{'x' * 34}', 'UTC', 'active', NOW(), NOW())",
                database=database,
            )
            for name in templates:
                uid = f"tpl{secrets.token_hex(5)}"
                customer.templates[uid] = Template(uid, name, TEMPLATE_HTML)
            customers[tenant] = customer
        yield Sandbox(
            tuple(tenants),
            tuple(templates),
            standin,
            customers,
            keys,
            database_url,
            engine,
            f"{blocklists.nameserver},{zones.nameserver}",
        )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.sandbox",
        description="A MailWizz stand-in, its MySQL and a DNS on loopback, to try campaigns against `make run`.",
    )
    parser.add_argument("--tenant", action="append", help="A tenant to bind (repeatable; default sos-expat).")
    parser.add_argument("--template", action="append", help="A template in each MailWizz (default cold_v1).")
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / "var" / "sandbox.env")
    args = parser.parse_args(argv)
    tenants = args.tenant or ["sos-expat"]
    templates = args.template or ["cold_v1"]
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("starting the sandbox (MariaDB, nsd, rbldnsd, MailWizz stand-in)...", flush=True)
    with running_sandbox(tenants, templates) as sandbox:
        args.env_file.parent.mkdir(parents=True, exist_ok=True)
        args.env_file.write_text(sandbox.env_file_text())
        args.env_file.chmod(0o600)
        lines = [
            "",
            "The sandbox is up.",
            f"  MailWizz API (stand-in)  {sandbox.mailwizz.url}   templates: {', '.join(templates)}",
            f"  MailWizz database        {sa.make_url(sandbox.database_url).render_as_string(hide_password=True)}",
            f"  DNS                      {sandbox.nameservers}",
        ]
        for tenant in tenants:
            lines.append(
                f"  {tenant:<23}  sending domain {sending_domain(tenant)} (DKIM selector {DKIM_SELECTOR}), "
                f"From news@{sending_domain(tenant)}"
            )
        lines += [
            f"  recipients               any address; {RECIPIENT_DOMAIN} has an MX",
            f"  settings for the product {args.env_file}",
            "",
            f"Next, in another terminal:  . {_shown(args.env_file)} && make run",
            f'then register the PowerMTA node {PMTA_NODE} and IPs on it (see README "Command line").',
            "Ctrl-C stops the sandbox.",
            "",
        ]
        print("\n".join(lines), flush=True)
        stop.wait()
    print("sandbox stopped.", flush=True)


if __name__ == "__main__":
    main()
