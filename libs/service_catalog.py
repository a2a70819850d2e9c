"""The services of this installation, as they declare themselves.

Each service registers its `ServiceDefinition` as an entry point of the `emailengine.services` group
(pyproject.toml), so `libs/` finds them without importing any service by name.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from libs.config import SERVICE_NAMES
from libs.runtime import ServiceDefinition

ENTRY_POINT_GROUP = "emailengine.services"


@cache
def definitions() -> dict[str, ServiceDefinition[Any]]:
    """Every declared service, in the platform's order (the order of its port settings)."""
    found: dict[str, ServiceDefinition[Any]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        definition = point.load()
        if not isinstance(definition, ServiceDefinition) or definition.name != point.name:
            raise RuntimeError(f"entry point {point.name!r} of {ENTRY_POINT_GROUP} is not its ServiceDefinition")
        found[point.name] = definition
    unknown = set(found) - set(SERVICE_NAMES)
    missing = set(SERVICE_NAMES) - set(found)
    if unknown or missing:
        raise RuntimeError(
            f"services declared ({sorted(found)}) do not match the platform's ({list(SERVICE_NAMES)}): "
            "reinstall the project (`make venv`)"
        )
    return {name: found[name] for name in SERVICE_NAMES}


def definition_of(service: str) -> ServiceDefinition[Any]:
    return definitions()[service]


def grpc_service_of(service: str) -> str:
    """The service's main API (the one its health is checked under)."""
    return definition_of(service).grpc_service


def grpc_services_of(service: str) -> tuple[str, ...]:
    """Every API the service's process serves."""
    return definition_of(service).grpc_services


def consumer_groups() -> tuple[str, ...]:
    """The stream's consumer groups: one per service that consumes events, named after it."""
    return tuple(name for name, definition in definitions().items() if definition.subscriptions is not None)
