"""DMARC alignment of the From domain with the Return-Path (SPF) and the DKIM d=, per sending IP, relaxed or strict,
with the tenant's policy for DMARC resting on one identifier."""

from __future__ import annotations

from reputation.domain.alignment import aligned, alignment_verdict
from reputation.domain.check_policy import CheckPolicy
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dmarc import dmarc_verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome

IP, IP2 = "192.0.2.10", "192.0.2.11"


def spf(ip: str, result: str = "pass") -> CheckResult:
    verdict = {"pass": Verdict.PASS, "temperror": Verdict.UNKNOWN}.get(result, Verdict.FAIL)
    return CheckResult(CheckKind.RETURN_PATH_SPF, ip, verdict, "", {"result": result})


def dkim(selector: str = "s1", verdict: Verdict = Verdict.PASS) -> CheckResult:
    return CheckResult(CheckKind.DKIM, selector, verdict, "", {"key_type": "rsa"})


def dmarc(record: str = "v=DMARC1; p=reject; rua=mailto:d@example.com", domain: str = "example.com") -> CheckResult:
    return dmarc_verdict(domain, [(f"_dmarc.{domain}", DnsAnswer(DnsOutcome.ANSWER, (record,)))])


def judge(
    return_path: str,
    spf_results: list[CheckResult],
    dkim_results: list[CheckResult],
    dmarc_check: CheckResult | None = None,
    from_domain: str = "example.com",
    **policy: Verdict,
) -> CheckResult:
    found = alignment_verdict(
        from_domain=from_domain,
        return_path_domain=return_path,
        dkim_domain=from_domain,
        spf=spf_results,
        dkim=dkim_results,
        dmarc=dmarc_check if dmarc_check is not None else dmarc(),
        policy=CheckPolicy(**policy),
    )
    assert found is not None
    return found


def test_alignment_relaxed_and_strict() -> None:
    assert aligned("bounces.example.com", "example.com", "r")
    assert not aligned("bounces.example.com", "example.com", "s")
    assert aligned("Example.com.", "example.com", "s")
    assert aligned("bounces.shop.example.co.uk", "news.example.co.uk", "r")  # organizational domain example.co.uk
    assert not aligned("mail.other.co.uk", "example.co.uk", "r")  # co.uk is a public suffix, not an organization
    assert not aligned("bounce.example.com.evil.example", "example.com", "r")


def test_a_bounce_subdomain_with_dkim_passes_through_both() -> None:
    check = judge("bounces.example.com", [spf(IP)], [dkim()])
    assert check.verdict is Verdict.PASS and check.check is CheckKind.ALIGNMENT and check.subject == "example.com"
    assert check.reason == (
        "DMARC passes for mail From example.com through SPF and DKIM: the Return-Path domain bounces.example.com is "
        "aligned (relaxed: both under example.com) and SPF passes for 192.0.2.10; DKIM d=example.com is aligned "
        "(relaxed: both under example.com) and its key s1 is usable"
    )
    assert (check.details["through"], check.details["dmarc_passes"]) == ("spf,dkim", "true")


def test_strict_spf_alignment_leaves_dmarc_on_dkim_alone() -> None:
    check = judge(
        "bounces.example.com", [spf(IP)], [dkim()], dmarc("v=DMARC1; p=reject; aspf=s; rua=mailto:d@x.example")
    )
    assert check.verdict is Verdict.WARN and check.details["spf_aligned"] == "false"
    assert "only through DKIM" in check.reason
    assert "strict alignment needs the same name: bounces.example.com ≠ example.com" in check.reason


def test_a_return_path_on_another_domain_warns_unless_the_tenant_accepts_it() -> None:
    check = judge("bounce.esp-mailer.net", [spf(IP)], [dkim()])
    assert check.verdict is Verdict.WARN
    assert check.reason.startswith("DMARC passes for mail From example.com only through DKIM: DKIM d=example.com")
    assert (
        "the Return-Path domain bounce.esp-mailer.net is not aligned (relaxed: bounce.esp-mailer.net is under "
        "esp-mailer.net, example.com under example.com)" in check.reason
    )
    accepted = judge("bounce.esp-mailer.net", [spf(IP)], [dkim()], single_alignment=Verdict.PASS)
    assert accepted.verdict is Verdict.PASS and "through DKIM" in accepted.reason


def test_spf_alone_passes_when_no_selector_was_given() -> None:
    check = judge("example.com", [spf(IP)], [])
    assert check.verdict is Verdict.PASS and "DKIM was not checked (no selector given)" in check.reason


def test_spf_alone_with_a_failing_key_is_the_policys_call() -> None:
    check = judge("example.com", [spf(IP)], [dkim(verdict=Verdict.FAIL)])
    assert check.verdict is Verdict.WARN and "only through SPF" in check.reason and "selector s1 fails" in check.reason


def test_dmarc_resting_on_an_identifier_not_given_warns() -> None:
    check = judge("bounce.esp-mailer.net", [spf(IP)], [])
    assert check.verdict is Verdict.WARN and check.details["dmarc_passes"] == "unknown"
    assert check.reason.startswith("DMARC for mail From example.com sent by 192.0.2.10 can pass only through what")
    assert check.reason.endswith(
        "DKIM was not checked (no selector given); give the sending IPs and DKIM selectors to judge it"
    )


def test_nothing_aligned_fails_naming_the_ip() -> None:
    check = judge("bounce.esp-mailer.net", [spf(IP)], [dkim(verdict=Verdict.FAIL)])
    assert check.verdict is Verdict.FAIL and check.details["dmarc_passes"] == "false"
    assert check.reason.startswith("DMARC fails for mail From example.com sent by 192.0.2.10: neither identifier")
    assert "Gmail, Yahoo and Microsoft reject unaligned bulk mail" in check.reason


def test_only_the_ip_spf_does_not_authorise_fails() -> None:
    check = judge("example.com", [spf(IP), spf(IP2, "softfail")], [dkim(verdict=Verdict.FAIL)])
    assert check.verdict is Verdict.FAIL
    assert "sent by 192.0.2.11" in check.reason and "SPF gives softfail for 192.0.2.11" in check.reason
    assert "192.0.2.10" not in check.reason


def test_dns_trouble_that_could_change_the_outcome_is_unknown() -> None:
    check = judge("example.com", [spf(IP, "temperror")], [dkim(verdict=Verdict.FAIL)])
    assert check.verdict is Verdict.UNKNOWN and "could not be evaluated" in check.reason
    assert judge("example.com", [spf(IP, "temperror")], [dkim()]).verdict is Verdict.PASS  # DKIM carries it


def test_no_ip_and_no_selector_is_nothing_to_judge() -> None:
    found = alignment_verdict(
        from_domain="example.com",
        return_path_domain="example.com",
        dkim_domain="example.com",
        spf=[],
        dkim=[],
        dmarc=None,
    )
    assert found is None


def test_without_a_dmarc_record_alignment_is_relaxed() -> None:
    missing = dmarc_verdict("example.com", [("_dmarc.example.com", DnsAnswer(DnsOutcome.NXDOMAIN))])
    check = judge("bounces.example.com", [spf(IP)], [dkim()], missing)
    assert check.verdict is Verdict.PASS and check.details["aspf"] == "r"
