"""Benchmark: allocate 1 000 000 messages over 1 000 IPs (target: median under 50 ms).

Run: `python bench/bench_ippool_allocation.py` (or `make bench`). Prints the median and spread of several
timed runs of the domain's `allocate` for three fleets:
  - mixed:   a tenant's realistic fleet (60 % warm, the rest spread over the warmup steps) -- the target case;
  - warm:    every IP warm;
  - young:   every IP in its first two weeks, so most of the volume goes to the day-by-day plan.
The volume is split by provider like a European consumer list (Gmail 45 %, Microsoft 25 %, Yahoo 10 %, other 20 %).

Then the same mixed fleet through the service's use case (`AllocationUseCases.allocate`, what AllocateVolume
runs) on a SQLite file: loading the tenant's IPs and today's usage, allocating, and (reserving) storing the
per-IP lines -- for reference, the target is the domain's.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from benchkit import Report

from ippool.adapters.unit_of_work import SqlIpPoolUnitOfWork
from ippool.app.allocation import AllocationUseCases
from ippool.app.tenants import TenantUseCases
from ippool.bootstrap import DEFINITION, SERVICE
from ippool.domain.allocation import AllocationResult, IpCapacity, allocate
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupPosition
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import connect, migrate

TENANT = "sos-expat"
TODAY = date(2026, 1, 5)
IP_COUNT = 1_000
MESSAGES = 1_000_000
RUNS = 15
TARGET_MS = 50.0
VOLUME = {
    ProviderGroup.GMAIL: MESSAGES * 45 // 100,
    ProviderGroup.MICROSOFT: MESSAGES * 25 // 100,
    ProviderGroup.YAHOO: MESSAGES * 10 // 100,
    ProviderGroup.OTHER: MESSAGES * 20 // 100,
}


def _ip(index: int, step: int, day: int, rng: random.Random) -> IpCapacity:
    state = IpState.WARM if step == DEFAULT_SCHEDULE.last_step_index else IpState.WARMING
    if rng.random() < 0.03:
        state = rng.choice([IpState.STANDBY, IpState.PAUSED])
    quota = DEFAULT_SCHEDULE.steps[step].daily_volume
    return IpCapacity(
        address=f"10.{index // 65536}.{index // 256 % 256}.{index % 256}",
        tenant_id=TENANT,
        state=state,
        schedule=DEFAULT_SCHEDULE,
        position=WarmupPosition(step_index=step, sending_day_in_step=day),
        used_today=rng.choice([0, 0, 0, rng.randrange(quota // 2 + 1)]),
    )


def mixed_fleet(rng: random.Random) -> list[IpCapacity]:
    return [
        _ip(i, 5, rng.randint(1, 60), rng) if rng.random() < 0.6 else _ip(i, rng.randrange(5), rng.randint(1, 7), rng)
        for i in range(IP_COUNT)
    ]


def warm_fleet(rng: random.Random) -> list[IpCapacity]:
    return [_ip(i, 5, rng.randint(1, 60), rng) for i in range(IP_COUNT)]


def young_fleet(rng: random.Random) -> list[IpCapacity]:
    return [_ip(i, rng.randrange(2), rng.randint(1, 7), rng) for i in range(IP_COUNT)]


def time_runs(fleet: list[IpCapacity]) -> tuple[list[float], AllocationResult]:
    timings: list[float] = []
    result = allocate(tenant_id=TENANT, ips=fleet, volume=VOLUME, today=TODAY)  # warm-up run, not timed
    for _ in range(RUNS):
        started = time.perf_counter()
        result = allocate(tenant_id=TENANT, ips=fleet, volume=VOLUME, today=TODAY)
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result


def time_service(fleet: list[IpCapacity], report: Report) -> None:
    """The mixed fleet stored in a SQLite file, allocated through the use case."""
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC).replace(hour=9)
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Settings(data_dir=Path(tmp)), "ip-pool")
        migrate(db, DEFINITION.migrations)
        clock = FakeClock(now)

        def unit_of_work() -> SqlIpPoolUnitOfWork:
            return SqlIpPoolUnitOfWork(db, source=SERVICE, clock=clock)

        TenantUseCases(unit_of_work, clock).ensure(TENANT)
        with unit_of_work() as uow:
            for ip in fleet:
                uow.ips.add(
                    Ip(
                        address=ip.address,
                        tenant_id=TENANT,
                        purpose="marketing",
                        pool="default",
                        pmta_node="",
                        helo_hostname="",
                        state=ip.state,
                        state_reason="bench",
                        schedule_id=DEFAULT_SCHEDULE.schedule_id,
                        position=ip.position,
                        sending_day=1,
                        decided_day=TODAY,
                        create_time=now,
                        update_time=now,
                    )
                )
            uow.commit()
        use_case = AllocationUseCases(unit_of_work, clock)
        caller = Caller("bench", Role.ADMIN, "")
        by_provider = [(group, count) for group, count in VOLUME.items()]

        def run(validate_only: bool) -> float:
            started = time.perf_counter()
            use_case.allocate(
                caller,
                tenant_id=TENANT,
                volume=MESSAGES,
                volume_by_provider=by_provider,
                plan_horizon_days=None,
                validate_only=validate_only,
            )
            return (time.perf_counter() - started) * 1000

        run(True)  # warm-up
        previews = [run(True) for _ in range(RUNS)]
        reserving = run(False)
        db.dispose()
    report.add(
        "service (SQLite, mixed): preview through the use case",
        previews,
        "ms",
        higher_is_better=False,
        baseline="mixed (domain allocate)",
    )
    report.add(
        "service (SQLite, mixed): reserving (stores the lines)",
        [reserving],
        "ms",
        higher_is_better=False,
        baseline="mixed (domain allocate)",
    )


def main() -> None:
    rng = random.Random(42)
    scenarios: list[tuple[str, Callable[[random.Random], list[IpCapacity]]]] = [
        ("mixed", mixed_fleet),
        ("warm", warm_fleet),
        ("young", young_fleet),
    ]
    print(f"allocate {MESSAGES:,} messages over {IP_COUNT:,} IPs, {RUNS} runs each, target median < {TARGET_MS:.0f} ms")
    report = Report("ippool-allocation", f"ip-pool allocation: {MESSAGES:,} messages over {IP_COUNT:,} IPs")
    target_met = True
    for name, build in scenarios:
        fleet = build(rng)
        timings, result = time_runs(fleet)
        if name == "mixed":
            target_met = statistics.median(timings) < TARGET_MS
        report.add(
            f"{name} (domain allocate)",
            timings,
            "ms",
            higher_is_better=False,
            note=f"today {result.allocated_today:,} over {len(result.allocations)} IPs, planned "
            f"{sum(d.total for d in result.plan):,} over {len(result.plan)} days, unplanned {result.unplanned:,}",
        )
    report.note(f"target (mixed fleet median < {TARGET_MS:.0f} ms): {'met' if target_met else 'MISSED'}")
    time_service(mixed_fleet(random.Random(42)), report)
    report.finish()


if __name__ == "__main__":
    main()
