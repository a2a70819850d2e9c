"""Exactly one `emailengine scheduler` enqueues the periodic jobs: two real scheduler processes on a real Redis, the
second waits while the first leads and takes over when the first is killed; and every periodic job every service
declares (the notifier's in rq mode too) is enqueued by the scheduler and run by `emailengine worker <service>`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.cron import get_cron_job_ids
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from libs.config import REPO_ROOT
from libs.scheduler import LEADER_KEY, periodic_jobs_of
from libs.service_catalog import definitions
from tests.harness.in_process import environment
from tests.harness.servers import RedisServer, wait_until
from tests.integration.platform.test_jobs import migrate

pytestmark = pytest.mark.integration

LOCK_SECONDS = 4
# These jobs once an hour: within the test, one enqueued twice was enqueued by two schedulers. Jobs with a shorter
# interval (say, a service's poll) are held to one scheduler's pace instead.
HOURLY = {
    "EE_IPPOOL_WARMUP_JOB_SECONDS": "3600",
    "EE_IPPOOL_STANDBY_JOB_SECONDS": "3600",
    "EE_REPUTATION_SCAN_TICK_SECONDS": "3600",
    "EE_CAMPAIGN_GATEWAY_QUOTA_SYNC_SECONDS": "3600",
    "EE_SCHEDULER_LOCK_SECONDS": str(LOCK_SECONDS),
}


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushdb()
    yield connection
    connection.close()


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "libs.cli", "scheduler"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
        )


def leader_pid(client: redis.Redis) -> int | None:
    value = client.get(LEADER_KEY)
    return int(value.decode().split(":")[1]) if value else None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_one_scheduler_leads_a_second_waits_and_takes_over_when_the_first_is_killed(
    client: redis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {**os.environ, "REDIS_URL": redis_server.url, "EE_DATA_DIR": str(tmp_path), **HOURLY}
    with environment(HOURLY):
        intervals = {job.name: job.interval.total_seconds() for _service, job in periodic_jobs_of(definitions())}
    hourly = [name for name, seconds in intervals.items() if seconds >= 3600]
    assert len(hourly) >= 5

    def enqueued(names: list[str]) -> dict[str, int]:
        return {name: len(get_cron_job_ids(name, client)) for name in names}

    def at_one_schedulers_pace(since: float) -> None:
        """No job enqueued more often than one scheduler enqueues it (at start, then once per interval)."""
        elapsed = time.monotonic() - since
        counts = enqueued(list(intervals))
        too_many = {n: c for n, c in counts.items() if c > 2 + elapsed / intervals[n]}
        assert too_many == {}, (too_many, elapsed)

    first = start_scheduler(env, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        wait_until(lambda: leader_pid(client) == first.pid, 60, "the first scheduler leads", first)
        wait_until(lambda: set(enqueued(hourly).values()) == {1}, 30, "every periodic job enqueued", first)

        second = start_scheduler(env, tmp_path / "second.log")
        log = tmp_path / "second.log"
        wait_until(lambda: "another one leads" in log.read_text(), 60, "the second scheduler waits", second)
        time.sleep(2 * LOCK_SECONDS)  # the first renews its lock all along: the second never gets it
        assert leader_pid(client) == first.pid
        assert set(enqueued(hourly).values()) == {1}, enqueued(hourly)
        at_one_schedulers_pace(started)

        first.send_signal(signal.SIGKILL)  # no clean stop: the lock is left to run out
        first.wait(10)
        wait_until(lambda: leader_pid(client) == second.pid, 3 * LOCK_SECONDS + 30, "the second takes over", second)
        wait_until(lambda: set(enqueued(hourly).values()) == {2}, 30, "every job enqueued by the new leader", second)
        assert "leading" in log.read_text()

        second.send_signal(signal.SIGTERM)  # a clean stop leaves the lock free at once
        assert second.wait(20) == 0
        assert client.get(LEADER_KEY) is None
        assert set(enqueued(hourly).values()) == {2}, enqueued(hourly)  # one at each leader's start, no more
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_every_periodic_job_of_every_service_is_enqueued_by_the_scheduler_and_run_by_its_worker(
    client: redis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The notifier's deliveries are periodic jobs in rq mode: they are covered too."""
    rq_mode = {"EE_NOTIFIER_DELIVERY_RUNNER": "rq"}
    env = {**os.environ, "REDIS_URL": redis_server.url, "EE_DATA_DIR": str(tmp_path), **rq_mode}
    with environment(rq_mode):
        entries = periodic_jobs_of(definitions())
    by_queue: dict[str, list[str]] = {}
    for service, job in entries:
        by_queue.setdefault(service, []).append(job.name)
    assert set(by_queue) == {"ip-pool", "reputation", "campaign-gateway", "notifier"}
    assert {"notifier-deliver", "notifier-prune-dedup", "reputation-scan", "ippool-daily-warmup"} <= {
        job.name for _s, job in entries
    }
    scheduler = start_scheduler(env, tmp_path / "scheduler.log")
    try:
        wait_until(
            lambda: all(Queue(q, connection=client).count >= len(jobs) for q, jobs in by_queue.items()),
            60,
            "every periodic job enqueued",
            scheduler,
        )
    finally:
        scheduler.terminate()
        scheduler.wait(20)
    for queue, jobs in by_queue.items():
        migrate(queue, env)
        worker = subprocess.run(
            [sys.executable, "-m", "libs.cli", "worker", queue, "--burst"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert worker.returncode == 0, worker.stderr[-2000:]
        assert FailedJobRegistry(queue, connection=client).count == 0, worker.stdout[-3000:]
        assert FinishedJobRegistry(queue, connection=client).count >= len(jobs), worker.stdout[-3000:]
