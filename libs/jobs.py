"""Background and periodic work: one small port, two adapters.

* `RqJobs` when REDIS_URL is set: jobs go to the service's RQ queue, run by `emailengine worker`;
  periodic jobs are registered with RQ's cron scheduler, run by one `emailengine scheduler` process.
* `InProcessJobs` otherwise: a small thread pool and timers inside the service process. Each periodic job runs
  once as the service starts, then every interval (what RQ's cron does with interval jobs too): work that is
  due when a process starts (a scan, a release, a sync) is not left waiting for a full interval.

A job is a module-level function (RQ finds it by name) whose first argument is the service's application:
`def daily_warmup(app: IpPoolApp) -> ...`. In process it is called with the runtime's application; in an RQ
worker, `run_job` calls it with the application of the runtime the worker built at start. `claim_once` makes
a job idempotent across replicas.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
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

JobFunction = Callable[..., Any]  # (app, *args) -> Any


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: JobFunction  # called with the application only
    interval: timedelta


class Jobs(Protocol):
    def bind(self, app: Any) -> None:
        """The application the jobs of this runtime are called with."""
        ...

    def enqueue(self, func: JobFunction, *args: Any, job_id: str | None = None) -> None: ...

    def every(self, job: PeriodicJob) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class InProcessJobs:
    def __init__(self, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._periodic: list[PeriodicJob] = []
        self._stop = threading.Event()
        self._app: Any = None
        self._first_runs: list[threading.Event] = []

    def bind(self, app: Any) -> None:
        self._app = app

    def enqueue(self, func: JobFunction, *args: Any, job_id: str | None = None) -> None:
        self._pool.submit(_run_logged, func, (self._app, *args), job_id or func.__name__)

    def every(self, job: PeriodicJob) -> None:
        self._periodic.append(job)

    def start(self) -> None:
        for job in self._periodic:
            first_run = threading.Event()
            self._first_runs.append(first_run)
            thread = threading.Thread(
                target=self._loop, args=(job, first_run), name=f"periodic-{job.name}", daemon=True
            )
            thread.start()

    def _loop(self, job: PeriodicJob, first_run: threading.Event) -> None:
        try:
            if not self._stop.is_set():
                _run_logged(job.func, (self._app,), job.name)
        finally:
            first_run.set()
        while not self._stop.wait(job.interval.total_seconds()):
            _run_logged(job.func, (self._app,), job.name)

    def wait_for_first_runs(self, timeout: float) -> bool:
        """Whether every periodic job's run at start has ended within `timeout` seconds (a test that then drives
        the jobs itself on a FakeClock does not race them)."""
        deadline = time.monotonic() + timeout
        return all(done.wait(max(0.0, deadline - time.monotonic())) for done in self._first_runs)

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=False)


def _run_logged(func: JobFunction, args: tuple[Any, ...], name: str) -> None:
    try:
        func(*args)
    except Exception:
        log.exception("job failed", extra={"job": name})


def job_path(func: JobFunction) -> str:
    """`module:function`, how a worker finds a job function."""
    return f"{func.__module__}:{func.__qualname__}"


def _resolve(path: str) -> JobFunction:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# The applications of the runtimes this worker process built at start, by service (see `emailengine worker`).
_worker_apps: dict[str, Any] = {}


def install_worker_app(service: str, app: Any) -> None:
    _worker_apps[service] = app


def run_job(service: str, path: str, *args: Any) -> Any:
    """What RQ runs: the job function called with this worker's application of the service."""
    app = _worker_apps.get(service)
    if app is None:
        raise RuntimeError(f"this worker serves no {service!r} runtime; start it with `emailengine worker {service}`")
    return _resolve(path)(app, *args)


class RqJobs:
    """Jobs on the service's own RQ queue, retried with backoff when they fail."""

    def __init__(self, redis_url: str, queue_name: str):
        import redis
        from rq import Queue

        self._service = queue_name
        self._redis = redis.Redis.from_url(redis_url)
        self._queue = Queue(queue_name, connection=self._redis)
        self.periodic: list[PeriodicJob] = []

    def bind(self, app: Any) -> None:
        pass  # the worker's own runtime provides the application

    def enqueue(self, func: JobFunction, *args: Any, job_id: str | None = None) -> None:
        from rq import Retry

        self._queue.enqueue(
            run_job,
            self._service,
            job_path(func),
            *args,
            job_id=job_id,
            retry=Retry(max=5, interval=[5, 15, 60, 300, 900]),
        )

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
