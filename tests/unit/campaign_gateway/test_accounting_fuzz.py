"""The accounting parsers never crash, whatever bytes arrive (Hypothesis, fixed seed, a few thousand examples)."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser, ResumePoint, parse_json_accounting

HEADER = b"type,timeLogged,timeQueued,orig,rcpt,dsnDiag,bounceCat,vmta,envId,envid,header_Message-Id\r\n"
FUZZ = settings(max_examples=2000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that steer random input into the parser's corners: quotes, separators, line ends, record types, times.
_PIECES = st.sampled_from(
    [b",", b'"', b'""', b"\r\n", b"\n", b"\r", b"d", b"b", b"t", b"rb", b"f", b"tq", b"type", b"\x00", b"\xff",
     b"2019-02-08 21:54:05+0000", b"1549662845", b"a@gmail.com", b"vmta-1-2-3-4", b"<id@x>", b"bad-mailbox",
     b"type,timeLogged,rcpt\r\n", b"\xe2\x82", "\ufeff".encode()]
)  # fmt: skip
CSVISH = st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=60).map(b"".join)


def _run(data: bytes, *, final: bool, resume: ResumePoint | None = None) -> AccountingCsvParser:
    parser = AccountingCsvParser(resume=resume, max_record_lines=8)
    start = resume.offset if resume else 0
    previous = start
    for offset, record in parser.parse(io.BytesIO(data[start:]), final=final):
        assert previous < offset <= len(data)
        assert record.time_logged.tzinfo is not None
        previous = offset
    assert start <= parser.resume_point.offset <= len(data)
    if final:
        assert parser.resume_point.offset == len(data)
    return parser


@seed(20260105)
@FUZZ
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes_never_crash_the_csv_parser(data: bytes, final: bool) -> None:
    _run(data, final=final)
    _run(HEADER + data, final=final)


@seed(20260106)
@FUZZ
@given(CSVISH, CSVISH, st.booleans())
def test_csv_like_bytes_parse_the_same_in_one_go_or_resumed(head: bytes, tail: bytes, final: bool) -> None:
    data = HEADER + head + tail
    whole = _run(data, final=final)
    # Stopping anywhere the parser said it may stop, then resuming, reads the same records from there on.
    first = AccountingCsvParser(max_record_lines=8)
    records = []
    for offset, record in first.parse(io.BytesIO(data), final=final):
        records.append((offset, record))
        if len(records) == 2:
            break
    rest = AccountingCsvParser(resume=first.resume_point, max_record_lines=8)
    start = first.resume_point.offset
    records += list(rest.parse(io.BytesIO(data[start:]), final=final))
    again = list(AccountingCsvParser(max_record_lines=8).parse(io.BytesIO(data), final=final))
    assert records == again
    assert rest.resume_point.offset == whole.resume_point.offset


@seed(20260107)
@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_json_payloads_never_crash(payload: bytes | str) -> None:
    records, problems = parse_json_accounting(payload)
    assert all(problem.line >= 1 for problem in problems)
    assert all(record.time_logged.tzinfo is not None for record in records)


_JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_JSON_RECORDS = st.dictionaries(
    st.sampled_from(["type", "timeLogged", "timeQueued", "rcpt", "vmta", "header_Message-Id", "envId", "bounceCat"]),
    st.one_of(_JSON_VALUES, st.sampled_from(["d", "b", "rb", "f", "t", "1549662845", "2019-02-08 21:54:05+0000"])),
)


@seed(20260108)
@FUZZ
@given(st.lists(_JSON_RECORDS, max_size=6), st.booleans())
def test_record_shaped_json_never_crashes(elements: list[dict[str, object]], ndjson: bool) -> None:
    payload = "\n".join(json.dumps(element) for element in elements) if ndjson else json.dumps(elements)
    records, problems = parse_json_accounting(payload)
    assert len(records) + len(problems) <= len(elements)
