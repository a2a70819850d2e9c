"""Real rbldnsd and nsd on loopback, loaded with every kind of answer a list gives (listed, clean, error codes, …),
and empty reputation databases on SQLite and PostgreSQL.

The IP and domain lists are served under their real zone names (zen.spamhaus.org, …): the client
only ever asks the loopback server, so the production catalogue is tested unchanged. Broken zones
(listing the world, error answers, dead) are catalogue entries retargeted to `.test` names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from libs.config import Settings
from libs.db import Database, connect
from reputation.adapters.dns_client import UdpDnsClient, parse_nameservers
from reputation.adapters.dnsbl_scanner import DnsblScanner, Target
from reputation.domain.scan import ScanResult
from reputation.domain.zones import BARRACUDA, PSBL, SPAMCOP, SPAMHAUS_ZEN, Zone
from tests.harness.dns_servers import Rbldnsd
from tests.harness.servers import PostgresServer

LISTED_IP = "192.0.2.10"  # Spamhaus XBL (127.0.0.4) and SpamCop, with TXT reasons
CLEAN_IP = "192.0.2.20"
SPAMRATS_NOPTR_IP = "192.0.2.11"
MAILSPIKE_L4_IP = "192.0.2.12"
RESOLVER_ERROR_IP = "192.0.2.66"  # Spamhaus answers 127.255.255.254 for it
WHITELISTED_IP = "192.0.2.30"  # JunkEmailFilter 127.0.0.1
BROWN_IP = "192.0.2.31"  # JunkEmailFilter 127.0.0.4
LISTED_V6 = "2001:db8::10"
CLEAN_V6 = "2001:db8::20"

WORLD_ZONE = SPAMCOP.retarget("world.spamcop.test")  # lists everything, 127.0.0.1 included
ERROR_ZONE = SPAMHAUS_ZEN.retarget("public-resolver.zen.test")  # 127.255.255.254 for everything
DEAD_ZONE = PSBL.retarget("dead.psbl.test")  # answers, but no longer lists its test point
WILDCARD_ZONE = BARRACUDA.retarget("parked.barracuda.test")  # expired domain: a wildcard to a web server
UNSERVED_ZONE = PSBL.retarget("unserved.psbl.test")  # rbldnsd refuses: no verdict at all

IP_DATA: dict[str, list[str]] = {
    "zen.spamhaus.org": [
        "127.0.0.2 :127.0.0.2:SBL test point",
        f"{LISTED_IP} :127.0.0.4:Listed in XBL, see https://check.spamhaus.org/query/ip/$",
        f"{RESOLVER_ERROR_IP} :127.255.255.254:",
    ],
    "bl.spamcop.net": ["127.0.0.2", f"{LISTED_IP} :127.0.0.2:Blocked - see https://www.spamcop.net/bl.shtml?$"],
    "b.barracudacentral.org": ["127.0.0.2"],
    "psbl.surriel.com": ["127.0.0.2"],
    "bl.mailspike.net": ["127.0.0.2", f"{MAILSPIKE_L4_IP} :127.0.0.11:"],
    "all.spamrats.com": ["127.0.0.2 :127.0.0.38:", f"{SPAMRATS_NOPTR_IP} :127.0.0.37:RATS-NoPtr $"],
    "dnsbl-1.uceprotect.net": ["127.0.0.2"],
    "ix.dnsbl.manitu.net": ["127.0.0.2"],
    "hostkarma.junkemailfilter.com": [
        "127.0.0.2 :127.0.0.2:",
        "127.0.0.1 :127.0.0.1:",
        f"{WHITELISTED_IP} :127.0.0.1:white",
        f"{BROWN_IP} :127.0.0.4:brown",
    ],
}
ZEN_V6 = [f"{LISTED_V6} :127.0.0.3:CSS listing of $"]
DOMAIN_DATA: dict[str, list[str]] = {
    "dbl.spamhaus.org": [
        "dbltest.com :127.0.1.2:",
        "spammy.example :127.0.1.2:Spam domain $",
        "abused.example :127.0.1.102:",
    ],
    "multi.surbl.org": ["test.surbl.org :127.0.0.254:", "phish.example :127.0.0.8:", "both.example :127.0.0.80:"],
    "multi.uribl.com": ["test.uribl.com :127.0.0.14:", "grey.example :127.0.0.4:"],
}


def _name(zone: str) -> str:
    return zone.replace(".", "_")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new, empty reputation database: a SQLite file, then a database on the session's real PostgreSQL."""
    url = ""
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"rep_{request.node.name[-30:]}_{tmp_path.name[-8:]}".lower()
        name = "".join(c if c.isalnum() else "_" for c in name)
        postgres.create_database(name)
        url = postgres.url_for(name)
    database = connect(Settings(data_dir=tmp_path, database_url=url), "reputation")
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def rbl() -> Iterator[Rbldnsd]:
    """One rbldnsd for the read-only cases (each test only reads; live changes get their own)."""
    server = Rbldnsd()
    for zone, lines in IP_DATA.items():
        server.add_dataset(zone, "ip4set", _name(zone), lines)
    server.add_dataset("zen.spamhaus.org", "ip6trie", "zen_v6", ZEN_V6)
    for zone, lines in DOMAIN_DATA.items():
        server.add_dataset(zone, "dnset", _name(zone), lines)
    server.add_dataset(WORLD_ZONE.name, "ip4trie", "world", ["0.0.0.0/0"])
    server.add_dataset(ERROR_ZONE.name, "ip4trie", "error", [":127.255.255.254:", "0.0.0.0/0"])
    server.add_dataset(DEAD_ZONE.name, "ip4set", "dead", [LISTED_IP])
    server.add_dataset(WILDCARD_ZONE.name, "ip4trie", "wildcard", [":198.51.100.80:", "0.0.0.0/0"])
    with server:
        yield server


def scan(
    nameserver: str,
    targets: Sequence[Target],
    zones: Sequence[Zone],
    *,
    timeout: float = 1.0,
    attempts: int = 2,
    **scanner_options: object,
) -> list[ScanResult]:
    """A scan through the production client and scanner, from a synchronous test."""

    async def run() -> list[ScanResult]:
        async with UdpDnsClient(parse_nameservers(nameserver), timeout=timeout, attempts=attempts) as client:
            return await DnsblScanner(client, **scanner_options).scan(targets, zones)  # type: ignore[arg-type]

    return asyncio.run(run())
