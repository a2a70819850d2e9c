"""The reputation use cases over one runtime (database, clock, metrics), built once per runtime.

`reputation_for(runtime)` is what the servicer and the job functions share: in a service process the
runtime is the running service's; in an RQ worker, the one `libs.registry.runtime_for` builds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from libs.server import Runtime
from reputation.app.domains import DomainValidation
from reputation.app.metrics import ReputationMetrics
from reputation.app.scanning import IpScans
from reputation.app.tenant_domains import TenantDomainChecks
from reputation.app.zones import ZoneUseCases
from reputation.config import ReputationConfig, load_config


@dataclass
class Reputation:
    config: ReputationConfig
    ips: IpScans
    domains: DomainValidation
    zones: ZoneUseCases
    tenant_domains: TenantDomainChecks


# Keyed by id(runtime); the runtime itself is kept beside it so its id cannot be reused while cached.
_built: dict[int, tuple[Runtime, Reputation]] = {}
_lock = threading.Lock()


def reputation_for(rt: Runtime, config: ReputationConfig | None = None) -> Reputation:
    with _lock:
        entry = _built.get(id(rt))
        found = entry[1] if entry is not None and entry[0] is rt else None
        if found is None:
            config = config or load_config()
            metrics = ReputationMetrics(rt.metrics)
            found = Reputation(
                config=config,
                ips=IpScans(rt.db, config, rt.clock, metrics),
                domains=DomainValidation(rt.db, config, rt.clock),
                zones=ZoneUseCases(rt.db, config, rt.clock),
                tenant_domains=TenantDomainChecks(rt.db, config, rt.clock, metrics),
            )
            _built[id(rt)] = (rt, found)
            rt.on_stop.append(lambda: _forget(rt))
        return found


def _forget(rt: Runtime) -> None:
    with _lock:
        entry = _built.get(id(rt))
        if entry is not None and entry[0] is rt:
            del _built[id(rt)]
