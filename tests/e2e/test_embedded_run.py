"""Acceptance: `emailengine run` (what `make run` starts) brings up all four services behind Envoy on the
embedded default, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from libs.config import REPO_ROOT
from tests.harness.servers import RedisServer, stack_env, wait_until

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


def test_run_with_redis_keeps_one_process_per_service_and_survives_one_stopping(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With REDIS_URL, `emailengine run` starts each service in its own process: SIGTERM on one leaves the
    others serving (Envoy answers 503 for it), and Ctrl-C still stops everything."""
    env = stack_env(tmp_path, redis_url=redis_server.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "libs.cli", "run"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    gateway = f"http://127.0.0.1:{env['EE_GATEWAY_PORT']}"

    def statuses() -> dict[str, str]:
        return {s["service"]: s["status"] for s in httpx.get(f"{gateway}/api/v2/health", timeout=3).json()["services"]}

    wait_until(lambda: set(statuses().values()) == {"SERVING"}, 40, "emailengine run (redis)", proc)
    children = _descendants(proc.pid)
    notifier = next(pid for pid in children if b"serve\x00notifier" in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(notifier, signal.SIGTERM)
    # Gone from /proc once the supervisor has reaped it (and said so).
    wait_until(lambda: not Path(f"/proc/{notifier}").exists(), 20, "notifier exit")
    wait_until(lambda: statuses()["notifier"] != "SERVING", 10, "notifier reported down")
    assert statuses()["ip-pool"] == "SERVING"
    assert proc.poll() is None, "the supervisor keeps the others running"
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=40)[0].decode()
    assert proc.returncode == 0, output
    assert "notifier exited with 0" in output, output[-3000:]
    time.sleep(0.5)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid)] == []


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b") ", 1)[1][:1]
    except (FileNotFoundError, IndexError):
        return b"X"
