"""`ingest_file` the columnar way (`add_columns`, originals stored by `add_origin_digests`) on SQLite and on the real
PostgreSQL: two files, the second's rb/f records attributed through the originals the first one stored, give the
totals, outcomes and suppressions that the parser and `add_all` give reading both files in one go."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser
from campaign_gateway.adapters.delivery_repositories import SqlAccountingRepository
from campaign_gateway.adapters.ippool_peer import PoolIp, TenantDay
from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.app.accounting import AccountingSettings, AccountingUseCases
from campaign_gateway.bootstrap import DEFINITION
from campaign_gateway.domain.accounting import AccountingAggregator, Outcome
from campaign_gateway.domain.contacts import Suppression
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from tests.harness.servers import PostgresServer

pytestmark = pytest.mark.integration

HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,vmtaPool,"
    "jobId,envId,queue,header_Message-Id,format,feedbackType,reportingMTA,reportedDomain,envid"
)
IPS = ("192.0.2.1", "192.0.2.2", "192.0.2.3")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 1, 21, 12, 0, tzinfo=UTC)


class _IpPool:
    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]:
        return [PoolIp(ip, "tenant-a", "marketing", "default", "node-1", "m.example", "WARM", None, 0, 0) for ip in IPS]

    def tenant_day(self, tenant_id: str) -> TenantDay:
        return TenantDay(tenant_id, "Europe/Paris", 0, 0)

    def record_delivery_stats(self, totals: object) -> int:
        return 0


def _sent(index: int) -> str:
    """A d or b record queued on 5 January around midnight in Paris (two local days)."""
    ip = IPS[index % len(IPS)]
    vmta = "vmta-" + ip.replace(".", "-")
    queued = datetime(2026, 1, 4, 22, 30, tzinfo=UTC).timestamp() + 7 * index
    q = datetime.fromtimestamp(queued, UTC).strftime("%Y-%m-%d %H:%M:%S+0000")
    rcpt = f"user{index}@{('gmail.com', 'orange.fr', 'example.org')[index % 3]}"
    tail = f"{vmta},pool,job1,env{index},x/{vmta},<{index}@m.example>,,,,,"
    if index % 9 == 0:
        cat = ("bad-mailbox", "quota-issues")[index % 2]
        return f'b,{q},{q},b+{index}@m.example,{rcpt},failed,5.0.0,"smtp;550 no, really",mx,{cat},,{tail}'
    return f"d,{q},{q},b+{index}@m.example,{rcpt},relayed,2.0.0,smtp;250 ok,mx,,{ip},{tail}"


def _late(index: int) -> str:
    """An rb (by orig) or f (by Message-Id) record about message `index`, logged on 20 January."""
    rcpt = f"user{index}@{('gmail.com', 'orange.fr', 'example.org')[index % 3]}"
    logged = "2026-01-20 08:00:00+0000"
    if index % 2:
        return f"rb,{logged},,B+{index}@m.example,{rcpt},,5.1.1,smtp;550 unknown,mx,bad-mailbox,,,,,,,,dsn,,,,"
    return f"f,{logged},,b+{index}@m.example,{rcpt},,,,,,192.0.2.9,,,,,,<{index}@m.example>,arf,abuse,fbl,x.example,"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    first = [HEADER, *(_sent(index) for index in range(3000))]
    # The second: late records about the first's messages, one about a message never seen (pending), and some of
    # the first's records again (duplicates).
    second = [HEADER, *(_late(index) for index in range(0, 3000, 7)), _late(100_001), *first[1:200]]
    paths = (tmp_path / "acct-1.csv", tmp_path / "acct-2.csv")
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return paths


def _ingest_both(db: Database, paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(db, DEFINITION.migrations)
    clock = FakeClock(NOW)

    def unit_of_work() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(db, source="test", clock=clock)

    with unit_of_work() as uow:
        spec = NodeSpec(name="node-1", ssh_host="127.0.0.1", ssh_host_key="ssh-ed25519 AAAA", hostname="n.example")
        uow.pmta_nodes.add(NodeRecord(spec=spec, create_time=NOW, update_time=NOW), token_sha256="")
        uow.commit()
    digests_written: list[int] = []
    write = SqlAccountingRepository.add_origin_digests

    def counting(self: SqlAccountingRepository, digests: np.ndarray, *args: object, **kwargs: object) -> None:
        digests_written.append(len(digests))
        write(self, digests, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlAccountingRepository, "add_origin_digests", counting)
    use_cases = AccountingUseCases(
        unit_of_work,
        clock,
        ippool=_IpPool(),  # type: ignore[arg-type]
        nodes=None,  # type: ignore[arg-type]
        scheduler=None,  # type: ignore[arg-type]
        settings=AccountingSettings(),
        check_token=lambda _node, _token: False,
    )
    reports = [use_cases.ingest_file("node-1", str(path), batch_bytes=64 << 10) for path in paths]

    expected = AccountingAggregator(timezone_for=lambda _address: PARIS, collect=True)
    for path in paths:
        expected.add_all(record for _offset, record in AccountingCsvParser().parse_file(path, final=True))
    expected.resolve_pending()
    assert sum(digests_written) > 3000  # the first file's originals were stored from columns
    with unit_of_work() as uow:
        stored = uow.accounting.totals()
        suppressed = len(uow.suppressions.list(tenant="tenant-a", limit=10_000, after=None))
        pending = uow.accounting.pending_count("node-1")
    assert stored == expected.totals()
    assert sum(totals.complained for totals in stored.values()) == len(range(0, 3000, 14))
    assert {key.day.isoformat() for key in stored} == {"2026-01-04", "2026-01-05"}  # the originals' local days
    counts = expected.counts
    assert sum(report.counted for report in reports) == counts[Outcome.COUNTED]
    assert sum(report.duplicates for report in reports) == counts[Outcome.DUPLICATE] == 199
    assert reports[-1].pending == pending == 1
    # Each hard bounce and complaint suppresses its recipient once (a b record and a later rb about it: one entry).
    assert suppressed == len({notable.record.rcpt.lower() for notable in expected.notable}) > 400
    db.dispose()


def test_two_files_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(tmp_path)
    _ingest_both(connect(Settings(data_dir=tmp_path), "campaign-gateway"), paths, monkeypatch)


def test_two_files_on_postgresql(tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(tmp_path)
    name = f"cg_columns_{tmp_path.name[-12:].replace('-', '_')}".lower()
    postgres.create_database(name)
    settings = Settings(data_dir=tmp_path, database_url=postgres.url_for(name))
    _ingest_both(connect(settings, "campaign-gateway"), paths, monkeypatch)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_suppressions_added_uncounted_are_those_add_stores(
    tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """`add_uncounted` (accounting's lean insert) stores what `add` stores: the first entry of a key wins (the key
    ignores case and surrounding spaces), a recipient already suppressed keeps its row, long values are cut."""
    url = ""
    if database == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        name = f"cg_supp_{tmp_path.name[-12:].replace('-', '_')}".lower()
        postgres.create_database(name)
        url = postgres.url_for(name)
    db = connect(Settings(data_dir=tmp_path, database_url=url), "campaign-gateway")
    migrate(db, DEFINITION.migrations)
    long_local = "x" * 400
    entries = [
        Suppression("tenant-a", " Ann@Example.org ", "hard-bounce", "pmta:node-1", NOW),
        Suppression("tenant-a", "ann@example.org", "complaint", "pmta:node-2", NOW),  # the same key: left out
        Suppression("tenant-b", "ann@example.org", "complaint", "pmta:node-1", NOW),  # another tenant's own
        Suppression("tenant-a", f"{long_local}@example.org", "r" * 600, "s" * 150, NOW),
        Suppression("tenant-a", "kept@example.org", "hard-bounce", "pmta:node-1", NOW),
    ]
    earlier = Suppression("tenant-a", "kept@example.org", "manual", "api", datetime(2026, 1, 2, tzinfo=UTC))

    def stored(tenant: str) -> list[Suppression]:
        with SqlCampaignUnitOfWork(db, source="test", clock=FakeClock(NOW)) as uow:
            return uow.suppressions.list(tenant=tenant, limit=100, after=None)

    for method in ("add", "add_uncounted"):
        with SqlCampaignUnitOfWork(db, source="test", clock=FakeClock(NOW)) as uow:
            uow.suppressions.remove("tenant-a", ["ann@example.org", f"{long_local}@example.org", "kept@example.org"])
            uow.suppressions.remove("tenant-b", ["ann@example.org"])
            uow.suppressions.add([earlier])
            getattr(uow.suppressions, method)(entries)
            uow.commit()
        if method == "add":
            by_add = (stored("tenant-a"), stored("tenant-b"))
    assert (stored("tenant-a"), stored("tenant-b")) == by_add
    rows = {s.email: s for s in by_add[0]}
    assert rows["Ann@Example.org"].source == "pmta:node-1"
    assert rows["kept@example.org"].source == "api"
    assert len(next(e for e in rows if e.startswith("xxx"))) == 320
    db.dispose()
