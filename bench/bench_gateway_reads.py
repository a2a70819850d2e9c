"""Reads of one IP: `GET /api/v2/ips/{address}` (REST) and `IpPoolService/GetIp` (gRPC), through Envoy and beside
their peers, with an operator's token, 50 connections.

Two layouts, as an operator runs them:
* production: the four services as separate processes on PostgreSQL and Redis, behind Envoy;
* embedded: `emailengine run` (one process, SQLite, in-process jobs), behind Envoy.

In each, side by side:
* REST through Envoy (gRPC-JSON transcoding), and its peer: a plain FastAPI + uvicorn endpoint doing the same read
  (same token check, same use case, same database; `bench/peer_fastapi_ips.py`, benchmark only);
* gRPC through Envoy, and the same RPC straight to ip-pool's own port (no Envoy): Envoy's cost is the gap;
* Envoy answering 401 alone (no token): the gateway's own ceiling on this machine;
* writes: `:pause` and `:resume` of 200 IPs through Envoy, alternating per IP (wrk with a Lua script).

HTTP/1.1 load is wrk (-t2 -c50), HTTP/2 load (gRPC) is h2load (-t2 -c50 -m1, the same 50 requests in flight); each
figure is the median of several runs with the spread. h2load cannot read gRPC trailers, so each gRPC target is
first checked with a real gRPC call. Every server is started here on free loopback ports and stopped by its pid.

    .venv/bin/python bench/bench_gateway_reads.py [--seconds 8] [--runs 3] [--layout production|embedded|both]
"""

from __future__ import annotations

import argparse
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

import grpc
import httpx
from benchkit import Report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb  # noqa: E402
from emailengine.ippool.v1 import ippool_service_pb2_grpc as ippool_grpc  # noqa: E402
from tests.harness.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    free_port,
    port_of,
    production_stack,
    stack_env,
    wait_until,
)

GET_IP = "/emailengine.ippool.v1.IpPoolService/GetIp"
UVICORN = (sys.executable, "-m", "uvicorn", "peer_fastapi_ips:app", "--no-access-log", "--log-level", "warning")
TARGET_RPS = {"production": 1500, "embedded": 800}  # the targets for one IP's read, per layout
TARGET_WRITES = 300
ADDRESS = "192.0.2.10"
# The writes: each wrk thread pauses and resumes IPs of its own /24, one IP after the other, so that an IP's pause
# has long been answered when its resume is sent (every answer should be 200).
WRITE_NETWORKS = ("198.51.100", "203.0.113")
WRITE_IPS_PER_THREAD = 100
WRITE_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("network", ({NETWORKS})[threads])
end
function request()
  local n = counter % {PER_THREAD}
  local verb = (math.floor(counter / {PER_THREAD}) % 2 == 0) and "pause" or "resume"
  counter = counter + 1
  return wrk.format("POST", "/api/v2/ips/" .. network .. "." .. (100 + n) .. ":" .. verb, nil, '{"reason":"bench"}')
end
"""


@dataclass(frozen=True)
class LoadRun:
    requests_per_second: float
    p50_ms: float
    """wrk's median; h2load gives no percentiles, so its mean."""
    p99_ms: float
    """wrk's 99th percentile; h2load's maximum."""
    errors: int
    timeouts: int = 0
    """wrk's socket timeouts (no answer within 2 s), counted in `errors` too."""


def _ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, token: str | None, seconds: int, connections: int = 50, threads: int = 2) -> LoadRun:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _wrk_figures(out)


def _wrk_figures(out: str) -> LoadRun:
    if "Requests/sec" not in out or "99%" not in out:
        raise SystemExit(f"wrk gave no figures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    timeouts = 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
        timeouts = int(socket_errors.group(4))
    return LoadRun(rps, p50, p99, errors, timeouts)


def wrk_writes(gateway: str, token: str, seconds: int, work: Path) -> LoadRun:
    """`:pause` and `:resume` through Envoy, alternating per IP (WRITE_SCRIPT), 50 connections over two threads."""
    script = work / "pause-resume.lua"
    networks = ", ".join(f'"{network}"' for network in WRITE_NETWORKS)
    script.write_text(
        WRITE_SCRIPT.replace("{NETWORKS}", "{" + networks + "}").replace("{PER_THREAD}", str(WRITE_IPS_PER_THREAD))
    )
    command = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-s", str(script)]
    command += ["-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json", gateway]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _wrk_figures(out)


def h2load(url: str, token: str | None, body: Path, seconds: int, clients: int = 50, threads: int = 2) -> LoadRun:
    """gRPC unary calls over HTTP/2 (h2c): the framed request in `body`, `clients` connections, one stream each."""
    command = ["h2load", f"-c{clients}", "-m1", f"-t{threads}", "-D", str(seconds), "-d", str(body)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    if token:
        command += ["-H", f"authorization: Bearer {token}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    finished = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    requests = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out
    )
    timing = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if finished is None or requests is None or timing is None:
        raise SystemExit(f"h2load gave no figures:\n{out}")
    _low, high, mean = timing.groups()
    errors = int(requests.group(2)) + int(requests.group(3))
    return LoadRun(float(finished.group(1)), _ms(mean), _ms(high), errors)


def grpc_body(work: Path) -> Path:
    """The GetIp request as it travels: a 5-byte gRPC frame header, then the message."""
    message = ippool_pb.GetIpRequest(address=ADDRESS).SerializeToString()
    path = work / "get-ip.grpc"
    path.write_bytes(b"\x00" + len(message).to_bytes(4, "big") + message)
    return path


def check_grpc(target: str, token: str) -> None:
    """One real GetIp over gRPC (h2load sees HTTP 200 whatever the gRPC status)."""
    with grpc.insecure_channel(target) as channel:
        reply = ippool_grpc.IpPoolServiceStub(channel).GetIp(
            ippool_pb.GetIpRequest(address=ADDRESS), metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
    if reply.address != ADDRESS:
        raise SystemExit(f"GetIp at {target} answered {reply.address!r}")


def add_runs(report: Report, name: str, runs: list[LoadRun], *, baseline: str = "", note: str = "") -> None:
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    errors = sum(r.errors for r in runs)
    timeouts = sum(r.timeouts for r in runs)
    latency = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms" if "wrk" in note else f"mean {p50:.1f} ms, max {p99:.1f} ms"
    failed = f"; {errors} errors ({timeouts} of them timeouts over 2 s)" if timeouts else f"; {errors} errors"
    text = f"{note}; {latency}" + (failed if errors and "401" not in name else "")
    report.add(name, [r.requests_per_second for r in runs], "req/s", baseline=baseline, note=text)


@contextmanager
def fastapi_peer(env: dict[str, str], data_dir: Path, token: str) -> Iterator[str]:
    """`bench/peer_fastapi_ips.py` under uvicorn (one process, as ip-pool is), on the stack's own database."""
    port = free_port()
    log = open(data_dir / "peer.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [*UVICORN, "--app-dir", str(ROOT / "bench"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                reply = httpx.get(f"{base}/api/v2/ips/{ADDRESS}", headers={"Authorization": f"Bearer {token}"})
            except httpx.TransportError:
                return False
            if reply.status_code not in (200,):
                raise SystemExit(f"the FastAPI peer answered {reply.status_code}: {reply.text[:300]}")
            return True

        wait_until(answers, 60, "the FastAPI peer", proc)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def register_ip(gateway: str, token: str, address: str = ADDRESS) -> None:
    reply = httpx.post(
        f"{gateway}/api/v2/ips",
        json={"address": address, "purpose": "marketing", "tenant_id": "sos-expat"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if reply.status_code not in (200, 409):
        raise SystemExit(f"registering the IP failed: {reply.status_code} {reply.text}")


def measure_writes(report: Report, gateway: str, token: str, work: Path, seconds: int, runs: int, label: str) -> None:
    for network in WRITE_NETWORKS:
        for n in range(WRITE_IPS_PER_THREAD):
            register_ip(gateway, token, f"{network}.{100 + n}")
    wrk_writes(gateway, token, 2, work)  # warm-up
    writes = [wrk_writes(gateway, token, seconds, work) for _ in range(runs)]
    add_runs(
        report, f"{label}: REST writes POST /api/v2/ips/{{address}}:pause and :resume through Envoy", writes, note="wrk"
    )


def measure(
    report: Report, gateway: str, token: str, env: dict[str, str], work: Path, seconds: int, runs: int, label: str
) -> None:
    """Every figure of one layout: the peers first, each then beside its own."""
    register_ip(gateway, token)
    url = f"{gateway}/api/v2/ips/{ADDRESS}"
    body = grpc_body(work)
    direct = f"127.0.0.1:{port_of(env, 'ip-pool')}"
    check_grpc(direct, token)
    check_grpc(gateway.removeprefix("http://"), token)
    wrk(url, token, 2)  # warm-up: connection pools, caches
    with fastapi_peer(env, work, token) as peer:
        wrk(f"{peer}/api/v2/ips/{ADDRESS}", token, 2)
        peer_runs = [wrk(f"{peer}/api/v2/ips/{ADDRESS}", token, seconds) for _ in range(runs)]
    peer_name = f"{label}: peer: REST, plain FastAPI + uvicorn, same database"
    add_runs(report, peer_name, peer_runs, note="wrk")
    rest = [wrk(url, token, seconds) for _ in range(runs)]
    add_runs(report, f"{label}: REST GET /api/v2/ips/{{address}} through Envoy", rest, baseline=peer_name, note="wrk")
    h2load(f"http://{direct}{GET_IP}", token, body, 2)
    straight = [h2load(f"http://{direct}{GET_IP}", token, body, seconds) for _ in range(runs)]
    straight_name = f"{label}: gRPC GetIp straight to ip-pool (no Envoy)"
    add_runs(report, straight_name, straight, note="h2load")
    through = [h2load(f"{gateway}{GET_IP}", token, body, seconds) for _ in range(runs)]
    add_runs(report, f"{label}: gRPC GetIp through Envoy", through, baseline=straight_name, note="h2load")
    refusals = [wrk(url, None, max(2, seconds // 2)) for _ in range(runs)]
    add_runs(report, f"{label}: Envoy answering 401 alone (no token)", refusals, note="wrk; its ceiling here")
    measure_writes(report, gateway, token, work, seconds, runs, label)


@contextmanager
def embedded_stack(data_dir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
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
        yield gateway, token, env
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
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run `make bench` (it installs the Debian package)")
    report = Report("gateway-reads", "Reads of one IP: REST and gRPC, through Envoy and beside their peers")
    print(f"GET /api/v2/ips/{ADDRESS} and GetIp, operator token, 50 connections, {args.runs} x {args.seconds} s")
    work = Path(tempfile.mkdtemp(prefix="ee-bench-gateway-"))
    try:
        if args.layout in ("production", "both"):
            postgres, redis_server = PostgresServer().start(), RedisServer().start()
            (work / "production").mkdir()
            try:
                with production_stack(work / "production", postgres, redis_server) as stack:
                    token = stack.token("--tenant", "sos-expat")
                    env = stack.env_of("ip-pool")
                    measure(
                        report, stack.gateway, token, env, work / "production", args.seconds, args.runs, "production"
                    )
            finally:
                redis_server.stop()
                postgres.stop()
        if args.layout in ("embedded", "both"):
            (work / "embedded").mkdir()
            with embedded_stack(work / "embedded") as (gateway, token, env):
                measure(report, gateway, token, env, work / "embedded", args.seconds, args.runs, "embedded")
        for figure in report.figures:
            layout = "embedded" if figure.name.startswith("embedded") else "production"
            target = TARGET_WRITES if "writes" in figure.name else TARGET_RPS[layout]
            if "REST GET" in figure.name or "gRPC GetIp through Envoy" in figure.name or "writes" in figure.name:
                verdict = "met" if figure.median >= target else "MISSED"
                report.note(f"{figure.name}: {figure.median:,.0f} req/s -- target {target:,} req/s: {verdict}")
        report.finish()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
