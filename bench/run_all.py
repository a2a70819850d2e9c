"""`make bench`: every benchmark under bench/ (bench_*.py), one after the other, then BENCHMARKS.md at the root.

Each benchmark runs in its own process with the arguments below (sized so that the whole run stays under ten
minutes on a small machine; run a script alone for its full-size figures) and reports through `benchkit.Report`,
which appends its figures as JSON to the file named by EE_BENCH_RESULTS. A benchmark that crashes, or exceeds its
time limit, is listed as failed in BENCHMARKS.md and makes the run exit 1; a missed target is a figure like any
other, said in the report.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchkit import RESULTS_ENV, format_load, load_average, machine, markdown

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Arguments under `make bench`, and the seconds each may take at most.
PLAN: dict[str, tuple[list[str], int]] = {
    "bench_accounting_ingest.py": (["1000000", "--runs", "3"], 300),
    "bench_campaign_create.py": (["--contacts", "100000", "--runs", "1"], 420),
    "bench_dnsbl_scan.py": (
        [
            "--ips",
            "2000",
            "--runs",
            "3",
            "--baseline-sample",
            "3000",
            "--relay-baseline-sample",
            "200",
            "--dnsperf-seconds",
            "3",
        ],
        180,
    ),
    "bench_gateway_reads.py": (["--seconds", "3", "--runs", "3"], 300),
    "bench_ippool_allocation.py": ([], 120),
    "bench_simulate.py": (["--runs", "2"], 180),
}
DEFAULT_LIMIT = 300


def run_one(script: Path, results: Path) -> tuple[int | None, float]:
    """Runs one benchmark, its output passed through; (exit status or None when stopped at its limit, seconds)."""
    arguments, limit = PLAN.get(script.name, ([], DEFAULT_LIMIT))
    env = {**os.environ, RESULTS_ENV: str(results), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    # Its own process group: at the limit, the benchmark and the servers it started are stopped, nothing else.
    proc = subprocess.Popen([sys.executable, str(script), *arguments], cwd=ROOT, env=env, start_new_session=True)
    try:
        status: int | None = proc.wait(limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # its finally blocks stop the servers it started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        status = None
    return status, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=[], help="benchmark names (e.g. accounting_ingest)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu']}, {info['system']}, Python {info['python']}")
    print(f"load average at the start: {format_load(info['load'])}", flush=True)
    started = time.perf_counter()
    reports: list[dict] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ee-bench-") as tmp:
        for script in scripts:
            results = Path(tmp) / f"{script.stem}.jsonl"
            print(f"\n== {script.name} (load average {format_load(load_average())})", flush=True)
            status, seconds = run_one(script, results)
            found = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
            for report in found:
                reports.append(report | {"script": script.name, "elapsed": seconds, "status": status})
            if status is None:
                failures.append(f"`{script.name}`: stopped at its time limit after {seconds:.0f} s")
            elif not found:
                failures.append(f"`{script.name}`: exit status {status} without figures (see its output)")
            elif status != 0:
                reports[-1]["notes"].append(f"exit status {status} (a target missed, see above)")
    elapsed = time.perf_counter() - started
    header = info | {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": elapsed,
        "load_before": info["load"],
        "load_after": load_average(),
    }
    args.output.write_text(markdown(reports, header=header, failures=failures), encoding="utf-8")
    print(f"\n== summary ({elapsed:.0f} s, load average now {format_load(header['load_after'])})")
    for report in reports:
        print(f"{report['title']} (load {format_load(report['load_before'])}):")
        for figure in report["figures"]:
            median = statistics.median(figure["samples"])
            versus = f"  {figure['ratio']:.2f} x {figure['baseline']}" if figure.get("ratio") is not None else ""
            print(f"  {figure['name']:<66} {median:>12,.1f} {figure['unit']:<10}{versus}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"written: {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
