"""The one RQ cron scheduler: every service's periodic jobs, enqueued by whichever `emailengine scheduler` leads.

RQ's `CronScheduler` has no leader election: two running enqueue every job twice. So each `emailengine
scheduler` first takes a Redis lock (SET NX with a TTL, redis-py's `Lock`) and enqueues only while it holds it,
renewing it every third of its TTL. A second one waits, trying now and then, and takes over within the TTL when
the leader dies (at once when the leader stops cleanly: it releases the lock). A leader that cannot renew (it
stalled past the TTL, or Redis was away) stops enqueueing and waits like the others. The lock's value names the
leader (`host:pid:random`), as does its CronScheduler in RQ's registry.

Every periodic job runs as `libs.jobs.run_job(service, "pkg.jobs:function")` on the service's own queue, like the
jobs a service enqueues itself; interval jobs are enqueued as soon as a scheduler starts leading (RQ's cron does),
then every interval. A job still queued when its next one is due is dropped (`ttl`): workers that were away come
back to one of each, not to a pile. Periodic jobs are not retried by RQ: the next interval is their retry.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import LockError, RedisError
from rq.cron import CronScheduler

from libs.jobs import PeriodicJob, job_path, run_job

if TYPE_CHECKING:
    from libs.runtime import ServiceDefinition

log = logging.getLogger(__name__)

LEADER_KEY = "emailengine:scheduler:leader"
# A periodic job waits in its queue at least this long before it is dropped (however short its interval).
MIN_QUEUED_SECONDS = 60


def periodic_jobs_of(definitions: Mapping[str, ServiceDefinition[Any]]) -> list[tuple[str, PeriodicJob]]:
    """(service, job) for every periodic job every service declares; two jobs of one name are refused (RQ keeps
    each cron job's history under its name)."""
    entries = [(name, job) for name, d in definitions.items() for job in d.periodic_jobs(d.load_config())]
    seen: dict[str, str] = {}
    for service, job in entries:
        if job.name in seen:
            raise ValueError(f"periodic job {job.name!r} is declared by {seen[job.name]} and by {service}")
        seen[job.name] = service
    return entries


def build_cron(connection: redis.Redis, entries: Iterable[tuple[str, PeriodicJob]], name: str) -> CronScheduler:
    cron = CronScheduler(connection=connection, name=name)
    for service, job in entries:
        seconds = max(1, round(job.interval.total_seconds()))
        cron.register(
            run_job,
            queue_name=service,
            args=(service, job_path(job.func)),
            interval=seconds,
            name=job.name,
            ttl=max(seconds, MIN_QUEUED_SECONDS),
        )
    return cron


def scheduler_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Scheduler:
    """Leads (enqueues the periodic jobs) while it holds the leader lock, waits for it otherwise."""

    def __init__(
        self,
        connection: redis.Redis,
        entries: list[tuple[str, PeriodicJob]],
        *,
        lock_seconds: float,
        name: str | None = None,
    ) -> None:
        self.name = name or scheduler_name()
        self._connection = connection
        self._entries = entries
        self._renew_every = lock_seconds / 3
        self._lock = connection.lock(LEADER_KEY, timeout=lock_seconds, thread_local=False)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: lead when the lock is free, wait otherwise. Leaves the lock free on the way out."""
        waiting_said = False
        while not stop.is_set():
            try:
                leading = self._lock.acquire(blocking=False, token=self.name)
            except RedisError as exc:
                log.warning("scheduler: Redis unreachable; trying again", extra={"error": str(exc)})
                stop.wait(self._renew_every)
                continue
            if not leading:
                if not waiting_said:
                    log.info("scheduler: another one leads; waiting to take over", extra={"leader": self.leader()})
                    waiting_said = True
                stop.wait(self._renew_every)
                continue
            waiting_said = False
            log.info("scheduler: leading", extra={"scheduler": self.name, "jobs": len(self._entries)})
            self._lead(stop)
        self._let_go()

    def leader(self) -> str:
        with suppress(RedisError):
            value = self._connection.get(LEADER_KEY)
            return value.decode() if isinstance(value, bytes) else str(value or "")
        return ""

    def _lead(self, stop: threading.Event) -> None:
        cron = build_cron(self._connection, self._entries, self.name)
        try:
            cron.register_birth()
            while not stop.is_set():
                if not self._renew():
                    log.warning("scheduler: lost the leader lock; no longer enqueueing", extra={"scheduler": self.name})
                    return
                if cron.enqueue_jobs():
                    cron.save()
                cron.heartbeat()
                stop.wait(min(cron.calculate_sleep_interval(), self._renew_every))
        except RedisError as exc:
            log.warning("scheduler: Redis failed while leading; waiting to lead again", extra={"error": str(exc)})
            self._let_go()
            stop.wait(self._renew_every)
        finally:
            with suppress(RedisError):
                cron.register_death()

    def _renew(self) -> bool:
        try:
            self._lock.reacquire()
        except LockError:  # expired and perhaps taken by another
            return False
        return True

    def _let_go(self) -> None:
        with suppress(LockError, RedisError):
            self._lock.release()
