"""The pure rules of a campaign: contact checks, recipient domains, preflight verdicts, MailWizz names and the
request fingerprint."""

from __future__ import annotations

from campaign_gateway.domain.campaign import CampaignStage, mailwizz_name, request_fingerprint
from campaign_gateway.domain.contacts import Contact, ProblemKind, check_contacts, drop_suppressed, list_fields
from campaign_gateway.domain.preflight import (
    DomainCheck,
    IpListing,
    ServerUse,
    Verdict,
    campaign_server_refusal,
    check_capacity,
    check_delivery_servers,
    check_domains,
    check_listings,
)
from campaign_gateway.domain.recipients import (
    MailHost,
    RecipientDomain,
    allocation_group,
    drop_unreachable,
    receives_mail,
    volume_by_provider,
)


def test_contacts_keep_the_first_copy_with_a_lower_case_domain_and_their_local_case() -> None:
    check = check_contacts(
        contacts=[Contact(" Ann@Example.COM. "), Contact("ann@example.com"), Contact("Ann@example.com"), Contact("@x")]
    )
    assert [c.email for c in check.accepted] == ["Ann@example.com", "ann@example.com"]
    assert check.positions == (0, 1)
    assert [(p.index, p.kind) for p in check.problems] == [(2, ProblemKind.DUPLICATE), (3, ProblemKind.MALFORMED)]
    assert "contact 0" in check.problems[0].detail


def test_suppression_matches_without_any_case_and_keeps_positions() -> None:
    check = check_contacts(contacts=[Contact("a@x.org"), Contact("B@x.org"), Contact("c@x.org")])
    kept = drop_suppressed(check=check, suppressed_keys={"b@x.org"})
    assert [c.email for c in kept.accepted] == ["a@x.org", "c@x.org"] and kept.positions == (0, 2)
    assert [(p.index, p.kind) for p in kept.problems] == [(1, ProblemKind.SUPPRESSED)]


def test_only_the_fields_every_new_list_has_are_sent_and_cut_to_255() -> None:
    contact = Contact("a@x.org", "A" * 300, "", {"city": "Lyon"})
    assert list_fields(contact) == {"FNAME": "A" * 255}


def test_a_domain_without_a_mail_host_drops_its_contacts_and_dns_trouble_drops_nobody() -> None:
    domains = {
        "mx.example": RecipientDomain("mx.example", MailHost.MX, ("mx1.mx.example",)),
        "a.example": RecipientDomain("a.example", MailHost.ADDRESS_ONLY),
        "null.example": RecipientDomain("null.example", MailHost.NULL_MX, ("",)),
        "gone.example": RecipientDomain("gone.example", MailHost.NONE, detail="gone.example does not exist"),
        "slow.example": RecipientDomain("slow.example", MailHost.UNKNOWN),
    }
    assert [receives_mail(domain=d) for d in domains.values()] == [True, True, False, False, True]
    check = check_contacts(contacts=[Contact(f"u@{name}") for name in domains])
    kept = drop_unreachable(check=check, domains=domains)
    assert [c.email for c in kept.accepted] == ["u@mx.example", "u@a.example", "u@slow.example"]
    assert [p.detail for p in kept.problems] == [
        "null.example publishes a null MX: it accepts no mail",
        "gone.example does not exist",
    ]


def test_allocation_groups_are_ip_pools_four() -> None:
    assert allocation_group(domain="gmail.com", mx_hosts=()) == "GMAIL"
    assert (
        allocation_group(domain="corp.example", mx_hosts=("corp-example.mail.protection.outlook.com",)) == "MICROSOFT"
    )
    assert allocation_group(domain="orange.fr", mx_hosts=()) == "OTHER"
    contacts = [Contact("a@gmail.com"), Contact("b@gmail.com"), Contact("c@yahoo.fr"), Contact("d@free.fr")]
    assert volume_by_provider(contacts=contacts, domains={}) == {"GMAIL": 2, "YAHOO": 1, "OTHER": 1}


def _check(verdict: Verdict, check: str = "spf") -> DomainCheck:
    return DomainCheck("sos-mail.example", "sending", check, "192.0.2.10", verdict, "because")


def test_domain_checks_pass_with_warnings_and_fail_on_fail_unknown_or_nothing_checked() -> None:
    ok = check_domains(
        from_email="news@sos-mail.example",
        sending_domains=["sos-mail.example"],
        checks=[_check(Verdict.PASS), _check(Verdict.WARN, "dmarc")],
    )
    assert ok.passed and "warnings: dmarc" in ok.detail
    for verdict in (Verdict.FAIL, Verdict.UNKNOWN, Verdict.UNCHECKED):
        refused = check_domains(
            from_email="news@sos-mail.example", sending_domains=["sos-mail.example"], checks=[_check(verdict)]
        )
        assert not refused.passed and f"spf 192.0.2.10 of sos-mail.example: {verdict}" in refused.detail
    assert not check_domains(from_email="a@sos-mail.example", sending_domains=["sos-mail.example"], checks=[]).passed
    assert "declares no sending domain" in check_domains(from_email="a@b.c", sending_domains=[], checks=[]).detail
    elsewhere = check_domains(from_email="a@other.example", sending_domains=["sos-mail.example"], checks=[])
    assert "not one of the tenant's sending domains" in elsewhere.detail


def test_listings_capacity_and_servers() -> None:
    listed = check_listings(
        listings=[IpListing("192.0.2.10", True, ("zen.spamhaus.org",)), IpListing("192.0.2.11", False)]
    )
    assert not listed.passed and "192.0.2.10 is listed on zen.spamhaus.org" in listed.detail
    assert check_listings(listings=[IpListing("192.0.2.11", False, scanned=False)]).passed
    assert not check_capacity(requested=10, allocated_today=0, planned_later=0, unplanned=0, horizon_days=60).passed
    beyond = check_capacity(requested=10, allocated_today=2, planned_later=3, unplanned=5, horizon_days=60)
    assert not beyond.passed and "5 of 10" in beyond.detail
    assert check_capacity(requested=10, allocated_today=2, planned_later=8, unplanned=0, horizon_days=60).passed
    missing = check_delivery_servers(servers=[ServerUse("192.0.2.10", 4), ServerUse("192.0.2.11", None)])
    assert not missing.passed and "192.0.2.11" in missing.detail
    partly = check_delivery_servers(
        servers=[ServerUse("192.0.2.10", 4), ServerUse("192.0.2.11", 5, "it is inactive now")]
    )
    assert partly.passed and "192.0.2.11 (server 5) left out: it is inactive now" in partly.detail
    assert not check_delivery_servers(servers=[ServerUse("192.0.2.11", 5, "it is inactive now")]).passed


def test_mailwizz_keeps_only_the_customers_own_active_campaign_servers() -> None:
    def refusal(**changes: object) -> str:
        values: dict[str, object] = {"status": "active", "use_for": "all", "customer_id": 3, "tenant_customer_id": 3}
        values.update(changes)
        return campaign_server_refusal(**values)  # type: ignore[arg-type]

    assert refusal() == "" and refusal(status="in-use") == "" and refusal(use_for="campaigns") == ""
    assert refusal(status="inactive") == "it is inactive now"
    assert "customer 4" in refusal(customer_id=4)
    assert refusal(use_for="transactional") == "it is used for transactional only"


def test_names_fingerprints_and_stages() -> None:
    name = mailwizz_name(campaign_id="c-1", name="x" * 300)
    assert len(name) == 255 and name.endswith(" [ee c-1]")
    base = dict(
        tenant="t", template_id="cold_v1", name="", subject="", from_name="", from_email="", reply_to="", send_time=None
    )
    one = request_fingerprint(contacts=[Contact("a@x.org")], **base)  # type: ignore[arg-type]
    assert one == request_fingerprint(contacts=[Contact("a@x.org")], **base)  # type: ignore[arg-type]
    assert one != request_fingerprint(contacts=[Contact("b@x.org")], **base)  # type: ignore[arg-type]
    assert CampaignStage.SUBSCRIBED.reached(CampaignStage.LIST_CREATED)
    assert not CampaignStage.ACCEPTED.reached(CampaignStage.ALLOCATED)
