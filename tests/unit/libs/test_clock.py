"""The clock tests move whole processes with (EE_CLOCK_OFFSET_FILE)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from libs.clock import ShiftedClock


def test_a_shifted_clock_follows_its_file(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    clock = ShiftedClock(path)
    assert clock.offset() == timedelta(0)  # no file yet: the system clock
    path.write_text("86400\n")
    assert clock.offset() == timedelta(days=1)
    before = datetime.now(UTC)
    assert before + timedelta(days=1) <= clock.now() <= datetime.now(UTC) + timedelta(days=1, seconds=1)
    path.write_text("172800.5")
    os.utime(path, (1, 1))  # a change within the same mtime tick is still seen once the mtime moves
    assert clock.offset() == timedelta(days=2, seconds=0.5)
    path.write_text("")
    os.utime(path, (2, 2))
    assert clock.offset() == timedelta(0)
