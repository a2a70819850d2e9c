"""PowerMTA accounting as bytes -> AccountingRecord: the CSV file (or pipe) and the JSON shapes of a push.

Public API:
    ResumePoint(offset=0, columns=None)        -- where to restart: a byte offset and the CSV header in force there
    ProblemKind, ParseProblem(kind, line, offset, detail)
    AccountingCsvParser(*, resume=None, max_record_lines=64, max_record_bytes=1 MiB)
        .parse(stream) -> Iterator[tuple[int, AccountingRecord]]   -- (offset after the record, record)
        .parse_file(path) -> same, opening the file (plain or gzip) at the resume offset
        .resume_point -> ResumePoint           -- after the last complete line consumed (record, header, garbage)
        .problems -> list[ParseProblem]; .ignored -> Counter of skipped record types (tq, r, rs); .lines_read
    open_accounting_file(path, offset=0) -> BinaryIO     -- gzip detected by its magic bytes
    parse_time(text) -> datetime | None        -- "2019-02-08 21:54:05+0000", ISO 8601, "MM/DD/YYYY ...", time_t
    parse_json_accounting(payload) -> tuple[list[AccountingRecord], list[ParseProblem]]

CSV, as PowerMTA writes it (UG 11.2.9): RFC 4180, UTF-8, CRLF, a header line whose columns are the union of the
configured records' fields, so columns are found by name. A record may span lines (a quoted field with a newline
inside); commas and doubled quotes inside quoted fields are data. A header line seen again (the file was rotated
and appended to, or the accounting pipe was restarted, which writes a header first) switches the column map.

Never a crash on bad bytes: undecodable bytes become U+FFFD; a line that is not a record (wrong number of fields,
bad quoting, unknown record type, a timestamp that is not one) is reported with its line number and byte offset and
skipped; a record before any header is reported; a last line without its end-of-line is a record still being written:
it is reported as TRUNCATED and NOT consumed, so the next read starts with it. A quoted field left open swallows
lines only up to `max_record_lines` / `max_record_bytes`, and never a line that is a whole record (or header) on its
own (PowerMTA writes a record at once): past that, or when the lines it took do not parse, only its first line is
dropped as garbage and parsing resumes on the line after it.

Offsets are byte offsets in the stream as read, counted from the start of the file (the resume offset is added):
store `resume_point` (offset and the header columns in force) after processing the records, and a later parser built
with it, reading the same file from that offset, continues exactly where this one stopped. For a gzip file the
offset counts UNCOMPRESSED bytes: gzip cannot seek, so resuming decompresses from the start and discards that many
bytes (rotated accounting files are compressed once complete, so they are normally read once, whole). Line numbers
in problems count from where this parser started.

JSON (what MailWizz's `/dswh/pmta` and PowerMTA's JSON accounting carry): one JSON object, a JSON array of objects,
or NDJSON (one object per line). Keys are the same field names as the CSV columns; values are strings (numbers are
accepted and written out). An element that is not an object, or not a valid record, is reported and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import operator
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from campaign_gateway.domain.accounting import AccountingRecord, RecordType, record_type

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP_CHUNK = 1 << 20
_DETAIL_LIMIT = 80
# Record types PowerMTA may write that email-engine does not count: reported as ignored, not as garbage.
_TYPE_SPELLINGS = ("d", "b", "t", "rb", "f", "delivery", "bounce", "transient", "remote-bounce", "feedback-loop")
_KNOWN_IGNORED = frozenset({"tq", "r", "rs", "transient-queue", "receipt", "remote-status"})
# The type column as PowerMTA writes it ("d" or "delivery", ...): exact spellings only, anything else is garbage.
_FAST_TYPES = {name: kind for name in _TYPE_SPELLINGS if (kind := record_type(name)) is not None}


@dataclass(frozen=True)
class ResumePoint:
    offset: int = 0
    columns: tuple[str, ...] | None = None


class ProblemKind(StrEnum):
    TRUNCATED = "TRUNCATED"
    GARBAGE = "GARBAGE"
    NO_HEADER = "NO_HEADER"


@dataclass(frozen=True)
class ParseProblem:
    kind: ProblemKind
    line: int
    """Physical line (CSV) or element/line (JSON) number, from 1, counted from where parsing started."""
    offset: int
    """Byte offset of that line in the file (CSV); -1 for JSON."""
    detail: str


class _BadValue(Exception):
    """A field holds something that cannot be what its column says."""


# ---------------------------------------------------------------- timestamps

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_US = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})\s*(Z|[+-]\d{2}:?\d{2})?$")
_TIME_CACHE: dict[str, datetime] = {}
_TIME_CACHE_LIMIT = 200_000
_MAX_TIME_T = 253_402_300_799  # 9999-12-31T23:59:59Z


def _zone(text: str | None) -> timezone | None:
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_time_uncached(text: str) -> datetime | None:
    if text.isascii() and text.isdigit():
        seconds = int(text)
        return datetime.fromtimestamp(seconds, UTC) if seconds <= _MAX_TIME_T else None
    if match := _ISO.match(text):
        year, month, day, hour, minute, second, zone = match.groups()
    elif match := _US.match(text):
        month, day, year, hour, minute, second, zone = match.groups()
    else:
        return None
    tz = _zone(zone)
    if tz is None:
        return None
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError:
        return None


def parse_time(text: str) -> datetime | None:
    """A timestamp as PowerMTA writes it (ISO with +0000 offset, or time_t); None when it is not one."""
    cached = _TIME_CACHE.get(text)
    if cached is not None:
        return cached
    value = _parse_time_uncached(text.strip())
    if value is not None:
        if len(_TIME_CACHE) >= _TIME_CACHE_LIMIT:
            _TIME_CACHE.clear()
        _TIME_CACHE[text] = value
    return value


# ---------------------------------------------------------------- columns -> record

# Logical field -> accepted column names (lower-case). PowerMTA writes "envid" in f records and "envId" elsewhere.
_new_record = tuple.__new__
_COLUMNS: dict[str, tuple[str, ...]] = {
    "time_logged": ("timelogged",),
    "time_queued": ("timequeued",),
    "orig": ("orig",),
    "rcpt": ("rcpt",),
    "vmta": ("vmta",),
    "dsn_status": ("dsnstatus",),
    "dsn_diag": ("dsndiag",),
    "bounce_cat": ("bouncecat",),
    "env_id": ("envid",),
    "job_id": ("jobid",),
    "message_id": ("header_message-id",),
    "dlv_source_ip": ("dlvsourceip",),
    "feedback_type": ("feedbacktype",),
}


def _positions(columns: Sequence[str], names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(index for index, column in enumerate(columns) if column.strip().lower() in names)


class _RecordBuilder:
    """Turns the values of one row into a record, for one header (column order).

    Rows get an extra "" appended, so a column the header lacks reads from index -1 and is "": one C-level
    itemgetter call fetches every field.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.width = len(self.columns)
        positions = [_positions(self.columns, names) for names in _COLUMNS.values()]
        # In AccountingRecord's field order; the type column stands where the record's type goes.
        self._get = operator.itemgetter(0, *(found[0] if found else -1 for found in positions))
        # A field found in several columns (envId and envid in one union header): the first non-empty wins.
        self._alternates = [(index + 1, found[1:]) for index, found in enumerate(positions) if len(found) > 1]

    def build(self, kind: RecordType, values: list[str]) -> AccountingRecord:
        values.append("")
        got: tuple[str, ...] = self._get(values)
        for index, others in self._alternates:
            if not got[index]:
                for position in others:
                    if values[position]:
                        got = (*got[:index], values[position], *got[index + 1 :])
                        break
        logged_text, queued_text = got[1], got[2]
        time_logged = _TIME_CACHE.get(logged_text) or parse_time(logged_text)
        if time_logged is None:
            raise _BadValue(f"timeLogged {_short(logged_text)!r} is not a timestamp")
        if queued_text:
            time_queued = _TIME_CACHE.get(queued_text) or parse_time(queued_text)
            if time_queued is None:
                raise _BadValue(f"timeQueued {_short(queued_text)!r} is not a timestamp")
        else:
            time_queued = None
        message_id = got[11]
        if message_id:
            message_id = message_id.strip(" <>")
        # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs once per record.
        return _new_record(
            AccountingRecord,
            (
                kind,
                time_logged,
                time_queued,
                got[3],
                got[4],
                got[5],
                got[6],
                got[7],
                got[8],
                got[9],
                got[10],
                message_id,
                got[12],
                got[13],
            ),
        )


def _short(text: str) -> str:
    text = text.strip().replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "..."


# ---------------------------------------------------------------- CSV


class _OneLine:
    """The iterator a persistent csv.reader reads from: one prepared text at a time."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text: str | None = None

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        text, self.text = self.text, None
        if text is None:
            raise StopIteration
        return text


class _Resync(Exception):
    """A quoted record did not parse: its first line is garbage, the lines after it must be read again."""

    def __init__(self, lines: list[bytes], detail: str) -> None:
        super().__init__(detail)
        self.lines = lines
        self.detail = detail


class _Unfinished(Exception):
    """The stream ended inside a quoted field (or on a line without its end of line)."""

    def __init__(self, lines: list[bytes]) -> None:
        super().__init__("unfinished record")
        self.lines = lines


class AccountingCsvParser:
    """Streaming parser of PowerMTA accounting CSV; one instance per read (it keeps the position)."""

    def __init__(
        self,
        *,
        resume: ResumePoint | None = None,
        max_record_lines: int = 64,
        max_record_bytes: int = 1 << 20,
    ) -> None:
        start = resume or ResumePoint()
        self._offset = start.offset
        self._builder = _RecordBuilder(start.columns) if start.columns else None
        self._max_lines = max_record_lines
        self._max_bytes = max_record_bytes
        self._feed = _OneLine()
        self._csv = csv.reader(self._feed, strict=True)
        self.problems: list[ParseProblem] = []
        self.ignored: Counter[str] = Counter()
        self.lines_read = 0

    @property
    def resume_point(self) -> ResumePoint:
        return ResumePoint(self._offset, self._builder.columns if self._builder else None)

    def parse_file(self, path: str | Path, *, final: bool | None = None) -> Iterator[tuple[int, AccountingRecord]]:
        """`parse` over a file opened at the resume offset; a gzip file is final unless told otherwise."""
        with open_accounting_file(path, self._offset) as stream:
            complete = isinstance(stream, _ClosingBoth) if final is None else final
            yield from self.parse(stream, final=complete)

    def parse(self, stream: Iterable[bytes], *, final: bool = False) -> Iterator[tuple[int, AccountingRecord]]:
        """Records of `stream` (binary lines, positioned at the resume offset), each with the offset just after it.

        `final`: the stream will not grow (a rotated or compressed file). Its unfinished last record is then
        consumed (reported TRUNCATED) instead of being left for the next read.

        This is the hot loop: the position lives in locals, written back before every yield and every call that
        reads it; a resync restarts the loop on the lines to read again followed by the rest of the stream.
        """
        source: Iterator[bytes] | None = iter(stream)
        fast_types = _FAST_TYPES
        while source is not None:
            builder = self._builder
            width, build = (builder.width, builder.build) if builder else (-1, None)
            offset, lines_read = self._offset, self.lines_read
            restart: Iterator[bytes] | None = None
            for raw in source:
                line, start = lines_read + 1, offset
                if not raw.endswith(b"\n"):
                    self._offset, self.lines_read = offset, lines_read
                    restart = self._unfinished([raw], source, final)
                    break
                if b'"' in raw:
                    self._offset, self.lines_read = offset, lines_read
                    try:
                        values, taken = self._quoted(raw, source, final)
                    except _Resync as resync:
                        self._consume(1, len(raw))
                        self._problem(ProblemKind.GARBAGE, line, start, resync.detail)
                        restart = itertools.chain(resync.lines, source)
                        break
                    except _Unfinished as unfinished:
                        restart = self._unfinished(unfinished.lines, source, final)
                        break
                    lines_read += len(taken)
                    offset += sum(map(len, taken))
                else:
                    lines_read = line
                    offset += len(raw)
                    values = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
                kind = fast_types.get(values[0])
                if kind is None or len(values) != width:
                    self._offset, self.lines_read = offset, lines_read
                    self._unusual(values, line, start)
                    builder = self._builder
                    width, build = (builder.width, builder.build) if builder else (-1, None)
                    continue
                try:
                    record = build(kind, values)  # type: ignore[misc]  # width > 0: a builder exists
                except _BadValue as exc:
                    self._problem(ProblemKind.GARBAGE, line, start, str(exc))
                    continue
                self._offset, self.lines_read = offset, lines_read
                yield offset, record
            else:
                self._offset, self.lines_read = offset, lines_read
            source = restart

    def _consume(self, lines: int, size: int) -> None:
        self.lines_read += lines
        self._offset += size

    def _unfinished(self, lines: list[bytes], source: Iterator[bytes], final: bool) -> Iterator[bytes] | None:
        """A record the stream ends in. Growing stream: left for the next read. Final stream: its first line is
        consumed (TRUNCATED, or GARBAGE when a quoted field never closes) and the lines after it are read again."""
        line, start = self.lines_read + 1, self._offset
        if not final:
            self._problem(ProblemKind.TRUNCATED, line, start, "unfinished record: left for the next read")
            return None
        self._consume(1, len(lines[0]))
        if len(lines) > 1:
            self._problem(ProblemKind.GARBAGE, line, start, "a quoted field is never closed")
            return itertools.chain(lines[1:], source)
        self._problem(ProblemKind.TRUNCATED, line, start, "unfinished last line of a complete file: skipped")
        return None

    def _problem(self, kind: ProblemKind, line: int, offset: int, detail: str) -> None:
        self.problems.append(ParseProblem(kind, line, offset, detail))

    def _quoted(self, first: bytes, source: Iterator[bytes], final: bool) -> tuple[list[str], list[bytes]]:
        """Values of a record holding quotes, taking more lines while a quoted field is open."""
        taken = [first]
        size, quotes = len(first), first.count(b'"')
        while quotes % 2:
            if len(taken) >= self._max_lines or size >= self._max_bytes:
                raise _Resync(taken[1:], "a quoted field is never closed")
            more = next(source, None)
            if more is None:
                raise _Unfinished(taken)
            taken.append(more)
            if more[-1:] != b"\n":
                raise _Unfinished(taken)
            if self._is_whole_record(more):
                # PowerMTA writes a record at once: a complete record after an open quote means the quote is junk.
                raise _Resync(taken[1:], "a quoted field is never closed")
            size += len(more)
            quotes += more.count(b'"')
        values = self._csv_values(b"".join(taken).decode("utf-8", "replace"))
        if values is None:
            raise _Resync(taken[1:], "bad quoting")
        return values, taken

    def _is_whole_record(self, raw: bytes) -> bool:
        """A line that is, on its own, a header or a record of the current header's width."""
        if raw.count(b'"') % 2:
            return False
        head = raw.split(b",", 1)[0]
        if head == b"type":
            return True
        if self._builder is None or head.decode("utf-8", "replace") not in _FAST_TYPES:
            return False
        text = raw.decode("utf-8", "replace")
        values = self._csv_values(text) if b'"' in raw else text.rstrip("\r\n").split(",")
        return values is not None and len(values) == self._builder.width

    def _csv_values(self, text: str) -> list[str] | None:
        self._feed.text = text
        try:
            return next(self._csv)
        except (csv.Error, StopIteration):
            self._feed.text = None
            self._csv = csv.reader(self._feed, strict=True)
            return None

    def _unusual(self, values: list[str], line: int, offset: int) -> None:
        """Everything that is not a plain record: a header, an ignored type, or garbage."""
        first = values[0]
        if first in ("type", "\ufefftype"):
            self._builder = _RecordBuilder(values)
        elif self._builder is None:
            self._problem(ProblemKind.NO_HEADER, line, offset, "a record before any header line")
        elif len(values) != self._builder.width:
            self._problem(
                ProblemKind.GARBAGE, line, offset, f"{len(values)} fields, the header has {self._builder.width}"
            )
        elif first.strip().lower() in _KNOWN_IGNORED:
            self.ignored[first.strip().lower()] += 1
        else:
            self._problem(ProblemKind.GARBAGE, line, offset, f"unknown record type {_short(first)!r}")


def open_accounting_file(path: str | Path, offset: int = 0) -> BinaryIO:
    """The file as a binary stream positioned at `offset` (uncompressed bytes for gzip, found by magic bytes)."""
    raw = open(path, "rb")  # noqa: SIM115 -- returned to the caller, who closes it
    try:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            raw.seek(offset)
            return raw
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        _discard(stream, offset)
        return _ClosingBoth(stream, raw)  # type: ignore[return-value]
    except BaseException:
        raw.close()
        raise


def _discard(stream: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, _SKIP_CHUNK))
        if not chunk:
            return
        count -= len(chunk)


class _ClosingBoth(io.BufferedReader):
    """A buffered view of a gzip stream that also closes the underlying file."""

    def __init__(self, stream: BinaryIO, underlying: BinaryIO) -> None:
        super().__init__(stream)  # type: ignore[arg-type]
        self._underlying = underlying

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._underlying.close()


# ---------------------------------------------------------------- JSON


def _json_elements(payload: str) -> tuple[list[tuple[int, Any]], list[ParseProblem]]:
    """(element number, decoded value) for each element of a JSON object, array or NDJSON payload."""
    text = payload.strip()
    if not text:
        return [], []
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        whole = None
    else:
        if isinstance(whole, list):
            return list(enumerate(whole, 1)), []
        return [(1, whole)], []
    elements: list[tuple[int, Any]] = []
    problems: list[ParseProblem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            elements.append((number, json.loads(line)))
        except (ValueError, RecursionError):
            problems.append(ParseProblem(ProblemKind.GARBAGE, number, -1, "not JSON"))
    return elements, problems


def _json_values(element: dict[Any, Any]) -> tuple[tuple[str, ...], list[str]]:
    columns, values = [], []
    for key, value in element.items():
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadValue(f"field {_short(str(key))!r} is not a string")
        else:
            text = str(value)
        columns.append(str(key))
        values.append(text)
    return tuple(columns), values


def parse_json_accounting(payload: bytes | str) -> tuple[list[AccountingRecord], list[ParseProblem]]:
    """Records of a pushed batch (JSON object, JSON array or NDJSON), and what could not be read."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else payload
    elements, problems = _json_elements(text)
    builders: dict[tuple[str, ...], _RecordBuilder] = {}
    records: list[AccountingRecord] = []
    for number, element in elements:
        try:
            if not isinstance(element, dict):
                raise _BadValue("not a JSON object")
            columns, values = _json_values(element)
            builder = builders.get(columns) or builders.setdefault(columns, _RecordBuilder(columns))
            raw_type = element.get("type")
            kind = _FAST_TYPES.get(raw_type) if isinstance(raw_type, str) else None
            if kind is None:
                if isinstance(raw_type, str) and raw_type in _KNOWN_IGNORED:
                    continue
                raise _BadValue(f"unknown record type {_short(str(raw_type))!r}")
            records.append(builder.build(kind, values))
        except _BadValue as exc:
            problems.append(ParseProblem(ProblemKind.GARBAGE, number, -1, str(exc)))
    problems.sort(key=lambda problem: problem.line)
    return records, problems
