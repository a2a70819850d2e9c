"""Signed webhooks against a tiny receiver on loopback that checks the signature on its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from libs.clock import FakeClock
from libs.outbound import GuardedClient
from notifier.adapters.webhook import WebhookSecret, WebhookSender, verify_signature
from notifier.domain.alert import Alert
from notifier.domain.delivery import Outcome, Reason
from tests.harness.servers import free_port
from tests.integration.notifier.conftest import outbound_policy

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests-0123456789"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """Answers `next_status` (and headers); verifies every request the way the module docstring tells receivers."""

    next_status: int = 200
    next_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers.get("X-EmailEngine-Timestamp", "")
            mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
            expected = "sha256=" + mac.hexdigest()
            signature_ok = hmac.compare_digest(expected, self.headers.get("X-EmailEngine-Signature", ""))
            state.received.append(Received(self.path, dict(self.headers), body, signature_ok))
            if state.delay:
                time.sleep(state.delay)
            self.send_response(state.next_status)
            for name, value in state.next_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def guarded_sender(deadline_seconds: float) -> WebhookSender:
    """The sender as the service builds it, its guarded client allowing the tests' loopback receivers."""
    return WebhookSender(GuardedClient(outbound_policy()), deadline_seconds=deadline_seconds)


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    webhook_sender = guarded_sender(2.0)
    yield webhook_sender
    webhook_sender.close()


def target(receiver: Receiver, path: str = "/hooks/T000/secret-path?token=abc") -> str:
    return receiver.url + path


def alert(clock: FakeClock) -> Alert:
    return Alert.create(
        tenant="ulixai",
        severity="warning",
        dedup_key="dkim:ulixai.example:s1",
        title="DKIM key missing",
        text="selector s1 has no key <TXT> & SPF is fine",
        source="reputation",
        occurred_at=clock.now(),
    )


def test_delivered_signed_and_verifiable(receiver: Receiver, sender: WebhookSender) -> None:
    clock = FakeClock()
    result = sender.send_alerts(target(receiver), SECRET, [alert(clock)], delivery_id="alert-1:hook", now=clock.now())
    assert result.delivered and result.status_code == 200
    [request] = receiver.received
    assert request.signature_ok
    assert request.path == "/hooks/T000/secret-path?token=abc"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-EmailEngine-Delivery"] == "alert-1:hook"
    assert request.headers["X-EmailEngine-Timestamp"] == str(int(clock.now().timestamp()))
    document = json.loads(request.body)
    assert document["alerts"][0]["text"] == "selector s1 has no key <TXT> & SPF is fine"
    assert verify_signature(
        SECRET,
        request.body,
        signature_header=request.headers["X-EmailEngine-Signature"],
        timestamp_header=request.headers["X-EmailEngine-Timestamp"],
        now=clock.now(),
    )
    # The same request replayed ten minutes later is refused by a receiver that checks freshness.
    assert not verify_signature(
        SECRET,
        request.body,
        signature_header=request.headers["X-EmailEngine-Signature"],
        timestamp_header=request.headers["X-EmailEngine-Timestamp"],
        now=clock.now() + timedelta(minutes=10),
    )


def test_each_retry_is_signed_again_with_the_same_delivery_id(receiver: Receiver, sender: WebhookSender) -> None:
    clock = FakeClock()
    receiver.next_status = 503
    first = sender.send_alerts(target(receiver), SECRET, [alert(clock)], delivery_id="d-7", now=clock.now())
    assert (first.outcome, first.reason) == (Outcome.RETRYABLE, Reason.SERVER_ERROR)
    clock.advance(timedelta(seconds=30))
    receiver.next_status = 204
    assert sender.send_alerts(target(receiver), SECRET, [alert(clock)], delivery_id="d-7", now=clock.now()).delivered
    one, two = receiver.received
    assert one.signature_ok and two.signature_ok
    assert one.headers["X-EmailEngine-Timestamp"] != two.headers["X-EmailEngine-Timestamp"]
    assert one.headers["X-EmailEngine-Delivery"] == two.headers["X-EmailEngine-Delivery"] == "d-7"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (429, {"Retry-After": "3"}, Outcome.RATE_LIMITED, 3.0),
        (500, {}, Outcome.RETRYABLE, None),
        (410, {}, Outcome.PERMANENT, None),
        (401, {}, Outcome.PERMANENT, None),
        (302, {"Location": "http://127.0.0.1:9/elsewhere"}, Outcome.PERMANENT, None),
    ],
)
def test_answers_are_classified(
    receiver: Receiver,
    sender: WebhookSender,
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    receiver.next_status, receiver.next_headers = status, headers
    clock = FakeClock()
    result = sender.send(target(receiver), WebhookSecret(SECRET), b'{"x":1}', delivery_id="d-1", now=clock.now())
    assert (result.outcome, result.retry_after, result.status_code) == (outcome, retry_after, status)
    assert len(receiver.received) == 1  # redirects are not followed
    assert "secret-path" not in result.description and "token=abc" not in result.description


def test_timeouts_and_refused_connections_are_retryable(receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.delay = 0.3
    impatient = guarded_sender(0.1)
    result = impatient.send(target(receiver), WebhookSecret(SECRET), b"{}", delivery_id="d-1", now=clock.now())
    impatient.close()
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.TIMEOUT)
    assert "secret-path" not in result.description
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook_sender = guarded_sender(1.0)
    refused = webhook_sender.send(
        f"http://127.0.0.1:{port}/x?token=abc", WebhookSecret(SECRET), b"{}", delivery_id="d-2", now=clock.now()
    )
    webhook_sender.close()
    assert (refused.outcome, refused.reason) == (Outcome.RETRYABLE, Reason.NETWORK)
    assert "token=abc" not in refused.description and "127.0.0.1" not in refused.description


def test_an_answer_larger_than_the_cap_is_not_read_whole() -> None:
    """A receiver answering 16 MiB costs 64 KiB of memory and a retry, never the process's memory."""
    written: list[int] = []

    class Huge(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(16 << 20))
            self.end_headers()
            try:
                for _ in range(256):
                    self.wfile.write(b"\0" * (64 << 10))
                    written.append(64 << 10)
            except OSError:
                pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Huge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    webhook_sender = guarded_sender(5.0)
    try:
        result = webhook_sender.send(
            f"http://127.0.0.1:{port}/hook", WebhookSecret(SECRET), b"{}", delivery_id="d-1", now=FakeClock().now()
        )
    finally:
        webhook_sender.close()
        server.shutdown()
        server.server_close()
    assert (result.outcome, result.reason) == (Outcome.RETRYABLE, Reason.UNEXPECTED_ANSWER)
    assert result.description == "an answer larger than 65536 bytes"
