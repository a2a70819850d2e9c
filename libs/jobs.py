"""Background and periodic work: one small port, two adapters.

* `RqJobs` when REDIS_URL is set: jobs go to the service's RQ queue, run by `emailengine worker`;
  periodic jobs are registered with RQ's cron scheduler, run by one `emailengine scheduler` process.
* `InProcessJobs` otherwise: a small thread pool and timers inside the service process.

Job functions are plain module-level functions (RQ imports them by name in the worker); each gets what
it needs from `libs.registry.runtime_for(service)`. `claim_once` makes a job idempotent across replicas.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from libs.db import Database
from libs.tables import job_runs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: Callable[[], Any]
    interval: timedelta


class Jobs(Protocol):
    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None: ...

    def every(self, job: PeriodicJob) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class InProcessJobs:
    def __init__(self, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._periodic: list[PeriodicJob] = []
        self._stop = threading.Event()

    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        self._pool.submit(_run_logged, func, args, job_id or func.__name__)

    def every(self, job: PeriodicJob) -> None:
        self._periodic.append(job)

    def start(self) -> None:
        for job in self._periodic:
            threading.Thread(target=self._loop, args=(job,), name=f"periodic-{job.name}", daemon=True).start()

    def _loop(self, job: PeriodicJob) -> None:
        while not self._stop.wait(job.interval.total_seconds()):
            _run_logged(job.func, (), job.name)

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=False)


def _run_logged(func: Callable[..., Any], args: tuple[Any, ...], name: str) -> None:
    try:
        func(*args)
    except Exception:
        log.exception("job failed", extra={"job": name})


class RqJobs:
    """Jobs on the service's own RQ queue, retried with backoff when they fail."""

    def __init__(self, redis_url: str, queue_name: str):
        import redis
        from rq import Queue

        self._redis = redis.Redis.from_url(redis_url)
        self._queue = Queue(queue_name, connection=self._redis)
        self.periodic: list[PeriodicJob] = []

    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        from rq import Retry

        self._queue.enqueue(func, *args, job_id=job_id, retry=Retry(max=5, interval=[5, 15, 60, 300, 900]))

    def every(self, job: PeriodicJob) -> None:
        # Enqueued by the one cron scheduler process (`emailengine scheduler`), not here.
        self.periodic.append(job)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._redis.close()


def claim_once(db: Database, job_key: str, owner: str, now: datetime | None = None) -> bool:
    """True for exactly one caller per job_key, whatever the number of replicas racing for it."""
    try:
        with db.transaction() as session:
            session.execute(job_runs.insert().values(job_key=job_key, started_at=now or datetime.now(UTC), owner=owner))
        return True
    except IntegrityError:
        return False


def forget_claims_before(db: Database, before: datetime) -> None:
    with db.transaction() as session:
        session.execute(sa.delete(job_runs).where(job_runs.c.started_at < before))
