"""The IPs under watch: what the service knows of each, learnt from ip-pool's events."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatchedIp:
    """An IP scanned for its tenant; a retired one (`active` False) keeps its history but is scanned no more."""

    address: str  # canonical text (IPv4-mapped IPv6 as IPv4)
    tenant_id: str
    helo_hostname: str
    active: bool = True
