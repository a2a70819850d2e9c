"""The notifier's jobs when deliveries run on RQ (EE_NOTIFIER_DELIVERY_RUNNER=rq): module-level functions of the
application, which `emailengine scheduler` enqueues and `emailengine worker notifier` runs.

Both are safe to run twice, late, or on N workers at once: `deliver_due` serves a route only under its lease
(`routes.lease_owner`/`lease_until`, taken by compare-and-set, taken over after EE_NOTIFIER_LEASE_SECONDS when its
holder died), one sender per chat; each delivery's attempt is recorded before it is sent. `prune_dedup` deletes
dedup windows that ended: deleting them again deletes nothing.
"""

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
