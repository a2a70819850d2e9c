"""A tenant's domains: the list validated whole, the checks they get, how a verdict changes, the event: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.errors import InvalidArgument
from reputation.app.events import domain_check_changed
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.tenant_domains import (
    MAX_SENDING_DOMAINS,
    SendingDomain,
    TenantDomainList,
    fold_verdict,
    parse_domain_list,
    planned_checks,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_list_is_normalised_and_selectors_deduplicated() -> None:
    parsed = parse_domain_list(
        "sos-expat", [("Mail.SOS-Expat.example.", ["S1", "s1", "k2"]), ("news.example", [])], ["Click.example"]
    )
    assert parsed.sending == (
        SendingDomain("mail.sos-expat.example", ("s1", "k2")),
        SendingDomain("news.example", ()),
    )
    assert parsed.tracking == ("click.example",) and not parsed.empty
    assert parse_domain_list("sos-expat", [], []).empty


def test_every_bad_entry_is_named_as_the_request_spells_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_domain_list(
            "sos-expat",
            [("ok.example", ["s1", "s 2"]), ("not a domain", []), ("OK.example", ["_bad"])],
            ["click.example", "click.example", "localhost"],
        )
    assert [v.field for v in caught.value.violations] == [
        "sending_domains[0].dkim_selectors[1]",
        "sending_domains[1].domain",
        "sending_domains[2].domain",
        "sending_domains[2].dkim_selectors[0]",
        "tracking_domains[1]",
        "tracking_domains[2]",
    ]
    with pytest.raises(InvalidArgument) as caught:
        parse_domain_list("t", [(f"d{i}.example", []) for i in range(MAX_SENDING_DOMAINS + 1)], [])
    assert caught.value.violations[0].field == "sending_domains"


def test_sending_domains_get_every_check_and_tracking_domains_the_blocklists() -> None:
    domains = TenantDomainList("sos-expat", (SendingDomain("a.example", ("s1",)),), ("t.example", "a.example"))
    plan = planned_checks(domains, ["192.0.2.1", "2001:db8::1"])
    assert list(plan.items()) == [
        (("a.example", "spf", "192.0.2.1"), "sending"),
        (("a.example", "spf", "2001:db8::1"), "sending"),
        (("a.example", "dkim", "s1"), "sending"),
        (("a.example", "dmarc", "a.example"), "sending"),
        (("a.example", "mx", "a.example"), "sending"),
        (("a.example", "blocklist", "a.example"), "sending"),
        (("t.example", "blocklist", "t.example"), "tracking"),
    ]
    assert domains.blocklist_targets == ["a.example", "t.example"]
    assert list(planned_checks(domains, [])) == [k for k in plan if k[1] != "spf"]


@pytest.mark.parametrize(
    ("believed", "observed", "after", "changed", "publish"),
    [
        (None, Verdict.PASS, Verdict.PASS, True, False),  # a good domain stays quiet
        (None, Verdict.FAIL, Verdict.FAIL, True, True),  # broken from the start: news
        (None, Verdict.WARN, Verdict.WARN, True, True),
        (None, Verdict.UNKNOWN, None, False, False),
        (Verdict.UNKNOWN, Verdict.PASS, Verdict.PASS, True, False),  # stored "unknown" = nothing known yet
        (Verdict.PASS, Verdict.FAIL, Verdict.FAIL, True, True),
        (Verdict.FAIL, Verdict.PASS, Verdict.PASS, True, True),
        (Verdict.FAIL, Verdict.WARN, Verdict.WARN, True, True),
        (Verdict.FAIL, Verdict.FAIL, Verdict.FAIL, False, False),
        (Verdict.PASS, Verdict.UNKNOWN, Verdict.PASS, False, False),  # DNS trouble never flips a verdict
        (Verdict.FAIL, Verdict.UNKNOWN, Verdict.FAIL, False, False),
    ],
)
def test_a_verdict_changes_only_on_a_definitive_answer(
    believed: Verdict | None, observed: Verdict, after: Verdict | None, changed: bool, publish: bool
) -> None:
    step = fold_verdict(believed, observed)
    assert (step.believed, step.changed, step.publish) == (after, changed, publish)


def test_a_blocklist_change_names_the_lists_by_their_public_names() -> None:
    result = CheckResult(
        CheckKind.BLOCKLIST,
        "links.example",
        Verdict.FAIL,
        "listed on dbl.spamhaus.org: Spamhaus DBL: spam domain",
        {"spamhaus-dbl": "listed", "surbl": "not_listed", "uribl": "listed"},
    )
    event = domain_check_changed("tracker", "links.example", "tracking", Verdict.PASS, result, NOW)
    assert list(event.listed_on) == ["dbl.spamhaus.org", "multi.uribl.com"]
    assert (event.previous_verdict, event.verdict) == (pb.CHECK_VERDICT_PASS, pb.CHECK_VERDICT_FAIL)
    assert event.check == "blocklist" and event.domain_role == "tracking" and event.tenant_id == "tracker"
    spf = CheckResult(CheckKind.SPF, "192.0.2.1", Verdict.FAIL, "not permitted", {"record": "v=spf1 -all"})
    first = domain_check_changed("t", "a.example", "sending", None, spf, NOW)
    assert first.previous_verdict == pb.CHECK_VERDICT_UNSPECIFIED and list(first.records) == ["v=spf1 -all"]
    assert list(first.listed_on) == [] and first.observed_at.ToDatetime(tzinfo=UTC) == NOW
