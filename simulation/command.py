"""`emailengine simulate`: the command line of the simulation (registered in `libs.cli`).

This module imports only click at load time, so every other `emailengine` command starts as fast as before; the
services' code and matplotlib are loaded when the simulation runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

# The values of `simulation.scenarios.ScenarioKind` (kept here as text so loading the CLI loads no service).
SCENARIOS = ("listing", "low-listing", "bad-week", "gmail-throttling")


@click.command()
@click.option("--days", type=click.IntRange(1, 366), default=42, show_default=True, help="Days to simulate.")
@click.option("--ips", type=click.IntRange(1, 200), default=10, show_default=True, help="New IPs of the tenant.")
@click.option("--seed", type=int, default=2026, show_default=True, help="The same seed gives the same run.")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["all", "none", *SCENARIOS]),
    default=("all",),
    show_default=True,
    help="What happens besides ordinary days (repeat the option): listing (an IP on Spamhaus SBL: standby), "
    "low-listing (an IP on Mailspike L1: alert only), bad-week (6 %% bounces for a week on some IPs), "
    "gmail-throttling (Gmail 421-4.7.28 for a few days), all, or none.",
)
@click.option(
    "--list-per-ip",
    type=click.IntRange(0, 1_000_000),
    default=6000,
    show_default=True,
    help="The daily list, in recipients per IP (Gmail 55 %%, Orange 12 %%, Microsoft 10 %%, ...).",
)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Where to write the PNG chart [default: <data dir>/simulation/simulate-seed<SEED>.png].",
)
@click.option("--no-chart", is_flag=True, help="Print the decisions only.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write every day's decisions, alerts and changes as JSON to this file.",
)
def simulate(
    days: int,
    ips: int,
    seed: int,
    scenarios: tuple[str, ...],
    list_per_ip: int,
    chart_path: Path | None,
    no_chart: bool,
    json_path: Path | None,
) -> None:
    """A simulated fleet through the real rules of every service, on a virtual clock.

    New IPs warm up on a Gmail-heavy list with the deferrals, bounces and complaints new IPs really get, while
    the scenarios happen; ip-pool's use cases decide (over a throwaway SQLite file), reputation reads the
    blocklists, campaign-gateway aggregates the accounting and writes MailWizz servers and PowerMTA configs, the
    notifier alerts. Prints the decisions day by day and writes a PNG chart of each IP's daily quota and state.
    Nothing outside this process is contacted.
    """
    started = time.perf_counter()
    from libs.config import settings
    from simulation.engine import SimulationConfig
    from simulation.engine import simulate as run_simulation
    from simulation.report import render, to_json
    from simulation.scenarios import ALL_KINDS, ScenarioKind, default_scenario

    if "none" in scenarios and len(set(scenarios)) > 1:
        raise click.UsageError("--scenario none cannot be combined with other scenarios")
    named = {ScenarioKind(name) for name in scenarios if name not in ("all", "none")}
    kinds = set(ALL_KINDS) if "all" in scenarios else named
    config = SimulationConfig(
        days=days,
        ips=ips,
        seed=seed,
        list_per_ip=list_per_ip,
        scenario=default_scenario(days=days, ips=ips, kinds=kinds),
    )
    run = run_simulation(config)
    click.echo(render(run))
    chart_seconds = 0.0
    if not no_chart:
        from simulation.chart import write_chart

        path = chart_path or settings().data_dir / "simulation" / f"simulate-seed{seed}.png"
        chart_started = time.perf_counter()
        try:
            written = write_chart(run, path)
        except ModuleNotFoundError as error:
            if error.name != "matplotlib":
                raise
            raise click.ClickException(
                "the chart needs matplotlib, a runtime requirement: `.venv/bin/pip install -r requirements.txt` "
                "(or `make venv`), or run with --no-chart"
            ) from None
        chart_seconds = time.perf_counter() - chart_started
        click.echo(f"  chart: {written}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(to_json(run), indent=1, ensure_ascii=False) + "\n")
        click.echo(f"  decisions as JSON: {json_path}")
    wall = time.perf_counter() - started
    chart = f", chart {chart_seconds:.1f} s" if not no_chart else ""
    click.echo(f"  wall time: {wall:.1f} s for {days} days x {ips} IPs (simulation {run.seconds:.1f} s{chart})")
