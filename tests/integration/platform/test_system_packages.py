"""`make test` and `make bench` prepare the machine without touching anything they did not start."""

from __future__ import annotations

import subprocess

import pytest

from libs.config import REPO_ROOT
from tests.harness.servers import RedisServer

pytestmark = pytest.mark.integration


def test_ensure_system_packages_never_stops_a_redis_server_it_did_not_start() -> None:
    """A developer's own Redis (here one started by hand, as a user would) survives the preparation step."""
    own = RedisServer().start()
    try:
        done = subprocess.run(
            ["bash", str(REPO_ROOT / "tools" / "ensure_system_packages.sh")], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert own._proc is not None and own._proc.poll() is None, "the hand-started redis-server was stopped"
    finally:
        own.stop()


def test_the_script_names_no_kill_or_service_stop() -> None:
    script = (REPO_ROOT / "tools" / "ensure_system_packages.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for forbidden in ("pkill", "killall", "systemctl stop", "service stop", "kill "):
        assert forbidden not in code
