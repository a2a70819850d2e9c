"""Dedup around incidents: every change of state is told (listed → delisted → listed again inside the hour, an
Alertmanager alert firing again after it resolved), a repeat of the same state within the window is not, an older
state never overwrites a newer one; and a listing alert is as loud as the listing and says what the platform does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from emailengine.reputation.v1 import reputation_service_pb2 as reputation_pb
from libs.auth import Caller, Role
from libs.clock import FakeClock
from notifier.app.events import alert_from_ip_listing_changed
from notifier.app.routes import RouteSpec
from notifier.domain.alert import Severity
from notifier.domain.dedup import DedupPolicy
from notifier.domain.listing_alerts import listing_alert_severity
from tests.unit.notifier.fakes import FakeNotifier, notifier_over_fakes

ADMIN = Caller("admin", Role.ADMIN, "")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IP = "203.0.113.7"
CHAT = "-1001000000001"


# -- the rule -------------------------------------------------------------------------------------------


def test_listed_delisted_listed_within_the_hour_is_three_messages() -> None:
    policy = DedupPolicy()
    listed = policy.decide(None, T0, state="listed:critical")
    delisted = policy.decide(listed.state, T0 + timedelta(minutes=20), state="delisted")
    again = policy.decide(delisted.state, T0 + timedelta(minutes=40), state="listed:critical")
    assert [v.accepted for v in (listed, delisted, again)] == [True, True, True]
    assert again.state.state == "listed:critical"  # the last message told: listed
    repeat = policy.decide(again.state, T0 + timedelta(minutes=50), state="listed:critical")
    assert repeat.suppressed and repeat.state.suppressed_count == 1 and repeat.state.state == "listed:critical"
    reminder = policy.decide(repeat.state, T0 + timedelta(minutes=100), state="listed:critical")
    assert reminder.accepted and reminder.state.suppressed_count == 0  # the window has passed: told again


def test_an_older_state_never_overwrites_a_newer_one() -> None:
    policy = DedupPolicy()
    delisted = policy.decide(None, T0, state="delisted", occurred_at=T0)
    late = policy.decide(
        delisted.state, T0 + timedelta(seconds=5), state="listed:high", occurred_at=T0 - timedelta(minutes=5)
    )
    assert late.suppressed and late.stale and late.state.state == "delisted"
    newer = policy.decide(
        late.state, T0 + timedelta(minutes=1), state="listed:high", occurred_at=T0 + timedelta(minutes=1)
    )
    assert newer.accepted and not newer.stale


def test_a_listing_that_worsens_is_a_new_state() -> None:
    policy = DedupPolicy()
    low = policy.decide(None, T0, state="listed:low")
    high = policy.decide(low.state, T0 + timedelta(minutes=5), state="listed:high")
    assert high.accepted and high.state.state == "listed:high"


# -- a listing alert: as loud as the listing, saying what the platform does ------------------------------


def envelope(minutes: float = 0) -> event_pb2.EventEnvelope:
    message = event_pb2.EventEnvelope(event_id=f"e{minutes}", source="reputation", tenant_id="sos-expat")
    message.occurred_at.FromDatetime(T0 + timedelta(minutes=minutes))
    return message


def listing(
    zone: str, severity: int, *, listed: bool = True, previous: int = 0, still: tuple[str, ...] = (), reason: str = ""
) -> reputation_events.IpListingChanged:
    return reputation_events.IpListingChanged(
        address=IP,
        tenant_id="sos-expat",
        listed=listed,
        zone=zone,
        severity=severity,
        previous_severity=previous,
        still_listed_on=list(still),
        reason=reason,
    )


@pytest.mark.parametrize(
    ("zone", "severity", "alert", "words"),
    [
        ("bl.mailspike.net", reputation_pb.LISTING_SEVERITY_LOW, Severity.WARNING, "keeps sending and warming up"),
        ("hostkarma.junkemailfilter.com", reputation_pb.LISTING_SEVERITY_LOW, Severity.WARNING, "alert only"),
        ("dnsbl-1.uceprotect.net", reputation_pb.LISTING_SEVERITY_MEDIUM, Severity.WARNING, "holds the IP's warmup"),
        ("psbl.surriel.com", reputation_pb.LISTING_SEVERITY_MEDIUM, Severity.WARNING, "holds the IP's warmup"),
        ("bl.spamcop.net", reputation_pb.LISTING_SEVERITY_HIGH, Severity.CRITICAL, "on standby"),
        ("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL, Severity.CRITICAL, "on standby"),
    ],
)
def test_a_listing_alert_takes_the_listings_severity_and_says_what_the_platform_does(
    zone: str, severity: int, alert: Severity, words: str
) -> None:
    made = alert_from_ip_listing_changed(envelope(), listing(zone, severity, reason="the list's meaning"))
    name = reputation_pb.ListingSeverity.Name(severity).removeprefix("LISTING_SEVERITY_").lower()
    assert made.severity is alert and made.title == f"IP {IP} listed on {zone} ({name})"
    assert made.text.startswith("the list's meaning\n") and words in made.text
    assert made.state == f"listed:{name}" and made.dedup_key == f"ip-listing:{IP}:{zone}"


def test_the_severity_table() -> None:
    assert [listing_alert_severity(s) for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")] == [
        Severity.WARNING,
        Severity.WARNING,
        Severity.CRITICAL,
        Severity.CRITICAL,
    ]
    assert listing_alert_severity("INFO") is Severity.WARNING  # a listing is never only information
    assert listing_alert_severity("") is Severity.CRITICAL  # an older producer: as loud as before


def test_an_escalation_and_a_partial_delisting_are_told_as_such() -> None:
    worse = alert_from_ip_listing_changed(
        envelope(),
        listing(
            "bl.mailspike.net",
            reputation_pb.LISTING_SEVERITY_HIGH,
            previous=reputation_pb.LISTING_SEVERITY_LOW,
            still=("bl.spamcop.net",),
        ),
    )
    assert worse.severity is Severity.CRITICAL
    assert worse.title == f"IP {IP} listing on bl.mailspike.net worsened: low → high"
    assert "Also listed on: bl.spamcop.net" in worse.text
    gone = alert_from_ip_listing_changed(
        envelope(),
        listing("bl.mailspike.net", reputation_pb.LISTING_SEVERITY_HIGH, listed=False, still=("bl.spamcop.net",)),
    )
    assert gone.severity is Severity.INFO and gone.resolved and gone.state == "delisted"
    assert gone.title == f"IP {IP} delisted from bl.mailspike.net, still listed on bl.spamcop.net"


# -- through the use cases: events and Alertmanager payloads, as an operator's chat sees them --------------------


@pytest.fixture
def notifier() -> Iterator[FakeNotifier]:
    made = notifier_over_fakes(FakeClock(T0))
    made.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=CHAT))
    yield made
    made.close()


def handle(n: FakeNotifier, event: Any, minutes: float) -> None:
    with n.uow() as uow:
        n.app.events.on_ip_listing_changed(uow, envelope(minutes), event)
        uow.commit()


def test_a_relisting_inside_the_hour_alerts_again_and_the_last_message_says_listed(notifier: FakeNotifier) -> None:
    sbl = listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL, reason="Spamhaus SBL")
    handle(notifier, sbl, 0)
    notifier.run_for(5)
    notifier.clock.advance(timedelta(minutes=20))
    handle(notifier, listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL, listed=False), 20)
    notifier.run_for(5)
    notifier.clock.advance(timedelta(minutes=20))
    handle(notifier, sbl, 40)
    handle(notifier, sbl, 40)  # delivered twice (at least once): one message
    notifier.run_for(5)
    texts = notifier.telegram.texts(CHAT)
    assert len(texts) == 3, texts
    assert "listed on zen.spamhaus.org" in texts[0] and "delisted" in texts[1]
    assert "listed on zen.spamhaus.org" in texts[2] and "delisted" not in texts[2]


def test_a_low_listing_warns_and_an_sbl_listing_is_critical(notifier: FakeNotifier) -> None:
    handle(notifier, listing("bl.mailspike.net", reputation_pb.LISTING_SEVERITY_LOW), 0)
    handle(notifier, listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL), 0)
    alerts, _ = notifier.app.alerts.list(ADMIN, "sos-expat", 10, "")
    assert {(a.alert.title, a.alert.severity) for a in alerts} == {
        (f"IP {IP} listed on bl.mailspike.net (low)", Severity.WARNING),
        (f"IP {IP} listed on zen.spamhaus.org (critical)", Severity.CRITICAL),
    }


def alertmanager(status: str, starts: datetime, ends: datetime | None = None) -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": "HostDown", "tenant": "sos-expat", "severity": "critical"},
        "annotations": {"summary": "mta1 down"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": (ends or datetime(1, 1, 1, tzinfo=UTC)).isoformat().replace("+00:00", "Z"),
        "fingerprint": "1a30ba71cca2921f",
    }
    body = {"version": "4", "groupKey": '{}:{alertname="HostDown"}', "status": status, "alerts": [alert]}
    return json.dumps(body).encode()


def test_an_alertmanager_alert_that_fires_again_after_resolving_is_told_again(notifier: FakeNotifier) -> None:
    receive = notifier.app.alerts.receive_alertmanager
    first_start = T0 - timedelta(minutes=5)
    assert receive(ADMIN, alertmanager("firing", first_start)).accepted == 1
    assert receive(ADMIN, alertmanager("firing", first_start)).suppressed == 1  # the HA peer's copy
    resolved_at = T0 + timedelta(minutes=10)
    assert receive(ADMIN, alertmanager("resolved", first_start, resolved_at)).accepted == 1
    # The HA peer's copy of the first firing, arriving after the resolution: older news, not told.
    assert receive(ADMIN, alertmanager("firing", first_start)).suppressed == 1
    assert receive(ADMIN, alertmanager("firing", T0 + timedelta(minutes=20))).accepted == 1  # it fires again
    notifier.run_for(5)
    texts = notifier.telegram.texts(CHAT)
    assert len(texts) == 3 and "RESOLVED" in texts[1].upper() and "RESOLVED" not in texts[2].upper()


# -- a listing and the standby it causes: one message -------------------------------------------------------------

ADMIN_CHAT = "-1001000000099"


def standby(n: FakeNotifier, minutes: float) -> None:
    message = event_pb2.EventEnvelope(event_id=f"s{minutes}", source="ip-pool", tenant_id="sos-expat")
    message.occurred_at.FromDatetime(T0 + timedelta(minutes=minutes))
    event = ippool_events.IpStateChanged(
        address=IP,
        tenant_id="sos-expat",
        state=ippool_pb.IP_STATE_STANDBY,
        previous_state=ippool_pb.IP_STATE_WARMING,
        reason="standby, will resume one step lower (50/day): listed by zen.spamhaus.org (Spamhaus SBL)",
    )
    with n.uow() as uow:
        n.app.events.on_ip_state_changed(uow, message, event)
        uow.commit()


@pytest.fixture
def both_chats(notifier: FakeNotifier) -> FakeNotifier:
    notifier.app.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id=ADMIN_CHAT))
    return notifier


def test_a_listing_and_its_standby_are_one_message_in_each_chat(both_chats: FakeNotifier) -> None:
    n = both_chats
    sbl = listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL, reason="Spamhaus SBL")
    sbl.delist_url = "https://check.spamhaus.org/"
    handle(n, sbl, 0)
    n.run_for(1)
    assert n.telegram.sent == []  # held for the standby
    standby(n, 0)
    n.run_for(10)
    for chat in (CHAT, ADMIN_CHAT):
        [text] = n.telegram.texts(chat)
        assert "CRITICAL" in text and f"IP {IP} on standby" in text and "zen.spamhaus.org" in text, text
        assert "https://check.spamhaus.org/" in text, text
    with n.uow() as uow:
        stored = list(uow.alerts.rows.values())
    [told] = [a for a in stored if a.duplicate_of is None]
    [folded] = [a for a in stored if a.duplicate_of is not None]
    assert told.alert.dedup_key == f"ip-state:{IP}" and folded.duplicate_of == told.alert_id
    assert folded.summary.state.value == "SUPPRESSED" and told.suppressed_count == 1


def test_a_standby_told_first_makes_its_listing_a_duplicate(both_chats: FakeNotifier) -> None:
    n = both_chats
    standby(n, 0)
    n.run_for(1)
    handle(n, listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_HIGH, reason="Spamhaus SBL"), 0)
    n.run_for(10)
    assert [len(n.telegram.texts(chat)) for chat in (CHAT, ADMIN_CHAT)] == [1, 1]
    assert "on standby" in n.telegram.texts(CHAT)[0]


def test_a_listing_whose_standby_does_not_come_is_sent_alone_after_the_wait(notifier: FakeNotifier) -> None:
    handle(notifier, listing("zen.spamhaus.org", reputation_pb.LISTING_SEVERITY_CRITICAL, reason="Spamhaus SBL"), 0)
    notifier.run_for(4)
    assert notifier.telegram.texts(CHAT) == []
    notifier.run_for(2)
    [text] = notifier.telegram.texts(CHAT)
    assert f"IP {IP} listed on zen.spamhaus.org" in text


def test_a_listing_that_only_warns_is_sent_at_once(notifier: FakeNotifier) -> None:
    handle(notifier, listing("bl.mailspike.net", reputation_pb.LISTING_SEVERITY_LOW, reason="Mailspike L2"), 0)
    notifier.deliver()
    assert len(notifier.telegram.texts(CHAT)) == 1
