"""A tenant's domains over in-memory fakes: each change of verdict published once, UNKNOWN never news, the list
read back with its believed verdicts. No socket, no database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emailengine.reputation.v1 import events_pb2
from libs.auth import Caller, Role
from libs.errors import PermissionDenied
from reputation.app.tenant_domains import TenantDomainChecks
from reputation.config import DnsEnvSettings, ReputationConfig, ReputationSettings, build_config
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from tests.unit.reputation.fakes import FakeReputation, fake_reputation

SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")
DOMAIN = "mail.sos.example"


@pytest.fixture
def rep() -> FakeReputation:
    config: ReputationConfig = build_config(ReputationSettings(), DnsEnvSettings(nameservers="127.0.0.1:53"))
    return fake_reputation(config)


@pytest.fixture
def domains(rep: FakeReputation) -> TenantDomainChecks:
    checks = TenantDomainChecks(rep.context)
    checks.set(SOS, "sos-expat", [(DOMAIN, [])], [])
    return checks


def dmarc(verdict: Verdict) -> tuple[CheckResult, ...]:
    return (CheckResult(CheckKind.DMARC, DOMAIN, verdict, f"dmarc {verdict.value}"),)


def changes(rep: FakeReputation) -> list[tuple[str, int, int]]:
    return [
        (e.check, e.previous_verdict, e.verdict)
        for _t, e in rep.store.published
        if isinstance(e, events_pb2.DomainCheckChanged)
    ]


def test_each_change_of_verdict_is_published_once_and_unknown_is_never_news(
    rep: FakeReputation, domains: TenantDomainChecks
) -> None:
    rep.dns.auth[DOMAIN] = dmarc(Verdict.PASS)
    first = domains.check(SOS, "sos-expat")
    assert [c.verdict for r in first.sending for c in r.checks] == [Verdict.PASS, Verdict.PASS]  # DMARC, blocklist
    assert changes(rep) == []  # a good domain stays quiet
    rep.dns.auth[DOMAIN] = dmarc(Verdict.FAIL)
    rep.clock.advance(timedelta(minutes=1))
    domains.check(SOS, "sos-expat")
    rep.dns.auth[DOMAIN] = dmarc(Verdict.UNKNOWN)
    rep.clock.advance(timedelta(minutes=1))
    unknown = domains.check(SOS, "sos-expat")
    assert unknown.unknown == 1 and unknown.changes == []
    rep.clock.advance(timedelta(minutes=1))
    rep.dns.auth[DOMAIN] = dmarc(Verdict.FAIL)
    domains.check(SOS, "sos-expat")
    assert changes(rep) == [("dmarc", 1, 3)]  # PASS -> FAIL, once
    view = domains.get(SOS, "sos-expat")
    dmarc_state = next(c for c in view.checks if c.key[1] == "dmarc")
    assert dmarc_state.verdict is Verdict.FAIL and view.verdict is Verdict.FAIL and dmarc_state.unknown_at is None


def test_another_tenant_neither_reads_nor_checks_the_domains(domains: TenantDomainChecks) -> None:
    for call in (lambda: domains.get(ULIXAI, "sos-expat"), lambda: domains.check(ULIXAI, "sos-expat")):
        with pytest.raises(PermissionDenied):
            call()
