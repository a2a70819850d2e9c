"""The simulated run as one PNG an admin reads at a glance: each IP's daily quota and state, day by day.

Public API:
    write_chart(run, path) -> Path

Three panels over the same days:
  quota      each IP's daily quota once the day was decided (log scale, one line per IP; 0 -- standby -- drawn on
             the floor), the warmup schedule's steps as dotted levels and the curve of an IP whose every day is
             healthy; the IPs a scenario touches in colour, the others in grey
  scenario   one bar per scenario item over its days (listing, bad-bounce week, Gmail throttling)
  states     one row per IP, one cell per day: warming, warm, hold, step back, standby; a dot where a provider cap
             is held, a triangle on the days an alert about the IP was sent

Drawn with matplotlib's Agg canvas (no display, no pyplot state), so it runs on a server or in the image.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from simulation.engine import IpDay, SimulationRun
from simulation.report import short
from simulation.scenarios import BadBounceWeek, Listing, ProviderThrottling, ScenarioKind

_FLOOR = 22  # where a quota of 0 is drawn on the log axis, below the first step (50)
_GREY = "#9aa3ad"
_STATE_COLOURS = {
    "warming": "#cfe2f3",
    "warm": "#93d193",
    "hold": "#f6c343",
    "step back": "#e8743b",
    "standby": "#d62728",
}
_SCENARIO_COLOURS = {
    ScenarioKind.LISTING: "#d62728",
    ScenarioKind.LOW_LISTING: "#e6b800",
    ScenarioKind.BAD_WEEK: "#e8743b",
    ScenarioKind.GMAIL_THROTTLING: "#4c72b0",
}


def _use_a_writable_cache() -> None:
    """matplotlib keeps a font cache under $HOME; the image's user has no home: give it a temporary one."""
    if "MPLCONFIGDIR" not in os.environ and not os.access(Path.home(), os.W_OK):
        os.environ["MPLCONFIGDIR"] = str(Path(tempfile.gettempdir()) / "emailengine-matplotlib")


def _state(ip: IpDay) -> str:
    if "STANDBY" in ip.states:
        return "standby"
    if ip.action == "HOLD":
        return "hold"
    if ip.action in ("STEP_BACK", "RESTART"):
        return "step back"
    return "warm" if ip.state == "WARM" else "warming"


def _healthy_curve(run: SimulationRun) -> list[int]:
    """The quota of an IP whose every day is a healthy sending day (7 sending days per step, then warm)."""
    quotas = []
    for number in range(1, run.config.days + 1):
        step = min((number - 1) // 7, len(run.schedule) - 1)
        quotas.append(run.schedule[step])
    return quotas


def _outcome(run: SimulationRun, item: Listing | BadBounceWeek | ProviderThrottling) -> str:
    """What the services made of a scenario item, in a few words, read from the run."""
    if isinstance(item, Listing):
        address = run.addresses[item.ip]
        history = run.ip_days(address)
        if item.kind is ScenarioKind.LOW_LISTING:
            told = [a for a in run.alerts() if a.incident.startswith(f"ip-listing:{address}:") and not a.suppressed]
            return f"{len(told)} alerts, the warmup goes on"
        stopped = next((n for n, ip in enumerate(history, 1) if "STANDBY" in ip.states), None)
        if stopped is None:
            return "no standby seen"
        back = next((n for n, ip in enumerate(history, 1) if n > stopped and ip.states[-1] != "STANDBY"), None)
        text = f"standby on day {stopped} ({history[stopped - 1].quota} -> 0/day)"
        if back is not None:
            text += f", back on day {back} one step lower ({history[back - 1].end_quota}/day)"
        return text
    if isinstance(item, BadBounceWeek):
        parts = []
        for ip in item.ips:
            history = run.ip_days(run.addresses[ip])[item.first_day : item.last_day + 2]
            holds = sum(1 for day in history if day.rule == "BOUNCE_HOLD")
            backs = sum(1 for day in history if day.rule == "BOUNCE_STEP_BACK")
            lowest = min((day.quota for day in history), default=0)
            hold_words = "1 hold" if holds == 1 else f"{holds} holds"
            back_words = "1 step back" if backs == 1 else f"{backs} steps back"
            parts.append(f"{short(run.addresses[ip])} {hold_words}, {back_words} (down to {lowest}/day)")
        return "; ".join(parts)
    held: dict[tuple[int, int, int], list[str]] = {}
    for ip in item.ips:
        history = run.ip_days(run.addresses[ip])
        days = [n for n, day in enumerate(history, 1) if "GMAIL" in day.held_caps and n > item.first_day]
        if days:
            cap = history[days[0] - 1].held_caps["GMAIL"]
            held.setdefault((cap, days[0], days[-1]), []).append(short(run.addresses[ip]))
    if not held:
        return "no Gmail cap held"
    parts = [f"{' '.join(who)} at {cap}/day on days {first}-{last}" for (cap, first, last), who in held.items()]
    return "Gmail cap held " + "; ".join(parts) + ", the IPs keep climbing"


def _scenario_bars(run: SimulationRun) -> list[tuple[str, int, int, str]]:
    """(label, first day, last day, colour) per scenario item; the label says what happened and what it did."""
    bars = []
    for item in (*run.scenario.listings, *run.scenario.bad_weeks, *run.scenario.throttling):
        if isinstance(item, Listing):
            zone = "Spamhaus SBL" if item.zone_key == "spamhaus-zen" else "Mailspike L1"
            what = f"{short(run.addresses[item.ip])} on {zone}"
            first, last, colour = item.listed_day, item.delisted_day, _SCENARIO_COLOURS[item.kind]
        elif isinstance(item, BadBounceWeek):
            what = " ".join(short(run.addresses[ip]) for ip in item.ips) + f" bounce {item.bounce_rate:.0%}"
            first, last, colour = item.first_day, item.last_day, _SCENARIO_COLOURS[ScenarioKind.BAD_WEEK]
        else:
            who = " ".join(short(run.addresses[ip]) for ip in item.ips)
            what = f"{who} Gmail 421-4.7.28 on {item.rate:.0%} of attempts"
            first, last, colour = item.first_day, item.last_day, _SCENARIO_COLOURS[ScenarioKind.GMAIL_THROTTLING]
        bars.append((f"{what} (days {first}-{last}): {_outcome(run, item)}", first, last, colour))
    return bars


_ROLE_COLOURS = {
    ScenarioKind.LISTING: ("#d62728", "#ff9896"),
    ScenarioKind.LOW_LISTING: ("#b8860b", "#dbb84d"),
    ScenarioKind.BAD_WEEK: ("#e8743b", "#8c564b", "#c49c94"),
    ScenarioKind.GMAIL_THROTTLING: ("#1f77b4", "#17becf", "#9edae5"),
}


def _roles(run: SimulationRun) -> dict[str, tuple[str, str]]:
    """What the scenario does to each IP it touches (for the legend), and its line colour: the colour of its first
    scenario, so a line matches its scenario bar (shades when the scenario touches several IPs)."""
    roles: dict[str, list[str]] = {}
    colours: dict[str, str] = {}

    def touch(address: str, kind: ScenarioKind, word: str) -> None:
        roles.setdefault(address, []).append(word)
        if address not in colours:
            shades = _ROLE_COLOURS[kind]
            used = sum(1 for colour in colours.values() if colour in shades)
            colours[address] = shades[min(used, len(shades) - 1)]

    for listing in run.scenario.listings:
        word = "SBL listing" if listing.kind is ScenarioKind.LISTING else "Mailspike L1 listing (alert only)"
        touch(run.addresses[listing.ip], listing.kind, word)
    for week in run.scenario.bad_weeks:
        for ip in week.ips:
            touch(run.addresses[ip], ScenarioKind.BAD_WEEK, f"a week of {week.bounce_rate:.0%} bounces")
    for throttled in run.scenario.throttling:
        for ip in throttled.ips:
            touch(run.addresses[ip], ScenarioKind.GMAIL_THROTTLING, "Gmail throttling")
    return {address: (", ".join(words), colours[address]) for address, words in roles.items()}


def _title(run: SimulationRun) -> str:
    kinds = {
        ScenarioKind.LISTING: "SBL listing",
        ScenarioKind.LOW_LISTING: "Mailspike L1 listing",
        ScenarioKind.BAD_WEEK: "bad-bounce week",
        ScenarioKind.GMAIL_THROTTLING: "Gmail throttling",
    }
    chosen = [name for kind, name in kinds.items() if kind in run.scenario.kinds]
    scenario = ", ".join(chosen) if chosen else "none (an ordinary list)"
    config = run.config
    recipients = f"{config.list_per_ip * config.ips:,}".replace(",", " ")
    return (
        f"email-engine simulate: seed {config.seed}, {config.ips} IPs, {config.days} days from "
        f"{config.start:%a %d %b %Y}\nscenario: {scenario}; a list of {recipients} recipients a day"
    )


def write_chart(run: SimulationRun, path: Path) -> Path:
    """Draws the run (module docstring) into a PNG at `path` (its folder is created); returns the path."""
    _use_a_writable_cache()
    from matplotlib.figure import Figure

    days, ips = run.config.days, len(run.addresses)
    bars = _scenario_bars(run)
    roles = _roles(run)
    strip = max(1.0, 0.3 * ips)
    scenario = 0.42 * max(1, len(bars)) + 0.2
    figure = Figure(figsize=(16, 5.8 + scenario + strip + 1.2), dpi=100, layout="constrained")
    grid = figure.add_gridspec(3, 1, height_ratios=[5.8, scenario, strip])
    quota_axis = figure.add_subplot(grid[0])
    scenario_axis = figure.add_subplot(grid[1], sharex=quota_axis)
    state_axis = figure.add_subplot(grid[2], sharex=quota_axis)
    figure.suptitle(_title(run), fontsize=14)
    _draw_quotas(run, quota_axis, roles, bars)
    _draw_scenario(run, scenario_axis, bars)
    _draw_states(run, state_axis, roles, figure)
    ticks = sorted({1, *range(1, days + 1, 7), days})
    state_axis.set_xticks(ticks, [f"day {n}\n{run.days[n - 1].day:%a %d %b}" for n in ticks], fontsize=9)
    state_axis.set_xlim(0.5, days + 0.5)
    for axis in (quota_axis, scenario_axis):
        axis.tick_params(labelbottom=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _draw_quotas(run: SimulationRun, axis: Any, roles: dict[str, tuple[str, str]], bars: list[Any]) -> None:
    from matplotlib.lines import Line2D

    xs = list(range(1, run.config.days + 1))
    axis.set_yscale("log")
    levels = sorted(set(run.schedule))
    for n, level in enumerate(levels):
        axis.axhline(level, color="#c8cdd2", linewidth=0.8, linestyle=":", zorder=0)
        name = "warm" if level == levels[-1] else f"step {n + 1}"
        axis.annotate(
            f" {name}", (1, level), xycoords=("axes fraction", "data"), va="center", fontsize=9, color="#5f6b76"
        )
    axis.axhline(_FLOOR, color="#d62728", linewidth=0.8, linestyle=":", zorder=0)
    for _label, first, last, colour in bars:
        axis.axvspan(first - 0.5, last + 0.5, color=colour, alpha=0.07, zorder=0, linewidth=0)
    schedule = {"color": "#7f8c99", "linewidth": 10, "alpha": 0.25, "solid_capstyle": "butt"}
    axis.step(xs, _healthy_curve(run), where="mid", zorder=2, **schedule)
    handles: list[Any] = [Line2D([], [], label="the schedule, every day healthy", **schedule)]
    plain = [address for address in run.addresses if address not in roles]
    for address in plain:
        values = [max(ip.quota, _FLOOR) for ip in run.ip_days(address)]
        axis.step(xs, values, where="mid", color=_GREY, linewidth=1.2, alpha=0.8, zorder=3)
    if plain:
        handles.append(Line2D([], [], color=_GREY, linewidth=1.2, label=f"{len(plain)} IPs without a scenario"))
    for n, address in enumerate(a for a in run.addresses if a in roles):
        role, colour = roles[address]
        width = max(1.4, 4.6 - 0.7 * n)  # coinciding lines stay visible as nested outlines
        values = [max(ip.quota, _FLOOR) for ip in run.ip_days(address)]
        axis.step(xs, values, where="mid", color=colour, linewidth=width, alpha=0.9, zorder=4 + n)
        handles.append(Line2D([], [], color=colour, linewidth=width, label=f"{address}: {role}"))
    axis.set_yticks([_FLOOR, *levels], ["0 (standby)", *(f"{level:,}".replace(",", " ") for level in levels)])
    axis.minorticks_off()
    axis.set_ylim(_FLOOR / 1.35, levels[-1] * 1.6)
    axis.set_ylabel("daily quota once decided (log scale)")
    axis.grid(axis="x", color="#eceff1", linewidth=0.6)
    axis.legend(handles=handles, loc="upper left", fontsize=9.5, framealpha=0.92)
    _annotate_listing(run, axis)


def _draw_scenario(run: SimulationRun, axis: Any, bars: list[tuple[str, int, int, str]]) -> None:
    days = run.config.days
    for row, (label, first, last, colour) in enumerate(bars):
        axis.barh(row, last - first + 1, left=first - 0.5, height=0.7, color=colour, alpha=0.85)
        # The label beside its bar, on the side with more room, wrapped to fit it (about 6 px a character on the
        # 1 350 px the days span).
        room_right, room_left = days - last, first - 1
        right = room_right >= room_left
        fits = max(32, int(max(room_right, room_left) / days * 1350 / 6.3))
        at = (last + 0.7, row) if right else (first - 0.7, row)
        text = axis.annotate(
            textwrap.fill(label, fits), at, va="center", ha="left" if right else "right", fontsize=9.5, linespacing=1.0
        )
        text.set_in_layout(False)
    axis.set_ylim(len(bars) - 0.4 if bars else 0.6, -0.6)
    axis.set_yticks([])
    axis.set_ylabel("scenario", rotation=0, ha="right", va="center")
    if not bars:
        axis.annotate("no scenario: an ordinary list", (0.01, 0.5), xycoords="axes fraction", va="center")
    axis.grid(axis="x", color="#eceff1", linewidth=0.6)
    for spine in ("top", "right", "left"):
        axis.spines[spine].set_visible(False)


def _draw_states(run: SimulationRun, axis: Any, roles: dict[str, tuple[str, str]], figure: Any) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    alerted = {(alert.at.date(), alert.incident.split(":")[1]) for alert in run.alerts() if not alert.suppressed}
    for row, address in enumerate(run.addresses):
        for number, ip in enumerate(run.ip_days(address), 1):
            colour = _STATE_COLOURS[_state(ip)]
            axis.barh(row, 1, left=number - 0.5, height=0.86, color=colour, edgecolor="white", linewidth=0.4)
            if ip.held_caps:
                axis.plot(number, row, marker="o", markersize=4, color="#5b2a86", zorder=5)
            if (run.days[number - 1].day, address) in alerted:
                axis.plot(number + 0.3, row - 0.25, marker="v", markersize=6, color="black", zorder=6)
    axis.set_yticks(range(len(run.addresses)), [short(a) for a in run.addresses], fontsize=9)
    for label, address in zip(axis.get_yticklabels(), run.addresses, strict=True):
        if address in roles:
            label.set_color(roles[address][1])
            label.set_fontweight("bold")
    axis.set_ylim(len(run.addresses) - 0.5, -0.5)
    axis.set_ylabel("IP")
    legend = [Patch(color=colour, label=state) for state, colour in _STATE_COLOURS.items()]
    legend += [
        Line2D([], [], marker="o", linestyle="", color="#5b2a86", markersize=5, label="provider cap held"),
        Line2D([], [], marker="v", linestyle="", color="black", markersize=6, label="alert sent about the IP"),
    ]
    figure.legend(handles=legend, loc="outside lower center", ncol=len(legend), fontsize=10, frameon=False)


def _annotate_listing(run: SimulationRun, axis: Any) -> None:
    """Say on the chart what a standby listing did: the IP stopped, and came back one step lower."""
    for listing in run.scenario.listings:
        if listing.kind is not ScenarioKind.LISTING:
            continue
        address = run.addresses[listing.ip]
        history = run.ip_days(address)
        stopped = next((n for n, ip in enumerate(history, 1) if "STANDBY" in ip.states), None)
        if stopped is None:
            continue
        back = next((n for n, ip in enumerate(history, 1) if n > stopped and ip.states[-1] != "STANDBY"), None)
        who, red = short(address), "#d62728"
        middle = (_FLOOR * run.schedule[0]) ** 0.5  # between the floor and the first step
        text = f"{who}: SBL listing, standby ({history[stopped - 1].quota} -> 0)"
        _note(axis, text, (stopped + 1, _FLOOR), (stopped - 0.5, middle), red, ha="right")
        if back is not None and back < len(history):
            quota = history[back].quota
            below = quota / 2.6 if quota / 2.6 > middle * 1.4 else quota * 2.2
            _note(axis, f"{who}: back one step lower, {quota}/day", (back + 1, quota), (back + 1.5, below), red)


def _note(
    axis: Any, text: str, at: tuple[float, float], to: tuple[float, float], colour: str, ha: str = "left"
) -> None:
    axis.annotate(
        text,
        at,
        xytext=to,
        ha=ha,
        va="center",
        fontsize=9.5,
        color=colour,
        arrowprops={"arrowstyle": "->", "color": colour},
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )
