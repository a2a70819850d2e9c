"""Throwaway real servers on free loopback ports: PostgreSQL, Redis, the services and Envoy.

A server that cannot start raises (the test fails); nothing here ever skips.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from libs.config import REPO_ROOT, SERVICE_NAMES

_PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


# Ports handed out for servers: below Linux's ephemeral range (32768-60999), which outgoing connections draw
# from, so a port chosen here is not taken by some client's socket before its server binds it.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP, never handed out twice in this test session."""
    with _port_lock:
        for _ in range(1000):
            port = random.randrange(*_PORT_RANGE)
            if port in _handed_out:
                continue
            try:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _pg_tool(name: str) -> str:
    for directory in _PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql (make test does)")
    return found


class PostgresServer:
    """A PostgreSQL cluster made with initdb in a temp dir, run as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ee-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_for("emailengine")

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        subprocess.run(
            self._as_user([_pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), name]),
            check=True,
            capture_output=True,
        )

    def _as_user(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if os.geteuid() == 0 else args

    def start(self) -> PostgresServer:
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, self.user)
        subprocess.run(
            self._as_user([_pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        self._launch()
        createdb = self._as_user([_pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "emailengine"])
        wait_until(lambda: subprocess.run(createdb, capture_output=True).returncode == 0, 15, "createdb")
        return self

    def _launch(self) -> None:
        self._proc = subprocess.Popen(
            self._as_user(
                [
                    _pg_tool("postgres"),
                    "-D",
                    str(self.dir / "data"),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.dir}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "postgres.log", "ab"),  # noqa: SIM115
        )
        wait_until(self._accepts_connections, 30, "postgres", self._proc)

    def _accepts_connections(self) -> bool:
        ready = self._as_user([_pg_tool("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"])
        return port_open(self.port) and subprocess.run(ready, capture_output=True).returncode == 0

    def halt(self) -> None:
        """Stops the cluster as an operator's restart does (fast shutdown: sessions cut, committed data kept)."""
        # runuser does not pass signals on: stop the cluster with pg_ctl, then reap runuser.
        subprocess.run(
            self._as_user([_pg_tool("pg_ctl"), "stop", "-D", str(self.dir / "data"), "-m", "fast", "-w"]),
            capture_output=True,
            timeout=30,
        )
        _stop(self._proc)

    def start_again(self) -> None:
        """The same cluster, data and port, after `halt`."""
        self._launch()

    def begin_smart_shutdown(self) -> None:
        """Starts a smart shutdown and returns: the open sessions go on, every new one is refused ("the database
        system is shutting down") until they have all ended; then `halt`, `start_again`."""
        stop = [_pg_tool("pg_ctl"), "stop", "-D", str(self.dir / "data"), "-m", "smart", "-W"]
        subprocess.run(self._as_user(stop), check=True, capture_output=True)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ee-redis-"))
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: install the Debian package redis-server (make test does)")
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 15, "redis-server", self._proc)
        return self

    def halt(self) -> None:
        """Stops the server. It keeps nothing on disk: whatever it held is gone when it starts again."""
        _stop(self._proc)

    def kill(self) -> None:
        """SIGKILL: the server dies at once, with whatever it held (it keeps nothing on disk anyway)."""
        _stop(self._proc, signal.SIGKILL)

    def start_again(self) -> None:
        """A new, empty server on the same port, after `halt` or `kill`."""
        self.start()

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def stack_env(
    data_dir: Path, *, database_url: str = "", redis_url: str = "", extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for one stack on free ports, sharing the test keys in data_dir/keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EE_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "EE_DATA_DIR": str(data_dir),
            "EE_GATEWAY_PORT": str(free_port()),
            "EE_ENVOY_ADMIN_PORT": str(free_port()),
            "EE_IPPOOL_SEED_TENANTS": "sos-expat,ulixai",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "EE_SHUTDOWN_GRACE_SECONDS": "10",
            # Tests talk to loopback only: unless a test points it at its own DNS server, the stack's resolver
            # is a closed loopback port (never the machine's resolver, never a public one).
            "EE_DNS_NAMESERVERS": f"127.0.0.1:{free_port()}",
            "EE_DNS_TIMEOUT": "0.5",
            # The suites call the on-demand checks in loops; the limits themselves have their own test.
            "EE_REPUTATION_CHECKS_PER_MINUTE": "6000",
            "EE_REPUTATION_CHECKS_BURST": "1000",
            "EE_REPUTATION_TENANT_SCANS_PER_HOUR": "3600",
            "EE_REPUTATION_TENANT_SCANS_BURST": "100",
        }
    )
    for name in SERVICE_NAMES:
        attr = {"ip-pool": "IPPOOL", "campaign-gateway": "CAMPAIGN_GATEWAY"}.get(name, name.upper())
        env[f"EE_{attr}_GRPC_PORT"] = str(free_port())
        env[f"EE_{attr}_METRICS_PORT"] = str(free_port())
    env.update(extra or {})
    return env


def port_of(env: dict[str, str], service: str, kind: str = "GRPC") -> int:
    attr = {"ip-pool": "IPPOOL", "campaign-gateway": "CAMPAIGN_GATEWAY"}.get(service, service.upper())
    return int(env[f"EE_{attr}_{kind}_PORT"])


@dataclass
class Stack:
    """The four services, each its own process, behind a real Envoy. With `replicas` > 1, each service runs that
    many processes on ports of their own, and Envoy balances over them as it would over a Kubernetes Service's pods
    (the replicas are named `ip-pool`, `ip-pool-2`, ...; the other services call the first, at its address)."""

    data_dir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    replicas: int = 1
    _replica_envs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.env['EE_GATEWAY_PORT']}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.env['EE_GATEWAY_PORT']}"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "libs.cli", *args]

    def replicas_of(self, name: str) -> list[str]:
        """The process names of a service's replicas, the first one first."""
        return [name] + [f"{name}-{n}" for n in range(2, self.replicas + 1)]

    def env_of(self, replica: str) -> dict[str, str]:
        """The environment a replica runs with: the stack's, with its own gRPC and metrics ports."""
        if replica in SERVICE_NAMES:
            return self.env
        if replica not in self._replica_envs:
            service = replica.rsplit("-", 1)[0]
            attr = {"ip-pool": "IPPOOL", "campaign-gateway": "CAMPAIGN_GATEWAY"}.get(service, service.upper())
            self._replica_envs[replica] = {
                **self.env,
                f"EE_{attr}_GRPC_PORT": str(free_port()),
                f"EE_{attr}_METRICS_PORT": str(free_port()),
            }
        return self._replica_envs[replica]

    def service_of(self, replica: str) -> str:
        return replica if replica in SERVICE_NAMES else replica.rsplit("-", 1)[0]

    def grpc_port_of(self, replica: str) -> int:
        return port_of(self.env_of(replica), self.service_of(replica))

    def start_service(self, name: str, *, wait: bool = True) -> None:
        """Starts a service (or one replica of it, by its process name) and waits for its port (`wait_for`)."""
        env = self.env_of(name)
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            self._cli("serve", self.service_of(name)), env=env, stdout=log, stderr=log, cwd=REPO_ROOT
        )
        if wait:
            self.wait_for(name)

    def wait_for(self, name: str) -> None:
        """Until the service's port answers; 60 s, as a whole stack starting at once on two busy cores may take
        half of it. On failure the error carries the end of the service's log."""
        try:
            wait_until(lambda: port_open(self.grpc_port_of(name)), 60, f"service {name}", self.procs[name])
        except RuntimeError as exc:
            log = self.data_dir / f"{name}.log"
            tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
            raise RuntimeError(f"{exc}; the end of {log.name}:\n" + "\n".join(tail)) from None

    def start_worker(self, service: str) -> str:
        """An RQ worker of the service (`emailengine worker`), named `<service>-worker`; it runs the jobs the
        service enqueues, retries included."""
        name = f"{service}-worker"
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            self._cli("worker", service), env=self.env, stdout=log, stderr=log, cwd=REPO_ROOT
        )
        return name

    def start_scheduler(self) -> str:
        """The RQ cron scheduler (`emailengine scheduler`), named `scheduler`: it enqueues every service's periodic
        jobs for their workers (`start_worker`)."""
        log = open(self.data_dir / "scheduler.log", "ab")  # noqa: SIM115
        self.procs["scheduler"] = subprocess.Popen(
            self._cli("scheduler"), env=self.env, stdout=log, stderr=log, cwd=REPO_ROOT
        )
        return "scheduler"

    def stop_process(self, name: str) -> None:
        """SIGTERM to one process (a worker, the scheduler, a replica) and waits for it to end; forgets it."""
        _stop(self.procs.pop(name, None))

    def start(self) -> Stack:
        subprocess.run(self._cli("token", "--admin"), env=self.env, check=True, capture_output=True)  # makes keys
        rendering = subprocess.Popen(
            [sys.executable, "-c", "from libs.cli import write_gateway_config; print(write_gateway_config())"],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        # Every process at once, as an orchestrator starts them: one replica of each service migrates its database
        # while the others wait for it.
        names = [replica for name in SERVICE_NAMES for replica in self.replicas_of(name)]
        for name in names:
            self.start_service(name, wait=False)
        for name in names:
            self.wait_for(name)
        config = rendering.communicate(timeout=60)[0].strip()
        if rendering.returncode != 0:
            raise RuntimeError(f"the gateway configuration could not be rendered (exit {rendering.returncode})")
        if self.replicas > 1:
            config = self._balanced(Path(config))
        envoy = shutil.which("envoy", path=str(Path(sys.executable).parent))
        log = open(self.data_dir / "envoy.log", "ab")  # noqa: SIM115
        self.procs["envoy"] = subprocess.Popen(
            [str(envoy), "-c", config, "--use-dynamic-base-id", "--log-level", "warn"],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        wait_until(self._healthy, 30, "envoy + services", self.procs["envoy"])
        return self

    def _balanced(self, config: Path) -> str:
        """The rendered gateway config with every replica of each service in its cluster."""
        import yaml

        rendered = yaml.safe_load(config.read_text())
        for cluster in rendered["static_resources"]["clusters"]:
            if cluster["name"] not in SERVICE_NAMES:
                continue
            [group] = cluster["load_assignment"]["endpoints"]
            group["lb_endpoints"] += [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                for port in map(self.grpc_port_of, self.replicas_of(cluster["name"])[1:])
            ]
        target = self.data_dir / "envoy-replicas.yaml"
        target.write_text(yaml.safe_dump(rendered, sort_keys=False))
        return str(target)

    def _healthy(self) -> bool:
        import httpx

        reply = httpx.get(f"{self.gateway}/api/v2/health", timeout=2)
        return reply.status_code == 200 and reply.json()["status"] == "SERVING"

    def kill(self, name: str) -> None:
        """SIGKILL: the process dies at once, in whatever it was doing (no drain, no final relay)."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def token(self, *args: str) -> str:
        return subprocess.run(
            self._cli("token", *args), env=self.env, check=True, capture_output=True, text=True, cwd=REPO_ROOT
        ).stdout.strip()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            _stop(proc)


@contextmanager
def production_stack(
    data_dir: Path,
    postgres: PostgresServer,
    redis_server: RedisServer,
    extra: dict[str, str] | None = None,
    *,
    replicas: int = 1,
) -> Iterator[Stack]:
    """The four services as separate processes on their own PostgreSQL database and Redis, behind Envoy."""
    database = f"ee_{data_dir.name.replace('-', '_')}"
    postgres.create_database(database)
    env = stack_env(data_dir, database_url=postgres.url_for(database), redis_url=redis_server.url, extra=extra)
    running = Stack(data_dir, env, replicas=replicas)
    try:
        running.start()
        yield running
    finally:
        running.stop()
