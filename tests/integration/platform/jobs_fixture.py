"""Module-level job functions for the job tests (RQ imports jobs by name)."""

from __future__ import annotations

from pathlib import Path


def write_marker(path: str, text: str) -> None:
    with Path(path).open("a") as handle:
        handle.write(text + "\n")
