"""What an alert's delivery state is, summed up from its deliveries (one per route)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeliveryStatus(StrEnum):
    """One delivery (one alert, one route)."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    DISABLED = "DISABLED"  # the channel is not configured here (Telegram without a bot token)


class AlertStatus(StrEnum):
    """The alert as a whole; names match the contract's DeliveryState without its prefix."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    SUPPRESSED = "SUPPRESSED"
    FAILED = "FAILED"
    UNROUTED = "UNROUTED"
    DISABLED = "DISABLED"


@dataclass(frozen=True)
class DeliveryFacts:
    state: DeliveryStatus
    attempts: int = 0
    last_error: str = ""
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class AlertSummary:
    state: AlertStatus
    attempts: int = 0
    last_error: str = ""
    delivery_time: datetime | None = None


def summarize(deliveries: Sequence[DeliveryFacts], *, suppressed: bool = False) -> AlertSummary:
    """PENDING while anything is pending; then FAILED if a delivery failed (someone did not hear);
    DELIVERED when every configured channel delivered; DISABLED when no channel is configured."""
    if suppressed:
        return AlertSummary(AlertStatus.SUPPRESSED)
    if not deliveries:
        return AlertSummary(AlertStatus.UNROUTED)
    attempts = max(d.attempts for d in deliveries)
    states = {d.state for d in deliveries}
    errors = [d.last_error for d in deliveries if d.state is not DeliveryStatus.DELIVERED and d.last_error]
    last_error = errors[0] if errors else ""
    if DeliveryStatus.PENDING in states:
        return AlertSummary(AlertStatus.PENDING, attempts, last_error)
    if DeliveryStatus.FAILED in states:
        return AlertSummary(AlertStatus.FAILED, attempts, last_error)
    delivered = [d.delivered_at for d in deliveries if d.state is DeliveryStatus.DELIVERED and d.delivered_at]
    if DeliveryStatus.DELIVERED in states:
        return AlertSummary(AlertStatus.DELIVERED, attempts, last_error, max(delivered) if delivered else None)
    return AlertSummary(AlertStatus.DISABLED, attempts, last_error)
