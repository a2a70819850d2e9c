"""Where each service's definition lives, and the runtime a job function runs against.

Job functions are module-level (RQ imports them by name); they ask `runtime_for(service)` for the
database and settings: in a service process that is the running service's runtime, in an RQ worker one
is built on first use.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from libs.config import SERVICE_NAMES, Settings, settings

if TYPE_CHECKING:
    from libs.jobs import PeriodicJob
    from libs.server import Runtime, ServiceDefinition

_MODULES = {
    "ip-pool": "ippool.server",
    "reputation": "reputation.server",
    "campaign-gateway": "campaign_gateway.server",
    "notifier": "notifier.server",
}

_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def definition_of(service: str) -> ServiceDefinition:
    return importlib.import_module(_MODULES[service]).DEFINITION


def register_runtime(runtime: Runtime) -> None:
    with _lock:
        _runtimes[runtime.service] = runtime


def runtime_for(service: str) -> Runtime:
    with _lock:
        if service not in _runtimes:
            from libs.server import build_runtime

            _runtimes[service] = build_runtime(definition_of(service), settings())
        return _runtimes[service]


def periodic_jobs(s: Settings) -> list[tuple[str, PeriodicJob]]:
    return [(name, job) for name in SERVICE_NAMES for job in definition_of(name).periodic(s)]
