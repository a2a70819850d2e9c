"""Files that hold secrets (signing keys, the SQLite databases with webhook secrets): this user's only."""

from __future__ import annotations

import os
from pathlib import Path


def private_directory(path: Path) -> None:
    """Creates the directory (and its parents) readable by this user only; an existing one is left as it is."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private_file(path: Path, content: bytes) -> None:
    """Writes a file that is never readable by others, not even for a moment (created 0600, then filled)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
