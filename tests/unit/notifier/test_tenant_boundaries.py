"""What one tenant's operator, a peer or a crash can and cannot do to the notifier, over in-memory storage:
the shared bot aimed only at allowed chats, other tenants' ids indistinguishable from missing ones, URLs and
stored routes that never break a tenant, peers' Retry-After bounded, and a crash mid-send that counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import InvalidArgument, NotFound, PermissionDenied
from notifier.app.routes import RouteSpec
from notifier.domain.alert import Severity
from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from notifier.domain.outbox import StoredRoute
from tests.unit.notifier.fakes import FakeNotifier, notifier_over_fakes

ADMIN = Caller("admin", Role.ADMIN, "")
SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
SOS_VIEWER = Caller("sos-viewer", Role.VIEWER, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")
SOS_CHAT, ADMIN_CHAT = "-1001000000001", "-1001000000099"
SECRET = "webhook-secret-0123456789abcdef"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def n() -> Iterator[FakeNotifier]:
    notifier = notifier_over_fakes(FakeClock(T0))
    yield notifier
    notifier.close()


def send(n: FakeNotifier, caller: Caller = ADMIN, tenant: str = "sos-expat", **fields: Any) -> Any:
    values: dict[str, Any] = {"dedup_key": "", "title": "", "text": "listed", "source": "test", "url": ""}
    values.update(fields)
    return n.app.alerts.send(caller, tenant_id=tenant, severity=Severity.CRITICAL, labels={}, resolved=False, **values)


def test_a_tenant_operator_may_not_aim_the_shared_bot_at_a_chat_an_admin_did_not_allow(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id=ADMIN_CHAT))
    for chat in (ADMIN_CHAT, SOS_CHAT, "@Some_Channel"):
        with pytest.raises(PermissionDenied) as refused:
            n.app.routes.create(SOS, RouteSpec(route_id="mine", telegram_chat_id=chat))
        assert refused.value.metadata == {"field": "telegram_chat_id"} and "telegram_chat_id" in refused.value.message
    with pytest.raises(PermissionDenied):  # only admins allow chats
        n.app.tenants.set_allowed_chats(SOS, "sos-expat", [SOS_CHAT])

    n.app.tenants.set_allowed_chats(ADMIN, "sos-expat", [SOS_CHAT, "@Some_Channel"])
    assert n.app.tenants.get(SOS, "sos-expat").allowed_telegram_chats == {SOS_CHAT, "@some_channel"}
    n.app.routes.create(SOS, RouteSpec(route_id="mine", telegram_chat_id=SOS_CHAT))
    n.app.routes.create(SOS, RouteSpec(route_id="channel", telegram_chat_id="@some_channel"))
    with pytest.raises(PermissionDenied):  # the admin chat stays the admins' unless allowed
        n.app.routes.create(SOS, RouteSpec(route_id="sneaky", telegram_chat_id=ADMIN_CHAT))
    with pytest.raises(PermissionDenied):  # another tenant's allowed chats are not its
        n.app.routes.create(ULIXAI, RouteSpec(route_id="theirs", telegram_chat_id=SOS_CHAT))

    # A chat no longer allowed is no longer sent to: its deliveries fail, saying why.
    n.app.tenants.set_allowed_chats(ADMIN, "sos-expat", ["@some_channel"])
    alert = send(n)
    n.deliver()
    found = {d.route_id: d for d in n.app.alerts.get(SOS, alert.alert_id).deliveries}
    assert found["mine"].state == "FAILED" and "not one an admin allowed" in found["mine"].last_error
    assert found["channel"].state == "DELIVERED" and n.telegram.texts(SOS_CHAT) == []


def test_an_admin_creating_a_tenants_telegram_route_allows_its_chat(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    assert n.app.tenants.get(ADMIN, "sos-expat").allows_chat(SOS_CHAT)
    assert not n.app.tenants.get(ADMIN, "ulixai").allows_chat(SOS_CHAT)
    with pytest.raises(PermissionDenied):  # a tenant reads only its own settings
        n.app.tenants.get(ULIXAI, "sos-expat")


def test_another_tenants_route_and_alert_ids_answer_exactly_like_missing_ones(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="ulx", tenant_id="ulixai", telegram_chat_id="-1001000000002"))
    n.app.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id=ADMIN_CHAT))
    theirs = send(n, tenant="ulixai").alert_id
    platform = send(n, tenant="", text="envoy down").alert_id

    def refusal(call: Any, *args: Any) -> tuple[type, str]:
        with pytest.raises(NotFound) as caught:
            call(*args)
        return type(caught.value), caught.value.message.replace(str(args[-1]), "<id>")

    missing = refusal(n.app.routes.get, SOS, "no-such-route")
    assert refusal(n.app.routes.get, SOS, "ulx") == missing
    assert refusal(n.app.routes.get, SOS, "admins") == missing
    assert refusal(n.app.routes.delete, SOS, "ulx") == missing
    assert refusal(n.app.routes.delete, SOS_VIEWER, "admins") == missing
    missing_alert = refusal(n.app.alerts.get, SOS, "00000000-0000-4000-8000-000000000000")
    assert refusal(n.app.alerts.get, SOS, theirs) == missing_alert
    assert refusal(n.app.alerts.get, SOS, platform) == missing_alert
    assert n.app.routes.get(ADMIN, "ulx").route_id == "ulx"  # nothing was removed
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    with pytest.raises(PermissionDenied):  # its own route: a viewer is told it may not write
        n.app.routes.delete(SOS_VIEWER, "sos")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:99999/x", "Port out of range"),
        ("http://user:pw@hooks.example/x", "credentials"),
        ("ftp://hooks.example/x", "http"),
        ("http:///x", "host"),
        ("http://[::1/x", "valid URL"),
    ],
)
def test_a_url_that_would_break_the_tenant_later_is_refused_at_creation(
    n: FakeNotifier, url: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        n.app.routes.create(SOS, RouteSpec(channel="webhook", webhook_url=url, webhook_secret=SECRET))
    [violation] = refused.value.violations
    assert violation.field == "webhook_url" and problem in violation.description


def test_a_stored_route_that_cannot_be_used_never_breaks_the_tenant(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    broken = StoredRoute(
        "broken", "sos-expat", "webhook", "http://h:99999/x", None, "webhook_url has a port outside 1-65535", SECRET, T0
    )
    with n.uow() as uow:
        uow.routes.rows["broken"] = broken
        uow.commit()
    listed, _ = n.app.routes.list(SOS, "", 50, "")
    assert {r.route_id: r.problem for r in listed} == {"broken": broken.problem, "sos": ""}
    alert = send(n)
    n.deliver()
    found = {d.route_id: d for d in n.app.alerts.get(SOS, alert.alert_id).deliveries}
    assert found["sos"].state == "DELIVERED" and found["broken"].state == "FAILED"
    assert "cannot be used" in found["broken"].last_error and "port" in found["broken"].last_error
    assert n.app.alerts.get(ADMIN, alert.alert_id).state == "FAILED"  # someone did not hear, and it says why


@pytest.mark.parametrize("asked", [float("inf"), 1e12, 2.5e11])
def test_a_peers_endless_retry_after_is_bounded_recorded_and_never_resent_every_second(
    n: FakeNotifier, asked: float
) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    n.app.routes.create(
        ADMIN,
        RouteSpec(
            route_id="hook", admin=True, channel="webhook", webhook_url="https://h.example/x", webhook_secret=SECRET
        ),
    )
    limited = DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429, retry_after=asked)
    n.telegram.answers = [limited] * 100
    n.webhooks.answers = [limited] * 100
    alert = send(n)
    n.run_for(30)
    found = {d.route_id: d for d in n.app.alerts.get(ADMIN, alert.alert_id).deliveries}
    for route in ("sos", "hook"):
        assert found[route].state == "FAILED" and found[route].attempts == 1
        assert "longer than the give-up time" in found[route].last_error and f"{asked:g}" in found[route].last_error


def test_a_garbage_retry_after_backs_off_instead_of_resending_every_second(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    n.telegram.answers = [DeliveryResult(Outcome.RATE_LIMITED, Reason.RATE_LIMITED, 429, retry_after=0.0)] * 100
    alert = send(n)
    n.run_for(120, step=0.5)
    tries = n.app.alerts.get(ADMIN, alert.alert_id).attempts
    assert 5 <= tries <= 8  # 1, 2, 4, 8, 16, 32, 60 s: not 240 tries


class ProcessKilled(BaseException):
    """The sender's process dies in the middle of a send."""


def test_the_attempt_is_recorded_before_sending_so_a_crash_mid_send_counts_towards_giving_up(
    n: FakeNotifier,
) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    alert = send(n)

    def die() -> None:
        raise ProcessKilled()

    n.telegram.on_send = die
    for _ in range(3):  # killed mid-send, restarted once the lease is over, killed again ...
        with pytest.raises(ProcessKilled):
            n.deliver()
        n.clock.advance(timedelta(seconds=61))
    with n.uow() as uow:
        [dispatch] = uow.dispatches.rows.values()
    assert dispatch.attempts == 3 and dispatch.first_attempt_at == T0
    assert n.app.alerts.get(ADMIN, alert.alert_id).deliveries[0].attempts == 3

    n.clock.set(T0 + timedelta(hours=24, seconds=1))  # past the give-up time: given up, not sent once more
    n.deliver()
    failed = n.app.alerts.get(ADMIN, alert.alert_id)
    assert failed.state == "FAILED" and "the last attempt never finished" in failed.last_error
    assert n.telegram.sent == []


def test_a_route_served_elsewhere_is_left_alone(n: FakeNotifier) -> None:
    n.app.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=SOS_CHAT))
    send(n)
    with n.uow() as uow:
        assert uow.leases.take("sos", "another-replica", now=n.clock.now(), until=n.clock.now() + timedelta(seconds=60))
        uow.commit()
    assert n.deliver() == 0 and n.telegram.sent == []
    n.clock.advance(timedelta(seconds=61))
    assert n.deliver() == 1


def test_stored_route_records_keep_their_secret_out_of_reprs() -> None:
    stored = StoredRoute("r", "t", "webhook", "https://h.example/path-secret", None, "", SECRET, T0)
    assert SECRET not in repr(stored) and "path-secret" not in repr(stored)
    assert replace(stored, secret=None).secret is None
