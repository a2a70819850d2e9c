"""An alert's delivery state summed up from its deliveries."""

from __future__ import annotations

from datetime import timedelta

from notifier.domain.status import AlertStatus, DeliveryFacts, DeliveryStatus, summarize
from tests.unit.notifier.conftest import T0

P, D, F, X = DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.DISABLED


def test_suppressed_and_unrouted() -> None:
    assert summarize([DeliveryFacts(D)], suppressed=True).state is AlertStatus.SUPPRESSED
    assert summarize([]).state is AlertStatus.UNROUTED


def test_pending_wins_then_failed_then_delivered_then_disabled() -> None:
    assert summarize([DeliveryFacts(D), DeliveryFacts(P, 3, "HTTP 502")]).state is AlertStatus.PENDING
    assert summarize([DeliveryFacts(D), DeliveryFacts(F, 1, "HTTP 403")]).state is AlertStatus.FAILED
    assert (
        summarize([DeliveryFacts(D, delivered_at=T0), DeliveryFacts(X, 0, "no token")]).state is AlertStatus.DELIVERED
    )
    assert summarize([DeliveryFacts(X), DeliveryFacts(X)]).state is AlertStatus.DISABLED


def test_attempts_error_and_delivery_time() -> None:
    summary = summarize(
        [DeliveryFacts(D, 1, "", T0), DeliveryFacts(P, 4, "HTTP 429 rate_limited"), DeliveryFacts(F, 2, "later")]
    )
    assert (summary.attempts, summary.last_error, summary.delivery_time) == (4, "HTTP 429 rate_limited", None)
    done = summarize([DeliveryFacts(D, 1, "", T0), DeliveryFacts(D, 2, "", T0 + timedelta(seconds=3))])
    assert done.delivery_time == T0 + timedelta(seconds=3) and done.last_error == ""
