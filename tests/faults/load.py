"""Load through the gateway while a fault happens: reader threads calling GETs in a loop, and writer threads each
making one logical write after another, every one sent again with the same request until it is accepted (as a
client does after a 503: the same alert dedup key, the same campaign request_id, the same pause).

Every answer is kept, with when it was asked and answered, so a test can say which calls failed and when.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.world import FaultWorld

# Answers after which the same request is sent again: the gateway could not get an answer from a service (503),
# the call timed out there (504), or no answer at all (0).
RETRIED = frozenset({0, 502, 503, 504})
FINISH_SECONDS = 90  # a write under way when the load stops is carried on this long at most


@dataclass(frozen=True)
class Answer:
    call: str
    started: float
    ended: float
    status: int  # 0: the connection failed without an answer
    body: str

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Write:
    """One logical write: the same request until accepted."""

    key: str
    method: str
    path: str
    body: dict[str, Any]
    attempts: list[Answer] = field(default_factory=list)

    @property
    def accepted(self) -> Answer | None:
        return self.attempts[-1] if self.attempts and self.attempts[-1].status == 200 else None


# Makes the n-th write of a writer: (key, method, path, body).
MakeWrite = Callable[[int], tuple[str, str, str, dict[str, Any]]]
# Whether an answer 200 completes the write (e.g. a campaign answered PENDING is asked again).
IsDone = Callable[[Answer], bool]


class Load:
    def __init__(self, world: FaultWorld, *, pause: float = 0.02):
        self._world = world
        self._pause = pause
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.reads: list[Answer] = []
        self.writes: dict[str, list[Write]] = {}
        self.errors: list[str] = []

    # -- what runs -------------------------------------------------------------------------------

    def reader(self, token: str, *paths: str) -> None:
        """A thread calling these GETs in turn until the load stops."""

        def run(client: httpx.Client) -> None:
            for path in itertools.cycle(paths):
                if self._stop.is_set():
                    return
                answer = self._ask(client, token, "GET", path, None)
                with self._lock:
                    self.reads.append(answer)
                time.sleep(self._pause)

        self._threads.append(threading.Thread(target=self._with_client, args=(run,), daemon=True))

    def writer(self, name: str, token: str, make: MakeWrite, done: IsDone | None = None, pause: float = 0.0) -> None:
        """A thread making write after write (`make(n)`), each sent again until accepted, until the load stops;
        the write under way then is finished."""
        self.writes[name] = []

        def run(client: httpx.Client) -> None:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                key, method, path, body = make(n)
                write = Write(key, method, path, body)
                with self._lock:
                    self.writes[name].append(write)
                deadline = None
                while True:
                    answer = self._ask(client, token, method, path, body)
                    write.attempts.append(answer)
                    if answer.status == 200 and (done is None or done(answer)):
                        break
                    if answer.status not in RETRIED and answer.status != 200:
                        self.errors.append(f"{name} {key}: {answer.status} {answer.body[:300]}")
                        return
                    if self._stop.is_set():
                        deadline = deadline or time.monotonic() + FINISH_SECONDS
                        if time.monotonic() > deadline:
                            self.errors.append(f"{name} {key}: not accepted {FINISH_SECONDS}s after the load stopped")
                            return
                    time.sleep(0.2)
                time.sleep(pause or self._pause)

        self._threads.append(threading.Thread(target=self._with_client, args=(run,), daemon=True))

    def _with_client(self, run: Callable[[httpx.Client], None]) -> None:
        try:
            with httpx.Client(base_url=self._world.stack.gateway, timeout=70) as client:
                run(client)
        except Exception as exc:  # a bug of the test itself: reported by the test, not lost in a thread
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _ask(self, client: httpx.Client, token: str, method: str, path: str, body: dict[str, Any] | None) -> Answer:
        headers = {"Authorization": f"Bearer {self._world.tokens[token]}"}
        started = time.monotonic()
        try:
            reply = client.request(method, path, headers=headers, json=body)
            status, text = reply.status_code, reply.text
        except httpx.TransportError as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        return Answer(f"{method} {path}", started, time.monotonic(), status, text)

    # -- running ---------------------------------------------------------------------------------

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(FINISH_SECONDS + 30)

    def wait_for_answers(self, count: int, timeout: float = 30) -> None:
        """Until `count` more calls (reads and write attempts) were answered 200."""
        start = self.answered()
        deadline = time.monotonic() + timeout
        while self.answered() < start + count and time.monotonic() < deadline:
            time.sleep(0.05)

    def answered(self) -> int:
        with self._lock:
            writes = sum(1 for ws in self.writes.values() for w in ws for a in list(w.attempts) if a.status == 200)
            return writes + sum(1 for a in self.reads if a.status == 200)

    # -- what happened ---------------------------------------------------------------------------

    def failed_reads(self) -> list[Answer]:
        return [a for a in self.reads if a.status != 200]

    def accepted(self, name: str) -> list[Write]:
        return [w for w in self.writes[name] if w.accepted is not None]

    def refused_attempts(self, name: str) -> list[Answer]:
        """Attempts of a writer that were not accepted (and sent again)."""
        return [a for w in self.writes[name] for a in w.attempts if a.status != 200]
