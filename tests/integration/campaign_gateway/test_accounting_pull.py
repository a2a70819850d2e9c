"""Accounting pulled over SFTP from a real sshd: offsets, rotation, a nasty file ingested twice."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser, ProblemKind
from campaign_gateway.adapters.pmta_node import (
    AccountingPull,
    AccountingSource,
    NodeAccess,
    PmtaNodeClient,
    RemoteFileCursor,
)
from campaign_gateway.domain.accounting import AccountingAggregator, DayTotals, TotalsKey
from campaign_gateway.domain.providers import ProviderGroup
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.accounting_ingest import IngestReport, IngestState, ingest
from tests.integration.campaign_gateway.ssh_fixtures import node_access

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
IP, JAN5 = "192.0.2.10", date(2026, 1, 5)
HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,vmtaPool,"
    "jobId,envId,queue,header_Message-Id,format,feedbackType,reportingMTA,reportedDomain,envid"
)


def row(
    kind: str,
    n: int,
    rcpt: str,
    *,
    vmta: str = "vmta-192-0-2-10",
    diag: str = "smtp;250 ok",
    cat: str = "",
    about: int | None = None,
) -> str:
    """A record of HEADER's columns, queued at 2026-01-05 09:00 UTC + n minutes; an rb/f record is `about`
    the message of that number (same orig, Message-Id for f only: rb records carry no headers)."""
    queued = f"2026-01-05 {9 + n // 60:02d}:{n % 60:02d}:00+0000"
    logged = f"2026-01-05 {9 + n // 60:02d}:{n % 60:02d}:30+0000"
    late = kind in ("rb", "f")
    original = n if about is None else about
    fields = [
        kind,
        logged,
        "" if late else queued,
        f"bounce+{original}@mail.example.com",
        rcpt,
        "",
        "",
        diag,
        "mx.example.net (198.51.100.7)",
        cat,
        "" if late else "192.0.2.10",
        "" if late else vmta,
        "",
        "",
        "",
        "",
        "" if kind == "rb" else f"<msg-{original}@mail.example.com>",
        "arf" if kind == "f" else "",
        "abuse" if kind == "f" else "",
        "",
        "",
        "",
    ]
    return ",".join(fields)


def crlf(*lines: str) -> bytes:
    return "".join(text + "\r\n" for text in lines).encode()


def _source(node: PmtaNodeServer, *others: Path) -> AccountingSource:
    return AccountingSource(directory=str(node.accounting_dir), other_directories=tuple(str(path) for path in others))


def _pull(
    node: PmtaNodeServer, key: KeyPair, source: AccountingSource, cursor: RemoteFileCursor | None
) -> AccountingPull:
    async def go() -> AccountingPull:
        async with PmtaNodeClient(node_access(node, key)) as client:
            return await client.pull_accounting(source, cursor)

    return asyncio.run(go())


def _aggregator() -> AccountingAggregator:
    return AccountingAggregator(timezone_for=lambda _address: PARIS)


def test_offsets_carry_across_a_rotation(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[0]
    archive = node.accounting_dir / "archive"
    archive.mkdir()
    source = _source(node, archive)
    live = node.accounting_dir / "acct.csv"
    live.write_bytes(crlf(HEADER, *(row("d", n, f"u{n}@gmail.com") for n in range(3))))
    aggregator, state = _aggregator(), IngestState()

    state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator))
    assert state.cursor == RemoteFileCursor(str(live), os.stat(live).st_ino, live.stat().st_size)

    # Two more records and half of a third: the half stays unread.
    third = row("b", 5, "u5@yahoo.fr", cat="bad-mailbox").encode()
    with live.open("ab") as out:
        out.write(crlf(row("d", 3, "u3@gmail.com"), row("t", 4, "u4@gmail.com", diag="smtp;421-4.7.28 unusual rate")))
        out.write(third[:20])
    report = IngestReport()
    state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator, report=report))
    assert report.records == 2 and report.problems and report.problems[0].kind is ProblemKind.TRUNCATED
    assert state.cursor is not None and state.cursor.offset == live.stat().st_size - 20

    # PowerMTA finishes the line, then the file is rotated away to the move-to directory and a new one starts.
    with live.open("ab") as out:
        out.write(third[20:] + b"\r\n")
    rotated = archive / "acct-2026-01-05-0000.csv"
    live.rename(rotated)
    live.write_bytes(
        crlf(HEADER, row("d", 6, "u6@orange.fr"), row("rb", 7, "u0@gmail.com", cat="inactive-mailbox", about=0))
    )
    pull = _pull(node, ssh_client_key, source, state.cursor)
    assert [(piece.start.path, piece.complete) for piece in pull.pieces] == [(str(rotated), True), (str(live), False)]
    assert pull.pieces[0].start.offset == state.cursor.offset and pull.pieces[1].start.offset == 0

    state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator))
    assert state.cursor == RemoteFileCursor(str(live), os.stat(live).st_ino, live.stat().st_size)
    assert aggregator.totals() == {
        TotalsKey(IP, JAN5, ProviderGroup.GMAIL): DayTotals(
            sent=4, delivered=4, bounced_hard=1, deferred=1, throttled=1
        ),
        TotalsKey(IP, JAN5, ProviderGroup.YAHOO): DayTotals(sent=1, bounced_hard=1),
        TotalsKey(IP, JAN5, ProviderGroup.ORANGE): DayTotals(sent=1, delivered=1),
    }
    # Nothing new: a pull returns nothing and changes nothing.
    assert _pull(node, ssh_client_key, source, state.cursor).pieces == ()


def test_dated_files_rotated_in_place_are_read_in_order(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    node = pmta_nodes[1]
    source = _source(node)
    first = node.accounting_dir / "acct-2026-01-05-0000.csv"
    first.write_bytes(crlf(HEADER, row("d", 0, "a@gmail.com"), row("d", 1, "b@gmail.com")))
    aggregator, state = _aggregator(), IngestState()
    state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator))
    # max-size reached: PowerMTA writes one more record, closes the file and starts -0001 in place.
    with first.open("ab") as out:
        out.write(crlf(row("d", 2, "c@gmail.com")))
    second = node.accounting_dir / "acct-2026-01-05-0001.csv"
    second.write_bytes(crlf(HEADER, row("d", 3, "d@gmail.com")))
    (node.accounting_dir / "pmta.log").write_text("not accounting\n")
    state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator, max_bytes=1))
    assert state.cursor is not None and state.cursor.path == str(first)  # one line per pull: still in the old file
    for _ in range(200):
        state = asyncio.run(ingest(node_access(node, ssh_client_key), source, state, aggregator, max_bytes=64))
        if (
            state.cursor is not None
            and state.cursor.path == str(second)
            and state.cursor.offset == second.stat().st_size
        ):
            break
    assert aggregator.totals() == {TotalsKey(IP, JAN5, ProviderGroup.GMAIL): DayTotals(sent=4, delivered=4)}


def test_a_shrunk_or_vanished_file_is_noted(pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> None:
    node = pmta_nodes[1]
    source = _source(node)
    live = node.accounting_dir / "acct.csv"
    live.write_bytes(crlf(HEADER, row("d", 0, "a@gmail.com"), row("d", 1, "b@gmail.com")))
    pull = _pull(node, ssh_client_key, source, None)
    cursor = pull.cursor
    assert cursor is not None
    live.write_bytes(crlf(HEADER))  # truncated in place (copytruncate): same inode, smaller
    shrunk = _pull(node, ssh_client_key, source, cursor)
    assert shrunk.pieces[0].start.offset == 0 and "shrank" in shrunk.notes[0]
    live.unlink()
    newer = node.accounting_dir / "acct-2026-01-06-0000.csv"
    newer.write_bytes(crlf(HEADER, row("d", 2, "c@gmail.com")))
    gone = _pull(node, ssh_client_key, source, RemoteFileCursor("/elsewhere/acct-2026-01-05-0000.csv", 1, 10))
    assert [piece.start.path for piece in gone.pieces] == [str(newer)] and "is gone" in gone.notes[0]


def _ingest_until_idle(
    access: NodeAccess,
    source: AccountingSource,
    state: IngestState,
    aggregator: AccountingAggregator,
    report: IngestReport,
) -> IngestState:
    for _ in range(100):
        after = asyncio.run(ingest(access, source, state, aggregator, max_bytes=97, report=report))
        if after == state:
            return after
        state = after
    raise AssertionError("ingestion never caught up")


def _nasty_file() -> tuple[bytes, bytes]:
    """An accounting file with everything that goes wrong, in two halves (the second arrives later)."""
    first = crlf(
        HEADER,
        row("d", 0, "a0@gmail.com", diag='"smtp;250 2.0.0 OK, ""queued"" as\r\n12345"'),
        row("d", 1, "a1@hotmail.fr", diag='"smtp;250 ok,\nsplit reply"'),
        "garbage that is not a record",
        row("b", 2, "a2@yahoo.fr", cat="bad-mailbox", diag='"smtp;550 5.1.1 unknown, gone"'),
        row("t", 3, "a3@gmail.com", diag='"smtp;421-4.7.28 unusual rate, slow down"'),
        row("t", 3, "a3@gmail.com", diag='"smtp;421-4.7.28 unusual rate, slow down"'),  # an exact duplicate
        row("tq", 4, ""),
        row("f", 9, "redacted@example.invalid", about=1),  # a complaint, recipient redacted: matched by Message-Id
        row("rb", 10, "a7@gmail.com", cat="quota-issues", about=7),  # its original only comes in the second half
        '"never closed,' + "," * 20,
    )
    second = (
        crlf(
            # the pipe was restarted: a new header, other columns
            "type,rcpt,timeLogged,timeQueued,vmta,bounceCat,dsnDiag,header_Message-Id,orig",
            "d,a5@orange.fr,2026-01-05 09:05:30+0000,2026-01-05 09:05:00+0000,vmta-192-0-2-10,,ok,<msg-5@x>,bounce+5@x",
            "b,a6@gmail.com,2026-01-05 09:06:30+0000,2026-01-05 09:06:00+0000,vmta-192-0-2-10,spam-related,"
            '"smtp;550-5.7.1 likely unsolicited, see",<msg-6@x>,bounce+6@x',
            "d,a7@gmail.com,2026-01-05 09:07:30+0000,2026-01-05 09:07:00+0000,vmta-192-0-2-10,,ok,,"
            "bounce+7@mail.example.com",
            "d,a8@gmail.com,2026-01-05 23:30:30+0000,2026-01-05 23:30:00+0000,vmta-192-0-2-10,,ok,,bounce+8@x",  # Jan 6
            "d,x@gmail.com,2026-01-05 09:09:30+0000,2026-01-05 09:09:00+0000,vmta-someone-else,,ok,,bounce+9@x",
        )
        + b"d,a9@gmail.com,2026-01-05 09:09:30+0000,2026-01"
    )  # still being written
    return first, second


EXPECTED_NASTY = {
    TotalsKey(IP, JAN5, ProviderGroup.GMAIL): DayTotals(
        sent=3, delivered=2, bounced_soft=1, bounced_other=1, deferred=1, throttled=1
    ),
    TotalsKey(IP, JAN5, ProviderGroup.MICROSOFT): DayTotals(sent=1, delivered=1, complained=1),
    TotalsKey(IP, JAN5, ProviderGroup.YAHOO): DayTotals(sent=1, bounced_hard=1),
    TotalsKey(IP, JAN5, ProviderGroup.ORANGE): DayTotals(sent=1, delivered=1),
    TotalsKey(IP, date(2026, 1, 6), ProviderGroup.GMAIL): DayTotals(sent=1, delivered=1),
}


def test_a_nasty_file_ingested_twice_from_stored_offsets_gives_the_same_totals(
    pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair
) -> None:
    node = pmta_nodes[0]
    source = _source(node)
    access = node_access(node, ssh_client_key)
    first, second = _nasty_file()
    live = node.accounting_dir / "acct.csv"
    live.write_bytes(first)

    # Small pulls (a line or so each): records and quoted fields are cut between pulls all along the file.
    aggregator, report = _aggregator(), IngestReport()
    state = _ingest_until_idle(access, source, IngestState(), aggregator, report)
    with live.open("ab") as out:
        out.write(second)
    state = _ingest_until_idle(access, source, state, aggregator, report)
    assert aggregator.totals() == EXPECTED_NASTY
    kinds = [problem.kind for problem in report.problems or []]
    assert kinds.count(ProblemKind.GARBAGE) == 2 and ProblemKind.TRUNCATED in kinds
    assert state.cursor is not None and state.cursor.offset == live.stat().st_size - len(
        b"d,a9@gmail.com,2026-01-05 09:09:30+0000,2026-01"
    )
    assert aggregator.unmatched() == []

    # Ingested again from the stored offsets (a retried job, a second replica): nothing changes.
    stored_totals, stored_seen = aggregator.totals(), aggregator.seen
    again = AccountingAggregator(timezone_for=lambda _a: PARIS, totals_seed=stored_totals, seen_seed=stored_seen)
    again.origins = aggregator.origins
    state = _ingest_until_idle(access, source, state, again, IngestReport())
    assert again.totals() == EXPECTED_NASTY

    # And the whole file read again from offset 0 with the stored identities: every record is a duplicate.
    replay = AccountingAggregator(timezone_for=lambda _a: PARIS, totals_seed=stored_totals, seen_seed=stored_seen)
    asyncio.run(ingest(access, source, IngestState(), replay))
    assert replay.totals() == EXPECTED_NASTY

    # The same totals as one local pass over the file's bytes.
    local = _aggregator()
    local.add_all(record for _offset, record in AccountingCsvParser().parse(io.BytesIO(live.read_bytes())))
    local.resolve_pending()
    assert local.totals() == EXPECTED_NASTY
