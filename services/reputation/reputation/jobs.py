"""The reputation service's periodic jobs: module-level functions of the application (RQ finds them by name).

They run with the application's clock: a test that built the service on a FakeClock moves the clock and calls
them. Both are safe to run twice, late, or on N replicas and workers at once; what each claims:

* `scan_watched_ips`: each due IP's `monitored_ips.next_scan_at`, moved by compare-and-set from the value read to
  a claim of at most 10 minutes, then to the IP's next moment once its result is recorded: one scan per IP and
  interval, and a scan that died is taken again when its claim runs out. Housekeeping (old history, old claims):
  the `job_runs` key `reputation-upkeep:<interval>:<slot>`. Recording takes the IPs' row locks, and listing changes
  are folded into the stored state, so a scan recorded twice publishes each change once.
* `check_tenant_domains`: the `job_runs` key `reputation-domains:<interval>:<slot>` (every tenant once per slot),
  and `reputation-domains-first:<tenant>:<updated_at>` for domains set since; recording takes the tenant's row lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reputation.bootstrap import ReputationApp


def scan_watched_ips(app: ReputationApp) -> int:
    """Scans the watched IPs whose moment has come: each once per its tenant's interval (the tenant's own, else
    EE_REPUTATION_SCAN_INTERVAL_SECONDS), spread over it; a new IP at once.

    Returns the number of IPs scanned (0 when none was due, or another replica took them).
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
