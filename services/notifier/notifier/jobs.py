"""The notifier's jobs when deliveries run on RQ (EE_NOTIFIER_DELIVERY_RUNNER=rq): module-level functions of the
application, which `emailengine scheduler` enqueues and `emailengine worker notifier` runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifier.bootstrap import Notifier


def deliver_due(app: Notifier) -> int:
    """One delivery pass."""
    return app.delivery.deliver_once()


def prune_dedup(app: Notifier) -> int:
    """Drop ended dedup windows."""
    return app.intake.forget_ended_windows()
