"""Jobs on real Redis + RQ (a real `emailengine worker` process) and in process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue

from libs.config import REPO_ROOT
from libs.jobs import InProcessJobs, PeriodicJob, RqJobs
from tests.harness.servers import RedisServer, wait_until
from tests.integration.platform.jobs_fixture import write_marker

pytestmark = pytest.mark.integration


def test_an_rq_job_runs_in_a_worker_process(redis_server: RedisServer, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    jobs = RqJobs(redis_server.url, "notifier")
    jobs.enqueue(write_marker, str(marker), "from rq", job_id="marker-1")
    assert Queue("notifier", connection=redis.Redis.from_url(redis_server.url)).count >= 1
    env = {**os.environ, "REDIS_URL": redis_server.url, "EE_DATA_DIR": str(tmp_path)}
    migrate("notifier", env)
    worker = subprocess.run(
        [sys.executable, "-m", "libs.cli", "worker", "notifier", "--burst"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert marker.read_text() == "from rq\n"


def migrate(service: str, env: dict[str, str]) -> None:
    """What the service does at start; a worker needs a migrated database and does not migrate it itself."""
    done = subprocess.run(
        [sys.executable, "-m", "libs.cli", "migrate", service], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_a_worker_refuses_a_database_that_is_not_migrated(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_server.url, "EE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "libs.cli", "worker", "notifier", "--burst", "--wait-for-migrations", "1"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "not migrated" in result.stderr and "Traceback" not in result.stderr


def test_worker_refuses_to_start_without_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"EE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "libs.cli", "worker", "notifier", "--burst"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr


def test_in_process_jobs_run_now_and_periodically(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    jobs = InProcessJobs()
    jobs.bind(object())
    jobs.every(PeriodicJob("tick", lambda got: write_marker(got, str(marker), "tick"), timedelta(seconds=0.1)))
    jobs.start()
    jobs.enqueue(write_marker, str(marker), "once")
    wait_until(lambda: marker.exists() and marker.read_text().count("tick") >= 3, 5, "periodic job")
    jobs.stop()
    assert "once" in marker.read_text()
    time.sleep(0.3)
    count = marker.read_text().count("tick")
    time.sleep(0.3)
    assert marker.read_text().count("tick") == count  # stopped


def test_in_process_periodic_jobs_run_once_at_start_not_only_after_a_full_interval(tmp_path: Path) -> None:
    """A job every hour still runs as the process starts: a scan or a release due now does not wait an hour."""
    marker = tmp_path / "marker.txt"
    jobs = InProcessJobs()
    jobs.bind(object())
    jobs.every(PeriodicJob("hourly", lambda got: write_marker(got, str(marker), "hourly"), timedelta(hours=1)))
    jobs.start()
    try:
        wait_until(marker.exists, 5, "the periodic job's run at start")
        assert jobs.wait_for_first_runs(5)
        time.sleep(0.3)
        assert marker.read_text() == "hourly\n"  # once at start, then nothing until the hour is over
    finally:
        jobs.stop()
