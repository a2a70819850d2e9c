"""REST reads through Envoy: `GET /api/v2/ips/{address}` with an operator's token, 50 connections (wrk).

Two layouts, as an operator runs them:
* production: the four services as separate processes on PostgreSQL and Redis, behind Envoy;
* embedded: `emailengine run` (one process, SQLite, in-process jobs), behind Envoy.
Beside them, Envoy answering 401 alone (no token): the gateway's own ceiling on this machine.

Each figure is the median of several wrk runs, with the spread (min-max). Every server is started here on
free loopback ports and stopped by its own pid.

    .venv/bin/python bench/bench_gateway_reads.py [--seconds 8] [--runs 3] [--layout production|embedded|both]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    production_stack,
    stack_env,
    wait_until,
)

ADDRESS = "192.0.2.10"


@dataclass(frozen=True)
class WrkRun:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, token: str | None, seconds: int, connections: int = 50, threads: int = 2) -> WrkRun:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Requests/sec" not in out or "99%" not in out:
        raise SystemExit(f"wrk gave no figures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return WrkRun(rps, p50, p99, errors)


def summary(name: str, runs: list[WrkRun], expect_errors: bool = False) -> str:
    rps = [r.requests_per_second for r in runs]
    p99 = [r.p99_ms for r in runs]
    p50 = [r.p50_ms for r in runs]
    errors = sum(r.errors for r in runs)
    error_text = "" if expect_errors else f", errors {errors}"
    return (
        f"  {name:<58} {statistics.median(rps):8.0f} req/s (runs {min(rps):.0f}-{max(rps):.0f})"
        f"  p50 {statistics.median(p50):6.1f} ms  p99 {statistics.median(p99):6.1f} ms{error_text}"
    )


def register_ip(gateway: str, token: str) -> None:
    reply = httpx.post(
        f"{gateway}/api/v2/ips",
        json={"address": ADDRESS, "purpose": "marketing", "tenant_id": "sos-expat"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if reply.status_code not in (200, 409):
        raise SystemExit(f"registering the IP failed: {reply.status_code} {reply.text}")


def measure(gateway: str, token: str, seconds: int, runs: int) -> tuple[list[WrkRun], list[WrkRun]]:
    register_ip(gateway, token)
    url = f"{gateway}/api/v2/ips/{ADDRESS}"
    wrk(url, token, 2)  # warm-up: connection pools, caches
    reads = [wrk(url, token, seconds) for _ in range(runs)]
    refusals = [wrk(url, None, max(2, seconds // 2)) for _ in range(runs)]
    return reads, refusals


@contextmanager
def embedded_stack(data_dir: Path) -> Iterator[tuple[str, str]]:
    env = stack_env(data_dir)
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    log = open(data_dir / "run.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "libs.cli", "run"], env=env, cwd=ROOT, stdout=log, stderr=log)
    gateway = f"http://127.0.0.1:{env['EE_GATEWAY_PORT']}"
    try:

        def healthy() -> bool:
            reply = httpx.get(f"{gateway}/api/v2/health", timeout=2)
            return reply.status_code == 200 and reply.json()["status"] == "SERVING"

        wait_until(healthy, 60, "emailengine run", proc)
        token = subprocess.run(
            [sys.executable, "-m", "libs.cli", "token", "--tenant", "sos-expat"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        yield gateway, token
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layout", choices=["production", "embedded", "both"], default="both")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make bench` (it installs the Debian package)")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"GET /api/v2/ips/{ADDRESS} through Envoy, operator token, wrk -t2 -c50, {args.runs} x {args.seconds} s")
    work = Path(tempfile.mkdtemp(prefix="ee-bench-gateway-"))
    try:
        if args.layout in ("production", "both"):
            postgres, redis_server = PostgresServer().start(), RedisServer().start()
            (work / "production").mkdir()
            try:
                with production_stack(work / "production", postgres, redis_server) as stack:
                    token = stack.token("--tenant", "sos-expat")
                    reads, refusals = measure(stack.gateway, token, args.seconds, args.runs)
                print("production layout (one process per service, PostgreSQL, Redis):")
                print(summary("GET /api/v2/ips/{address}", reads))
                print(summary("baseline: Envoy answering 401 alone (no token)", refusals, expect_errors=True))
            finally:
                redis_server.stop()
                postgres.stop()
        if args.layout in ("embedded", "both"):
            (work / "embedded").mkdir()
            with embedded_stack(work / "embedded") as (gateway, token):
                reads, refusals = measure(gateway, token, args.seconds, args.runs)
            print("embedded layout (`emailengine run`, SQLite, in-process jobs):")
            print(summary("GET /api/v2/ips/{address}", reads))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
