"""The columnar reading of an accounting file (`ColumnarAccountingReader` + `AccountingAggregator.add_columns`) gives
exactly what the parser and `add_all` give: the same records, problems, line numbers and ignored types, and per batch
the same totals, outcomes, identities, originals, pending records and notable records, in the same order."""

from __future__ import annotations

import gzip
import io
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from campaign_gateway.adapters.accounting_columns import AccountingChunk, ColumnarAccountingReader, _times
from campaign_gateway.adapters.accounting_csv import AccountingCsvParser, ProblemKind, ResumePoint, parse_time
from campaign_gateway.domain.accounting import AccountingAggregator, AccountingRecord, origin_key_digest

HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,vmtaPool,"
    "jobId,envId,queue,header_Message-Id,format,feedbackType,reportingMTA,reportedDomain,envid"
)
ZONES = {"192.0.2.1": ZoneInfo("Europe/Paris"), "192.0.2.2": ZoneInfo("America/New_York")}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+0000")


def _rows(count: int, seed: int) -> list[str]:
    """Records of every type around midnight in both zones, with quoted diagnostics (commas, quotes, line ends),
    rb/f records before and after their originals, repeated records, envId and envid, and non-ASCII addresses."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 5, 4, 50, tzinfo=UTC)
    rows: list[str] = []
    sent: list[tuple[str, str, str, str]] = []
    for index in range(count):
        queued = base + timedelta(seconds=37 * index)
        logged = queued + timedelta(seconds=rng.randrange(0, 900))
        ip = rng.choice(["192.0.2.1", "192.0.2.2", "198.51.100.9"])  # the last one is no VMTA of ours
        vmta = "vmta-" + ip.replace(".", "-") if ip != "198.51.100.9" else "other-vmta"
        domain = rng.choice(["gmail.com", "Hotmail.FR", "orange.fr", "example.org", "bücher.example"])
        rcpt = rng.choice([f"user{index}@{domain}", f"Ünïcode{index}@{domain}"])
        orig, msgid, env = f"b+{index}@m.example.com", f"<{index}@m.example.com>", rng.choice(["", f"env{index}"])
        q, ql = _stamp(queued), _stamp(logged)
        diag = rng.choice(
            [
                "smtp;250 ok",
                '"smtp;250 2.0.0 OK, queued"',
                '"smtp;421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred, complaints"',
                '"smtp;421 multi-line\r\n reply from the ""receiver"""',
                "smtp;451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
            ]
        )
        roll = rng.random()
        tail = f"{vmta},pool,job{index % 3},{env},x/{vmta},{msgid},,,,,"
        if roll < 0.45:
            rows.append(f"d,{ql},{q},{orig},{rcpt},relayed,2.0.0,{diag},mx,,{ip},{tail}")
            sent.append((orig, rcpt, msgid, env))
        elif roll < 0.6:
            cat = rng.choice(["bad-mailbox", "quota-issues", "spam-related", "", "message-expired"])
            rows.append(f"b,{ql},{q},{orig},{rcpt},failed,5.0.0,{diag},mx,{cat},,{tail}")
            sent.append((orig, rcpt, msgid, env))
        elif roll < 0.75:
            rows.append(f"t,{ql},{q},{orig},{rcpt},delayed,4.0.0,{diag},mx,,{ip},{tail}")
        elif roll < 0.85:
            # An rb about an earlier message, or about one still to come (pending, then resolved).
            later = (f"b+{index + 3}@m.example.com", f"user{index + 3}@gmail.com", "", "")
            o, r, m, e = rng.choice(sent) if sent and rng.random() < 0.8 else later
            cat = rng.choice(["bad-mailbox", "quota-issues"])
            rows.append(f"rb,{ql},,{o.upper()},{r},,5.1.1,smtp;550 unknown,mx,{cat},,,,,{e},,,dsn,,,,")
        elif roll < 0.9:
            o, r, m, e = rng.choice(sent) if sent else (orig, rcpt, msgid, env)
            rows.append(f"f,{ql},,{o},{r},,,,,,192.0.2.9,,,,,,{m},arf,abuse,fbl.example,example.com,{e}")
        elif roll < 0.95:
            rows.append(f"tq,{ql},,,,,4.4.1,smtp;no answer,mx,,{ip},{vmta},,,,gmail.com/{vmta},,,,,,")
        elif rows:
            rows.append(rows[rng.randrange(len(rows))])  # the same record again
    return rows


def _file(tmp_path: Path, lines: list[str], *, name: str = "acct.csv", end: str = "\r\n", zipped: bool = False) -> Path:
    data = (end.join(lines) + end).encode("utf-8")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if zipped else data)
    return path


def _records(chunk: AccountingChunk) -> list[AccountingRecord]:
    return chunk.records if chunk.columns is None else chunk.columns.records(np.arange(len(chunk.columns)))


def _zone(address: str) -> ZoneInfo:
    return ZONES.get(address, ZoneInfo("UTC"))


def _check(path: Path, chunk_bytes: int) -> list[AccountingChunk]:
    parser = AccountingCsvParser()
    expected = [record for _offset, record in parser.parse_file(path, final=True)]
    reader = ColumnarAccountingReader(chunk_bytes=chunk_bytes)
    chunks = list(reader.read_file(path))
    assert [record for chunk in chunks for record in _records(chunk)] == expected
    assert reader.problems == parser.problems
    assert [problem for chunk in chunks for problem in chunk.problems] == parser.problems
    assert reader.ignored == parser.ignored
    assert reader.lines_read == parser.lines_read
    for chunk in chunks:
        if chunk.columns is None:
            continue
        by_records = AccountingAggregator(timezone_for=_zone, collect=True)
        by_records.add_all(_records(chunk))
        by_columns = AccountingAggregator(timezone_for=_zone, collect=True)
        by_columns.add_columns(chunk.columns)
        for aggregator in (by_records, by_columns):  # what storage gives back for the pending ones
            aggregator.origins.preload({})  # type: ignore[attr-defined]
        assert by_columns.counts == by_records.counts
        assert by_columns.totals() == by_records.totals()
        assert by_columns.fresh_identities == by_records.fresh_identities
        assert by_columns.seen == by_records.seen
        assert by_columns.pending == by_records.pending
        assert by_columns.notable == by_records.notable
        digests, slots, origins = by_columns.origins.fresh_digests()  # type: ignore[attr-defined]
        remembered = by_records.origins.fresh_items()  # type: ignore[attr-defined]
        assert {origin_key_digest(key): origin for key, origin in remembered} == {
            digest: origins[slot] for digest, slot in zip(digests.tolist(), slots.tolist(), strict=True)
        }
        assert by_columns.resolve_pending() == by_records.resolve_pending()
        assert by_columns.totals() == by_records.totals()
        assert by_columns.notable == by_records.notable
        assert by_columns.unmatched() == by_records.unmatched()
    return chunks


@pytest.mark.parametrize("chunk_bytes", [700, 4096, 1 << 20])
def test_a_plain_file_is_read_as_columns_with_the_same_outcome(tmp_path: Path, chunk_bytes: int) -> None:
    chunks = _check(_file(tmp_path, [HEADER, *_rows(1500, seed=chunk_bytes)]), chunk_bytes)
    assert sum(len(chunk) for chunk in chunks if chunk.columns is not None) > 1000  # the fast way was taken


@pytest.mark.parametrize("chunk_bytes", [700, 4096, 1 << 20])
def test_every_nasty_case_gives_the_parsers_outcome(tmp_path: Path, chunk_bytes: int) -> None:
    rows = _rows(1200, seed=7)
    nasty = [
        "d,not a time,,a@b,c@gmail.com,,,,,,,vmta-192-0-2-1,,,,,,,,,,",  # a bad timestamp
        "garbage without the fields",  # the wrong number of fields
        "x,2026-01-05 06:00:00+0000,,,,,,,,,,,,,,,,,,,,",  # an unknown record type
        'd,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,"open quote,,,,,,,,,,,,,',  # a quote never closed
        'd,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,smtp "quoted" inside,,,,vmta-192-0-2-1,,,,,,,,,,',
        'd,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,"closed"then text,,,,vmta-192-0-2-1,,,,,,,,,,',
        "d,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,bare\rCR,,,,vmta-192-0-2-1,,,,,,,,,,",
        "",  # an empty line
        "D,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,,,,,vmta-192-0-2-1,,,,,,,,,,",  # a type in capitals
        "TQ,2026-01-05 06:00:00+0000,,,,,,,,,,,,,,,,,,,,",  # an ignored type in capitals
        "delivery,1767592800,01/05/2026 06:00:00,a@b,c@gmail.com,,,,,,,vmta-192-0-2-1,,,,,,,,,,",  # other spellings
        "d,2026-02-30 06:00:00+0000,,a@b,c@gmail.com,,,,,,,vmta-192-0-2-1,,,,,,,,,,",  # no such day
        "d,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,\x00,,,,vmta-192-0-2-1,,,,,,,,,,",  # a NUL byte
        "type,timeLogged,rcpt,vmta,dsnDiag",  # the file was rotated: another header
        "d,2026-01-05 07:00:00+0000,r@gmail.com,vmta-192-0-2-2,smtp;250 ok",
        HEADER,
    ]
    for position, line in zip(range(40, 40 * (len(nasty) + 1), 40), nasty, strict=True):
        rows.insert(position, line)
    lines = [HEADER, *rows, "d,2026-01-05 08:00:00+0000,,a@b,trunc"]  # a truncated last line (no line end)
    path = tmp_path / "nasty.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\xff\xfe broken utf-8\r\n" + b"d,2026-01-05")
    chunks = _check(path, chunk_bytes)
    assert any(chunk.problems for chunk in chunks)
    if chunk_bytes < 1 << 20:  # the pieces without a nasty line are read as columns all the same
        assert any(chunk.columns is not None for chunk in chunks)


def test_lf_line_ends_a_bom_and_gzip(tmp_path: Path) -> None:
    lines = ["\ufeff" + HEADER, *_rows(800, seed=3)]
    _check(_file(tmp_path, lines, end="\n"), 2048)
    _check(_file(tmp_path, lines, name="acct.csv.gz", zipped=True), 2048)


def test_an_empty_file_and_a_header_alone(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    assert _check(tmp_path / "empty.csv", 1024) == []
    assert _check(_file(tmp_path, [HEADER]), 1024) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_growing_file_read_in_pieces_from_resume_points_gives_the_parsers_outcome(tmp_path: Path, seed: int) -> None:
    """The SFTP pull: each read starts at the stored resume point (offset, header, lines) and ends anywhere, in the
    middle of a line or of a quoted record; only the last read is final. Each read gives what the parser gives."""
    rows = _rows(900, seed=seed)
    rows.insert(300, "garbage without the fields")
    rows.insert(500, 'd,2026-01-05 06:00:00+0000,,a@b,c@gmail.com,,,"open quote,,,,,,,,,,,,,')
    rows.insert(700, "type,timeLogged,rcpt,vmta,dsnDiag")
    rows.insert(701, "d,2026-01-05 07:00:00+0000,r@gmail.com,vmta-192-0-2-2,smtp;250 ok")
    rows.insert(702, HEADER)
    data = ("\r\n".join([HEADER, *rows]) + "\r\nd,2026-01-05 08:00:00+0000,,a@b,trunc").encode("utf-8")
    rng = random.Random(seed)
    resume, lines, end = ResumePoint(), 0, 0
    everything: list[AccountingRecord] = []
    columnar = 0
    while end < len(data):
        end = min(len(data), end + rng.choice([1, 97, 2000, 9000, 30000]))
        final = end == len(data)
        parser = AccountingCsvParser(resume=resume)
        expected = [record for _offset, record in parser.parse(io.BytesIO(data[resume.offset : end]), final=final)]
        problems = [
            replace(problem, line=problem.line + lines)
            for problem in parser.problems
            if final or problem.kind is not ProblemKind.TRUNCATED
        ]
        reader = ColumnarAccountingReader(resume=resume, lines_read=lines)
        chunks = list(reader.read_piece(data[resume.offset : end], final=final))
        assert [record for chunk in chunks for record in _records(chunk)] == expected
        assert [problem for chunk in chunks for problem in chunk.problems] == problems == reader.problems
        assert reader.resume_point == parser.resume_point
        assert reader.lines_read == lines + parser.lines_read
        everything += expected
        columnar += sum(len(chunk) for chunk in chunks if chunk.columns is not None)
        resume, lines = reader.resume_point, reader.lines_read
    whole = AccountingCsvParser()
    assert everything == [record for _offset, record in whole.parse(io.BytesIO(data), final=True)]
    assert columnar > 300  # the fast way was taken


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05 06:00:00+0000",
        "2026-02-30 06:00:00+0000",  # Arrow rolls it over to 2 March, parse_time refuses it
        "2026-01-05 23:59:60+0000",
        "2026-01-05 24:00:00+0000",
        "0000-01-01 00:00:00+0000",
        "0001-01-01 00:00:00+0000",
        "9999-12-31 23:59:59+0000",
        "2024-02-29 12:00:00+0000",
        "2026-01-05 06:00:00+0100",
        " 2026-01-05 06:00:00+0000",
        "\uff12\uff10\uff12\uff16-01-05 06:00:00+0000",  # full-width digits
        "1767592800",
        "",
    ],
)
def test_timestamps_are_read_as_parse_time_reads_them(text: str) -> None:
    moment = parse_time(text)
    found = _times(pa.array([text, "2026-01-05 06:00:00+0000"]), empty_is_none=False)
    if moment is None:
        assert found is None
    else:
        assert found is not None and found[0].tolist() == [int(moment.timestamp()), 1767592800]
