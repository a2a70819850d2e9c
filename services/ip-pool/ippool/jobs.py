"""The ip-pool's periodic jobs, as module-level functions (RQ imports them by name).

Each runs against `libs.registry.runtime_for("ip-pool")` with the runtime's clock, so a test that built the
service with a FakeClock drives simulated days by moving the clock and calling them.
"""

from __future__ import annotations

import logging

from ippool.app.daily import DailyRun, release_standbys, run_daily_warmup
from libs.registry import runtime_for

log = logging.getLogger(__name__)

SERVICE = "ip-pool"


def daily_warmup() -> DailyRun:
    """Decides each IP's warmup day once its tenant's local day has begun, then rotation (see app.daily)."""
    rt = runtime_for(SERVICE)
    run = run_daily_warmup(rt.db, rt.clock.now())
    if run.decided or run.rested or run.back:
        log.info("warmup day", extra={"decided": run.decided, "rested": run.rested, "back": run.back})
    return run


def standby_release() -> int:
    """Brings standby IPs back once delisted and cooled down."""
    rt = runtime_for(SERVICE)
    released = release_standbys(rt.db, rt.clock.now())
    if released:
        log.info("standby released", extra={"released": released})
    return released
