"""The reputation service's periodic jobs: module-level functions of the application (RQ finds them by name).

They run with the application's clock: a test that built the service on a FakeClock moves the clock and calls
them. A claim on the slot makes one replica (or one RQ worker) scan or check per slot, however many look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reputation.bootstrap import ReputationApp


def scan_watched_ips(app: ReputationApp) -> int:
    """Scans every watched IP when the current slot of EE_REPUTATION_SCAN_INTERVAL_SECONDS is not yet taken.

    Returns the number of IPs scanned (0 when another replica has the slot, or nothing is watched).
    """
    run = app.ips.periodic()
    return len(run.recorded) if run is not None else 0


def check_tenant_domains(app: ReputationApp) -> int:
    """Checks every tenant's sending and tracking domains when the current slot of
    EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS is not yet taken (between slots: the tenants whose domains were
    set and not checked since).

    Returns the number of tenants checked (0 when another replica has the slot, or there is nothing to check).
    """
    runs = app.tenant_domains.periodic()
    return len(runs) if runs is not None else 0
