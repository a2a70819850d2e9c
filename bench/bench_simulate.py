"""Benchmark: `emailengine simulate --days 42 --ips 10` (target: under 60 s, chart included).

Run: `python bench/bench_simulate.py [--runs 1]` (or `make bench`). Runs the command's default simulation -- 42 days
of 10 new IPs with the default scenario through the services' real rules, about 730 000 accounting records
aggregated -- and draws its chart into a temporary folder, then prints the wall time of each part (median and
spread when run more than once).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchkit import Report

from simulation.chart import write_chart
from simulation.engine import SimulationConfig, simulate

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    report = Report("simulate", "`emailengine simulate --days 42 --ips 10`")
    totals: list[float] = []
    simulations: list[float] = []
    charts: list[float] = []
    records = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        run = simulate(SimulationConfig(days=42, ips=10))
        simulated = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_chart(run, Path(tmp) / "simulate.png")
        done = time.perf_counter()
        totals.append(done - started)
        simulations.append(simulated - started)
        charts.append(done - simulated)
        records = run.records
    total = report.add("whole command (simulation + chart)", totals, "s", higher_is_better=False)
    report.add("simulation", simulations, "s", higher_is_better=False, note=f"{records:,} accounting records")
    report.add("chart", charts, "s", higher_is_better=False)
    met = total.median < TARGET_SECONDS
    report.note(f"target: under {TARGET_SECONDS:.0f} s: {'met' if met else 'MISSED'}")
    report.finish()


if __name__ == "__main__":
    main()
