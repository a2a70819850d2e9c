"""Module-level job functions for the job tests (RQ imports jobs by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_marker(app: Any, path: str, text: str) -> None:
    """A job: its first argument is the service's application, as for every job."""
    assert app is not None, "a job is called with its service's application"
    with Path(path).open("a") as handle:
        handle.write(text + "\n")
