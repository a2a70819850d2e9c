"""Who hears about an alert: tenant chats, the admin chat, minimum severities, quiet hours, and which Telegram
chats a tenant may use at all (an admin allows them; the shared bot sends nowhere else for that tenant)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.errors import InvalidArgument, Violations
from notifier.domain.alert import TENANT_PATTERN, Alert, Severity, require_aware

_CHAT_USERNAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")
_CHAT_NUMERIC = re.compile(r"^-?[1-9][0-9]{0,18}$")
_ROUTE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#@]+(?:[/?#][^\s]*)?$")


class Channel(StrEnum):
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"


class QuietMode(StrEnum):
    """What quiet hours do to an info alert.

    DEFER holds it until the quiet period ends (nothing is lost, nobody is woken up);
    SILENT sends it at once without sound (Telegram `disable_notification`).
    """

    DEFER = "defer"
    SILENT = "silent"


def parse_chat_id(value: str | int) -> int | str:
    """A Telegram chat: an int64 id (groups negative, supergroups -100…) or an `@channelusername`."""
    if isinstance(value, bool):
        raise ValueError("chat id must be an integer or @username")
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63 or value == 0:
            raise ValueError("chat id must be a non-zero int64")
        return value
    text = str(value).strip()
    if _CHAT_NUMERIC.match(text):
        return parse_chat_id(int(text))
    if _CHAT_USERNAME.match(text):
        return text
    raise ValueError("chat id must be an integer or @username")


def chat_key(value: str | int) -> str:
    """One spelling per chat, to compare them: the id as text, or the @username in lowercase (Telegram's
    usernames are case-insensitive). ValueError for what is not a chat id."""
    return str(parse_chat_id(value)).lower()


@dataclass(frozen=True)
class TenantSettings:
    """A tenant's notifier settings: the Telegram chats its routes may send to, as an admin allowed them."""

    tenant: str
    allowed_telegram_chats: frozenset[str] = frozenset()  # chat keys
    update_time: datetime | None = None

    def allows_chat(self, chat: str | int) -> bool:
        try:
            return chat_key(chat) in self.allowed_telegram_chats
        except ValueError:
            return False


def _is_webhook_url(target: str) -> bool:
    if not _HTTP_URL.match(target):
        return False
    try:
        port = urlsplit(target).port
    except ValueError:
        return False
    return port is None or 1 <= port <= 65535


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time period, [start, end), that may wrap over midnight (22:00 → 07:00)."""

    start: time
    end: time
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        violations = Violations()
        if self.start == self.end:
            violations.add("quiet_hours.end", "must differ from start (an empty period is no quiet hours)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            violations.add("quiet_hours", "start and end are local wall-clock times without a zone")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            violations.add("quiet_hours.time_zone", f"unknown IANA time zone {self.time_zone!r}")
        violations.raise_if_any()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def contains(self, at: datetime) -> bool:
        require_aware(at, "at")
        local = at.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_at(self, at: datetime) -> datetime:
        """The instant the quiet period holding `at` ends (`at` itself when it is not quiet)."""
        if not self.contains(at):
            return at
        local = at.astimezone(self.zone)
        end_date = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            end_date += timedelta(days=1)
        end_local = datetime.combine(end_date, self.end, tzinfo=self.zone)
        # A wall time skipped by a DST jump maps to the instant just after the jump; never earlier than `at`.
        return max(end_local.astimezone(at.tzinfo), at)


@dataclass(frozen=True)
class Route:
    """One destination. `tenant=None` makes it an admin route: it sees every tenant and the platform."""

    route_id: str
    channel: Channel
    target: str
    tenant: str | None = None
    min_severity: Severity = Severity.INFO
    quiet_hours: QuietHours | None = None
    quiet_mode: QuietMode = QuietMode.DEFER

    def __post_init__(self) -> None:
        violations = Violations()
        if not _ROUTE_ID.match(self.route_id):
            violations.add("route_id", "must be 1-128 characters of letters, digits, '_', '.', ':', '-'")
        if self.tenant is not None and not TENANT_PATTERN.match(self.tenant):
            violations.add("tenant", "must be a tenant id, or unset for an admin route")
        if self.channel is Channel.TELEGRAM:
            try:
                parse_chat_id(self.target)
            except ValueError as exc:
                violations.add("target", str(exc))
        elif not _is_webhook_url(self.target):
            violations.add("target", "webhook target must be an http(s) URL without credentials, with a valid port")
        violations.raise_if_any()

    @property
    def is_admin(self) -> bool:
        return self.tenant is None

    @property
    def destination(self) -> tuple[Channel, str]:
        """What "the same chat" means when two routes point at one place."""
        if self.channel is Channel.TELEGRAM:
            return (self.channel, str(parse_chat_id(self.target)))
        return (self.channel, self.target)

    def accepts(self, alert: Alert) -> bool:
        if alert.severity < self.min_severity:
            return False
        return self.is_admin or alert.tenant == self.tenant


@dataclass(frozen=True)
class RoutedDelivery:
    """One route an alert goes to, and when and how (quiet hours decide both)."""

    route: Route
    deliver_at: datetime
    silent: bool = False


class RoutingTable:
    """All routes; the first route to a destination wins, so the admin chat that is also a tenant chat
    gets one message, not two."""

    def __init__(self, routes: Iterable[Route]):
        self.routes: tuple[Route, ...] = tuple(routes)
        seen: set[str] = set()
        for index, route in enumerate(self.routes):
            if route.route_id in seen:
                raise InvalidArgument(f"routes[{index}].route_id", f"duplicate route id {route.route_id!r}")
            seen.add(route.route_id)

    def routes_for_tenant(self, tenant: str) -> list[Route]:
        return [r for r in self.routes if r.tenant == tenant]

    def route(self, alert: Alert, now: datetime) -> list[RoutedDelivery]:
        """Where and when this alert goes. Tenant routes come before admin routes on a shared destination."""
        require_aware(now, "now")
        ordered = sorted(self.routes, key=lambda r: r.is_admin)  # stable: tenant routes first
        deliveries: list[RoutedDelivery] = []
        destinations: set[tuple[Channel, str]] = set()
        for route in ordered:
            if not route.accepts(alert) or route.destination in destinations:
                continue
            destinations.add(route.destination)
            deliveries.append(_apply_quiet_hours(route, alert, now))
        return deliveries


def _apply_quiet_hours(route: Route, alert: Alert, now: datetime) -> RoutedDelivery:
    quiet = route.quiet_hours
    if alert.severity is not Severity.INFO or quiet is None or not quiet.contains(now):
        return RoutedDelivery(route=route, deliver_at=now)
    if route.quiet_mode is QuietMode.SILENT:
        return RoutedDelivery(route=route, deliver_at=now, silent=True)
    return RoutedDelivery(route=route, deliver_at=quiet.ends_at(now))


def _parse_hhmm(value: object) -> time:
    if not isinstance(value, str) or not re.match(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", value):
        raise ValueError("must be HH:MM (24 h)")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def routing_table_from_config(config: Mapping[str, object]) -> RoutingTable:
    """Build routes from plain data (YAML/JSON/DB rows), naming each bad field as `routes[i].x`.

    Shape: {"routes": [{"id", "tenant"?, "admin"?, "channel", "chat_id"|"url", "min_severity"?,
    "quiet_hours"?: {"start": "22:00", "end": "07:00", "time_zone": "Europe/Paris", "mode": "defer"}}]}
    """
    raw_routes = config.get("routes")
    if not isinstance(raw_routes, Sequence) or isinstance(raw_routes, str | bytes):
        raise InvalidArgument("routes", "must be a list")
    violations = Violations()
    routes: list[Route] = []
    for index, raw in enumerate(raw_routes):
        prefix = f"routes[{index}]"
        if not isinstance(raw, Mapping):
            violations.add(prefix, "must be an object")
            continue
        route = _route_from_config(raw, prefix, violations)
        if route is not None:
            routes.append(route)
    violations.raise_if_any()
    return RoutingTable(routes)


def _route_from_config(raw: Mapping[str, object], prefix: str, violations: Violations) -> Route | None:
    before = len(violations.items)
    admin = raw.get("admin", False)
    tenant = raw.get("tenant")
    if not isinstance(admin, bool):
        violations.add(f"{prefix}.admin", "must be a boolean")
    if admin and tenant is not None:
        violations.add(f"{prefix}.tenant", "an admin route sees every tenant: leave tenant unset")
    if not admin and not isinstance(tenant, str):
        violations.add(f"{prefix}.tenant", "required unless admin is true")
    try:
        channel = Channel(str(raw.get("channel", "telegram")))
    except ValueError:
        violations.add(f"{prefix}.channel", "must be telegram or webhook")
        channel = Channel.TELEGRAM
    target_field = "chat_id" if channel is Channel.TELEGRAM else "url"
    target = raw.get(target_field)
    if not isinstance(target, str | int) or isinstance(target, bool):
        violations.add(f"{prefix}.{target_field}", "required")
    try:
        min_severity = Severity.parse(str(raw.get("min_severity", "info")))
    except ValueError as exc:
        violations.add(f"{prefix}.min_severity", str(exc))
        min_severity = Severity.INFO
    quiet_hours: QuietHours | None = None
    quiet_mode = QuietMode.DEFER
    raw_quiet = raw.get("quiet_hours")
    if raw_quiet is not None:
        if not isinstance(raw_quiet, Mapping):
            violations.add(f"{prefix}.quiet_hours", "must be an object")
        else:
            quiet_hours, quiet_mode = _quiet_from_config(raw_quiet, f"{prefix}.quiet_hours", violations)
    if len(violations.items) > before:
        return None
    try:
        return Route(
            route_id=str(raw.get("id", "")),
            channel=channel,
            target=str(target),
            tenant=None if admin else str(tenant),
            min_severity=min_severity,
            quiet_hours=quiet_hours,
            quiet_mode=quiet_mode,
        )
    except InvalidArgument as exc:
        for violation in exc.violations:
            name = {"target": target_field, "route_id": "id"}.get(violation.field, violation.field)
            violations.add(f"{prefix}.{name}", violation.description)
        return None


def _quiet_from_config(
    raw: Mapping[str, object], prefix: str, violations: Violations
) -> tuple[QuietHours | None, QuietMode]:
    before = len(violations.items)
    times: dict[str, time] = {}
    for name in ("start", "end"):
        try:
            times[name] = _parse_hhmm(raw.get(name))
        except ValueError as exc:
            violations.add(f"{prefix}.{name}", str(exc))
    time_zone = raw.get("time_zone", "UTC")
    if not isinstance(time_zone, str):
        violations.add(f"{prefix}.time_zone", "must be an IANA zone name")
    else:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            violations.add(f"{prefix}.time_zone", f"unknown IANA time zone {time_zone!r}")
    try:
        mode = QuietMode(str(raw.get("mode", "defer")))
    except ValueError:
        violations.add(f"{prefix}.mode", "must be defer or silent")
        mode = QuietMode.DEFER
    if len(violations.items) > before:
        return None, mode
    try:
        return QuietHours(times["start"], times["end"], str(time_zone)), mode
    except InvalidArgument as exc:
        for violation in exc.violations:
            violations.add(f"{prefix}{violation.field.removeprefix('quiet_hours')}", violation.description)
        return None, mode
