"""PowerMTA accounting CSV and JSON -> records: quoting, headers, offsets, resume, gzip, garbage."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from campaign_gateway.adapters.accounting_csv import (
    AccountingCsvParser,
    ParseProblem,
    ProblemKind,
    ResumePoint,
    parse_json_accounting,
    parse_time,
)
from campaign_gateway.domain.accounting import AccountingRecord, RecordType

# The guide's own samples (UG 11.2.2-11.2.4), under the header PowerMTA writes for records d,b,t with all fields.
UG_HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
    "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool"
)
UG_D = (
    "d,2019-02-08 21:54:05+0000,2019-02-08 21:54:05+0000,AA-D=1181.com@bounce.bar.com,D@1181.com,,relayed,"
    "2.0.0 (success),smtp;250 DATA ok,foo.int.port25.com (10.1.2.3),,api,foo.int.port25.com (127.0.0.1),smtp,"
    '10.1.2.3,10.1.2.3,"ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8",41159,vmta48,JoBID29546016861868,,1181.com/vmta48,'
)
UG_B = (
    "b,2019-02-08 21:53:41+0000,2019-02-08 21:53:41+0000,CB-A=yahoo.com@bounce.bar.com,A@yahoo.com,,failed,"
    "5.7.1 (delivery not authorized),smtp;554 5.7.1 Denied - Spam Suspected - http://www.w357sfhsjhf873.net/services"
    "/spamwatch/blocked.php,foo.int.bar.com (10.1.2.3),spam-related,api,foo.int.bar.com (127.0.0.1),smtp,10.1.2.3,"
    '10.1.2.3,"ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8",,vmta18,,,yahoo.rollup/vmta18,'
)
UG_T = (
    "t,2019-02-08 21:53:54+0000,2019-02-08 21:53:54+0000,DB.AD.G.AA.AB-DA=yahoo.fr@bounce.bar.com,DA@yahoo.fr,,"
    "delayed,4.7.0 (other or undefined security status),smtp;421 4.7.0 mx002.roc2.bluetie.com Error: too many errors,"
    "foo.int.bar.com (10.1.2.165),policy-related,api,foo.int.bar.com (127.0.0.1),smtp,10.59.14.69,10.1.2.165,"
    '"ENHANCEDSTATUSCODES,8BITMIME,SMTPUTF8",,vmta21,,,yahoo.rollup/vmta21,'
)
# What email-engine's rendered configuration asks for (records d,b,t,rb,f with explicit fields), as a union header.
HEADER = (
    "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,vmta,vmtaPool,"
    "jobId,envId,queue,header_Message-Id,format,feedbackType,reportingMTA,reportedDomain,envid"
)


def line(*fields: str) -> str:
    """A record of HEADER's 22 columns, from its first fields."""
    return ",".join([*fields, *([""] * (22 - len(fields)))])


def crlf(*lines: str) -> bytes:
    return "".join(text + "\r\n" for text in lines).encode()


def parse(data: bytes, **kwargs: object) -> tuple[AccountingCsvParser, list[tuple[int, AccountingRecord]]]:
    final = bool(kwargs.pop("final", False))
    parser = AccountingCsvParser(**kwargs)  # type: ignore[arg-type]
    return parser, list(parser.parse(io.BytesIO(data), final=final))


def test_the_guide_samples() -> None:
    data = crlf(UG_HEADER, UG_D, UG_B, UG_T)
    parser, found = parse(data)
    records = [record for _offset, record in found]
    assert [record.type for record in records] == [RecordType.DELIVERED, RecordType.BOUNCED, RecordType.TRANSIENT]
    delivered, bounced, deferred = records
    assert delivered.rcpt == "D@1181.com" and delivered.vmta == "vmta48" and delivered.job_id == "JoBID29546016861868"
    assert delivered.time_logged == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert delivered.dlv_source_ip == "10.1.2.3"
    assert bounced.bounce_cat == "spam-related" and bounced.dsn_diag.startswith("smtp;554 5.7.1 Denied")
    assert deferred.dsn_diag.endswith("Error: too many errors") and deferred.vmta == "vmta21"
    assert [offset for offset, _record in found][-1] == len(data)
    assert parser.problems == [] and parser.resume_point.offset == len(data)


def test_quotes_commas_and_newlines_inside_fields() -> None:
    diag = '"smtp;550 5.1.1 <x@gmail.com>: no such user, ""x"" is\r\nunknown, see\nhttps://support"'
    data = crlf(
        HEADER,
        line(
            "b",
            "1549662845",
            "1549662845",
            "o@m.example",
            "x@gmail.com",
            "failed",
            "5.1.1",
            diag,
            "mx",
            "bad-mailbox",
            "",
            "vmta-1-2-3-4",
        ),
    )
    parser, found = parse(data)
    ((offset, record),) = found
    assert record.dsn_diag == 'smtp;550 5.1.1 <x@gmail.com>: no such user, "x" is\r\nunknown, see\nhttps://support'
    assert record.time_logged == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert offset == len(data) and parser.lines_read == 4


def test_lf_line_endings_are_read_too() -> None:
    data = (HEADER + "\n" + line("d", "1549662845", "", "o@m", "a@b.example") + "\n").encode()
    _parser, found = parse(data)
    assert [record.rcpt for _o, record in found] == ["a@b.example"]


def test_a_repeated_header_switches_the_columns() -> None:
    other = "type,rcpt,timeLogged,vmta,header_Message-Id"
    data = crlf(
        HEADER,
        line("d", "1549662845", "", "o@m", "first@gmail.com", "", "", "", "", "", "", "vmta-a"),
        other,
        "d,second@gmail.com,1549662846,vmta-b,<id-2@x>",
    )
    parser, found = parse(data)
    assert [(record.rcpt, record.vmta, record.message_id) for _o, record in found] == [
        ("first@gmail.com", "vmta-a", ""),
        ("second@gmail.com", "vmta-b", "id-2@x"),
    ]
    assert parser.resume_point.columns == tuple(other.split(","))


def test_envid_of_f_records_and_envid_of_the_others_share_one_field() -> None:
    data = crlf(
        HEADER,
        line(
            "rb",
            "1549662845",
            "",
            "o@m",
            "a@gmail.com",
            "",
            "5.1.1",
            "diag",
            "mx",
            "bad-mailbox",
            "",
            "",
            "",
            "",
            "ENV-RB",
        ),
        line("f", "1549662845", "", "o@m", "a@gmail.com", *[""] * 12, "arf", "abuse", "", "", "ENV-F"),
    )
    _parser, found = parse(data)
    assert [(record.type, record.env_id) for _o, record in found] == [
        (RecordType.REMOTE_BOUNCE, "ENV-RB"),
        (RecordType.FEEDBACK, "ENV-F"),
    ]
    assert found[1][1].feedback_type == "abuse"


def test_a_truncated_last_line_is_reported_and_left_for_the_next_read(tmp_path: Path) -> None:
    complete = crlf(HEADER, line("d", "1549662845", "", "o@m", "a@gmail.com", "", "", "", "", "", "", "vmta-a"))
    partial = line("d", "1549662846", "", "o@m", "b@gmail.com", "", "", "", "", "", "", "vmta-a").encode()[:30]
    path = tmp_path / "acct.csv"
    path.write_bytes(complete + partial)
    first = AccountingCsvParser()
    assert [record.rcpt for _o, record in first.parse_file(path)] == ["a@gmail.com"]
    assert first.resume_point.offset == len(complete)
    assert [problem.kind for problem in first.problems] == [ProblemKind.TRUNCATED]
    assert first.problems[0].line == 3 and first.problems[0].offset == len(complete)
    # PowerMTA finishes writing the line: the next read, from the stored point, gets it once.
    rest = line("d", "1549662846", "", "o@m", "b@gmail.com", "", "", "", "", "", "", "vmta-a").encode()[30:] + b"\r\n"
    path.write_bytes(complete + partial + rest)
    second = AccountingCsvParser(resume=first.resume_point)
    assert [record.rcpt for _o, record in second.parse_file(path)] == ["b@gmail.com"]
    assert second.problems == [] and second.resume_point.offset == path.stat().st_size


def test_a_final_file_consumes_its_unfinished_tail() -> None:
    data = crlf(HEADER, line("d", "1549662845", "", "o@m", "a@gmail.com")) + b"d,15496"
    parser, found = parse(data, final=True)
    assert len(found) == 1 and parser.resume_point.offset == len(data)
    assert parser.problems[0].kind is ProblemKind.TRUNCATED


def test_resuming_at_any_yielded_offset_gives_the_rest_exactly(tmp_path: Path) -> None:
    rows = [
        line(
            "d" if n % 3 else "t",
            str(1549662845 + n),
            "",
            f"o{n}@m",
            f"user{n}@gmail.com",
            "",
            "",
            f'"diag, {n}"' if n % 2 else "ok",
            "",
            "",
            "",
            "vmta-a",
        )
        for n in range(10)
    ]
    data = crlf(HEADER, *rows[:5], HEADER, *rows[5:])
    path = tmp_path / "acct.csv"
    path.write_bytes(data)
    whole = [record for _o, record in AccountingCsvParser().parse_file(path)]
    assert len(whole) == 10
    for stop_after in range(1, 10):
        parser = AccountingCsvParser()
        head = []
        for _offset, record in parser.parse_file(path):
            head.append(record)
            if len(head) == stop_after:
                break
        tail = [record for _o, record in AccountingCsvParser(resume=parser.resume_point).parse_file(path)]
        assert head + tail == whole, stop_after


def test_gzip_files_are_read_and_offsets_count_uncompressed_bytes(tmp_path: Path) -> None:
    data = crlf(HEADER, *(line("d", str(1549662845 + n), "", "o@m", f"u{n}@gmail.com") for n in range(4)))
    path = tmp_path / "acct-2026-01-05-0000.csv.gz"
    path.write_bytes(gzip.compress(data))
    parser = AccountingCsvParser()
    found = list(parser.parse_file(path))
    assert [offset for offset, _r in found][-1] == len(data)
    resumed = AccountingCsvParser(resume=ResumePoint(found[1][0], parser.resume_point.columns))
    assert [record.rcpt for _o, record in resumed.parse_file(path)] == ["u2@gmail.com", "u3@gmail.com"]


def test_garbage_is_reported_with_its_line_and_skipped() -> None:
    good = line("d", "1549662845", "", "o@m", "a@gmail.com")
    data = (
        crlf(
            "d,before,any,header",
            HEADER,
            "this is not a record",
            line("zz", "1549662845"),
            line("d", "yesterday", "", "o@m", "x@gmail.com"),
            line("d", "1549662845", "2019-13-45 99:99:99+0000"),
            '"unbalanced,quote' + "," * 21,
            good,
            line("tq", "1549662845"),
            line("r", "1549662845"),
        )
        + b"\xff\xfe\x00garbage bytes\r\n"
        + crlf(good.replace("a@", "b@"))
    )
    parser, found = parse(data, max_record_lines=4)
    assert [record.rcpt for _o, record in found] == ["a@gmail.com", "b@gmail.com"]
    kinds = [(problem.kind, problem.line) for problem in parser.problems]
    assert kinds == [
        (ProblemKind.NO_HEADER, 1),
        (ProblemKind.GARBAGE, 3),
        (ProblemKind.GARBAGE, 4),
        (ProblemKind.GARBAGE, 5),
        (ProblemKind.GARBAGE, 6),
        (ProblemKind.GARBAGE, 7),
        (ProblemKind.GARBAGE, 11),
    ]
    assert "timeLogged 'yesterday'" in parser.problems[3].detail
    assert parser.ignored == {"tq": 1, "r": 1}
    assert parser.resume_point.offset == len(data)
    assert all(isinstance(problem, ParseProblem) and problem.offset >= 0 for problem in parser.problems)


def test_an_unclosed_quote_costs_only_its_own_line() -> None:
    good = [line("d", str(1549662845 + n), "", "o@m", f"u{n}@gmail.com") for n in range(6)]
    data = crlf(HEADER, good[0], 'd,1549662845,,o@m,"never closed' + "," * 18, *good[1:])
    parser, found = parse(data, max_record_lines=3)
    assert [record.rcpt for _o, record in found] == [f"u{n}@gmail.com" for n in range(6)]
    assert [(problem.kind, problem.line) for problem in parser.problems] == [(ProblemKind.GARBAGE, 3)]
    # at the end of a complete file, the same line is dropped as soon as the file ends
    parser, found = parse(crlf(HEADER, good[0], 'd,"never closed', good[1]), final=True)
    assert [record.rcpt for _o, record in found] == ["u0@gmail.com", "u1@gmail.com"]
    assert [(problem.kind, problem.line) for problem in parser.problems] == [(ProblemKind.GARBAGE, 3)]


def test_timestamps() -> None:
    assert parse_time("2019-02-08 21:54:05+0000") == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert parse_time("2010-04-17 16:19:57-0400") == datetime(2010, 4, 17, 20, 19, 57, tzinfo=UTC)
    assert parse_time("2019-02-08T21:54:05Z") == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert parse_time("2019-02-08 23:54:05+02:00") == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert parse_time("02/08/2019 21:54:05+0000") == datetime(2019, 2, 8, 21, 54, 5, tzinfo=UTC)
    assert parse_time("1178807903") == datetime(2007, 5, 10, 14, 38, 23, tzinfo=UTC)
    for bad in ("", "yesterday", "2019-02-30 00:00:00+0000", "2019-02-08 21:54:05+9900", "99999999999999999999"):
        assert parse_time(bad) is None, bad


def test_json_object_array_and_ndjson_give_the_same_records() -> None:
    element = {
        "type": "b",
        "timeLogged": "2019-02-08 21:53:41+0000",
        "timeQueued": "2019-02-08 21:53:40+0000",
        "orig": "o@m",
        "rcpt": "a@yahoo.fr",
        "bounceCat": "bad-mailbox",
        "dsnDiag": "smtp;550 5.1.1 unknown",
        "vmta": "vmta-1-2-3-4",
        "header_Message-Id": "<abc@mail.example.com>",
        "dlvSize": 41159,
        "envId": None,
    }
    records, problems = parse_json_accounting(json.dumps(element))
    assert problems == [] and len(records) == 1
    record = records[0]
    assert record.type is RecordType.BOUNCED and record.message_id == "abc@mail.example.com"
    assert record.time_queued == datetime(2019, 2, 8, 21, 53, 40, tzinfo=UTC) and record.env_id == ""
    as_array, _ = parse_json_accounting(json.dumps([element, element]).encode())
    as_ndjson, _ = parse_json_accounting("\n".join(json.dumps(item) for item in (element, element)) + "\n")
    assert as_array == as_ndjson == [record, record]


def test_bad_json_elements_are_reported_not_fatal() -> None:
    good = json.dumps({"type": "d", "timeLogged": "1549662845", "rcpt": "a@gmail.com", "vmta": "v"})
    payload = "\n".join(
        [
            good,
            "{not json",
            json.dumps(["a list"]),
            json.dumps({"type": "zz", "timeLogged": "1549662845"}),
            json.dumps({"type": "d", "timeLogged": "later"}),
            json.dumps({"type": "d", "timeLogged": "1549662845", "rcpt": {"nested": 1}}),
            json.dumps({"type": "tq", "timeLogged": "1549662845"}),
            "",
            good,
        ]
    )
    records, problems = parse_json_accounting(payload)
    assert [record.rcpt for record in records] == ["a@gmail.com", "a@gmail.com"]
    assert [(problem.kind, problem.line) for problem in problems] == [(ProblemKind.GARBAGE, n) for n in (2, 3, 4, 5, 6)]
    assert parse_json_accounting(b"") == ([], [])
    assert parse_json_accounting("42")[1][0].detail == "not a JSON object"
