"""Benchmark: PowerMTA accounting ingestion (target: the whole ingestion at least half as fast as a bare csv.reader).

Run: `python bench/bench_accounting_ingest.py [records] [--runs 3]` (or `make bench`, with fewer records). Writes a
1 000 000-record accounting file (default) in a temp dir, shaped like the one the rendered configuration asks
PowerMTA for (records d,b,t,rb,f with their record-fields, union header, CRLF), with a realistic mix: 72 % d,
6 % b, 15 % t, 4 % rb, 1 % f plus 2 % tq
rows (ignored), about a third of the diagnostics quoted because they hold commas or quotes, and one diagnostic in a
thousand spread over two lines. Then prints records/s, the median and spread of a few runs, for:
  - bare csv.reader over the file (text mode), doing nothing with the rows -- the reference;
  - AccountingCsvParser (byte offsets, column map, typed records, timestamps);
  - the parser feeding AccountingAggregator (dedup identities, attribution, local days, totals);
  - INGESTION: the service's own pipeline (`AccountingUseCases.ingest_file`) on a fresh SQLite database, as
    `make run` has it: read (as columns where the file is plain records, by the parser elsewhere), aggregate, and
    persist each batch of about 16 MB (some 57 000 records) in one transaction (absolute totals, the identities of
    the records counted, the originals rb/f records are matched to, pending rb/f, suppressions and bounce
    deliveries), ip-pool answered by an in-memory stand-in.
  - PULL: the production path (`AccountingUseCases.ingest_node`: the SFTP pull from the stored cursor, pieces of
    `pull_max_bytes`, the cursor stored with each batch, the totals sent to ip-pool at the end), the node answered
    by a stand-in that reads the local file as the SFTP client would (no SSH, no network).
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from benchkit import Report, repeat

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser
from campaign_gateway.adapters.ippool_peer import PoolIp, TenantDay
from campaign_gateway.adapters.pmta_node import AccountingPiece, AccountingPull, RemoteFileCursor
from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.app.accounting import AccountingSettings, AccountingUseCases
from campaign_gateway.bootstrap import DEFINITION
from campaign_gateway.domain.accounting import AccountingAggregator
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import connect, migrate

RECORDS = 1_000_000
RUNS = 3
HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,vmtaPool,"
    "jobId,envId,queue,header_Message-Id,format,feedbackType,reportingMTA,reportedDomain,envid"
)
DOMAINS = ["gmail.com"] * 40 + ["hotmail.fr", "outlook.com"] * 8 + ["yahoo.fr"] * 6 + ["orange.fr"] * 10
DOMAINS += ["free.fr"] * 6 + ["sfr.fr"] * 4 + ["laposte.net"] * 3 + ["icloud.com"] * 3 + ["example.org"] * 12
IPS = [f"192.0.2.{n}" for n in range(1, 41)]
DIAGS_OK = ["smtp;250 2.0.0 OK  1700000000 x1si123456.1 - gsmtp", "smtp;250 ok dirdel", '"smtp;250 2.0.0 OK, queued"']
DIAGS_BOUNCE = [
    ("bad-mailbox", '"smtp;550 5.1.1 The email account that you tried to reach does not exist, please check"'),
    ("quota-issues", "smtp;552 5.2.2 mailbox full"),
    ("spam-related", '"smtp;554 5.7.1 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying, no"'),
    ("bad-domain", "smtp;550 5.1.2 domain not found"),
]
DIAGS_DEFER = [
    '"smtp;421-4.7.28 Our system has detected an unusual rate of unsolicited mail, from your IP"',
    "smtp;451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
    '"smtp;421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume, or complaints"',
    "smtp;450 4.2.0 greylisted try again later",
    '"smtp;421 4.7.0 multi-line\r\n reply from the ""receiver"""',
]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+0000")


def _row(index: int, rng: random.Random, base: datetime, recent: list[tuple[str, str, str]]) -> str:
    queued = base + timedelta(seconds=index // 20)
    logged = queued + timedelta(seconds=rng.randrange(0, 600))
    ip = rng.choice(IPS)
    vmta = "vmta-" + ip.replace(".", "-")
    rcpt = f"user{index}@{rng.choice(DOMAINS)}"
    orig = f"bounces+{index}@mail.example.com"
    msgid = f"<{index}.{ip}@mail.example.com>"
    roll = rng.random()
    q, ql = _stamp(queued), _stamp(logged)
    dsn_mta = "mx.example.net (198.51.100.7)"
    if roll < 0.78 and len(recent) < 5000:
        recent.append((orig, rcpt, msgid))
    elif roll < 0.78:
        recent[index % 5000] = (orig, rcpt, msgid)
    tail = f"{vmta},tenant-a,job1,,x/{vmta},{msgid},,,,,"
    if roll < 0.72:
        diag = "smtp;250 2.0.0 OK" if index % 7 else rng.choice(DIAGS_OK)
        return f"d,{ql},{q},{orig},{rcpt},relayed,2.0.0 (success),{diag},{dsn_mta},,{ip},{tail}"
    if roll < 0.78:
        cat, diag = rng.choice(DIAGS_BOUNCE)
        return f"b,{ql},{q},{orig},{rcpt},failed,5.0.0,{diag},{dsn_mta},{cat},,{tail}"
    if roll < 0.93:
        diag = rng.choice(DIAGS_DEFER[:-1]) if index % 1000 else DIAGS_DEFER[-1]
        return f"t,{ql},{q},{orig},{rcpt},delayed,4.0.0,{diag},{dsn_mta},,{ip},{tail}"
    t_orig, t_rcpt, t_msgid = rng.choice(recent) if recent else (orig, rcpt, msgid)
    if roll < 0.97:
        return f"rb,{ql},,{t_orig},{t_rcpt},,5.1.1,smtp;550 5.1.1 user unknown,mx,bad-mailbox,,,,,,,,dsn,,,,"
    if roll < 0.98:
        return f"f,{ql},,{t_orig},{t_rcpt},,,,,,192.0.2.9,,,,,,{t_msgid},arf,abuse,fbl.example,example.com,"
    return f"tq,{ql},,,,,4.4.1,smtp;no answer,mx,,{ip},{vmta},,,,gmail.com/{vmta},,,,,,"


def write_file(path: Path, count: int) -> int:
    rng = random.Random(7)
    base = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        recent: list[tuple[str, str, str]] = []
        for index in range(count):
            out.write(_row(index, rng, base, recent) + "\r\n")
    return path.stat().st_size


def bare_csv(path: Path) -> int:
    rows = 0
    with path.open("r", encoding="utf-8", newline="") as handle:
        for _row_values in csv.reader(handle):
            rows += 1
    return rows - 1


def parser_only(path: Path) -> int:
    parser = AccountingCsvParser()
    count = 0
    for _offset, _record in parser.parse_file(path):
        count += 1
    return count + sum(parser.ignored.values())


def parser_and_aggregator(path: Path) -> int:
    paris = ZoneInfo("Europe/Paris")
    aggregator = AccountingAggregator(timezone_for=lambda _address: paris)
    parser = AccountingCsvParser()
    aggregator.add_all(record for _offset, record in parser.parse_file(path))
    aggregator.resolve_pending()
    return sum(aggregator.counts.values()) + sum(parser.ignored.values())


class _IpPool:
    """ip-pool's answers for the benchmark: the 40 IPs of one tenant, in Paris."""

    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]:
        return [
            PoolIp(ip, "tenant-a", "marketing", "default", "node-1", "mta.example.net", "WARM", None, 0, 0)
            for ip in IPS
        ]

    def tenant_day(self, tenant_id: str) -> TenantDay:
        return TenantDay(tenant_id, "Europe/Paris", 0, 0)

    def record_delivery_stats(self, totals: object) -> int:
        return 0


class _LocalNode:
    """The node's side of a pull for the benchmark: the file read from the cursor, `max_bytes` of it extended to
    the end of its line, as `PmtaNodeClient.pull_accounting` reads the newest file (never complete)."""

    configured = True

    def __init__(self, path: Path) -> None:
        self._path = path
        self._inode = path.stat().st_ino
        self._size = path.stat().st_size

    def pull(self, spec: NodeSpec, cursor: RemoteFileCursor | None, *, max_bytes: int) -> AccountingPull:
        offset = cursor.offset if cursor is not None else 0
        with self._path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
            if data and not data.endswith(b"\n"):
                data += handle.readline()
        start = RemoteFileCursor(str(self._path), self._inode, offset)
        return AccountingPull((AccountingPiece(start, data, False, cut=offset + len(data) < self._size),))


def ingestion(path: Path, *, pull: bool = False) -> int:
    """The service's pipeline into a fresh SQLite database (a new one per run: a second run would find every
    record already counted): `ingest_file`, or `ingest_node` (the pull) when `pull`."""
    with tempfile.TemporaryDirectory() as data:
        db = connect(Settings(data_dir=Path(data)), "campaign-gateway")
        migrate(db, DEFINITION.migrations)
        clock = FakeClock(datetime(2026, 1, 6, tzinfo=UTC))

        def unit_of_work() -> SqlCampaignUnitOfWork:
            return SqlCampaignUnitOfWork(db, source="bench", clock=clock)

        with unit_of_work() as uow:
            spec = NodeSpec(name="node-1", ssh_host="127.0.0.1", ssh_host_key="ssh-ed25519 AAAA", hostname="n.example")
            uow.pmta_nodes.add(NodeRecord(spec=spec, create_time=clock.now(), update_time=clock.now()), token_sha256="")
            uow.commit()
        use_cases = AccountingUseCases(
            unit_of_work,
            clock,
            ippool=_IpPool(),
            nodes=_LocalNode(path),  # type: ignore[arg-type]  # no SSH: a local file
            scheduler=None,  # type: ignore[arg-type]
            settings=AccountingSettings(max_batches_per_run=10_000),
            check_token=lambda _node, _token: False,
        )
        started = time.perf_counter()
        report = use_cases.ingest_node("node-1") if pull else use_cases.ingest_file("node-1", str(path))
        ingestion.seconds = time.perf_counter() - started  # type: ignore[attr-defined]
        db.dispose()
        return report.records + report.problems.__len__()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("records", type=int, nargs="?", default=RECORDS)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    count, runs = args.records, args.runs
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acct-2026-01-05-0000.csv"
        size = write_file(path, count)
        report = Report("accounting", f"PowerMTA accounting ingestion ({count:,} records, {size / 1e6:.0f} MB)")
        print(f"accounting file: {count:,} records, {size / 1e6:.1f} MB, {runs} runs each")
        seconds, rows = repeat(lambda: bare_csv(path), runs)
        report.add("baseline: bare csv.reader", [rows / s for s in seconds], "rows/s")
        for label, work in (("parser", parser_only), ("parser + aggregator", parser_and_aggregator)):
            seconds, produced = repeat(lambda work=work: work(path), runs)
            report.add(label, [produced / s for s in seconds], "records/s", baseline="baseline: bare csv.reader")
        ingested: list[float] = []
        for _ in range(runs):
            produced = ingestion(path)
            ingested.append(produced / ingestion.seconds)  # type: ignore[attr-defined]  # set-up not counted
        report.add(
            "INGESTION (parse, count, persist in SQLite)",
            ingested,
            "records/s",
            baseline="baseline: bare csv.reader",
            target=0.5,
        )
        pulled: list[float] = []
        for _ in range(runs):
            produced = ingestion(path, pull=True)
            pulled.append(produced / ingestion.seconds)  # type: ignore[attr-defined]
        report.add(
            "PULL (ingest_node: the SFTP pull's pipeline, no network)",
            pulled,
            "records/s",
            baseline="baseline: bare csv.reader",
        )
        report.finish()


if __name__ == "__main__":
    main()
