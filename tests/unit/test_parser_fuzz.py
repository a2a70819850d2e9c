"""The record parsers fed what the Internet may publish: 10 000 generated records each (fixed seed), never a crash —
a record is read, or refused with the parser's own error, and the verdicts built on them always come out.

SPF, DMARC and DKIM records come from anyone's DNS; accounting lines come from PowerMTA files and pushes.
"""

from __future__ import annotations

import base64
import io

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser
from reputation.domain.checks import Verdict
from reputation.domain.dkim import DkimRecordError, dkim_verdict, parse_dkim_record
from reputation.domain.dmarc import DmarcRecordError, dmarc_verdict, parse_dmarc_record
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.spf_record import SpfRecordError, parse_spf_record, record_warnings

TEN_THOUSAND = settings(
    max_examples=10_000, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=False
)


def record_like(pieces: list[str]) -> st.SearchStrategy[str]:
    """Texts made of the pieces real records are made of, and of anything else."""
    piece = st.one_of(st.sampled_from(pieces), st.text(max_size=6))
    return st.lists(piece, max_size=25).map("".join)


SPF_PIECES = [
    "v=spf1", " ", "  ", "+", "-", "~", "?", "all", "ip4:", "ip6:", "a", "mx", "ptr", "exists:", "include:",
    "redirect=", "exp=", ":", "/", "/24", "//64", "192.0.2.1", "2001:db8::1", "example.com", "%{i}", "%{d}",
    "%{l1r-}", "%%", "%_", "%-", ".", "=", "\t", "spf1", "v=spf10", "\u00e9", "a:", "mx:/",
]  # fmt: skip
DMARC_PIECES = [
    "v=DMARC1", ";", " ", "p=", "sp=", "none", "quarantine", "reject", "rua=", "ruf=", "mailto:", "dmarc@example.com",
    ",", "!", "10m", "pct=", "100", "-1", "101", "1e999", "9" * 50, "aspf=", "adkim=", "r", "s", "fo=", "ri=", "=",
    "v=dmarc1", "\u00a0",
]  # fmt: skip
RSA_2048 = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuNDf7dMgb7rdz2yKwQvxQ6hG1e7eu8YyS8v0RbcQ3ExSx3DHbWO/gPmzBQK8MQBk"
)
DKIM_PIECES = [
    "v=DKIM1", ";", " ", "k=", "rsa", "ed25519", "dsa", "p=", RSA_2048, "==", "h=", "sha256", ":", "t=", "y", "s",
    "s=", "email", "*", "=", "v=DKIM2", "MCowBQYDK2VwAyEA", "AAAA", "\n",
]  # fmt: skip


@seed(20261201)
@TEN_THOUSAND
@given(st.one_of(record_like(SPF_PIECES), st.text(max_size=80)))
def test_spf_records_are_read_or_refused_with_a_reason(text: str) -> None:
    try:
        record = parse_spf_record(text)
    except SpfRecordError as refused:
        assert str(refused)
        return
    assert isinstance(record_warnings(record), list)


@seed(20261202)
@TEN_THOUSAND
@given(st.one_of(record_like(DMARC_PIECES), st.text(max_size=80)))
def test_dmarc_records_are_read_or_refused_and_always_judged(text: str) -> None:
    try:
        parse_dmarc_record(text)
    except DmarcRecordError as refused:
        assert str(refused)
    answer = DnsAnswer(DnsOutcome.ANSWER, (text,))
    result = dmarc_verdict("example.com", [("_dmarc.example.com", answer)])
    assert isinstance(result.verdict, Verdict) and result.reason


@seed(20261203)
@TEN_THOUSAND
@given(
    st.one_of(
        record_like(DKIM_PIECES),
        st.text(max_size=80),
        st.binary(max_size=120).map(lambda b: f"v=DKIM1; k=rsa; p={base64.b64encode(b).decode()}"),
    )
)
def test_dkim_key_records_are_read_or_refused_and_always_judged(text: str) -> None:
    try:
        parse_dkim_record(text)
    except DkimRecordError as refused:
        assert str(refused)
    result = dkim_verdict("example.com", "s1", DnsAnswer(DnsOutcome.ANSWER, (text,)))
    assert isinstance(result.verdict, Verdict) and result.reason


ACCOUNTING_PIECES = [
    b",", b'"', b'""', b"\r\n", b"\n", b"d", b"b", b"t", b"rb", b"f", b"2019-02-08 21:54:05+0000", b"1549662845",
    b"a@gmail.com", b"vmta-192-0-2-1", b"<id@x>", b"bad-mailbox", b"5.1.1", b"type,timeLogged,rcpt,vmta\r\n",
    b"\x00", b"\xff\xfe",
]  # fmt: skip
HEADER = b"type,timeLogged,timeQueued,orig,rcpt,dsnStatus,dsnDiag,bounceCat,vmta,envId,header_Message-Id\r\n"


@seed(20261204)
@TEN_THOUSAND
@given(st.lists(st.one_of(st.sampled_from(ACCOUNTING_PIECES), st.binary(max_size=6)), max_size=40).map(b"".join))
def test_accounting_lines_are_read_or_reported_never_fatal(body: bytes) -> None:
    parser = AccountingCsvParser(max_record_lines=8)
    for offset, record in parser.parse(io.BytesIO(HEADER + body), final=True):
        assert 0 < offset <= len(HEADER) + len(body) and record.time_logged.tzinfo is not None
    assert parser.resume_point.offset == len(HEADER) + len(body)
    assert all(problem.line >= 1 for problem in parser.problems)
