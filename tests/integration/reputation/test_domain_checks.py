"""Domain checks against a real nsd: good, weak and broken SPF/DKIM/DMARC, PTR/FCrDNS, MX, and a dead server."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dns.reversename
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from libs.errors import InvalidArgument
from reputation.adapters.dns_client import DnsSettings, parse_nameservers
from reputation.adapters.domain_checks import DomainChecker
from reputation.domain.checks import CheckKind, CheckResult, DomainReport, Verdict
from reputation.domain.validation import parse_ip
from tests.harness.dns_servers import Nsd, silent_nameserver, txt_rdata

pytestmark = pytest.mark.integration

GOOD_IP = "192.0.2.10"
GOOD_V6 = "2001:db8::10"
MISMATCH_IP = "192.0.2.11"
NO_PTR_IP = "192.0.2.12"


@dataclass
class Keys:
    rsa_2048: rsa.RSAPrivateKey
    rsa_3072: rsa.RSAPrivateKey
    rsa_1024: rsa.RSAPrivateKey
    other_2048: rsa.RSAPrivateKey


def spki_b64(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def short_rsa_key_b64(bits: int = 768) -> str:
    """A public key below what `cryptography` will generate: only its size matters to the check."""
    modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return spki_b64(rsa.RSAPublicNumbers(65537, modulus).public_key())


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dkim(key_b64: str, extra: str = "") -> str:
    return txt_rdata(f"v=DKIM1; k=rsa;{extra} p={key_b64}")


def ptr_owner(ip: str, zone: str) -> str:
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)[: -len(zone) - 1]


@pytest.fixture(scope="module")
def keys() -> Keys:
    gen = rsa.generate_private_key
    return Keys(gen(65537, 2048), gen(65537, 3072), gen(65537, 1024), gen(65537, 2048))


@pytest.fixture(scope="module")
def nsd(keys: Keys) -> Iterator[Nsd]:
    server = Nsd()
    eleven_includes = " ".join(f"include:i{n}.broken.test" for n in range(11))
    server.add_zone(
        "good.test",
        [
            f'@ TXT "v=spf1 ip4:{GOOD_IP} ip6:{GOOD_V6} include:_spf.good.test -all"',
            '_spf TXT "v=spf1 ip4:198.51.100.0/24 -all"',
            f"s2048._domainkey TXT {dkim(spki_b64(keys.rsa_2048.public_key()))}",
            f"big._domainkey TXT {dkim(spki_b64(keys.rsa_3072.public_key()))}",  # > 512 bytes: TCP
            '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@good.test"',
            "@ MX 10 mx.good.test.",
            "mx A 192.0.2.25",
            f"mail A {GOOD_IP}",
            f"mail AAAA {GOOD_V6}",
            "sub A 192.0.2.26",
        ],
    )
    server.add_zone(
        "weak.test",
        [
            '@ TXT "v=spf1 ip4:192.0.2.0/24 ptr ?all"',
            f"s1024._domainkey TXT {dkim(spki_b64(keys.rsa_1024.public_key()))}",
            f"testing._domainkey TXT {dkim(spki_b64(keys.rsa_2048.public_key()), ' t=y;')}",
            '_dmarc TXT "v=DMARC1; p=none"',
            "@ A 192.0.2.40",
        ],
    )
    server.add_zone(
        "broken.test",
        [
            f"@ TXT {txt_rdata(f'v=spf1 {eleven_includes} ip4:{GOOD_IP} -all')}",  # > 255: two strings
            *(f'i{n} TXT "v=spf1 -all"' for n in range(11)),
            f"s768._domainkey TXT {dkim(short_rsa_key_b64())}",
            'revoked._domainkey TXT "v=DKIM1; k=rsa; p="',
            'garbage._domainkey TXT "v=DKIM1; k=rsa; p=this-is-not-base64!"',
            '_dmarc TXT "v=DMARC1; p=maybe; rua=mailto:d@broken.test"',
            "@ MX 0 .",
        ],
    )
    server.add_zone("void.test", [f'@ TXT "v=spf1 a:nx1.void.test a:nx2.void.test a:nx3.void.test ip4:{GOOD_IP} -all"'])
    server.add_zone("twospf.test", [f'@ TXT "v=spf1 ip4:{GOOD_IP} -all"', '@ TXT "v=spf1 -all"'])
    server.add_zone("softfail.test", ['@ TXT "v=spf1 ip4:203.0.113.0/24 ~all"'])
    server.add_zone("nothing.test", ['@ TXT "google-site-verification=abc"'])
    server.add_zone("deadmx.test", ["@ MX 10 nowhere.deadmx.test."])
    server.add_zone("mismatch.test", ["mail A 192.0.2.99"])
    server.add_zone(
        "2.0.192.in-addr.arpa",
        ["10 PTR mail.good.test.", "11 PTR mail.mismatch.test."],
    )
    v6_zone = "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    server.add_zone(v6_zone, [f"{ptr_owner(GOOD_V6, v6_zone)} PTR mail.good.test."])
    with server:
        yield server


def checker(nameserver: str, timeout: float = 1.0, check_timeout: float = 4.0) -> DomainChecker:
    settings = DnsSettings(parse_nameservers(nameserver), timeout=timeout, attempts=2, check_timeout=check_timeout)
    return DomainChecker.from_settings(settings)


def one(report: DomainReport, kind: CheckKind, subject: str | None = None) -> CheckResult:
    found = [c for c in report.of(kind) if subject is None or c.subject == subject]
    assert len(found) == 1, found
    return found[0]


def validate(nsd: Nsd, domain: str, **kwargs: object) -> DomainReport:
    return asyncio.run(checker(nsd.nameserver).validate_domain(domain, **kwargs))  # type: ignore[arg-type]


def test_a_good_domain_passes_every_check(nsd: Nsd, keys: Keys) -> None:
    report = validate(
        nsd,
        "good.test",
        ips=[GOOD_IP, GOOD_V6],
        dkim_selectors=["s2048", "big"],
        helo_names={GOOD_IP: "mail.good.test", GOOD_V6: "mail.good.test"},
        dkim_signing_keys={"s2048": pem(keys.rsa_2048)},
    )
    assert [(c.check.value, c.subject) for c in report.checks] == [
        ("spf", GOOD_IP),
        ("spf", GOOD_V6),
        ("dkim", "s2048"),
        ("dkim", "big"),
        ("dmarc", "good.test"),
        ("ptr", GOOD_IP),
        ("ptr", GOOD_V6),
        ("mx", "good.test"),
    ]
    assert {c.verdict for c in report.checks} == {Verdict.PASS}, [c for c in report.checks if c.verdict != "pass"]
    assert report.verdict is Verdict.PASS
    assert "matching the PowerMTA signing key" in one(report, CheckKind.DKIM, "s2048").reason
    assert one(report, CheckKind.DKIM, "big").details["key_bits"] == "3072"
    spf = one(report, CheckKind.SPF, GOOD_IP)
    assert spf.details["worst_case_dns_lookups"] == "1" and "authorised" in spf.reason
    assert "reject" in one(report, CheckKind.DMARC).reason


def test_weak_records_warn_with_the_reason(nsd: Nsd) -> None:
    report = validate(nsd, "weak.test", ips=[GOOD_IP], dkim_selectors=["s1024", "testing"])
    spf = one(report, CheckKind.SPF)
    assert spf.verdict is Verdict.WARN and "?all" in spf.reason and "'ptr'" in spf.reason
    s1024 = one(report, CheckKind.DKIM, "s1024")
    assert s1024.verdict is Verdict.WARN and "1024-bit" in s1024.reason and "2048 bits are recommended" in s1024.reason
    testing = one(report, CheckKind.DKIM, "testing")
    assert testing.verdict is Verdict.WARN and "testing mode" in testing.reason
    dmarc = one(report, CheckKind.DMARC)
    assert dmarc.verdict is Verdict.WARN and "p=none" in dmarc.reason and "rua" in dmarc.reason
    mx = one(report, CheckKind.MX)
    assert mx.verdict is Verdict.WARN and "falls back" in mx.reason


def test_broken_records_fail_with_the_reason(nsd: Nsd) -> None:
    report = validate(nsd, "broken.test", ips=[GOOD_IP], dkim_selectors=["s768", "revoked", "garbage", "absent"])
    spf = one(report, CheckKind.SPF)
    assert spf.verdict is Verdict.FAIL and "broken" in spf.reason and "lookup" in spf.reason.lower()
    assert "768 bits" in one(report, CheckKind.DKIM, "s768").reason
    assert "revoked" in one(report, CheckKind.DKIM, "revoked").reason
    assert "base64" in one(report, CheckKind.DKIM, "garbage").reason
    assert "no DKIM key is published" in one(report, CheckKind.DKIM, "absent").reason
    assert all(c.verdict is Verdict.FAIL for c in report.of(CheckKind.DKIM))
    dmarc = one(report, CheckKind.DMARC)
    assert dmarc.verdict is Verdict.FAIL and "p=maybe" in dmarc.reason
    mx = one(report, CheckKind.MX)
    assert mx.verdict is Verdict.FAIL and "null MX" in mx.reason
    assert report.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("void.test", "void lookup"),
        ("twospf.test", "two or more"),
        ("softfail.test", "softfail"),
        ("nothing.test", "publishes no spf record"),
    ],
)
def test_spf_failures(nsd: Nsd, domain: str, words: str) -> None:
    result = asyncio.run(checker(nsd.nameserver).check_spf(GOOD_IP, domain))
    assert result.verdict is Verdict.FAIL
    assert words in result.reason.lower()


def test_dmarc_is_inherited_from_the_parent_domain(nsd: Nsd) -> None:
    result = asyncio.run(checker(nsd.nameserver).check_dmarc("sub.good.test"))
    assert result.verdict is Verdict.PASS and "quarantine (inherited from good.test)" in result.reason
    missing = asyncio.run(checker(nsd.nameserver).check_dmarc("nothing.test"))
    assert missing.verdict is Verdict.FAIL and "no DMARC record" in missing.reason


def test_dkim_key_not_matching_the_signing_key_fails(nsd: Nsd, keys: Keys) -> None:
    result = asyncio.run(checker(nsd.nameserver).check_dkim("good.test", "s2048", pem(keys.other_2048)))
    assert result.verdict is Verdict.FAIL and "not the one PowerMTA signs with" in result.reason


@pytest.mark.parametrize(
    ("ip", "helo", "verdict", "words"),
    [
        (GOOD_IP, "mail.good.test", Verdict.PASS, "matching its HELO"),
        (GOOD_IP, "other.good.test", Verdict.WARN, "HELO other.good.test"),
        (GOOD_IP, None, Verdict.PASS, "forward-confirmed reverse DNS mail.good.test"),
        (MISMATCH_IP, "mail.mismatch.test", Verdict.FAIL, "mail.mismatch.test resolves to 192.0.2.99"),
        (NO_PTR_IP, "mail.good.test", Verdict.FAIL, "no reverse DNS"),
        (GOOD_V6, "mail.good.test", Verdict.PASS, "matching its HELO"),
    ],
    ids=["pass", "helo-mismatch", "no-helo", "fcrdns-mismatch", "no-ptr", "ipv6"],
)
def test_ptr_and_fcrdns(nsd: Nsd, ip: str, helo: str | None, verdict: Verdict, words: str) -> None:
    result = asyncio.run(checker(nsd.nameserver).check_ptr(parse_ip(ip), helo))
    assert result.verdict is verdict
    assert words in result.reason


@pytest.mark.parametrize(
    ("domain", "verdict", "words"),
    [
        ("good.test", Verdict.PASS, "MX mx.good.test"),
        ("sub.good.test", Verdict.WARN, "falls back to its address 192.0.2.26"),
        ("nothing.test", Verdict.FAIL, "no MX record and no address"),
        ("deadmx.test", Verdict.FAIL, "nowhere.deadmx.test"),
        ("broken.test", Verdict.FAIL, "null MX"),
        ("absent.good.test", Verdict.FAIL, "does not exist"),
    ],
)
def test_mx(nsd: Nsd, domain: str, verdict: Verdict, words: str) -> None:
    result = asyncio.run(checker(nsd.nameserver).check_mx(domain))
    assert result.verdict is verdict
    assert words in result.reason


def test_a_dead_nameserver_gives_unknown_everywhere_within_the_timeout() -> None:
    with silent_nameserver() as dead:
        start = time.monotonic()
        report = asyncio.run(
            checker(dead, timeout=0.4, check_timeout=1.5).validate_domain(
                "good.test", ips=[GOOD_IP], dkim_selectors=["s2048"], helo_names={GOOD_IP: "mail.good.test"}
            )
        )
        elapsed = time.monotonic() - start
    assert elapsed < 3.0
    assert {c.verdict for c in report.checks} == {Verdict.UNKNOWN}, report.checks
    assert all(("timeout" in c.reason) or ("did not answer" in c.reason) for c in report.checks)


def test_bad_input_names_every_field(nsd: Nsd) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate(
            nsd,
            "not a domain",
            ips=["192.0.2.1", "300.1.1.1"],
            dkim_selectors=["ok", "bad_selector!"],
            helo_names={"192.0.2.1": "-bad-.test"},
        )
    assert [v.field for v in exc.value.violations] == [
        "domain",
        "ips[1]",
        "dkim_selectors[1]",
        "helo_names[192.0.2.1]",
    ]
