"""Benchmark: a full blocklist scan of 10 000 IPs x 9 zones against a local rbldnsd.

Printed side by side:
* the service's scanner, straight to rbldnsd (target: at least 7 000 queries/s);
* a one-query-at-a-time baseline with dnspython's stub resolver, over the same server;
* the server's own ceiling, measured with `dnsperf` (Debian package dnsperf);
* the reputation service's own periodic scan of the same IPs, recorded (history, listing state, events) in
  a SQLite database, as `make run` does it: what a scan costs end to end;
* the scanner and the baseline through a UDP relay that holds every answer 20 ms, as a real resolver
  chain does (target: the scanner at least 100x faster). The baseline through the relay is sampled
  and extrapolated (a full run would take half an hour); the output says so.

All traffic stays on 127.0.0.1. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.resolver
from benchkit import Report
from prometheus_client import CollectorRegistry

from libs.clock import SystemClock
from libs.config import Settings
from libs.db import connect, migrate
from libs.rate_limit import InMemoryRateLimiter
from reputation.adapters.dns_checks import ResolverDnsChecks
from reputation.adapters.dns_client import A, Nameserver, UdpDnsClient, parse_nameservers
from reputation.adapters.dnsbl_scanner import DnsblScanner
from reputation.adapters.tables import monitored_ips
from reputation.adapters.unit_of_work import JobRunClaims, SqlReputationUnitOfWork
from reputation.app.context import ReputationContext
from reputation.app.metrics import ReputationMetrics
from reputation.app.scanning import IpScans
from reputation.bootstrap import DEFINITION
from reputation.config import DnsEnvSettings, ReputationSettings, build_config
from reputation.domain.dnsbl import DnsAnswer, query_name
from reputation.domain.scan import ScanResult
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import DEFAULT_IP_ZONES, Zone
from tests.harness.dns_servers import DelayingRelay, HarnessError, Rbldnsd

TARGET_QPS = 7_000
TARGET_RELAY_SPEEDUP = 100
RELAY_DELAY = 0.020


@dataclass
class Row:
    label: str
    queries: int
    seconds: float
    note: str = ""

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds else 0.0


class CountingClient:
    """Counts every question the scanner sends (A and the TXT of each listing)."""

    def __init__(self, inner: UdpDnsClient) -> None:
        self.inner = inner
        self.count = 0

    async def query(self, name: str, rdtype: int = A) -> DnsAnswer:
        self.count += 1
        return await self.inner.query(name, rdtype)


def bench_ips(count: int) -> list[str]:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    return [str(ipaddress.IPv4Address(base + i)) for i in range(count)]


def start_rbldnsd(ips: Sequence[str], zones: Sequence[Zone]) -> Rbldnsd:
    """One dataset per zone: its RFC 5782 test points plus a few listed bench IPs (with TXT reasons)."""
    server = Rbldnsd()
    for n, zone in enumerate(zones):
        lines = ["127.0.0.2 :127.0.0.2:test point"]
        if zone.key == "junkemailfilter":
            lines.append("127.0.0.1 :127.0.0.1:whitelisted")
        step = 97 + 13 * n
        lines += [f"{ip} :127.0.0.2:listed by bench zone {zone.key}" for ip in ips[n::step]]
        server.add_dataset(zone.name, "ip4set", zone.key, lines)
    return server.start()


async def run_scanner(nameserver: str, ips: Sequence[str], zones: Sequence[Zone], timeout: float) -> Row:
    async with UdpDnsClient(parse_nameservers(nameserver), timeout=timeout, attempts=3) as client:
        counting = CountingClient(client)
        scanner = DnsblScanner(counting, max_in_flight=512)
        health = await scanner.check_health(zones)
        bad = [h for h in health.values() if not h.healthy]
        if bad:
            raise HarnessError(f"zones unhealthy before the bench: {bad}")
        counting.count = 0
        start = time.perf_counter()
        results = await scanner.scan(ips, zones, health=health)
        seconds = time.perf_counter() - start
    _check(results, len(zones))
    return Row("scanner", counting.count, seconds)


def run_service(nameserver: str, ips: Sequence[str], questions: int) -> Row:
    """The service's scan use case over every IP, recorded in a throwaway SQLite database."""
    with tempfile.TemporaryDirectory(prefix="ee-bench-") as tmp:
        db = connect(Settings(data_dir=Path(tmp)), "reputation")
        migrate(db, DEFINITION.migrations)
        now = datetime.now(UTC)
        with db.transaction() as session:
            session.execute(
                monitored_ips.insert(),
                [dict(address=ip, tenant_id="bench", helo_hostname="", registered_at=now, active=True) for ip in ips],
            )
        config = build_config(ReputationSettings(), DnsEnvSettings(nameservers=nameserver))
        registry = CollectorRegistry()
        clock = SystemClock()
        context = ReputationContext(
            unit_of_work=lambda: SqlReputationUnitOfWork(db, source="reputation", clock=clock),
            config=config,
            clock=clock,
            dns=ResolverDnsChecks(config.dns, clock=clock, max_in_flight=config.max_in_flight, budgets={}),
            claims=JobRunClaims(db),
            metrics=ReputationMetrics(registry),
            limiter=InMemoryRateLimiter(),  # the periodic scan takes no allowance
        )
        scans = IpScans(context)
        start = time.perf_counter()
        run = scans.scan_ips([WatchedIp(ip, "bench", "", True) for ip in ips], "periodic")
        seconds = time.perf_counter() - start
        db.dispose()
    dns_seconds = registry.get_sample_value("emailengine_reputation_scan_seconds_sum", {"trigger": "periodic"}) or 0
    changes = sum(len(r.changes) for r in run.recorded)
    if len(run.recorded) != len(ips) or any(not r.scan.complete for r in run.recorded):
        incomplete = sum(1 for r in run.recorded if not r.scan.complete)
        raise SystemExit(
            f"service scan incomplete: {len(run.recorded)} recorded of {len(ips)}, {incomplete} incomplete"
        )
    note = f"(DNS {dns_seconds:.1f} s + recording; {len(ips) / seconds:,.0f} IPs/s; {changes:,} listed events)"
    return Row("service", questions, seconds, note)


def _check(results: Sequence[ScanResult], zone_count: int) -> None:
    undetermined = sum(len(r.undetermined) for r in results)
    answers = sum(len(r.results) for r in results)
    if answers != len(results) * zone_count or undetermined:
        raise SystemExit(f"bench scan incomplete: {undetermined} undetermined of {answers} answers")


def baseline(nameserver: Nameserver, names: Sequence[str], timeout: float) -> Row:
    """dnspython's stub resolver, one question after the other (NXDOMAIN is the usual answer)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver.host]
    resolver.port = nameserver.port
    resolver.lifetime = timeout
    resolver.cache = None
    start = time.perf_counter()
    for name in names:
        try:
            resolver.resolve(name, "A", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            pass
        except dns.exception.Timeout:
            raise SystemExit(f"baseline: timeout on {name}") from None
    return Row("baseline", len(names), time.perf_counter() - start)


def dnsperf(port: int, names: Sequence[str], seconds: int, workdir: str) -> Row:
    """The server's own ceiling: dnsperf replaying the same questions for `seconds`."""
    binary = shutil.which("dnsperf")
    if binary is None:
        raise HarnessError("dnsperf is not installed (Debian package 'dnsperf')")
    path = f"{workdir}/dnsperf-queries.txt"
    with open(path, "w") as fh:
        fh.writelines(f"{name} A\n" for name in names)
    argv = [binary, "-s", "127.0.0.1", "-p", str(port), "-d", path, "-l", str(seconds), "-c", "4", "-T", "2"]
    argv += ["-q", "500", "-t", "2"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    match = re.search(r"Queries completed:\s+(\d+).*?Run time \(s\):\s+([\d.]+)", out.stdout, re.S)
    if out.returncode != 0 or match is None:
        raise HarnessError(f"dnsperf failed:\n{out.stdout}\n{out.stderr}")
    return Row("dnsperf", int(match.group(1)), float(match.group(2)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ips", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (the service scan: one)")
    parser.add_argument("--baseline-sample", type=int, default=0, help="direct baseline on N names (0: all)")
    parser.add_argument("--relay-baseline-sample", type=int, default=400)
    parser.add_argument("--dnsperf-seconds", type=int, default=5)
    args = parser.parse_args(argv)

    zones = DEFAULT_IP_ZONES
    ips = bench_ips(args.ips)
    names = [query_name(zone, ipaddress.ip_address(ip)) for ip in ips for zone in zones]
    total = len(names)
    report = Report("dnsbl-scan", f"DNSBL scan: {len(ips):,} IPs x {len(zones)} zones against a local rbldnsd")
    print(f"DNSBL scan benchmark: {len(ips):,} IPs x {len(zones)} zones = {total:,} questions (A), loopback only")
    server = start_rbldnsd(ips, zones)
    try:
        print(f"  rbldnsd on {server.nameserver}; relay delay {RELAY_DELAY * 1000:.0f} ms per answer")
        sample = names if not args.baseline_sample else names[: args.baseline_sample]
        bases = [baseline(Nameserver("127.0.0.1", server.port), sample, timeout=2.0) for _ in range(args.runs)]
        note = f"sampled {len(sample):,} questions" if len(sample) < total else ""
        base = report.add("baseline: dnspython resolver, one at a time", [b.qps for b in bases], "queries/s", note=note)
        directs = [asyncio.run(run_scanner(server.nameserver, ips, zones, timeout=2.0)) for _ in range(args.runs)]
        direct = report.add(
            "scanner, direct to rbldnsd",
            [d.qps for d in directs],
            "queries/s",
            baseline=base.name,
            note="target 7,000/s",
        )
        try:
            service = run_service(server.nameserver, ips, directs[-1].queries)
        except SystemExit as incomplete:  # said in the report, the other figures still taken
            report.note(f"service: {incomplete}")
        else:
            report.add(
                "service: periodic scan, recorded in SQLite",
                [service.qps],
                "queries/s",
                baseline=direct.name,
                note=service.note,
            )
        ceiling = dnsperf(server.port, names, args.dnsperf_seconds, str(server.workdir))
        report.add("rbldnsd ceiling measured by dnsperf", [ceiling.qps], "queries/s", baseline=direct.name)

        with DelayingRelay(server.port, delay=RELAY_DELAY) as relay:
            step = max(1, total // args.relay_baseline_sample)
            relay_sample = names[::step][: args.relay_baseline_sample]
            sampled = baseline(Nameserver("127.0.0.1", relay.port), relay_sample, timeout=3.0)
            relay_base = report.add(
                "baseline through the 20 ms relay, one at a time",
                [sampled.qps],
                "queries/s",
                note=f"sampled {len(relay_sample):,} questions",
            )
            relayed = [asyncio.run(run_scanner(relay.nameserver, ips, zones, timeout=3.0)) for _ in range(args.runs)]
            relay_figure = report.add(
                "scanner through the 20 ms relay",
                [r.qps for r in relayed],
                "queries/s",
                baseline=relay_base.name,
                target=TARGET_RELAY_SPEEDUP,
            )
        ok_direct = direct.median >= TARGET_QPS
        ok_relay = (report.ratio(relay_figure) or 0) >= TARGET_RELAY_SPEEDUP
        report.note(
            f"direct: {direct.median:,.0f} queries/s, {direct.median / ceiling.qps:.0%} of the server ceiling -- "
            f"target >= {TARGET_QPS:,}/s: {'met' if ok_direct else 'MISSED'}"
        )
        report.note(
            f"through the relay: {report.ratio(relay_figure) or 0:,.0f}x one at a time -- target >= "
            f"{TARGET_RELAY_SPEEDUP}x: {'met' if ok_relay else 'MISSED'}"
        )
        report.finish()
        return 0 if ok_direct and ok_relay else 1
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
