"""Routing: each tenant its chat(s), the admin chat sees all, minimum severities, quiet hours for info."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from libs.errors import InvalidArgument
from notifier.domain.alert import PLATFORM_TENANT, Severity
from notifier.domain.routing import (
    Channel,
    QuietHours,
    QuietMode,
    Route,
    RoutingTable,
    parse_chat_id,
    routing_table_from_config,
)
from tests.unit.notifier.conftest import T0, make_alert

SOS_CHAT = "-1001000000001"
ULIXAI_CHAT = "-1001000000002"
ADMIN_CHAT = "-1001000000099"


def table(*extra: Route) -> RoutingTable:
    return RoutingTable(
        [
            Route("sos-chat", Channel.TELEGRAM, SOS_CHAT, tenant="sos-expat"),
            Route("ulixai-chat", Channel.TELEGRAM, ULIXAI_CHAT, tenant="ulixai", min_severity=Severity.WARNING),
            Route("admin", Channel.TELEGRAM, ADMIN_CHAT),
            *extra,
        ]
    )


def targets(deliveries: list) -> list[str]:
    return [d.route.target for d in deliveries]


def test_tenant_alert_goes_to_its_chat_and_the_admin_chat() -> None:
    deliveries = table().route(make_alert(tenant="sos-expat"), T0)
    assert targets(deliveries) == [SOS_CHAT, ADMIN_CHAT]
    assert all(d.deliver_at == T0 and not d.silent for d in deliveries)


def test_a_tenant_never_gets_another_tenants_alert() -> None:
    assert targets(table().route(make_alert(tenant="ulixai"), T0)) == [ULIXAI_CHAT, ADMIN_CHAT]
    assert targets(table().route(make_alert(tenant="other"), T0)) == [ADMIN_CHAT]


def test_platform_alerts_go_to_admin_routes_only() -> None:
    assert targets(table().route(make_alert(tenant=PLATFORM_TENANT), T0)) == [ADMIN_CHAT]


def test_minimum_severity_per_route() -> None:
    assert targets(table().route(make_alert(tenant="ulixai", severity="info"), T0)) == [ADMIN_CHAT]
    assert targets(table().route(make_alert(tenant="ulixai", severity="warning"), T0)) == [ULIXAI_CHAT, ADMIN_CHAT]


def test_a_shared_destination_gets_one_message() -> None:
    routes = table(Route("sos-also-admin", Channel.TELEGRAM, "-1001000000099", tenant="sos-expat"))
    deliveries = routes.route(make_alert(tenant="sos-expat"), T0)
    assert targets(deliveries) == [SOS_CHAT, ADMIN_CHAT]
    assert deliveries[1].route.route_id == "sos-also-admin"  # tenant route wins the shared chat


def test_webhook_routes() -> None:
    hook = Route("sos-hook", Channel.WEBHOOK, "https://hooks.example/notify", tenant="sos-expat")
    deliveries = table(hook).route(make_alert(), T0)
    assert [d.route.channel for d in deliveries] == [Channel.TELEGRAM, Channel.WEBHOOK, Channel.TELEGRAM]


PARIS_NIGHT = QuietHours(time(22, 0), time(7, 0), "Europe/Paris")


@pytest.mark.parametrize(
    ("utc_time", "quiet"),
    [
        (datetime(2026, 1, 5, 20, 59, tzinfo=UTC), False),  # 21:59 Paris (UTC+1)
        (datetime(2026, 1, 5, 21, 0, tzinfo=UTC), True),  # 22:00 Paris
        (datetime(2026, 1, 5, 23, 30, tzinfo=UTC), True),  # 00:30 Paris
        (datetime(2026, 1, 6, 5, 59, tzinfo=UTC), True),  # 06:59 Paris
        (datetime(2026, 1, 6, 6, 0, tzinfo=UTC), False),  # 07:00 Paris: end is exclusive
        (datetime(2026, 7, 6, 4, 59, tzinfo=UTC), True),  # 06:59 Paris summer time (UTC+2)
        (datetime(2026, 7, 6, 5, 0, tzinfo=UTC), False),
    ],
)
def test_quiet_hours_wrap_midnight_in_the_routes_zone(utc_time: datetime, quiet: bool) -> None:
    assert PARIS_NIGHT.contains(utc_time) is quiet


def test_quiet_hours_end_instant() -> None:
    evening = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)  # 23:30 Paris
    assert PARIS_NIGHT.ends_at(evening) == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    early = datetime(2026, 1, 6, 1, 0, tzinfo=UTC)  # 02:00 Paris, same night
    assert PARIS_NIGHT.ends_at(early) == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    day = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    assert PARIS_NIGHT.ends_at(day) == day


def test_quiet_hours_across_the_spring_dst_jump() -> None:
    # 29 March 2026: Paris jumps from 02:00 to 03:00. Quiet 01:00-02:30 ends at the jump, not before `at`.
    quiet = QuietHours(time(1, 0), time(2, 30), "Europe/Paris")
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 Paris (UTC+1)
    assert quiet.contains(at)
    end = quiet.ends_at(at)
    assert end >= at
    assert not quiet.contains(end + timedelta(minutes=31))


def test_info_is_deferred_during_quiet_hours_but_warnings_are_not() -> None:
    sos = Route("sos-chat", Channel.TELEGRAM, SOS_CHAT, tenant="sos-expat", quiet_hours=PARIS_NIGHT)
    routes = RoutingTable([sos])
    night = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    [info] = routes.route(make_alert(severity="info"), night)
    assert info.deliver_at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    [warning] = routes.route(make_alert(severity="warning"), night)
    assert warning.deliver_at == night


def test_silent_quiet_mode_sends_at_once_without_sound() -> None:
    sos = Route(
        "sos-chat",
        Channel.TELEGRAM,
        SOS_CHAT,
        tenant="sos-expat",
        quiet_hours=PARIS_NIGHT,
        quiet_mode=QuietMode.SILENT,
    )
    night = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    [delivery] = RoutingTable([sos]).route(make_alert(severity="info"), night)
    assert delivery.deliver_at == night and delivery.silent


def test_bad_quiet_hours_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match=r"quiet_hours\.end"):
        QuietHours(time(7, 0), time(7, 0))
    with pytest.raises(InvalidArgument, match="time_zone"):
        QuietHours(time(22, 0), time(7, 0), "Mars/Olympus")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(-1001234567890, -1001234567890), ("-1001234567890", -1001234567890), ("@ops_alerts", "@ops_alerts")],
)
def test_chat_ids(raw: str | int, expected: str | int) -> None:
    assert parse_chat_id(raw) == expected


@pytest.mark.parametrize("raw", [0, "abc", "@ab", "12.5", True, 2**63])
def test_bad_chat_ids(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_chat_id(raw)  # type: ignore[arg-type]


def test_route_validation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Route("bad id!", Channel.TELEGRAM, "not-a-chat", tenant="UPPER")
    assert {v.field for v in caught.value.violations} == {"route_id", "target", "tenant"}
    with pytest.raises(InvalidArgument, match="target"):
        Route("hook", Channel.WEBHOOK, "https://user:pw@hooks.example/x")
    with pytest.raises(InvalidArgument, match="duplicate"):
        RoutingTable([Route("a", Channel.TELEGRAM, "1"), Route("a", Channel.TELEGRAM, "2")])


def test_routing_table_from_config() -> None:
    routes = routing_table_from_config(
        {
            "routes": [
                {
                    "id": "sos",
                    "tenant": "sos-expat",
                    "chat_id": -1001000000001,
                    "min_severity": "warning",
                    "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Europe/Paris"},
                },
                {"id": "admin", "admin": True, "chat_id": "-1001000000099"},
                {"id": "hook", "tenant": "ulixai", "channel": "webhook", "url": "https://hooks.example/a"},
            ]
        }
    )
    sos, admin, hook = routes.routes
    assert sos.min_severity is Severity.WARNING and sos.quiet_hours == PARIS_NIGHT
    assert admin.is_admin and hook.channel is Channel.WEBHOOK


def test_routing_config_errors_name_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        routing_table_from_config(
            {
                "routes": [
                    {"id": "sos", "tenant": "sos-expat", "chat_id": "nope"},
                    {"id": "admin", "admin": True, "tenant": "x", "chat_id": 1},
                    {
                        "id": "q",
                        "tenant": "t",
                        "chat_id": 1,
                        "min_severity": "loud",
                        "quiet_hours": {"start": "25:00", "end": "07:00", "time_zone": "Nowhere/Land", "mode": "x"},
                    },
                    "not an object",
                ]
            }
        )
    fields = {v.field for v in caught.value.violations}
    assert fields == {
        "routes[0].chat_id",
        "routes[1].tenant",
        "routes[2].min_severity",
        "routes[2].quiet_hours.start",
        "routes[2].quiet_hours.time_zone",
        "routes[2].quiet_hours.mode",
        "routes[3]",
    }
    with pytest.raises(InvalidArgument, match="routes"):
        routing_table_from_config({})
