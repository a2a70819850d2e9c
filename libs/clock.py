"""One injectable clock, so the domain and the jobs can be run through simulated days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


class ShiftedClock:
    """The system clock moved forward by the seconds written in a file (a float; a missing or empty file: 0).

    Tests drive whole processes through days with it (EE_CLOCK_OFFSET_FILE): every process of an installation
    reads the same file, so moving it moves them all at once. Never set in production.
    """

    def __init__(self, path: Path):
        self._path = path
        self._seen: tuple[float, float] = (-1.0, 0.0)  # (file mtime, offset read at that mtime)

    def offset(self) -> timedelta:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return timedelta(0)
        if mtime != self._seen[0]:
            text = self._path.read_text().strip()
            self._seen = (mtime, float(text) if text else 0.0)
        return timedelta(seconds=self._seen[1])

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()
