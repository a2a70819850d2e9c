"""The simulated run as text for a terminal: a header, one row per day, what happened in it, and a summary.

Public API:
    render(run) -> str
    to_json(run) -> dict                  -- every day's decisions, happenings and alerts, JSON-ready
    short(address) -> str                 -- ".13" for 192.0.2.13 (the column names)

Each row shows every IP's daily quota once the day was decided, with marks: `=` hold, `v` step back, `S` standby
at some time of the day (its quota 0 while in standby), `*` a provider cap held below its share. Below a row, only
when something happened: the rules that held or stepped back IPs (a plain advance says nothing), the provider caps
held, then each service's doings at their local time -- reputation's listings, ip-pool's changes of state,
MailWizz delivery servers (status and daily quota), PowerMTA pool membership, and the alerts the notifier sends
(to which chats) or suppresses as duplicates. Lines of one service at one time that say the same are one line
naming the IPs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from simulation.engine import Happening, IpDay, SimulatedDay, SimulationRun
from simulation.traffic import LIST_MIX

_CELL = 8
_HOLD_ACTIONS = {"HOLD": "=", "STEP_BACK": "v", "RESTART": "v"}


def short(address: str) -> str:
    """The last part of an address: ".13" for 192.0.2.13."""
    return "." + address.rsplit(".", 1)[-1] if "." in address else address


def _cell(ip: IpDay) -> str:
    marks = ""
    if "STANDBY" in ip.states:
        marks += "S"
    elif ip.action in _HOLD_ACTIONS:
        marks += _HOLD_ACTIONS[ip.action]
    if ip.held_caps:
        marks += "*"
    return f"{ip.quota}{marks:<2}".rjust(_CELL)


def _names(addresses: Iterable[str]) -> str:
    return " ".join(short(address) for address in addresses)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _n(value: int) -> str:
    """10 000: thousands apart with a space."""
    return f"{value:,}".replace(",", " ")


def _header(run: SimulationRun) -> list[str]:
    config = run.config
    mix = ", ".join(f"{group.value.title()} {share:.0%}" for group, share in list(LIST_MIX.items())[:5])
    steps = " > ".join(_n(volume) for volume in run.schedule)
    lines = [
        f"email-engine simulate: seed {config.seed}, {_plural(config.days, 'day')} from {config.start:%a %Y-%m-%d}, "
        f"{_plural(config.ips, 'IP')} of tenant sos-expat (Europe/Paris, ip-pool's default policy)",
        f"list: {_n(config.list_per_ip * config.ips)} recipients a day ({mix}, ...); warmup schedule {steps} per day",
        "scenario:" if run.scenario.describe(run.addresses) else "scenario: none (an ordinary list, nothing else)",
        *(f"  - {text}" for text in run.scenario.describe(run.addresses)),
        "alerts: tenant chat (every severity), admin chat (warnings and worse)",
        "cells: the day's quota once decided; = hold, v step back, S standby that day, * a provider cap held",
        "",
        f"{'day':>3}  {'date':<9}" + "".join(short(a).rjust(_CELL) for a in run.addresses) + f"{'sent':>9}",
    ]
    return lines


def _rules(day: SimulatedDay) -> list[str]:
    """The holds and step backs of the day by rule, and the provider caps held."""
    by_rule: dict[tuple[str, str], list[str]] = defaultdict(list)
    held: list[str] = []
    for ip in day.ips:
        if ip.action in _HOLD_ACTIONS:
            word = "hold" if ip.action == "HOLD" else "step back"
            by_rule[(word, ip.rule)].append(ip.address)
        if ip.held_caps:
            caps = ", ".join(f"{provider.title()} {cap}/day" for provider, cap in sorted(ip.held_caps.items()))
            held.append(f"{short(ip.address)} {caps}")
    parts = [f"{word} {rule} {_names(addresses)}" for (word, rule), addresses in sorted(by_rule.items())]
    if held:
        parts.append("cap held " + "; ".join(held))
    return [" | ".join(parts)] if parts else []


def _what(happening: Happening) -> str:
    if happening.source == "ip-pool":
        # "WARMING -> STANDBY: standby, will resume one step lower (200/day): listed by ..." -> its first two parts
        return ": ".join(happening.what.split(": ")[:2])
    return happening.what


def _happenings(day: SimulatedDay) -> list[str]:
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for happening in day.happenings:
        key = (f"{happening.at:%H:%M}", happening.source, _what(happening))
        grouped.setdefault(key, []).append(happening.address)
    lines = []
    for (at, source, what), addresses in grouped.items():
        who = _names(a for a in addresses if a)
        if len(addresses) > 1:
            lines.append(f"{at} {source:<10} {what}: {who}")
        else:
            lines.append(f"{at} {source:<10} {who} {what}" if who else f"{at} {source:<10} {what}")
    for alert in day.alerts:
        where = f"-> {', '.join(alert.chats)}" if not alert.suppressed else "(suppressed: told already)"
        lines.append(f"{alert.at:%H:%M} {'alert':<10} [{alert.severity}] {alert.title} {where}")
    return lines


def _row(day: SimulatedDay) -> list[str]:
    sent = sum(ip.sent for ip in day.ips)
    row = f"{day.number:>3}  {day.day:%a %m-%d}" + "".join(_cell(ip) for ip in day.ips) + f"{sent:>9}"
    notes = _rules(day) + _happenings(day)
    return [row, *(f"{'':15}{note}" for note in notes)]


def _summary(run: SimulationRun) -> list[str]:
    warm = run.schedule[-1]
    reached = []
    for address in run.addresses:
        first = next((n for n, ip in enumerate(run.ip_days(address), 1) if ip.step_quota >= warm), None)
        reached.append(f"{short(address)} {'day ' + str(first) if first else 'not yet'}")
    alerts = run.alerts()
    told = [a for a in alerts if not a.suppressed]
    lines = [
        "",
        "summary",
        f"  warm ({_n(warm)}/day): " + ", ".join(reached),
        f"  alerts: {len(told)} told in {sum(len(a.chats) for a in told)} messages, "
        f"{len(alerts) - len(told)} suppressed as duplicates; per incident:",
    ]
    for incident, found in run.alerts_by_incident().items():
        states = ", ".join(f"{a.state} ({'suppressed' if a.suppressed else ' + '.join(a.chats)})" for a in found)
        lines.append(f"    {incident}: {states}")
    lines.append(f"  accounting records aggregated: {_n(run.records)}; PowerMTA configs redeployed: {run.deploys}")
    return lines


def render(run: SimulationRun) -> str:
    lines = _header(run)
    for day in run.days:
        lines += _row(day)
    return "\n".join(lines + _summary(run))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def to_json(run: SimulationRun) -> dict[str, Any]:
    """The run as plain data: its settings, the scenario in words, and every day."""
    config = run.config
    return {
        "seed": config.seed,
        "days": config.days,
        "ips": list(run.addresses),
        "start": config.start.isoformat(),
        "list_per_day": config.list_per_ip * config.ips,
        "schedule": list(run.schedule),
        "scenario": run.scenario.describe(run.addresses),
        "seconds": round(run.seconds, 3),
        "accounting_records": run.records,
        "powermta_deploys": run.deploys,
        "days_simulated": [_plain(asdict(day)) for day in run.days],
    }
