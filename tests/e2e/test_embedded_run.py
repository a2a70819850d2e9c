"""Acceptance: `emailengine run` (what `make run` starts) brings up all four services behind Envoy on the
embedded default, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from libs.config import REPO_ROOT
from tests.harness.servers import stack_env, wait_until

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children")
        if children.exists():
            for child in children.read_text().split():
                found.add(int(child))
                frontier.append(int(child))
    return found


def test_run_serves_everything_in_seconds_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    env.pop("REDIS_URL")
    env.pop("DATABASE_URL")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "libs.cli", "run"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{env['EE_GATEWAY_PORT']}/api/v2/health"

    def serving() -> bool:
        body = httpx.get(url, timeout=2).json()
        return body["status"] == "SERVING" and len(body["services"]) == 4

    wait_until(serving, 30, "emailengine run", proc)
    elapsed = time.monotonic() - started
    print(f"all four services SERVING through Envoy {elapsed:.1f}s after start")
    children = _descendants(proc.pid)
    assert children, "Envoy should run as a child"
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "email-engine is up." in output
    assert "email-engine stopped." in output
    time.sleep(0.5)
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert alive == []
