"""The reputation service's periodic job, a module-level function (RQ imports it by name).

It runs against `libs.registry.runtime_for("reputation")`, with that runtime's clock: a test that built
the service on a FakeClock moves the clock and calls it. `claim_once` on the scan slot makes one replica
(or one RQ worker) scan per slot, however many look.
"""

from __future__ import annotations

from libs.registry import runtime_for
from reputation.app.service import reputation_for

SERVICE = "reputation"


def scan_watched_ips() -> int:
    """Scans every watched IP when the current slot of EE_REPUTATION_SCAN_INTERVAL_SECONDS is not yet taken.

    Returns the number of IPs scanned (0 when another replica has the slot, or nothing is watched).
    """
    run = reputation_for(runtime_for(SERVICE)).ips.periodic()
    return len(run.recorded) if run is not None else 0
