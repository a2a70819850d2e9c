"""SPF, DKIM, DMARC, PTR and MX verdicts from given DNS answers: every reason a person reads."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from reputation.domain.checks import CheckKind, Verdict, worst
from reputation.domain.dkim import DkimRecordError, dkim_verdict, parse_dkim_record, selectors_together
from reputation.domain.dmarc import DmarcRecordError, dmarc_lookup_names, dmarc_verdict, parse_dmarc_record
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.host_dns import fcrdns_verdict, mx_verdict, parse_mx
from reputation.domain.spf_record import (
    SpfEvaluation,
    SpfRecordError,
    parse_spf_record,
    record_warnings,
    select_spf_record,
    spf_verdict,
)

RSA_2048 = rsa.generate_private_key(65537, 2048)
RSA_1024 = rsa.generate_private_key(65537, 1024)
ED = ed25519.Ed25519PrivateKey.generate()


def txt(*records: str) -> DnsAnswer:
    return DnsAnswer(DnsOutcome.ANSWER, records)


NX = DnsAnswer(DnsOutcome.NXDOMAIN)
TIMEOUT = DnsAnswer(DnsOutcome.TIMEOUT, detail="no answer from 127.0.0.1:53 within 2 s")


def spki(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def pkcs1(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return base64.b64encode(der).decode()


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- SPF -----------------------------------------------------------------------------------------


def test_spf_record_parsing() -> None:
    record = parse_spf_record("v=spf1 ip4:192.0.2.0/24 include:_spf.example.com mx -all redirect=x.example")
    assert record.all_qualifier == "-" and record.includes == ("_spf.example.com",)
    assert record.redirect == "x.example" and record.direct_lookups == 3
    for bad in ("v=spf2 -all", "v=spf1 foo:bar -all", "v=spf1 redirect=a redirect=b"):
        with pytest.raises(SpfRecordError):
            parse_spf_record(bad)


def test_spf_record_selection() -> None:
    assert select_spf_record(["google-site-verification=x", "v=spf1 -all"]) == "v=spf1 -all"
    assert select_spf_record(["v=spf10 nope"]) is None
    with pytest.raises(SpfRecordError):
        select_spf_record(["v=spf1 -all", "v=spf1 ~all"])


def test_spf_record_warnings() -> None:
    assert "every address" in record_warnings(parse_spf_record("v=spf1 +all"))[0]
    assert "neutral" in record_warnings(parse_spf_record("v=spf1 ip4:192.0.2.1"))[0]
    assert "ptr" in record_warnings(parse_spf_record("v=spf1 ptr -all"))[0]
    assert record_warnings(parse_spf_record("v=spf1 ip4:192.0.2.1 -all")) == []


@pytest.mark.parametrize(
    ("result", "verdict", "words"),
    [
        ("pass", Verdict.PASS, "is authorised"),
        ("fail", Verdict.FAIL, "reject"),
        ("softfail", Verdict.FAIL, "suspicious"),
        ("neutral", Verdict.FAIL, "no assertion"),
        ("none", Verdict.FAIL, "publishes no SPF record"),
        ("permerror", Verdict.FAIL, "is broken (Too many DNS lookups)"),
        ("temperror", Verdict.UNKNOWN, "DNS did not answer"),
    ],
)
def test_spf_verdicts(result: str, verdict: Verdict, words: str) -> None:
    evaluation = SpfEvaluation(result, "SPF Permanent Error: Too many DNS lookups", "v=spf1 ip4:192.0.2.1 -all", 2)
    check = spf_verdict("192.0.2.1", "example.com", evaluation)
    assert check.check is CheckKind.SPF and check.subject == "192.0.2.1"
    assert check.verdict is verdict and words in check.reason


def test_spf_pass_with_a_bad_record_warns() -> None:
    open_record = spf_verdict("192.0.2.1", "example.com", SpfEvaluation("pass", record="v=spf1 +all"))
    assert open_record.verdict is Verdict.WARN and "every address" in open_record.reason
    heavy = spf_verdict(
        "192.0.2.1", "example.com", SpfEvaluation("pass", record="v=spf1 ip4:192.0.2.1 -all", worst_case_lookups=14)
    )
    assert heavy.verdict is Verdict.WARN and "14 DNS lookups" in heavy.reason


# --- DKIM ----------------------------------------------------------------------------------------


def test_dkim_record_parsing() -> None:
    record = parse_dkim_record(f"v=DKIM1; k=rsa; h=sha256; p={spki(RSA_2048)[:100]}\n {spki(RSA_2048)[100:]}")
    assert record.key_bits == 2048 and record.hash_algorithms == ("sha256",) and not record.testing
    assert parse_dkim_record(f"p={pkcs1(RSA_1024)}").key_bits == 1024  # bare PKCS#1 is accepted
    raw = ED.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert parse_dkim_record(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}").key_type == "ed25519"
    assert parse_dkim_record("v=DKIM1; p=").revoked
    for bad, words in [
        ("v=DKIM2; p=abc", "DKIM1"),
        ("v=DKIM1; k=rsa", "no public key"),
        ("v=DKIM1; k=dsa; p=abc", "unknown key type"),
        ("v=DKIM1; p=@@@", "base64"),
        (f"p={base64.b64encode(b'not a key').decode()}", "not a valid RSA public key"),
        ("v=DKIM1; p=a; p=b", "twice"),
        ("v=DKIM1; garbage", "malformed"),
    ]:
        with pytest.raises(DkimRecordError, match=words):
            parse_dkim_record(bad)


def test_dkim_verdicts() -> None:
    good = dkim_verdict("example.com", "s1", txt(f"v=DKIM1; k=rsa; p={spki(RSA_2048)}"))
    assert good.verdict is Verdict.PASS and good.subject == "s1" and good.details["key_bits"] == "2048"
    weak = dkim_verdict("example.com", "s1", txt(f"v=DKIM1; p={spki(RSA_1024)}"))
    assert weak.verdict is Verdict.WARN and "2048 bits are recommended" in weak.reason
    sha1 = dkim_verdict("example.com", "s1", txt(f"v=DKIM1; h=sha1; p={spki(RSA_2048)}"))
    assert sha1.verdict is Verdict.WARN and "sha256" in sha1.reason
    assert dkim_verdict("example.com", "s1", NX).verdict is Verdict.FAIL
    assert dkim_verdict("example.com", "s1", TIMEOUT).verdict is Verdict.UNKNOWN
    assert "not a DKIM key" in dkim_verdict("example.com", "s1", txt("hello")).reason
    two = dkim_verdict("example.com", "s1", txt(f"p={spki(RSA_2048)}", f"p={spki(RSA_1024)}"))
    assert two.verdict is Verdict.FAIL and "2 DKIM records" in two.reason


def test_dkim_signing_key_comparison() -> None:
    record = txt(f"v=DKIM1; p={spki(RSA_2048)}")
    assert dkim_verdict("example.com", "s1", record, pem(RSA_2048)).details["matches_signing_key"] == "true"
    other = dkim_verdict("example.com", "s1", record, pem(RSA_1024))
    assert other.verdict is Verdict.FAIL and "not the one PowerMTA signs with" in other.reason
    broken = dkim_verdict(
        "example.com", "s1", record, b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
    )
    assert broken.verdict is Verdict.FAIL and "unreadable" in broken.reason
    raw = ED.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ed_record = txt(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}")
    assert dkim_verdict("example.com", "ed", ed_record, pem(ED)).verdict is Verdict.PASS


# --- DMARC ---------------------------------------------------------------------------------------


def ed25519_record() -> DnsAnswer:
    raw = ED.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return txt(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}")


def test_an_ed25519_only_domain_warns_on_its_ed25519_selectors() -> None:
    ed = dkim_verdict("example.com", "ed", ed25519_record())
    assert ed.verdict is Verdict.PASS and ed.details["key_type"] == "ed25519"  # alone, the key is sound
    (alone,) = selectors_together([ed])
    assert alone.verdict is Verdict.WARN and alone.details["ed25519_only"] == "true"
    assert alone.reason == (
        "ED25519 256-bit key published at ed._domainkey.example.com, but no RSA key is published beside it: "
        "many receivers verify only RSA signatures, so to them this mail is unsigned (RFC 8463 §4 has signers "
        "sign with both)"
    )
    revoked = dkim_verdict("example.com", "rsa", txt("v=DKIM1; k=rsa; p="))
    assert [r.verdict for r in selectors_together([revoked, ed])] == [Verdict.FAIL, Verdict.WARN]  # no usable RSA
    rsa_key = dkim_verdict("example.com", "rsa", txt(f"v=DKIM1; k=rsa; p={spki(RSA_2048)}"))
    assert selectors_together([rsa_key, ed]) == [rsa_key, ed]  # dual signing: nothing to say
    unknown = dkim_verdict("example.com", "rsa", TIMEOUT)
    assert selectors_together([unknown, ed]) == [unknown, ed]  # an RSA key may be behind the timeout
    assert selectors_together([ed], ed25519_only=Verdict.PASS) == [ed]  # a tenant whose receivers verify Ed25519
    assert selectors_together([ed], ed25519_only=Verdict.FAIL)[0].verdict is Verdict.FAIL


def test_dmarc_lookup_walk() -> None:
    assert dmarc_lookup_names("a.b.example.com") == [
        "_dmarc.a.b.example.com",
        "_dmarc.b.example.com",
        "_dmarc.example.com",
    ]
    assert dmarc_lookup_names("example.com") == ["_dmarc.example.com"]


def test_dmarc_parsing() -> None:
    record = parse_dmarc_record("v=DMARC1; p=quarantine; sp=reject; pct=50; rua=mailto:a@x.example,mailto:b@y.example")
    assert (record.policy, record.subdomain_policy, record.pct) == ("quarantine", "reject", 50)
    assert record.rua == ("mailto:a@x.example", "mailto:b@y.example")
    assert (record.spf_alignment, record.dkim_alignment, record.policy_problems) == ("r", "r", ())
    strict = parse_dmarc_record("v=DMARC1; p=reject; aspf=s; adkim=S")
    assert (strict.spf_alignment, strict.dkim_alignment) == ("s", "s")
    # Not a policy: kept, with the problem named (what receivers do with it depends on rua, RFC 7489 §6.6.3).
    maybe = parse_dmarc_record("v=DMARC1; p=maybe; sp=never; aspf=x; rua=mailto:d@example.com")
    assert (maybe.policy, maybe.subdomain_policy, maybe.spf_alignment) == (None, None, "r")
    assert maybe.policy_problems == (
        "p=maybe is not none, quarantine or reject",
        "sp=never is not none, quarantine or reject",
    )
    assert maybe.mode_problems == ("aspf=x is neither r nor s, so receivers use relaxed alignment",)
    for bad in (
        "v=DMARC2; p=none",
        "p=none; v=DMARC1",
        "v=DMARC1; p=none; pct=x",
        "v=DMARC1; p=none; pct=120",
    ):
        with pytest.raises(DmarcRecordError):
            parse_dmarc_record(bad)


@pytest.mark.parametrize(
    ("records", "verdict", "words"),
    [
        (["v=DMARC1; p=reject; rua=mailto:d@example.com"], Verdict.PASS, "DMARC policy reject"),
        (["v=DMARC1; p=quarantine; pct=25; rua=mailto:d@example.com"], Verdict.WARN, "only 25%"),
        (["v=DMARC1; p=none; rua=mailto:d@example.com"], Verdict.WARN, "p=none"),
        (["v=DMARC1; p=reject"], Verdict.WARN, "no aggregate report address"),
        (["v=DMARC1; p=reject; rua=https://example.com/r"], Verdict.WARN, "mailto:"),
        (["v=DMARC1; rua=mailto:d@example.com"], Verdict.WARN, "no p= tag"),
        (["v=DMARC1; sp=reject"], Verdict.FAIL, "no policy"),
        # RFC 7489 §6.6.3: a p= that is not a policy, with a valid rua, counts as p=none (reports still flow)...
        (["v=DMARC1; p=maybe; rua=mailto:d@example.com"], Verdict.WARN, "as p=none (RFC 7489 §6.6.3)"),
        (["v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com"], Verdict.WARN, "DMARC policy none"),
        # ...and without one receivers ignore the record.
        (["v=DMARC1; p=maybe"], Verdict.FAIL, "invalid (p=maybe is not none, quarantine or reject)"),
        (["v=DMARC1; p=maybe; rua=https://example.com/r"], Verdict.FAIL, "receivers ignore it"),
        (["v=DMARC1; p=reject; adkim=x; rua=mailto:d@example.com"], Verdict.WARN, "adkim=x is neither r nor s"),
        (["v=DMARC1; p=reject", "v=DMARC1; p=none"], Verdict.FAIL, "2 DMARC records"),
        (["some other text"], Verdict.FAIL, "no DMARC record"),
    ],
)
def test_dmarc_verdicts(records: list[str], verdict: Verdict, words: str) -> None:
    check = dmarc_verdict("example.com", [("_dmarc.example.com", txt(*records))])
    assert check.verdict is verdict and words in check.reason


def test_dmarc_verdict_keeps_the_policy_applied_and_the_alignment_modes() -> None:
    check = dmarc_verdict(
        "example.com", [("_dmarc.example.com", txt("v=DMARC1; p=reject; aspf=s; rua=mailto:d@x.example"))]
    )
    assert (check.details["policy"], check.details["aspf"], check.details["adkim"]) == ("reject", "s", "r")
    invalid = dmarc_verdict("example.com", [("_dmarc.example.com", txt("v=DMARC1; p=maybe; rua=mailto:d@x.example"))])
    assert invalid.details["policy"] == "none"
    assert invalid.reason.startswith("DMARC policy none, reports to mailto:d@x.example; but p=maybe is not none")


def test_dmarc_inherited_and_failures() -> None:
    inherited = dmarc_verdict(
        "news.example.com",
        [
            ("_dmarc.news.example.com", NX),
            ("_dmarc.example.com", txt("v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com")),
        ],
    )
    assert inherited.verdict is Verdict.WARN and "none (inherited from example.com)" in inherited.reason
    assert dmarc_verdict("example.com", [("_dmarc.example.com", TIMEOUT)]).verdict is Verdict.UNKNOWN
    assert dmarc_verdict("example.com", [("_dmarc.example.com", NX)]).verdict is Verdict.FAIL


# --- PTR / FCrDNS and MX -------------------------------------------------------------------------


def test_fcrdns() -> None:
    ptr = txt("mail.example.com.")
    forward = {"mail.example.com": txt("192.0.2.1")}
    assert fcrdns_verdict("192.0.2.1", "mail.example.com", ptr, forward).verdict is Verdict.PASS
    assert fcrdns_verdict("192.0.2.1", "MAIL.example.com.", ptr, forward).verdict is Verdict.PASS
    assert fcrdns_verdict("192.0.2.1", "other.example.com", ptr, forward).verdict is Verdict.WARN
    mismatch = fcrdns_verdict("192.0.2.1", None, ptr, {"mail.example.com": txt("192.0.2.9")})
    assert mismatch.verdict is Verdict.FAIL and "resolves to 192.0.2.9" in mismatch.reason
    assert fcrdns_verdict("192.0.2.1", None, NX, {}).verdict is Verdict.FAIL
    assert fcrdns_verdict("192.0.2.1", None, TIMEOUT, {}).verdict is Verdict.UNKNOWN
    assert fcrdns_verdict("192.0.2.1", None, ptr, {"mail.example.com": TIMEOUT}).verdict is Verdict.UNKNOWN
    either = fcrdns_verdict(
        "192.0.2.1",
        None,
        txt("a.example.com", "b.example.com"),
        {"a.example.com": NX, "b.example.com": txt("192.0.2.1")},
    )
    assert either.verdict is Verdict.PASS and "b.example.com" in either.reason


def test_mx() -> None:
    assert parse_mx("10 mx.example.com.") == (10, "mx.example.com") and parse_mx("0 .") == (0, "")
    ok = mx_verdict(
        "example.com",
        txt("20 b.example.com", "10 a.example.com"),
        {"a.example.com": txt("192.0.2.1"), "b.example.com": txt("192.0.2.2")},
    )
    assert ok.verdict is Verdict.PASS and ok.reason == "MX a.example.com, b.example.com"
    half = mx_verdict(
        "example.com",
        txt("10 a.example.com", "20 b.example.com"),
        {"a.example.com": txt("192.0.2.1"), "b.example.com": NX},
    )
    assert half.verdict is Verdict.WARN
    assert mx_verdict("example.com", txt("0 ."), {}).verdict is Verdict.FAIL
    assert mx_verdict("example.com", NX, {}).verdict is Verdict.FAIL
    assert mx_verdict("example.com", TIMEOUT, {}).verdict is Verdict.UNKNOWN
    nodata = DnsAnswer(DnsOutcome.NODATA)
    assert mx_verdict("example.com", nodata, {"example.com": txt("192.0.2.1")}).verdict is Verdict.WARN
    assert mx_verdict("example.com", nodata, {"example.com": NX}).verdict is Verdict.FAIL
    assert mx_verdict("example.com", txt("10 a.example.com"), {"a.example.com": TIMEOUT}).verdict is Verdict.UNKNOWN


def test_worst_verdict() -> None:
    assert worst([Verdict.PASS, Verdict.WARN]) is Verdict.WARN
    assert worst([Verdict.UNKNOWN, Verdict.WARN]) is Verdict.UNKNOWN
    assert worst([Verdict.UNKNOWN, Verdict.FAIL]) is Verdict.FAIL
    assert worst([]) is Verdict.PASS
