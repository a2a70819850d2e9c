"""Accounting read by a child process (`ColumnarReaderInProcess`): the same chunks, problems, resume points and line
numbers as read here, and the same counts from them; a child that dies or is left mid-piece is replaced by reading
here, and never outlives its reader."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from campaign_gateway.adapters.accounting_columns import AccountingChunk, ColumnarAccountingReader
from campaign_gateway.adapters.accounting_reader_process import ColumnarReaderInProcess, ReaderProcess
from campaign_gateway.domain.accounting import COLUMN_KINDS, AccountingAggregator, RecordType
from tests.unit.campaign_gateway.test_accounting_columns import HEADER, _file, _rows, _zone

KEPT_WHOLE = [COLUMN_KINDS.index(kind) for kind in (RecordType.BOUNCED, RecordType.REMOTE_BOUNCE, RecordType.FEEDBACK)]


def _started() -> ReaderProcess:
    process = ReaderProcess()
    deadline = time.monotonic() + 60
    while not process.ready():
        assert time.monotonic() < deadline, "the reader process did not start"
        time.sleep(0.02)
    return process


def _outcome(chunks: list[AccountingChunk]) -> list[tuple[object, ...]]:
    """What each chunk counts (one aggregator per chunk, as one batch of the service's is)."""
    outcomes = []
    for chunk in chunks:
        aggregator = AccountingAggregator(timezone_for=_zone, collect=True)
        aggregator.add_all(chunk.records)
        if chunk.columns is not None:
            aggregator.add_columns(chunk.columns)
        aggregator.origins.preload({})  # type: ignore[attr-defined]
        aggregator.resolve_pending()
        outcomes.append(
            (
                aggregator.counts,
                aggregator.totals(),
                aggregator.notable,
                aggregator.pending,
                aggregator.fresh_identities,
            )
        )
    return outcomes


def _whole_records(chunk: AccountingChunk) -> list[object]:
    if chunk.columns is None:
        return list(chunk.records)
    rows = np.flatnonzero(np.isin(chunk.columns.kind, KEPT_WHOLE))
    return list(chunk.columns.records(rows))


@pytest.fixture
def process() -> ReaderProcess:
    started = _started()
    yield started
    started.close()


def test_a_file_read_by_the_child_gives_what_reading_here_gives(tmp_path: Path, process: ReaderProcess) -> None:
    rows = _rows(3000, seed=11)
    rows.insert(500, "garbage without the fields")  # a problem, with its line number
    rows.insert(1500, "type,timeLogged,rcpt,vmta,dsnDiag")  # a rotated header: the parser's part
    rows.insert(1501, "d,2026-01-05 07:00:00+0000,r@gmail.com,vmta-192-0-2-2,smtp;250 ok")
    rows.insert(1502, HEADER)
    path = _file(tmp_path, [HEADER, *rows])
    here = ColumnarAccountingReader(chunk_bytes=8192)
    expected = list(here.read_file(path))
    there = ColumnarReaderInProcess(process, chunk_bytes=8192)
    points = []
    got = []
    for chunk in there.read_file(path):
        got.append(chunk)
        points.append((there.resume_point, there.lines_read))
    assert process.ready()  # still in service: every piece was read by the child
    here_again = ColumnarAccountingReader(chunk_bytes=8192)
    assert points == [(here_again.resume_point, here_again.lines_read) for _chunk in here_again.read_file(path)]
    assert [len(chunk) for chunk in got] == [len(chunk) for chunk in expected]
    assert any(chunk.columns is not None for chunk in got)
    assert there.problems == here.problems and there.problems
    assert there.ignored == here.ignored
    assert there.lines_read == here.lines_read
    assert [_whole_records(chunk) for chunk in got] == [_whole_records(chunk) for chunk in expected]
    assert _outcome(got) == _outcome(expected)


def test_a_chunk_crosses_with_only_the_records_kept_whole(tmp_path: Path) -> None:
    path = _file(tmp_path, [HEADER, *_rows(800, seed=5)])
    (chunk,) = list(ColumnarAccountingReader().read_file(path))
    assert chunk.columns is not None
    crossed = pickle.loads(pickle.dumps(chunk))
    assert _whole_records(crossed) == _whole_records(chunk)
    delivered = np.flatnonzero(chunk.columns.kind == COLUMN_KINDS.index(RecordType.DELIVERED))[:1]
    with pytest.raises(ValueError, match="b, rb and f"):
        crossed.columns.records(delivered)


def test_a_child_killed_mid_file_is_replaced_by_reading_here(tmp_path: Path, process: ReaderProcess) -> None:
    path = _file(tmp_path, [HEADER, *_rows(3000, seed=12)])
    expected = list(ColumnarAccountingReader(chunk_bytes=8192).read_file(path))
    reader = ColumnarReaderInProcess(process, chunk_bytes=8192)
    got = []
    for chunk in reader.read_file(path):
        got.append(chunk)
        if len(got) == 3:
            os.kill(process._child.pid, 9)  # the child dies between two pieces (or in the middle of one)
    assert not process.ready()
    assert process._child.poll() is not None  # reaped, not left a zombie
    assert [len(chunk) for chunk in got] == [len(chunk) for chunk in expected]
    assert _outcome(got) == _outcome(expected)


def test_a_reader_left_mid_piece_stops_its_child(tmp_path: Path, process: ReaderProcess) -> None:
    path = _file(tmp_path, [HEADER, *_rows(3000, seed=13)])
    reading = ColumnarReaderInProcess(process, chunk_bytes=1 << 20).read_piece(path.read_bytes(), final=True)
    next(reading)
    reading.close()
    assert process._child.poll() is not None
    assert not process.ready()
    # A new reader on the same (stopped) process reads here, with the same outcome.
    again = list(ColumnarReaderInProcess(process, chunk_bytes=8192).read_file(path))
    assert _outcome(again) == _outcome(list(ColumnarAccountingReader(chunk_bytes=8192).read_file(path)))


def test_before_the_child_is_ready_pieces_are_read_here(tmp_path: Path) -> None:
    process = ReaderProcess()
    try:
        path = _file(tmp_path, [HEADER, *_rows(400, seed=14)])
        reader = ColumnarReaderInProcess(process, chunk_bytes=8192)
        got = list(reader.read_file(path))  # the child needs a good fraction of a second to import its libraries
        assert _outcome(got) == _outcome(list(ColumnarAccountingReader(chunk_bytes=8192).read_file(path)))
    finally:
        process.close()
    assert process._child.poll() is not None
