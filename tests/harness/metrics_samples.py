"""What a service's Prometheus registry yields, as a dict a test compares whole: (name, sorted labels) -> value."""

from __future__ import annotations

import ipaddress

from prometheus_client import CollectorRegistry

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(registry: CollectorRegistry, prefix: str) -> Samples:
    """Every sample of the registry whose name starts with the prefix (collectors read at this call)."""
    found: Samples = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith(prefix):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def sample(name: str, value: float, **labels: str) -> Samples:
    return {(name, tuple(sorted(labels.items()))): value}


def assert_no_address_label(found: Samples) -> None:
    """No label value is an IP address (labels stay bounded: tenants, zones, providers, nodes)."""
    for name, labels in found:
        for label, value in labels:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                continue
            raise AssertionError(f"{name}{{{label}={value!r}}}: an IP address as a label value")
