"""Webhook routes cannot reach inside the platform, describe its network, or slow other routes down: real
receivers on loopback, reached only because the test allows loopback the way an operator allows an on-premise
network; the platform's own ports stay refused even then."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from libs.errors import InvalidArgument
from notifier.adapters.webhook import WebhookDestinations
from notifier.app.routes import RouteSpec
from notifier.bootstrap import Notifier
from notifier.domain.alert import Severity
from tests.harness.servers import free_port
from tests.integration.notifier.conftest import ADMIN, SOS_OPERATOR, NotifierFactory, outbound_policy

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-the-guard-tests-0123"


@dataclass
class Receiver:
    """A webhook receiver on loopback answering `status`; with `drip`, it answers one byte every 0.2 s for two
    minutes instead."""

    status: int = 200
    drip: bool = False
    requests: list[bytes] = field(default_factory=list)
    dripping: threading.Event = field(default_factory=threading.Event)
    dripped_to_the_end: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/secret-path?token=abc"


@pytest.fixture
def receivers() -> Iterator[Any]:
    started: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(**options: Any) -> Receiver:
        state = Receiver(**options)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                state.requests.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(state.status)
                if not state.drip:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", "600")
                self.end_headers()
                state.dripping.set()
                for _ in range(600):  # two minutes
                    if state.stop.wait(0.2):
                        return
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return
                state.dripped_to_the_end.set()

        state.port = free_port()
        server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append((server, state))
        return state

    yield start
    for server, state in started:
        state.stop.set()
        server.shutdown()
        server.server_close()


def webhook_route(notifier: Notifier, route_id: str, url: str, caller: Any = ADMIN) -> None:
    spec = RouteSpec(route_id=route_id, channel="webhook", webhook_url=url, webhook_secret=SECRET)
    if caller is ADMIN:
        spec = RouteSpec(**{**spec.__dict__, "admin": True})
    notifier.routes.create(caller, spec)


def send(notifier: Notifier, tenant: str = "sos-expat") -> str:
    view = notifier.alerts.send(
        ADMIN,
        tenant_id=tenant,
        severity=Severity.CRITICAL,
        dedup_key="",
        title="",
        text=f"something happened {time.monotonic_ns()}",
        source="test",
        labels={},
        url="",
        resolved=False,
    )
    return view.alert_id


def deliveries(notifier: Notifier, alert_id: str, caller: Any = ADMIN) -> dict[str, Any]:
    return {d.route_id: d for d in notifier.alerts.get(caller, alert_id).deliveries}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9901/quitquitquit",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://0x7f000001/hook",
        "http://localhost:9901/quitquitquit",
        "https://[::ffff:127.0.0.1]/hook",
    ],
)
def test_webhook_routes_to_the_platform_or_the_internal_network_are_refused_at_creation_naming_the_field(
    make_sqlite_notifier: NotifierFactory, url: str
) -> None:
    notifier = make_sqlite_notifier(policy=outbound_policy(allow=""))
    with pytest.raises(InvalidArgument) as refused:
        webhook_route(notifier, "probe", url, caller=SOS_OPERATOR)
    assert [v.field for v in refused.value.violations] == ["webhook_url"]
    assert notifier.routes.list(ADMIN, "", 50, "")[0] == []


def test_a_name_resolving_to_loopback_is_refused_at_creation() -> None:
    def resolve(host: str, port: int, **_kwargs: Any) -> list[tuple[Any, ...]]:
        assert host == "rebound.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    destinations = WebhookDestinations(outbound_policy(allow=""), resolve=resolve)
    assert destinations.refusal("https://rebound.example/hook") is not None
    assert WebhookDestinations(outbound_policy(allow="")).refusal("https://hooks.example/hook") is None  # unknown


def test_the_allow_list_opens_the_loopback_receiver_but_never_the_platforms_own_ports(
    make_sqlite_notifier: NotifierFactory, receivers: Any
) -> None:
    receiver = receivers()
    allowed = make_sqlite_notifier(telegram=False, policy=outbound_policy())
    webhook_route(allowed, "mine", receiver.url, caller=SOS_OPERATOR)
    # The same receiver, when its port is the platform's own (Envoy's admin port here), is refused whatever the
    # allow-list says: at creation, and at send time for a route stored before.
    own_port = outbound_policy(envoy_admin_port=receiver.port)
    guarded = make_sqlite_notifier(telegram=False, policy=own_port)
    with pytest.raises(InvalidArgument) as refused:
        webhook_route(guarded, "envoy-admin", f"http://127.0.0.1:{receiver.port}/quitquitquit", caller=SOS_OPERATOR)
    assert refused.value.violations[0].field == "webhook_url"
    alert_id = send(guarded)
    guarded.delivery.deliver_once()
    assert receiver.requests == []
    mine = deliveries(guarded, alert_id)["mine"]
    assert mine.state == "FAILED" and "not a public address" in mine.last_error


def test_a_route_whose_destination_turned_internal_is_refused_at_send_time(
    make_sqlite_notifier: NotifierFactory, receivers: Any
) -> None:
    """DNS rebinding: the URL passed the check when created (here: allowed then), its address is refused now."""
    receiver = receivers()
    webhook_route(make_sqlite_notifier(telegram=False, policy=outbound_policy()), "hook", receiver.url)
    now_public_only = make_sqlite_notifier(telegram=False, policy=outbound_policy(allow=""))
    alert_id = send(now_public_only)
    now_public_only.delivery.deliver_once()
    assert receiver.requests == []
    refused = deliveries(now_public_only, alert_id)["hook"]
    assert refused.state == "FAILED" and refused.last_error == (
        "refused: the destination is not a public address: not sent"
    )


def test_delivery_errors_never_describe_the_internal_network(
    make_sqlite_notifier: NotifierFactory, receivers: Any
) -> None:
    notifier = make_sqlite_notifier(telegram=False)
    missing = receivers(status=404)
    closed_port = free_port()
    webhook_route(notifier, "missing", missing.url)
    webhook_route(notifier, "closed", f"http://127.0.0.1:{closed_port}/hooks/x")
    alert_id = send(notifier)
    notifier.delivery.deliver_once()
    found = deliveries(notifier, alert_id)
    assert found["closed"].state == "PENDING" and found["closed"].last_error == (
        "network: the destination could not be reached"
    )
    assert found["missing"].state == "FAILED" and found["missing"].last_error.startswith("HTTP 404 not_found")
    for shown in (
        found["closed"].last_error,
        found["missing"].last_error,
        notifier.alerts.get(ADMIN, alert_id).last_error,
    ):
        for leak in ("127.0.0.1", str(closed_port), str(missing.port), "Connect", "Errno", "secret-path"):
            assert leak not in shown


def test_tenant_readers_never_see_the_last_error_of_admin_route_deliveries(
    make_sqlite_notifier: NotifierFactory, receivers: Any
) -> None:
    notifier = make_sqlite_notifier(telegram=False)
    webhook_route(notifier, "admin-hook", receivers(status=500).url)
    webhook_route(notifier, "sos-hook", receivers(status=410).url, caller=SOS_OPERATOR)
    alert_id = send(notifier)
    notifier.delivery.deliver_once()
    seen_by_admin = notifier.alerts.get(ADMIN, alert_id)
    assert "HTTP 500" in deliveries(notifier, alert_id)["admin-hook"].last_error
    seen_by_tenant = notifier.alerts.get(SOS_OPERATOR, alert_id)
    theirs = {d.route_id: d for d in seen_by_tenant.deliveries}
    assert theirs["admin-hook"].last_error == "" and theirs["admin-hook"].destination == ""
    assert theirs["admin-hook"].state == "PENDING"  # its state still counts
    assert "HTTP 410" in theirs["sos-hook"].last_error
    assert "HTTP 500" not in seen_by_tenant.last_error and "HTTP 500" not in str(seen_by_tenant)
    assert seen_by_admin.state == seen_by_tenant.state == "PENDING"  # the admin route's retry is still pending


@pytest.mark.timeout(60)
def test_a_webhook_that_drips_bytes_for_minutes_delays_another_route_by_no_more_than_its_own_deadline(
    make_sqlite_notifier: NotifierFactory, receivers: Any
) -> None:
    slow, fast = receivers(drip=True), receivers()
    notifier = make_sqlite_notifier(
        telegram=False,
        delivery_concurrency=4,
        webhook_timeout_seconds=1,
        policy=outbound_policy(outbound_deadline_seconds=30),
    )
    webhook_route(notifier, "a-slow", slow.url)  # served first in route order
    webhook_route(notifier, "b-fast", fast.url)
    alert_id = send(notifier)
    notifier.delivery.deliver_once()
    # The pass is over while the slow receiver is still dripping: the other route got its message, and the slow
    # one was cut at its own one-second deadline (not per read) and waits for its retry.
    assert slow.dripping.is_set() and not slow.dripped_to_the_end.is_set()
    assert len(fast.requests) == 1
    found = deliveries(notifier, alert_id)
    assert found["b-fast"].state == "DELIVERED"
    assert found["a-slow"].state == "PENDING" and found["a-slow"].last_error == (
        "timeout: no complete answer within 1 s"
    )
