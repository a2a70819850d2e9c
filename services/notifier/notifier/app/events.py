"""Other services' events that a human should hear about, turned into alerts.

* emailengine.reputation.v1.IpListingChanged: listed → the listing's severity (LOW and MEDIUM → WARNING, HIGH and
  CRITICAL → CRITICAL: `notifier.domain.listing_alerts`), saying what the default listing policy does about it;
  an escalation on the same list is told as such; delisted → INFO, naming the lists that still list the IP (the
  list's removal page, when the event names one, is the alert's link).
* emailengine.ippool.v1.IpStateChanged: into STANDBY → WARNING; into PAUSED or RETIRED → INFO; back into
  service from STANDBY or PAUSED → INFO. Other transitions (warming → warm) are routine: no alert.
* emailengine.reputation.v1.ZoneHealthChanged: a blocklist zone turned unhealthy (dead, listing the world,
  unreachable) → WARNING, healthy again → INFO; a platform alert (tenant ""), so admin routes get it.
* emailengine.reputation.v1.DomainCheckChanged: a check of a tenant's domain became FAIL → CRITICAL when it
  stops mail: a listing on a domain blocklist (DBL, SURBL, URIBL: every link to the domain gets mail refused)
  and SPF, DKIM or DMARC of a sending domain (Gmail, Yahoo and Microsoft reject bulk mail without them);
  any other FAIL (MX) and any WARN → WARNING; back to PASS → INFO, resolved.

Each alert's dedup key is its incident (the IP on the list, the IP, the zone, the domain's check) and its state
what it says (`listed:high`, `delisted`, `standby`, `fail`): every change is told, a repeat within the window is
not (`notifier.domain.dedup`).

Handlers (`EventAlerts.on_*`) run inside the event consumer's unit of work (libs.events), so the alert and
its deliveries are stored exactly when the event is marked handled. An event that cannot make a valid alert (a
malformed tenant id) is logged and dropped: raising would only redeliver it forever.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message

from emailengine.ippool.v1.events_pb2 import IpStateChanged
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1.events_pb2 import DomainCheckChanged, IpListingChanged, ZoneHealthChanged
from libs.errors import InvalidArgument
from notifier.app.intake import AlertIntake
from notifier.app.unit_of_work import NotifierUnitOfWork
from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity
from notifier.domain.listing_alerts import (
    STANDBY_FOLD_WAIT,
    STANDBY_STATE,
    expects_standby,
    fold_into_standby,
    listing_action,
    listing_alert_severity,
    listing_key_prefix,
    standby_key,
)

log = logging.getLogger(__name__)

_OUT_OF_SERVICE = {"STANDBY": Severity.WARNING, "PAUSED": Severity.INFO, "RETIRED": Severity.INFO}
_IN_SERVICE = ("WARMING", "WARM")
_HTTP_URL = re.compile(r"^https?://[^\s]{1,2000}$")
_STATE_WORDS = {
    "STANDBY": "on standby",
    "PAUSED": "paused",
    "RETIRED": "retired",
    "WARMING": "back in service (warming)",
    "WARM": "back in service",
}


def _occurred_at(envelope: event_pb2.EventEnvelope) -> datetime:
    if envelope.HasField("occurred_at"):
        return envelope.occurred_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


def _enum_name(event: Message, field: str, value: int, prefix: str) -> str:
    """An enum value's name as the event's own contract spells it ("" when it does not know the field or
    value: a producer on a newer contract)."""
    descriptor = event.DESCRIPTOR.fields_by_name.get(field)
    found = descriptor.enum_type.values_by_number.get(value) if descriptor and descriptor.enum_type else None
    return found.name.removeprefix(prefix) if found is not None else ""


def _state_name(event: IpStateChanged, field: str) -> str:
    return _enum_name(event, field, getattr(event, field), "IP_STATE_") or "UNSPECIFIED"


def alert_from_ip_state_changed(envelope: event_pb2.EventEnvelope, event: IpStateChanged) -> Alert | None:
    state, previous = _state_name(event, "state"), _state_name(event, "previous_state")
    if state in _OUT_OF_SERVICE:
        severity = _OUT_OF_SERVICE[state]
    elif state in _IN_SERVICE and previous in ("STANDBY", "PAUSED"):
        severity = Severity.INFO
    else:
        return None
    lines = [event.reason.strip()] if event.reason.strip() else []
    lines.append(f"State: {previous.lower()} → {state.lower()}")
    return Alert.create(
        tenant=event.tenant_id or envelope.tenant_id,
        severity=severity,
        dedup_key=standby_key(event.address),
        state=state.lower(),
        title=f"IP {event.address} {_STATE_WORDS[state]}",
        text="\n".join(lines),
        source=envelope.source or "ip-pool",
        occurred_at=_occurred_at(envelope),
        labels={"ip": event.address, "state": state.lower()},
    )


def alert_from_ip_listing_changed(envelope: event_pb2.EventEnvelope, event: IpListingChanged) -> Alert:
    # Newer fields of the event, read defensively: a producer on an older contract simply lacks them.
    listing_severity = _enum_name(event, "severity", getattr(event, "severity", 0), "LISTING_SEVERITY_")
    listing_severity = "" if listing_severity == "UNSPECIFIED" else listing_severity
    previous = _enum_name(event, "previous_severity", getattr(event, "previous_severity", 0), "LISTING_SEVERITY_")
    previous = "" if previous == "UNSPECIFIED" else previous
    still = [z for z in getattr(event, "still_listed_on", ()) if z]
    level = f" ({listing_severity.lower()})" if listing_severity else ""
    lines = [event.reason.strip()] if event.reason.strip() else []
    if event.listed:
        severity = listing_alert_severity(listing_severity)
        if previous:
            title = (
                f"IP {event.address} listing on {event.zone} worsened: {previous.lower()} → {listing_severity.lower()}"
            )
        else:
            title = f"IP {event.address} listed on {event.zone}{level}"
        action = listing_action(listing_severity)
        if action:
            lines.append(action)
        if still:
            lines.append(f"Also listed on: {', '.join(still)}")
        state = f"listed:{listing_severity.lower() or 'unspecified'}"
    else:
        severity, state = Severity.INFO, "delisted"
        title = f"IP {event.address} delisted from {event.zone}"
        if still:
            title += f", still listed on {', '.join(still)}"
    labels = {"ip": event.address, "zone": event.zone}
    if listing_severity:
        labels["listing_severity"] = listing_severity.lower()
    codes = ", ".join(getattr(event, "codes", ()))
    if codes:
        labels["codes"] = codes
    if still:
        labels["still_listed_on"] = ", ".join(still)
    delist_url = str(getattr(event, "delist_url", "")).strip()
    return Alert.create(
        tenant=event.tenant_id or envelope.tenant_id,
        severity=severity,
        dedup_key=f"{listing_key_prefix(event.address)}{event.zone}",
        state=state,
        title=title,
        text="\n".join(lines),
        source=envelope.source or "reputation",
        occurred_at=_occurred_at(envelope),
        labels=labels,
        resolved=not event.listed,
        url=delist_url if event.listed and _HTTP_URL.match(delist_url) else "",
    )


def alert_from_zone_health_changed(envelope: event_pb2.EventEnvelope, event: ZoneHealthChanged) -> Alert:
    status = "healthy" if event.healthy else "unhealthy"
    return Alert.create(
        tenant=PLATFORM_TENANT,
        severity=Severity.INFO if event.healthy else Severity.WARNING,
        dedup_key=f"zone-health:{event.zone_key or event.zone}",
        state=status,
        title=f"Blocklist zone {event.zone} is {status}",
        text=event.reason.strip()
        or ("Its answers count again." if event.healthy else "Its answers are ignored until it recovers."),
        source=envelope.source or "reputation",
        occurred_at=_occurred_at(envelope),
        labels={"zone": event.zone, "zone_health": status},
        resolved=event.healthy,
    )


_CHECK_NAMES = {
    "spf": "SPF",
    "return_path_spf": "Return-Path SPF",
    "dkim": "DKIM",
    "dmarc": "DMARC",
    "alignment": "DMARC alignment",
    "mx": "MX",
    "ptr": "PTR",
}
# FAILs that stop mail on their own: CRITICAL. Other FAILs and every WARN: WARNING.
_CRITICAL_FAILS = frozenset({"blocklist", "spf", "return_path_spf", "dkim", "dmarc", "alignment"})


def _verdict_name(event: DomainCheckChanged, field: str) -> str:
    return _enum_name(event, field, getattr(event, field), "CHECK_VERDICT_") or "UNSPECIFIED"


def alert_from_domain_check_changed(envelope: event_pb2.EventEnvelope, event: DomainCheckChanged) -> Alert | None:
    verdict, previous = _verdict_name(event, "verdict"), _verdict_name(event, "previous_verdict")
    check = event.check.strip().lower()
    if verdict == "FAIL":
        severity = Severity.CRITICAL if check in _CRITICAL_FAILS else Severity.WARNING
    elif verdict == "WARN":
        severity = Severity.WARNING
    elif verdict == "PASS":
        severity = Severity.INFO
    else:  # UNKNOWN is never news (the producer does not publish it); anything else is not understood
        return None
    kind = "Tracking domain" if event.domain_role == "tracking" else "Domain"
    listed_on = ", ".join(event.listed_on)
    if check == "blocklist":
        if verdict == "PASS":
            title = f"{kind} {event.domain} no longer listed on a domain blocklist"
        else:
            title = f"{kind} {event.domain} listed on {listed_on or 'a domain blocklist'}"
    else:
        name = _CHECK_NAMES.get(check, check.upper())
        subject = ""
        if event.subject and event.subject != event.domain:
            subject = f" (selector {event.subject})" if check == "dkim" else f" for {event.subject}"
        words = {"FAIL": "fails", "WARN": "needs attention", "PASS": "passes again"}[verdict]
        title = f"{name} of {event.domain}{subject} {words}"
    lines = [event.reason.strip()] if event.reason.strip() else []
    if previous not in ("UNSPECIFIED", "UNKNOWN"):
        lines.append(f"Verdict: {previous.lower()} → {verdict.lower()}")
    lines += [f"Record: {r}" for r in event.records if r.strip()]
    labels = {"domain": event.domain, "check": check, "verdict": verdict.lower()}
    if event.subject:
        labels["subject"] = event.subject
    if listed_on:
        labels["listed_on"] = listed_on
    return Alert.create(
        tenant=event.tenant_id or envelope.tenant_id,
        severity=severity,
        dedup_key=f"domain-check:{event.domain}:{check}:{event.subject}",
        state=verdict.lower(),
        title=title,
        text="\n".join(lines),
        source=envelope.source or "reputation",
        occurred_at=_occurred_at(envelope),
        labels=labels,
        resolved=verdict == "PASS",
    )


Envelope = event_pb2.EventEnvelope
EventT = TypeVar("EventT", bound=Message)


class EventAlerts:
    """The event handlers: each turns one event into an alert (or none), accepted in the consumer's unit of work."""

    def __init__(self, intake: AlertIntake):
        self._intake = intake

    def on_ip_listing_changed(self, uow: NotifierUnitOfWork, envelope: Envelope, event: IpListingChanged) -> None:
        """A listing that expects a standby is told with it, in one message (`notifier.domain.listing_alerts`):
        a duplicate of the standby already told for it, or held for the standby to take it in."""
        alert = self._alert(envelope, event, alert_from_ip_listing_changed)
        if alert is None:
            return
        if not (event.listed and expects_standby(alert.labels.get("listing_severity", ""))):
            self._intake.accept(uow, [alert])
            return
        told = uow.dedup.lock(alert.tenant, standby_key(event.address))
        if (
            told is not None
            and told.alert_id
            and told.state == STANDBY_STATE
            and told.state_at is not None
            and told.state_at >= alert.occurred_at - STANDBY_FOLD_WAIT
        ):
            self._intake.accept_told(uow, alert, told_by=told.alert_id)
            return
        self._intake.accept(uow, [alert], hold=STANDBY_FOLD_WAIT)

    def on_ip_state_changed(self, uow: NotifierUnitOfWork, envelope: Envelope, event: IpStateChanged) -> None:
        """A standby takes in the listing alerts still held for it: one message tells both."""
        alert = self._alert(envelope, event, alert_from_ip_state_changed)
        if alert is None:
            return
        held = []
        if alert.state == STANDBY_STATE:
            held = uow.deliveries.held_alerts(alert.tenant, listing_key_prefix(event.address), self._intake.now())
        if held:
            alert = fold_into_standby(standby=alert, listings=[s.alert for s in uow.alerts.get_many(held)])
        [result] = self._intake.accept(uow, [alert])
        if held and result.accepted:
            uow.deliveries.drop_held(held)
            uow.alerts.mark_told_by(held, result.alert_id)
            uow.deliveries.refresh_summaries(held)

    def on_zone_health_changed(self, uow: NotifierUnitOfWork, envelope: Envelope, event: ZoneHealthChanged) -> None:
        self._accept(uow, envelope, event, alert_from_zone_health_changed)

    def on_domain_check_changed(self, uow: NotifierUnitOfWork, envelope: Envelope, event: DomainCheckChanged) -> None:
        self._accept(uow, envelope, event, alert_from_domain_check_changed)

    def _accept(
        self,
        uow: NotifierUnitOfWork,
        envelope: Envelope,
        event: EventT,
        mapper: Callable[[Envelope, EventT], Alert | None],
    ) -> None:
        alert = self._alert(envelope, event, mapper)
        if alert is not None:
            self._intake.accept(uow, [alert])

    @staticmethod
    def _alert(envelope: Envelope, event: EventT, mapper: Callable[[Envelope, EventT], Alert | None]) -> Alert | None:
        try:
            return mapper(envelope, event)
        except InvalidArgument as exc:
            log.warning(
                "event cannot make an alert; dropped",
                extra={"event_id": envelope.event_id, "event_type": event.DESCRIPTOR.full_name, "error": exc.message},
            )
            return None
