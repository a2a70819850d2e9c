"""The guarded client for user-supplied URLs, against real sockets on loopback."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from libs.outbound import (
    DestinationRefused,
    GuardedClient,
    OutboundPolicy,
    OutboundTimeout,
    ResponseTooLarge,
    check_url,
)
from tests.harness.servers import free_port

pytestmark = pytest.mark.integration

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/drip"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                try:
                    self.wfile.write(b".")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.4)
            return
        body = b"x" * (5000 if self.path.startswith("/big") else 2)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "0x7f000001", "[::1]", "169.254.169.254", "10.0.0.1", "192.168.1.1", "0.0.0.0"],
)
def test_internal_targets_are_refused_at_connect_time(host: str, server: int) -> None:
    client = GuardedClient(OutboundPolicy(deadline_seconds=2))
    with pytest.raises(DestinationRefused) as refused:
        client.request("GET", f"http://{host}:{server}/secret-path?token=abc")
    assert "secret-path" not in str(refused.value) and "token" not in str(refused.value)


def test_an_allowed_network_is_reached_but_never_the_platforms_own_ports(server: int) -> None:
    client = GuardedClient(OutboundPolicy(allowed_networks=LOOPBACK, protected_local_ports=frozenset({9901})))
    assert client.request("GET", f"http://127.0.0.1:{server}/ok").status_code == 200
    with pytest.raises(DestinationRefused, match="platform itself"):
        client.request("POST", "http://127.0.0.1:9901/quitquitquit")


def test_a_dripping_peer_costs_the_deadline_not_more(server: int) -> None:
    client = GuardedClient(OutboundPolicy(allowed_networks=LOOPBACK, deadline_seconds=1.5))
    started = time.monotonic()
    with pytest.raises(OutboundTimeout):
        client.request("GET", f"http://127.0.0.1:{server}/drip")
    assert time.monotonic() - started < 3.0  # the deadline (1.5 s), not 1000 drips of 0.4 s


def test_a_large_answer_is_cut_at_the_cap(server: int) -> None:
    client = GuardedClient(OutboundPolicy(allowed_networks=LOOPBACK, max_response_bytes=1024))
    with pytest.raises(ResponseTooLarge):
        client.request("GET", f"http://127.0.0.1:{server}/big")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:99999/x", "Port out of range"),
        ("ftp://example.com/", "http"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///nohost", "host"),
        ("http://[::1/", "valid"),
    ],
)
def test_urls_that_cannot_be_stored_are_named(url: str, problem: str) -> None:
    reason = check_url(url)
    assert reason is not None and problem in reason


def test_a_large_answer_may_be_kept_cut_with_its_status(server: int) -> None:
    client = GuardedClient(OutboundPolicy(allowed_networks=LOOPBACK, max_response_bytes=1024))
    reply = client.request("GET", f"http://127.0.0.1:{server}/big", truncate=True)
    assert (reply.status_code, len(reply.content), reply.truncated) == (200, 1024, True)
