"""Per-tenant limits: a burst, then the sustained rate; each key on its own."""

from __future__ import annotations

import pytest

from libs.errors import ResourceExhausted
from libs.rate_limit import InMemoryRateLimiter, Limit

LIMIT = Limit("checks", per_minute=6, burst=3)  # one call every 10 s, three at once


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock)
    for _ in range(3):
        limiter.acquire("sos-expat", LIMIT, what="CheckIp")
    with pytest.raises(ResourceExhausted) as refused:
        limiter.acquire("sos-expat", LIMIT, what="CheckIp")
    assert 9 <= refused.value.retry_after_seconds <= 10 and "CheckIp" in refused.value.message
    clock.now += 10
    limiter.acquire("sos-expat", LIMIT, what="CheckIp")
    with pytest.raises(ResourceExhausted):
        limiter.acquire("sos-expat", LIMIT, what="CheckIp")


def test_one_tenant_at_its_limit_leaves_the_others_alone() -> None:
    limiter = InMemoryRateLimiter(Clock())
    for _ in range(3):
        limiter.acquire("sos-expat", LIMIT, what="CheckIp")
    limiter.acquire("ulixai", LIMIT, what="CheckIp")
