"""Other services' events → alerts: which are worth a message, at what severity, with which dedup key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from libs.errors import InvalidArgument
from notifier.app.events import alert_from_ip_listing_changed, alert_from_ip_state_changed
from notifier.domain.alert import Severity
from tests.unit.notifier.conftest import T0


def envelope(source: str = "reputation", tenant: str = "sos-expat") -> event_pb2.EventEnvelope:
    message = event_pb2.EventEnvelope(event_id="e1", source=source, tenant_id=tenant)
    message.occurred_at.FromDatetime(T0)
    return message


def test_listed_is_critical_and_delisted_is_info_each_its_own_dedup_key() -> None:
    listed = alert_from_ip_listing_changed(
        envelope(),
        reputation_events.IpListingChanged(
            address="203.0.113.7", tenant_id="sos-expat", listed=True, zone="zen.spamhaus.org", reason="127.0.0.2"
        ),
    )
    assert listed.severity is Severity.CRITICAL and not listed.resolved
    assert listed.title == "IP 203.0.113.7 listed on zen.spamhaus.org" and listed.text == "127.0.0.2"
    assert listed.dedup_key == "ip-listing:203.0.113.7:zen.spamhaus.org:listed"
    assert listed.occurred_at == T0 and listed.source == "reputation" and listed.tenant == "sos-expat"
    assert dict(listed.labels) == {"ip": "203.0.113.7", "zone": "zen.spamhaus.org"}
    assert listed.url == ""


def test_a_listing_names_the_removal_page_and_the_listing_severity() -> None:
    listed = alert_from_ip_listing_changed(
        envelope(),
        reputation_events.IpListingChanged(
            address="203.0.113.7",
            tenant_id="sos-expat",
            listed=True,
            zone="zen.spamhaus.org",
            severity=reputation_pb.LISTING_SEVERITY_HIGH,
            codes=["127.0.0.2", "127.0.0.4"],
            delist_url="https://check.spamhaus.org/",
        ),
    )
    assert listed.severity is Severity.CRITICAL and listed.url == "https://check.spamhaus.org/"
    assert listed.labels["listing_severity"] == "high" and listed.labels["codes"] == "127.0.0.2, 127.0.0.4"
    delisted = alert_from_ip_listing_changed(
        envelope(), reputation_events.IpListingChanged(address="203.0.113.7", listed=False, zone="zen.spamhaus.org")
    )
    assert delisted.severity is Severity.INFO and delisted.resolved
    assert delisted.tenant == "sos-expat"  # from the envelope when the event leaves it out
    assert delisted.dedup_key.endswith(":delisted")


def state(previous: str, current: str) -> ippool_events.IpStateChanged:
    return ippool_events.IpStateChanged(
        address="203.0.113.9",
        tenant_id="ulixai",
        previous_state=ippool_pb.IpState.Value(f"IP_STATE_{previous}"),
        state=ippool_pb.IpState.Value(f"IP_STATE_{current}"),
        reason="listed on zen.spamhaus.org",
    )


@pytest.mark.parametrize(
    ("previous", "current", "severity", "title"),
    [
        ("WARM", "STANDBY", Severity.WARNING, "IP 203.0.113.9 on standby"),
        ("WARMING", "PAUSED", Severity.INFO, "IP 203.0.113.9 paused"),
        ("PAUSED", "RETIRED", Severity.INFO, "IP 203.0.113.9 retired"),
        ("STANDBY", "WARMING", Severity.INFO, "IP 203.0.113.9 back in service (warming)"),
        ("PAUSED", "WARM", Severity.INFO, "IP 203.0.113.9 back in service"),
    ],
)
def test_state_changes_worth_a_message(previous: str, current: str, severity: Severity, title: str) -> None:
    alert = alert_from_ip_state_changed(envelope("ip-pool", "ulixai"), state(previous, current))
    assert alert is not None
    assert (alert.severity, alert.title, alert.tenant) == (severity, title, "ulixai")
    assert alert.dedup_key == f"ip-state:203.0.113.9:{current.lower()}"
    assert alert.text.endswith(f"State: {previous.lower()} → {current.lower()}")


@pytest.mark.parametrize(("previous", "current"), [("WARMING", "WARM"), ("UNSPECIFIED", "WARMING")])
def test_routine_state_changes_make_no_alert(previous: str, current: str) -> None:
    assert alert_from_ip_state_changed(envelope("ip-pool"), state(previous, current)) is None


def test_an_event_with_a_bad_tenant_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        alert_from_ip_listing_changed(
            envelope(tenant=""), reputation_events.IpListingChanged(address="x", tenant_id="NOPE", zone="z")
        )


def test_zone_health_changes_are_platform_alerts_for_the_admins() -> None:
    from notifier.app.events import alert_from_zone_health_changed
    from notifier.domain.alert import PLATFORM_TENANT

    down = alert_from_zone_health_changed(
        envelope(tenant=""),
        reputation_events.ZoneHealthChanged(
            zone="bl.example.test", zone_key="example", healthy=False, reason="lists 127.0.0.1: listing the world"
        ),
    )
    assert down.tenant == PLATFORM_TENANT and down.severity is Severity.WARNING and not down.resolved
    assert down.title == "Blocklist zone bl.example.test is unhealthy"
    assert down.dedup_key == "zone-health:example:unhealthy"
    back = alert_from_zone_health_changed(
        envelope(tenant=""),
        reputation_events.ZoneHealthChanged(zone="bl.example.test", zone_key="example", healthy=True),
    )
    assert back.severity is Severity.INFO and back.resolved and back.text


# -- a tenant's domain checks --------------------------------------------------------------------------


def domain_check(check: str, subject: str, previous: str, verdict: str, **more: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {"tenant_id": "sos-expat", "domain": "sos-expat.example", **more}
    return reputation_events.DomainCheckChanged(
        check=check,
        subject=subject,
        previous_verdict=reputation_pb.CheckVerdict.Value(f"CHECK_VERDICT_{previous}"),
        verdict=reputation_pb.CheckVerdict.Value(f"CHECK_VERDICT_{verdict}"),
        **fields,
    )


@pytest.mark.parametrize(
    ("check", "subject", "severity", "title"),
    [
        ("spf", "192.0.2.10", Severity.CRITICAL, "SPF of sos-expat.example for 192.0.2.10 fails"),
        ("dkim", "s1", Severity.CRITICAL, "DKIM of sos-expat.example (selector s1) fails"),
        ("dmarc", "sos-expat.example", Severity.CRITICAL, "DMARC of sos-expat.example fails"),
        ("mx", "sos-expat.example", Severity.WARNING, "MX of sos-expat.example fails"),
    ],
)
def test_a_sending_domain_whose_authentication_breaks(check: str, subject: str, severity: Severity, title: str) -> None:
    from notifier.app.events import alert_from_domain_check_changed

    alert = alert_from_domain_check_changed(
        envelope(),
        domain_check(check, subject, "PASS", "FAIL", reason="192.0.2.10 is not allowed", records=["v=spf1 -all"]),
    )
    assert alert is not None
    assert (alert.severity, alert.title, alert.tenant, alert.resolved) == (severity, title, "sos-expat", False)
    assert alert.dedup_key == f"domain-check:sos-expat.example:{check}:{subject}:fail"
    assert alert.text == "192.0.2.10 is not allowed\nVerdict: pass → fail\nRecord: v=spf1 -all"
    assert alert.labels["domain"] == "sos-expat.example" and alert.labels["check"] == check


def test_a_warning_and_a_recovery() -> None:
    from notifier.app.events import alert_from_domain_check_changed

    weak = alert_from_domain_check_changed(
        envelope(), domain_check("dmarc", "sos-expat.example", "UNSPECIFIED", "WARN", reason="p=none")
    )
    assert weak is not None and weak.severity is Severity.WARNING and not weak.resolved
    assert weak.title == "DMARC of sos-expat.example needs attention" and weak.text == "p=none"  # a first verdict
    fixed = alert_from_domain_check_changed(envelope(), domain_check("dkim", "s1", "FAIL", "PASS", reason="2048-bit"))
    assert fixed is not None and fixed.severity is Severity.INFO and fixed.resolved
    assert fixed.title == "DKIM of sos-expat.example (selector s1) passes again"
    assert fixed.dedup_key == "domain-check:sos-expat.example:dkim:s1:pass"
    assert alert_from_domain_check_changed(envelope(), domain_check("spf", "192.0.2.1", "PASS", "UNKNOWN")) is None


def test_a_domain_listed_on_a_domain_blocklist_is_critical_and_names_the_lists() -> None:
    from notifier.app.events import alert_from_domain_check_changed

    listed = alert_from_domain_check_changed(
        envelope(),
        domain_check(
            "blocklist",
            "track.example",
            "PASS",
            "FAIL",
            domain="track.example",
            domain_role="tracking",
            listed_on=["dbl.spamhaus.org", "multi.surbl.org"],
            reason="listed on dbl.spamhaus.org: Spamhaus DBL: spam domain",
        ),
    )
    assert listed is not None and listed.severity is Severity.CRITICAL and not listed.resolved
    assert listed.title == "Tracking domain track.example listed on dbl.spamhaus.org, multi.surbl.org"
    assert listed.dedup_key == "domain-check:track.example:blocklist:track.example:fail"
    assert listed.labels["listed_on"] == "dbl.spamhaus.org, multi.surbl.org"
    minor = alert_from_domain_check_changed(
        envelope(), domain_check("blocklist", "sos-expat.example", "PASS", "WARN", listed_on=["multi.uribl.com"])
    )
    assert minor is not None and minor.severity is Severity.WARNING
    assert minor.title == "Domain sos-expat.example listed on multi.uribl.com"
    gone = alert_from_domain_check_changed(
        envelope(), domain_check("blocklist", "sos-expat.example", "FAIL", "PASS", domain_role="sending")
    )
    assert gone is not None and gone.severity is Severity.INFO and gone.resolved
    assert gone.title == "Domain sos-expat.example no longer listed on a domain blocklist"


def test_the_notifier_subscribes_to_domain_check_changes() -> None:
    from notifier.app.events import EventAlerts
    from notifier.bootstrap import subscriptions

    app = SimpleNamespace(unit_of_work=lambda: None, events=EventAlerts(None))  # type: ignore[arg-type]
    wired = subscriptions(app)  # type: ignore[arg-type]
    types = {cls.DESCRIPTOR.full_name for cls in wired.handlers}
    assert "emailengine.reputation.v1.DomainCheckChanged" in types
    assert wired.handlers[reputation_events.DomainCheckChanged] == app.events.on_domain_check_changed
