"""Per-tenant limits on calls that cost the platform something shared (DNS queries to blocklist operators).

One tenant checking its IPs in a loop must not get the platform's resolver blocked by Spamhaus for every
tenant. A limit is a rate with a burst (generic cell rate algorithm: a token bucket kept as one timestamp):
`RedisRateLimiter` shares it across replicas, `InMemoryRateLimiter` is the embedded default. Over the limit,
`acquire` raises `ResourceExhausted` (HTTP 429) saying when to try again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from libs.errors import ResourceExhausted


@dataclass(frozen=True)
class Limit:
    name: str  # the allowance it draws on, e.g. "checks" (calls sharing an allowance share the name)
    per_minute: float  # sustained calls per minute
    burst: int  # calls allowed at once after a quiet period (at least 1)

    def describe(self) -> str:
        rate = f"{self.per_minute:g} a minute" if self.per_minute >= 1 else f"{self.per_minute * 60:g} an hour"
        return f"at most {rate} (bursts of {self.burst})"

    @property
    def interval(self) -> float:
        """Seconds between two calls at the sustained rate."""
        return 60.0 / self.per_minute


class RateLimiter(Protocol):
    def acquire(self, key: str, limit: Limit, *, what: str) -> None:
        """Takes one call from `key`'s allowance, or raises ResourceExhausted naming `what`."""
        ...


def _refusal(what: str, limit: Limit, wait: float) -> ResourceExhausted:
    return ResourceExhausted(
        f"too many {what} calls for this tenant: {limit.describe()}; try again in {max(1, round(wait))} s",
        retry_after_seconds=wait,
    )


class InMemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._theoretical_arrival: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: Limit, *, what: str) -> None:
        now = self._clock()
        key = f"{limit.name}:{key}"
        with self._lock:
            tat = max(self._theoretical_arrival.get(key, now), now)
            allowed_from = tat - limit.interval * (limit.burst - 1)
            if now < allowed_from:
                raise _refusal(what, limit, allowed_from - now)
            self._theoretical_arrival[key] = tat + limit.interval


# GCRA in one round trip: KEYS[1] the key; ARGV interval, burst, now (seconds). Returns the wait (0 = allowed).
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[3])
local now = tonumber(ARGV[3])
if tat < now then tat = now end
local allowed_from = tat - tonumber(ARGV[1]) * (tonumber(ARGV[2]) - 1)
if now < allowed_from then return tostring(allowed_from - now) end
local new_tat = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


class RedisRateLimiter:
    """The same limit shared by every replica (the bucket lives in Redis; the time is Redis's own)."""

    def __init__(self, client: redis.Redis, prefix: str = "ee:rate:"):
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA)

    def acquire(self, key: str, limit: Limit, *, what: str) -> None:
        seconds, micros = self._client.time()
        now = float(seconds) + float(micros) / 1e6
        bucket = f"{self._prefix}{limit.name}:{key}"
        wait = float(self._script(keys=[bucket], args=[limit.interval, limit.burst, now]))
        if wait > 0:
            raise _refusal(what, limit, wait)
