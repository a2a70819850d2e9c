"""What every benchmark under bench/ shares: repeated runs, median and spread, the machine, and the report.

    samples, last = repeat(work, runs=5)          # wall seconds of each run, and what the last run returned
    report = Report("accounting", "PowerMTA accounting ingestion, 300 000 records")
    report.add("bare csv.reader", [rows / s for s in samples], "rows/s")                   # a baseline
    report.add("ingestion", rates, "records/s", baseline="bare csv.reader", target=0.5)   # beside its baseline
    report.note("target: ingestion >= 0.50 x csv.reader: MISSED")
    report.finish()      # prints the table; with EE_BENCH_RESULTS set, appends the report there as JSON

A figure is the median of its samples with their spread (min-max, and (max-min)/median in percent); one with a
`baseline` also shows its ratio to it, "better than the baseline" being above 1 whichever way the unit goes
(a rate higher, a time lower). `bench/run_all.py` (`make bench`) runs every benchmark and turns the JSON into
BENCHMARKS.md with `markdown`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
RESULTS_ENV = "EE_BENCH_RESULTS"


@dataclass(frozen=True)
class Figure:
    name: str
    samples: tuple[float, ...]
    unit: str
    higher_is_better: bool = True
    baseline: str = ""
    """The name of the figure (in the same report) this one is compared with."""
    target: float | None = None
    """With a baseline: the ratio to reach (e.g. 0.5 = at least half the baseline's speed)."""
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def spread_percent(self) -> float:
        return 100.0 * (self.high - self.low) / self.median if self.median else 0.0


@dataclass
class Report:
    benchmark: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = field(default_factory=lambda: load_average())

    def add(
        self,
        name: str,
        samples: Sequence[float],
        unit: str,
        *,
        higher_is_better: bool = True,
        baseline: str = "",
        target: float | None = None,
        note: str = "",
    ) -> Figure:
        if not samples:
            raise ValueError(f"figure {name!r} has no samples")
        if baseline and self.figure(baseline) is None:
            raise ValueError(f"figure {name!r}: no baseline figure {baseline!r} in {self.benchmark}")
        figure = Figure(name, tuple(float(s) for s in samples), unit, higher_is_better, baseline, target, note)
        self.figures.append(figure)
        print(format_figure(figure, self), flush=True)
        return figure

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  {text}", flush=True)

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)

    def ratio(self, figure: Figure) -> float | None:
        """How many times better than its baseline (above 1: better), from the medians."""
        base = self.figure(figure.baseline) if figure.baseline else None
        if base is None or not base.median or not figure.median:
            return None
        return figure.median / base.median if figure.higher_is_better else base.median / figure.median

    def finish(self) -> None:
        """The machine line, and the report as JSON for `run_all` when it asked for it."""
        info = machine()
        print(
            f"  machine: {info['cores']} cores, {info['cpu']}; load average {format_load(self.load_before)} "
            f"before, {format_load(info['load'])} after",
            flush=True,
        )
        target = os.environ.get(RESULTS_ENV)
        if target:
            document = {
                "benchmark": self.benchmark,
                "title": self.title,
                "figures": [asdict(f) | {"ratio": self.ratio(f)} for f in self.figures],
                "notes": self.notes,
                "load_before": self.load_before,
                "load_after": info["load"],
            }
            with Path(target).open("a", encoding="utf-8") as out:
                out.write(json.dumps(document) + "\n")


def repeat(work: Callable[[], T], runs: int) -> tuple[list[float], T]:
    """Runs `work` `runs` times; the wall seconds of each run, and what the last run returned."""
    seconds: list[float] = []
    result: T | None = None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return seconds, result  # type: ignore[return-value]


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def format_load(load: Sequence[float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "load": load_average(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_figure(figure: Figure, report: Report) -> str:
    runs = len(figure.samples)
    text = (
        f"  {figure.name:<64} {_number(figure.median):>11} {figure.unit:<10} "
        f"(min-max {_number(figure.low)}-{_number(figure.high)}, spread {figure.spread_percent:.0f} %, {runs} runs)"
    )
    ratio = report.ratio(figure)
    if ratio is not None:
        text += f"  {ratio:.2f} x {figure.baseline}"
        if figure.target is not None:
            text += f" (target {figure.target:.2f}: {'met' if ratio >= figure.target else 'MISSED'})"
    if figure.note:
        text += f"  [{figure.note}]"
    return text


def markdown(reports: list[dict[str, Any]], *, header: dict[str, Any], failures: list[str]) -> str:
    """BENCHMARKS.md: the machine, then one table per benchmark (median, spread, runs, ratio to its baseline)."""
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run_all.py) on {header['date']}, in {header['elapsed']:.0f} s.",
        "Each figure is the median of its runs with the spread (min-max, and (max-min)/median). A ratio compares the",
        "median with the benchmark's own baseline or peer; above 1 is better than it (a rate higher, a time lower).",
        "",
        f"- Machine: {header['cores']} cores, {header['cpu']}; {header['system']}; Python {header['python']}.",
        f"- Load average (1, 5, 15 min): {format_load(header['load_before'])} at the start, "
        f"{format_load(header['load_after'])} at the end. The machine is shared: figures taken under load are low "
        "and spread wide.",
        "",
    ]
    for report in reports:
        lines += [
            f"## {report['title']}",
            "",
            f"`bench/{report['script']}`, {report['elapsed']:.0f} s; load average "
            f"{format_load(report['load_before'])} before, {format_load(report['load_after'])} after.",
            "",
            "| figure | median | min-max | spread | runs | vs baseline |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for fig in report["figures"]:
            ratio = fig.get("ratio")
            versus = ""
            if ratio is not None:
                versus = f"{ratio:.2f} x {fig['baseline']}"
                if fig.get("target") is not None:
                    versus += f" (target {fig['target']:.2f}: {'met' if ratio >= fig['target'] else 'MISSED'})"
            median = statistics.median(fig["samples"])
            low, high = min(fig["samples"]), max(fig["samples"])
            spread = 100.0 * (high - low) / median if median else 0.0
            name = fig["name"] + (f" ({fig['note']})" if fig.get("note") else "")
            lines.append(
                f"| {name} | {_number(median)} {fig['unit']} | {_number(low)}-{_number(high)} | {spread:.0f} % | "
                f"{len(fig['samples'])} | {versus} |"
            )
        if report["notes"]:
            lines.append("")
            lines += [f"- {note}" for note in report["notes"]]
        lines.append("")
    if failures:
        lines += ["## Failed", ""] + [f"- {failure}" for failure in failures] + [""]
    return "\n".join(lines)
