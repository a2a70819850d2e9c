"""Zone health as last checked (RFC 5782 §7), and ZoneHealthChanged once per change of status.

A zone first seen healthy publishes nothing; any later change of status publishes one event, in the unit of work
that stores it (`reputation.domain.dnsbl.fold_health` decides).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from reputation.app.events import zone_health_changed
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.domain.dnsbl import ZoneHealth, fold_health

log = logging.getLogger(__name__)


def record_zone_health(uow: ReputationUnitOfWork, health: Mapping[str, ZoneHealth], now: datetime) -> list[str]:
    """Stores each zone's health in the caller's unit of work; returns the keys whose change was published."""
    if not health:
        return []
    keys = sorted(health)
    previous = uow.zone_health.lock(keys, now)
    records = []
    published: list[str] = []
    for key in keys:
        record, news = fold_health(previous[key], health[key], now)
        records.append(record)
        if news:
            uow.publish(zone_health_changed(health[key], previous[key].status, now), tenant_id="")
            published.append(key)
            log.warning(
                "zone health changed",
                extra={
                    "zone": key,
                    "from": previous[key].status.value,
                    "to": record.status.value,
                    "reason": record.reason,
                },
            )
    uow.zone_health.save(records)
    return published
