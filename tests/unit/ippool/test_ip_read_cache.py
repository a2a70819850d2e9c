"""GetIp served from memory while nothing was written: never stale, never another tenant's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ippool.app.ips import IpUseCases
from ippool.domain.lifecycle import IpState
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.current_cache import CurrentCache, MappedOnce
from libs.errors import NotFound
from tests.unit.ippool.fakes import FakeIpPool, FakeIpPoolUnitOfWork

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")


class CountingPool(FakeIpPool):
    """The fake pool, counting the units of work GetIp opens (a cached read opens none)."""

    def __init__(self, clock: FakeClock):
        super().__init__(clock)
        self.opened = 0
        self.count: int | None = 0
        self.ips = IpUseCases(self._counted, clock, changes=lambda: self.count)

    def _counted(self, *, read_only: bool = False) -> FakeIpPoolUnitOfWork:
        self.opened += 1
        return self.unit_of_work(read_only=read_only)


@pytest.fixture
def pool() -> CountingPool:
    pool = CountingPool(FakeClock(START))
    pool.tenants.ensure("sos-expat")
    pool.tenants.ensure("ulixai")
    pool.ips.register(
        SOS, address="192.0.2.10", tenant_id="sos-expat", purpose="", pool="", pmta_node="", helo_hostname="",
        schedule_id="",
    )  # fmt: skip
    return pool


def test_a_second_read_with_nothing_written_opens_no_unit_of_work(pool: CountingPool) -> None:
    first = pool.ips.get(SOS, "192.0.2.10")
    opened = pool.opened
    assert pool.ips.get(SOS, "192.0.2.10") is first
    assert pool.opened == opened


def test_a_write_counted_in_between_is_seen_by_the_next_read(pool: CountingPool) -> None:
    pool.ips.get(SOS, "192.0.2.10")
    pool.ips.pause(SOS, "192.0.2.10", "maintenance")
    pool.count = 1  # what the unit of work's commit does
    assert pool.ips.get(SOS, "192.0.2.10").ip.state is IpState.PAUSED


def test_another_quarter_hour_reads_again_since_the_hourly_quota_may_have_moved(pool: CountingPool) -> None:
    pool.ips.get(SOS, "192.0.2.10")
    opened = pool.opened
    pool.clock.advance(timedelta(minutes=15))
    pool.ips.get(SOS, "192.0.2.10")
    assert pool.opened == opened + 1


def test_without_a_count_every_read_goes_to_the_database(pool: CountingPool) -> None:
    pool.count = None  # the count cannot be read (the database down, say)
    pool.ips.get(SOS, "192.0.2.10")
    opened = pool.opened
    pool.ips.get(SOS, "192.0.2.10")
    assert pool.opened == opened + 1


def test_another_tenant_is_refused_from_the_cache_as_for_a_missing_address(pool: CountingPool) -> None:
    pool.ips.get(SOS, "192.0.2.10")
    with pytest.raises(NotFound) as cached:
        pool.ips.get(ULIXAI, "192.0.2.10")
    with pytest.raises(NotFound) as missing:
        pool.ips.get(ULIXAI, "192.0.2.99")
    assert str(cached.value).replace("192.0.2.10", "X") == str(missing.value).replace("192.0.2.99", "X")


def test_the_cache_keeps_a_value_only_at_the_version_it_was_read_at() -> None:
    cache: CurrentCache[str, str] = CurrentCache(max_entries=2)
    cache.put("a", (1, 0), "one")
    assert cache.get("a", (1, 0)) == "one"
    assert cache.get("a", (2, 0)) is None
    cache.put("b", (1, 0), "two")
    cache.put("c", (1, 0), "three")  # over the bound: starts again rather than growing
    assert cache.get("a", (1, 0)) is None
    assert cache.get("c", (1, 0)) == "three"


def test_a_value_is_mapped_once_while_it_is_the_same_object() -> None:
    calls: list[int] = []
    mapped = MappedOnce(lambda value: calls.append(1) or [value])
    value = ["ip"]
    assert mapped(value) is mapped(value)
    assert len(calls) == 1
    mapped(["ip"])  # equal but another object: mapped again
    assert len(calls) == 2
