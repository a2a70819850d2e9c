"""The ip-pool's periodic jobs: module-level functions of the application (RQ finds them by name).

Each calls one use case, which reads the application's clock, so a test that built the service on a
FakeClock drives simulated days by moving the clock and calling them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ippool.app.daily import DailyRun

if TYPE_CHECKING:
    from ippool.bootstrap import IpPoolApp

log = logging.getLogger(__name__)


def daily_warmup(app: IpPoolApp) -> DailyRun:
    """Decides each IP's warmup day once its tenant's local day has begun, then rotation (see app.daily)."""
    run = app.daily.run_day()
    if run.decided or run.rested or run.back:
        log.info("warmup day", extra={"decided": run.decided, "rested": run.rested, "back": run.back})
    return run


def standby_release(app: IpPoolApp) -> int:
    """Brings standby IPs back once delisted and cooled down."""
    released = app.daily.release_standbys()
    if released:
        log.info("standby released", extra={"released": released})
    return released
