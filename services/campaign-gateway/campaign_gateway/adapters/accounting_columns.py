"""PowerMTA accounting CSV as columns: the fast way to read a whole file (Arrow's CSV reader, numpy), with
`AccountingCsvParser` reading every piece the fast way cannot vouch for, so the outcome is the parser's exactly.

Public API:
    AccountingChunk(records, columns, problems)     -- one piece of the file: records OR columns, and its problems
    ColumnarAccountingReader(*, chunk_bytes=16 MiB, resume=ResumePoint(), lines_read=0)
        .read_file(path) -> Iterator[AccountingChunk]  -- a complete file (plain or gzip), as `parse_file(final=True)`
        .read_piece(data, final=) -> Iterator[AccountingChunk]
                                                     -- bytes of a file from the resume point, as `parse(final=)`
        .resume_point                                -- where the next read starts (as the parser's)
        .problems, .ignored, .lines_read             -- as the parser's, line numbers from the start of the file

The file is cut into pieces of about `chunk_bytes` at line ends. A piece is read as columns only when everything in
it is what the parser reads as plain records: known record types (or ignored ones) under the header in force, no
header line, valid UTF-8, quoting the strict csv reader accepts (a quote opens a field or ends one, `""` inside), no
bare CR, the right number of fields, timestamps `parse_time` reads (each distinct text is read by `parse_time`
itself), and each record spanning lines checked by the parser itself. Anything else -- a garbage line, a repeated
header, a truncated last line, odd quoting -- and the whole piece goes through `AccountingCsvParser`, which reports
every problem with its line number and byte offset as it would reading the file in one go.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import xxhash

from campaign_gateway.adapters.accounting_csv import (
    _COLUMNS,
    _FAST_TYPES,
    _KNOWN_IGNORED,
    AccountingCsvParser,
    ParseProblem,
    ProblemKind,
    ResumePoint,
    _positions,
    _RecordBuilder,
    open_accounting_file,
    parse_time,
)
from campaign_gateway.domain.accounting import COLUMN_KINDS, AccountingRecord, Codes, RecordColumns, RecordType

_QUOTE, _COMMA, _CR, _LF = ord('"'), ord(","), ord("\r"), ord("\n")
_KIND_CODE = {spelling: COLUMN_KINDS.index(kind) for spelling, kind in _FAST_TYPES.items()}
_SEPARATOR = "\x1f"
_TRANSIENT = COLUMN_KINDS.index(RecordType.TRANSIENT)
_BOUNCED, _REMOTE_BOUNCE, _FEEDBACK = (
    COLUMN_KINDS.index(kind) for kind in (RecordType.BOUNCED, RecordType.REMOTE_BOUNCE, RecordType.FEEDBACK)
)


class AccountingChunk(NamedTuple):
    records: list[AccountingRecord]
    columns: RecordColumns | None
    problems: list[ParseProblem]

    def __len__(self) -> int:
        return len(self.columns) if self.columns is not None else len(self.records)


class ColumnarAccountingReader:
    """One instance per file read (it keeps the header in force, the position and the line count)."""

    def __init__(self, *, chunk_bytes: int = 16 << 20, resume: ResumePoint | None = None, lines_read: int = 0) -> None:
        """`resume` and `lines_read`: where an earlier read of the same file stopped (its offset, header in force
        and the physical lines before it), so that offsets and problem line numbers run on from there."""
        self._chunk_bytes = chunk_bytes
        self._columns: tuple[str, ...] | None = resume.columns if resume else None
        self._offset = resume.offset if resume else 0
        self.problems: list[ParseProblem] = []
        self.ignored: Counter[str] = Counter()
        self.lines_read = lines_read

    @property
    def resume_point(self) -> ResumePoint:
        """Where the next read starts: just after the last record (or line) read, with the header in force. Read
        between the chunks a read yields, it is where that chunk ends."""
        return ResumePoint(self._offset, self._columns)

    def read_piece(self, data: bytes, *, final: bool) -> Iterator[AccountingChunk]:
        """`data`, the bytes of the file from `resume_point` on, read as `AccountingCsvParser.parse(final=final)`
        reads them: the same records, problems and resume point. Not final (a file still growing), an unfinished
        last record is left unread (`resume_point` stops before it) and not reported."""
        cut = data.rfind(b"\n") + 1
        piece, tail = data[:cut], data[cut:]
        while piece:
            chunk, rest = self._next(piece)
            if len(chunk) or chunk.problems:
                yield chunk
            if len(rest) == len(piece):
                break  # an unfinished record
            piece = rest
        left = piece + tail
        if final and left:
            chunk, _rest = self._parsed(left, final=True)
            yield chunk

    def read_file(self, path: str | Path) -> Iterator[AccountingChunk]:
        """A file (plain or gzip) from `resume_point` to its end, as `AccountingCsvParser.parse_file(final=True)`
        reads it: pieces of about `chunk_bytes` to a line end, each read by `read_piece`; a record left unfinished
        at the end of a piece is read again with the next one."""
        with open_accounting_file(path, self._offset) as stream:
            carry = b""
            while True:
                data = stream.read(self._chunk_bytes)
                if data and not data.endswith(b"\n"):
                    data += stream.readline()  # to a line end: the whole piece is read at once
                buffer = carry + data if carry else data
                if not buffer:
                    return
                start = self._offset
                yield from self.read_piece(buffer, final=not data)
                if not data:
                    return
                carry = buffer[self._offset - start :]

    # ------------------------------------------------------------ pieces

    def _next(self, piece: bytes) -> tuple[AccountingChunk, bytes]:
        """The next chunk of `piece` (which ends with a line end) and what is left of it to read."""
        first = piece[: piece.find(b"\n") + 1]
        if self._columns is None or first.lstrip(b"\xef\xbb\xbf").startswith(b"type,"):
            # A header: the parser takes its line (and sets the columns), the rest goes on.
            if b'"' in first:
                return self._parsed(piece, final=False)
            chunk, left = self._parsed(first, final=False)
            return chunk, left + piece[len(first) :]
        quotes = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == _QUOTE)
        if len(quotes) % 2:
            # A quoted field open at the end: the piece stops before the line it opens on (read with what follows).
            start = piece.rfind(b"\n", 0, int(quotes[-1])) + 1
            if start == 0:
                return self._parsed(piece, final=False)
            piece, rest = piece[:start], piece[start:]
            chunk, left = self._columnar_or_parsed(piece, quotes[quotes < start])
            return chunk, left + rest
        return self._columnar_or_parsed(piece, quotes)

    def _columnar_or_parsed(self, piece: bytes, quotes: np.ndarray) -> tuple[AccountingChunk, bytes]:
        columns = self._columnar(piece, quotes)
        if columns is None:
            return self._parsed(piece, final=False)
        self._offset += len(piece)
        return AccountingChunk([], columns, []), b""

    def _parsed(self, piece: bytes, *, final: bool) -> tuple[AccountingChunk, bytes]:
        """`piece` read by AccountingCsvParser; returns the chunk and the bytes it left (an unfinished record)."""
        parser = AccountingCsvParser(resume=ResumePoint(self._offset, self._columns))
        records = [record for _offset, record in parser.parse(io.BytesIO(piece), final=final)]
        resume = parser.resume_point
        consumed = resume.offset - self._offset
        problems = [
            replace(problem, line=problem.line + self.lines_read)
            for problem in parser.problems
            if final or problem.kind is not ProblemKind.TRUNCATED
        ]
        self._columns, self._offset = resume.columns, resume.offset
        self.lines_read += parser.lines_read
        self.ignored.update(parser.ignored)
        self.problems += problems
        return AccountingChunk(records, None, problems), piece[consumed:]

    # ------------------------------------------------------------ the fast way

    def _columnar(self, piece: bytes, quotes: np.ndarray) -> RecordColumns | None:
        """The piece as columns, or None when it holds anything but plain records (see the module doc)."""
        columns = self._columns
        if columns is None or b"\x00" in piece:
            return None  # no header yet; a NUL byte (the csv module and Arrow may not agree on it)
        if len(quotes) % 2:
            return None  # a quote left open (a stray quote before the one `_next` cut at): the parser's to judge
        raw = np.frombuffer(piece, dtype=np.uint8)
        newlines = np.flatnonzero(raw == _LF)
        returns = np.flatnonzero(raw == _CR)
        if len(returns) and (raw[returns + 1] != _LF).any():
            return None  # a bare CR: a line end to Arrow, data to the parser
        continued = 0
        if len(quotes):
            opens, closes = quotes[0::2], quotes[1::2]
            before = raw[np.maximum(opens - 1, 0)]
            after = raw[closes + 1]
            if not (
                ((before == _COMMA) | (before == _LF) | (before == _QUOTE) | (opens == 0)).all()
                and ((after == _COMMA) | (after == _CR) | (after == _LF) | (after == _QUOTE)).all()
            ):
                return None  # a quote inside an unquoted field, or text after a closing quote
            spans = np.searchsorted(newlines, closes) - np.searchsorted(newlines, opens)
            if spans.any():
                continued = int(spans.sum())
                if not self._spanning_records_agree(piece, newlines, opens[spans > 0], closes[spans > 0]):
                    return None
        try:
            table = _read_csv(piece, len(columns))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None  # a wrong number of fields, or bytes that are not UTF-8
        if table.num_rows != len(newlines) - continued:
            return None
        return self._to_columns(table, columns, len(newlines))

    def _spanning_records_agree(
        self, piece: bytes, newlines: np.ndarray, opens: np.ndarray, closes: np.ndarray
    ) -> bool:
        """Each record with a quoted line end, read by the parser alone: it must be exactly one record (the parser's
        limits on a record's lines, and its reading of a line that is a whole record on its own, are its own)."""
        starts = np.searchsorted(newlines, opens)
        ends = np.searchsorted(newlines, closes)
        spans: dict[int, int] = {}
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            spans[start] = max(end, spans.get(start, end))
        for start, end in spans.items():
            begin = int(newlines[start - 1]) + 1 if start else 0
            text = piece[begin : int(newlines[end]) + 1]
            parser = AccountingCsvParser(resume=ResumePoint(0, self._columns))
            taken = list(parser.parse(io.BytesIO(text), final=True))
            if (
                parser.problems
                or len(taken) + sum(parser.ignored.values()) != 1
                or parser.lines_read != end - start + 1
            ):
                return False
        return True

    def _to_columns(self, table: pa.Table, columns: tuple[str, ...], lines: int) -> RecordColumns | None:
        types = table.column(0).combine_chunks().dictionary_encode()
        spellings = types.dictionary.to_pylist()
        if any(spelling not in _KIND_CODE and spelling not in _KNOWN_IGNORED for spelling in spellings):
            return None  # a header, or an unknown type: the parser reports it
        type_codes = types.indices.to_numpy(zero_copy_only=False)
        kind_of = np.array([_KIND_CODE.get(spelling, -1) for spelling in spellings], dtype=np.int8)
        kinds = kind_of[type_codes]
        counted = kinds >= 0
        ignored = Counter({spelling: int((type_codes == code).sum()) for code, spelling in enumerate(spellings)})
        # The rows of ignored types (tq) are dropped from the columns read, not from the whole table: a filter
        # copies every column, most of which are never read here.
        kept = None if counted.all() else pa.array(counted)
        if kept is not None:
            kinds = kinds[counted]
        rows_of_table = np.flatnonzero(counted) if kept is not None else None
        size = len(kinds)

        def read_column(index: int) -> pa.Array:
            values = table.column(index).combine_chunks()
            return values.filter(kept) if kept is not None else values

        def field(name: str) -> pa.Array:
            found = _positions(columns, _COLUMNS[name])
            if not found:
                return pa.repeat("", size)
            value = read_column(found[0])
            for other in found[1:]:  # a field in several columns: the first non-empty wins
                value = pc.if_else(pc.equal(value, ""), read_column(other), value)
            return value

        logged = _times(field("time_logged"), empty_is_none=False)
        queued = _times(field("time_queued"), empty_is_none=True)
        if logged is None or queued is None:
            return None  # a timestamp that is not one: the parser reports it
        logged_seconds, logged_text = logged
        queued_seconds, queued_text = queued
        orig, rcpt = field("orig"), field("rcpt")
        orig_lower, rcpt_lower = _lower(orig), _lower(rcpt)
        message_id = field("message_id")
        message_id = pc.utf8_trim(message_id, characters=" <>")
        env_id, vmta, diag, bounce_cat = field("env_id"), field("vmta"), field("dsn_diag"), field("bounce_cat")
        canonical = pa.array([kind.value for kind in COLUMN_KINDS]).take(pa.array(kinds.astype(np.int32)))
        text = pc.binary_join_element_wise(
            canonical,
            logged_text,
            queued_text,
            orig,
            rcpt_lower,
            vmta,
            field("dsn_status"),
            diag,
            bounce_cat,
            env_id,
            field("job_id"),
            message_id,
            field("feedback_type"),
            _SEPARATOR,
        )
        identity = list(map(xxhash.xxh3_128_digest, _bytes(text)))
        # Origin keys only where they are read: d/b records register them, rb/f records look them up.
        keyed = kinds != _TRANSIENT
        keys, has_key = [], []
        for present, key in (
            (pc.not_equal(message_id, ""), pc.binary_join_element_wise("m", message_id, _SEPARATOR)),
            (pc.not_equal(env_id, ""), pc.binary_join_element_wise("e", env_id, rcpt_lower, _SEPARATOR)),
            (pc.not_equal(orig, ""), pc.binary_join_element_wise("o", orig_lower, rcpt_lower, _SEPARATOR)),
        ):
            mask = present.to_numpy(zero_copy_only=False) & keyed
            digests = np.zeros(size, dtype=np.uint64)
            chosen = key.filter(pa.array(mask))
            digests[mask] = np.fromiter(map(xxhash.xxh3_64_intdigest, _bytes(chosen)), np.uint64, len(chosen))
            keys.append(digests)
            has_key.append(mask)
        self.ignored.update({k: v for k, v in ignored.items() if k in _KNOWN_IGNORED and v})
        self.lines_read += lines
        return RecordColumns(
            kind=kinds,
            identity=identity,
            hour=logged_seconds // 3600,
            moment=np.where(queued_seconds != _NO_TIME, queued_seconds, logged_seconds),
            vmta=_codes(vmta),
            source_ip=_codes(field("dlv_source_ip")),
            domain=_codes(pc.replace_substring_regex(rcpt, "(?s)^.*@", "")),
            bounce_cat=_codes(bounce_cat),
            diag=_codes(diag),
            keys=(keys[0], keys[1], keys[2]),
            has_key=(has_key[0], has_key[1], has_key[2]),
            records=_RowsKeptWhole(table, np.arange(size) if rows_of_table is None else rows_of_table, kinds, columns),
        )


class _RowsKeptWhole:
    """`RecordColumns.records`: the parser's own records for rows of the table (the same builder, the same values).

    Pickled (a chunk read in another process), it holds only the rows the aggregator may ask for whole -- b, rb
    and f records: a hard bounce, a complaint, an rb/f waiting for its original -- already built, so the process
    that counts does not build them."""

    def __init__(self, table: pa.Table, positions: np.ndarray, kinds: np.ndarray, columns: tuple[str, ...]) -> None:
        self._table = table
        self._position = positions  # row -> row of `table`
        self._kinds = kinds
        self._columns = columns

    def __call__(self, rows: np.ndarray) -> list[AccountingRecord]:
        if not len(rows):
            return []
        taken = self._table.take(pa.array(self._position[rows]))
        builder = _RecordBuilder(self._columns)
        values = zip(*(column.to_pylist() for column in taken.columns), strict=True)
        return [builder.build(_FAST_TYPES[row[0]], list(row)) for row in values]

    def __reduce__(self) -> tuple[type[_BuiltRecords], tuple[list[AccountingRecord], np.ndarray]]:
        kinds = self._kinds
        whole = np.flatnonzero((kinds == _BOUNCED) | (kinds == _REMOTE_BOUNCE) | (kinds == _FEEDBACK))
        positions = np.full(len(kinds), -1, dtype=np.int64)
        positions[whole] = np.arange(len(whole))
        return (_BuiltRecords, (self(whole), positions))


class _BuiltRecords:
    """`RecordColumns.records` of a chunk that crossed from another process: the b, rb and f records, built."""

    def __init__(self, records: list[AccountingRecord], positions: np.ndarray) -> None:
        self._records = records
        self._position = positions  # row -> index in `records`, -1 for a row not kept whole

    def __call__(self, rows: np.ndarray) -> list[AccountingRecord]:
        positions = self._position[rows]
        if (positions < 0).any():
            raise ValueError("only the rows of b, rb and f records cross to another process")
        records = self._records
        return [records[index] for index in positions.tolist()]

    def __reduce__(self) -> tuple[type[_BuiltRecords], tuple[list[AccountingRecord], np.ndarray]]:
        return (_BuiltRecords, (self._records, self._position))


_NO_TIME = np.iinfo(np.int64).min


def _read_csv(piece: bytes, width: int) -> pa.Table:
    names = [f"c{index}" for index in range(width)]
    return pacsv.read_csv(
        pa.py_buffer(piece),
        # One thread: on a small machine Arrow's threads cost more than they bring (and the caller has work too).
        read_options=pacsv.ReadOptions(column_names=names, block_size=len(piece) + 1, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )


def _times(texts: pa.Array, *, empty_is_none: bool) -> tuple[np.ndarray, pa.Array] | None:
    """Seconds since the epoch of each timestamp (`_NO_TIME` for an empty timeQueued) and the same as text, as
    `record_identity` writes it; each distinct text read as `parse_time` reads it. None when one is not a time."""
    encoded = texts.dictionary_encode()
    dictionary = encoded.dictionary
    seconds = _plain_stamps(dictionary)
    todo = np.flatnonzero(seconds == _NO_TIME)
    for index, text in zip(todo.tolist(), dictionary.take(pa.array(todo)).to_pylist(), strict=True):
        if not text and empty_is_none:
            continue
        moment = parse_time(text)
        if moment is None:
            return None
        seconds[index] = int(moment.timestamp())
    codes = encoded.indices
    stamps = pa.array(seconds)
    written = pc.if_else(pc.equal(stamps, _NO_TIME), "", pc.cast(stamps, pa.string())).take(codes)
    return seconds[codes.to_numpy(zero_copy_only=False)], written


# PowerMTA's own form of a timestamp, read by Arrow: most of the distinct times of a file, which `parse_time` would
# read one by one. The rest (other forms, spaces, other digits) is left to `parse_time`.
_PLAIN_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\+0000$"
_FIRST_SECOND = -62_135_596_800  # 0001-01-01 00:00:00 UTC: Python's datetime knows no earlier year


def _plain_stamps(texts: pa.Array) -> np.ndarray:
    """The seconds of each text in PowerMTA's plain form `YYYY-MM-DD HH:MM:SS+0000`, `_NO_TIME` for any other
    text. Arrow's strptime rolls an impossible date over (30 February, second 60) where `parse_time` refuses it:
    only a time written back exactly as it was read is taken, the others go to `parse_time`."""
    seconds = np.full(len(texts), _NO_TIME, dtype=np.int64)
    plain = pc.match_substring_regex(texts, _PLAIN_STAMP).to_numpy(zero_copy_only=False)
    if not plain.any():
        return seconds
    written = pc.utf8_slice_codeunits(texts.filter(pa.array(plain)), 0, 19)
    parsed = pc.strptime(written, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    same = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d %H:%M:%S"), written), False)
    values = pc.fill_null(pc.cast(parsed, pa.int64()), _NO_TIME).to_numpy(zero_copy_only=False)
    taken = same.to_numpy(zero_copy_only=False) & (values >= _FIRST_SECOND)
    seconds[np.flatnonzero(plain)[taken]] = values[taken]
    return seconds


def _lower(texts: pa.Array) -> pa.Array:
    """str.lower, as the aggregator does it: Arrow's for ASCII, Python's otherwise (their Unicode rules differ)."""
    if pc.all(pc.string_is_ascii(texts)).as_py() is not False:
        return pc.ascii_lower(texts)
    return pa.array([text.lower() for text in texts.to_pylist()], type=pa.string())


def _bytes(texts: pa.Array) -> np.ndarray:
    return pc.cast(texts, pa.binary()).to_numpy(zero_copy_only=False)


def _codes(texts: pa.Array) -> Codes:
    encoded = texts.dictionary_encode()
    return Codes(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist())
