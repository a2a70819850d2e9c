"""What the intake stores, on SQLite and PostgreSQL, now that its statements are built once and a new alert is
stored with its summary: the summary is the one its deliveries give, the held listings are found by a LIKE that
escapes the prefix, and an IP state change costs the statements it needs and no more."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from notifier.adapters.tables import alerts
from notifier.domain.alert import Alert, Severity
from notifier.domain.outbox import Delivery, StoredAlert
from notifier.domain.routing import Channel
from notifier.domain.status import AlertStatus, AlertSummary, DeliveryStatus
from tests.integration.notifier.conftest import NotifierFactory, standard_routes
from tests.integration.notifier.helpers import add_route_an_older_version_accepted, consumer_for, state_event

pytestmark = pytest.mark.integration

SUMMARY = (alerts.c.alert_id, alerts.c.delivery_state, alerts.c.attempts, alerts.c.last_error, alerts.c.delivery_time)


def _summaries(factory: NotifierFactory) -> dict[str, tuple[object, ...]]:
    with factory.db.engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(sa.select(*SUMMARY))}


def test_a_new_alert_is_stored_with_the_summary_its_deliveries_give(make_notifier: NotifierFactory) -> None:
    """Unrouted, pending beside a route that cannot be used (its error shown), and Telegram disabled: what
    refresh_summaries computes from the stored deliveries afterwards changes nothing."""
    notifier = make_notifier()
    consumer = consumer_for(notifier)
    assert consumer.handle(state_event("192.0.2.1", "WARM", "PAUSED"))  # no route yet: UNROUTED
    standard_routes(notifier)
    add_route_an_older_version_accepted(make_notifier.db)
    assert consumer.handle(state_event("192.0.2.2", "WARM", "PAUSED"))
    assert consumer_for(make_notifier(telegram=False)).handle(
        state_event("192.0.2.3", "WARM", "STANDBY", tenant="ulixai")
    )
    stored = _summaries(make_notifier)
    assert {state for state, *_ in stored.values()} == {"UNROUTED", "PENDING", "DISABLED"}
    assert any(state == "PENDING" and "cannot be used" in error for state, _, error, _ in stored.values())

    with make_notifier.unit_of_work() as uow:
        uow.deliveries.refresh_summaries(list(stored))
        uow.commit()
    assert _summaries(make_notifier) == stored


def test_held_listings_are_found_by_their_prefix_taken_literally(make_notifier: NotifierFactory) -> None:
    """`_` and `%` in the prefix match only themselves (what `startswith(autoescape=True)` did)."""
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    keys = ["ip-listing:a_b:zen", "ip-listing:axb:zen", "ip-listing:a%b:zen", "ip-listing:a%bc/d:zen"]
    ids = {key: str(uuid.uuid4()) for key in keys}
    with make_notifier.unit_of_work() as uow:
        for key, alert_id in ids.items():
            alert = Alert("sos-expat", Severity.WARNING, key, title="t", text="", source="test", occurred_at=now)
            uow.alerts.add(StoredAlert(alert_id, alert, now, AlertSummary(AlertStatus.PENDING)))
            held = Delivery(
                str(uuid.uuid4()), alert_id, "sos", "sos-expat", Channel.TELEGRAM, "1", DeliveryStatus.PENDING,
                accepted_at=now, deliver_at=now + timedelta(minutes=2),
            )  # fmt: skip
            uow.deliveries.add([held])
        uow.commit()
    with make_notifier.unit_of_work() as uow:
        assert uow.deliveries.held_alerts("sos-expat", "ip-listing:a_b:", now) == [ids["ip-listing:a_b:zen"]]
        assert uow.deliveries.held_alerts("sos-expat", "ip-listing:a%b", now) == sorted(
            [ids["ip-listing:a%b:zen"], ids["ip-listing:a%bc/d:zen"]]
        )
        assert uow.deliveries.held_alerts("sos-expat", "ip-listing:a%bc/d", now) == [ids["ip-listing:a%bc/d:zen"]]
        assert uow.deliveries.held_alerts("sos-expat", "ip-listing:a_b:", now + timedelta(minutes=3)) == []
        assert uow.deliveries.held_alerts("ulixai", "ip-listing:", now) == []


def test_an_ip_state_change_reads_and_writes_once_each(make_notifier: NotifierFactory) -> None:
    """Without routes, a known IP's state change is the routes read, the dedup window locked and read (one
    UPDATE ... RETURNING), the alert stored with its summary, and the window saved (the consumer's inbox aside)."""
    notifier = make_notifier()
    consumer = consumer_for(notifier)
    assert consumer.handle(state_event("192.0.2.1", "WARM", "PAUSED"))
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "event_inbox" not in statement:
            statements.append(statement.split()[0].upper())

    sa.event.listen(make_notifier.db.engine, "before_cursor_execute", seen)
    try:
        assert consumer.handle(state_event("192.0.2.1", "PAUSED", "WARM"))
    finally:
        sa.event.remove(make_notifier.db.engine, "before_cursor_execute", seen)
    assert statements == ["SELECT", "UPDATE", "INSERT", "UPDATE"]
