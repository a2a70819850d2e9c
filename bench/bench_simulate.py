"""Benchmark: `emailengine simulate --days 42 --ips 10` (target: under 60 s, chart included).

Run: `python bench/bench_simulate.py` (or `make bench`). Runs the command's default simulation -- 42 days of 10 new
IPs with the default scenario through the services' real rules, about 730 000 accounting records aggregated --
and draws its chart into a temporary folder, then prints the wall time of each part.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from simulation.chart import write_chart
from simulation.engine import SimulationConfig, simulate

TARGET_SECONDS = 60.0


def main() -> None:
    started = time.perf_counter()
    run = simulate(SimulationConfig(days=42, ips=10))
    simulated = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_chart(run, Path(tmp) / "simulate.png")
    done = time.perf_counter()
    total, chart = done - started, done - simulated
    print(
        f"simulate 42 days x 10 IPs: {total:.1f} s (simulation {simulated - started:.1f} s, chart {chart:.1f} s; "
        f"{run.records:,} accounting records) -- target under {TARGET_SECONDS:.0f} s: "
        f"{'met' if total < TARGET_SECONDS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
