"""Acceptance 3: hard bounces and complaints counted from a node's accounting are forwarded to the tenant's
webhook, signed; a webhook that answers 500 for a while still gets every bounce exactly once once it recovers;
the recipients land on the tenant's suppression list."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from campaign_gateway import jobs
from campaign_gateway.domain.contacts import suppression_key
from emailengine.campaign.v1 import campaign_service_pb2 as campaign_pb
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from tests.harness.servers import free_port
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.delivery_fixtures import Delivery, running_delivery
from tests.integration.campaign_gateway.test_accounting_pull import HEADER, crlf, row

pytestmark = pytest.mark.integration

SECRET = "a-bounce-secret-of-32-characters"


class Receiver:
    """A tenant's "Scraper-Pro": answers 500 to the first `failures` requests, then 200; keeps what it accepted
    (checking the signature), dropping a delivery id it already has, as the scheme asks receivers to."""

    def __init__(self, failures: int):
        self.failures = failures
        self.requests = 0
        self.accepted: dict[str, dict] = {}
        self.repeats = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-EmailEngine-Timestamp"]
                expected = (
                    "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                )
                with receiver.lock:
                    receiver.requests += 1
                    if not hmac.compare_digest(expected, self.headers["X-EmailEngine-Signature"]):
                        status = 401
                    elif receiver.requests <= receiver.failures:
                        status = 500
                    else:
                        status = 200
                        key = self.headers["X-EmailEngine-Delivery"]
                        if key in receiver.accepted:
                            receiver.repeats += 1
                        receiver.accepted[key] = json.loads(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/bounces?key=in-the-path"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def delivery(tmp_path: Path, pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> Iterator[Delivery]:
    with running_delivery(tmp_path, pmta_nodes, ssh_client_key) as running:
        running.register_node(pmta_nodes[0])
        running.register_ip("192.0.2.10", pmta_nodes[0].name)
        yield running


def test_a_webhook_failing_for_a_while_gets_every_bounce_exactly_once(delivery: Delivery) -> None:
    receiver = Receiver(failures=7)
    try:
        route = delivery.call(
            "CreateBounceRoute",
            pb.CreateBounceRouteRequest(
                tenant_id="sos-expat", bounce_route=pb.BounceRoute(url=receiver.url, secret=SECRET)
            ),
        )
        assert route.url == f"http://127.0.0.1:{receiver.server.server_port}" and not route.secret
        node = delivery.nodes[0]
        lines = [HEADER]
        lines += [row("d", n, f"ok{n}@gmail.com") for n in range(5)]
        lines += [row("b", 10 + n, f"Gone{n}@Yahoo.fr", cat="bad-mailbox") for n in range(3)]  # hard
        lines.append(row("b", 20, "full@gmail.com", cat="quota-issues"))  # soft: neither forwarded nor suppressed
        lines.append(row("rb", 30, "ok1@gmail.com", cat="inactive-mailbox", about=1))  # a late hard bounce
        lines.append(row("f", 31, "ok2@gmail.com", about=2))  # a complaint
        (node.accounting_dir / "acct.csv").write_bytes(crlf(*lines))
        report = jobs.ingest_node(delivery.app, node.name)
        assert report.forwarded == 5 and report.suppressed == 5
        # Read again (another pull, the pipe): the same deliveries, not new ones.
        (node.accounting_dir / "acct.csv").write_bytes(crlf(*lines))
        with delivery.app.unit_of_work() as uow:
            uow.accounting.save_cursor(node.name, uow.accounting.cursor(node.name).__class__())
            uow.commit()
        assert jobs.ingest_node(delivery.app, node.name).forwarded == 0

        delivered = 0
        for _ in range(40):
            delivered += jobs.deliver_bounces(delivery.app)
            if delivered == 5:
                break
            delivery.clock.advance(timedelta(seconds=2))  # past the (capped) backoff
        assert delivered == 5
        assert receiver.requests == 7 + 5 and receiver.repeats == 0
        kinds = sorted(body["event"]["kind"] for body in receiver.accepted.values())
        assert kinds == ["COMPLAINT"] + ["HARD_BOUNCE"] * 4
        recipients = sorted(body["event"]["recipient"] for body in receiver.accepted.values())
        assert recipients == ["Gone0@Yahoo.fr", "Gone1@Yahoo.fr", "Gone2@Yahoo.fr", "ok1@gmail.com", "ok2@gmail.com"]
        assert all(body["delivery_id"] == key for key, body in receiver.accepted.items())
        assert jobs.deliver_bounces(delivery.app) == 0  # nothing left, nothing sent twice

        state = delivery.call(
            "GetBounceRoute", pb.GetBounceRouteRequest(tenant_id="sos-expat", route_id=route.route_id)
        )
        assert (state.delivered, state.pending, state.failed) == (5, 0, 0)
        listed = delivery.call_campaigns("ListSuppressions", campaign_pb.ListSuppressionsRequest(tenant="sos-expat"))
        # On the one suppression list campaigns read: the recipient as campaigns send to it (domain without case).
        assert sorted((s.email, s.reason, s.source) for s in listed.suppressions) == [
            ("Gone0@yahoo.fr", "hard-bounce", "pmta:pmta-a"),
            ("Gone1@yahoo.fr", "hard-bounce", "pmta:pmta-a"),
            ("Gone2@yahoo.fr", "hard-bounce", "pmta:pmta-a"),
            ("ok1@gmail.com", "hard-bounce", "pmta:pmta-a"),
            ("ok2@gmail.com", "complaint", "pmta:pmta-a"),
        ]
        with delivery.app.unit_of_work() as uow:
            keys = [suppression_key(email) for email in ("GONE1@yahoo.fr", "ok0@gmail.com")]
            assert uow.suppressions.matching("sos-expat", keys) == {"gone1@yahoo.fr"}
            assert uow.suppressions.matching("ulixai", keys) == set()
    finally:
        receiver.close()


def test_suppressions_and_routes_are_the_tenants_own(delivery: Delivery) -> None:
    operator = delivery.gateway.token("sos-expat")
    other = delivery.gateway.token("ulixai")
    entries = [campaign_pb.SuppressionEntry(email=e, reason="manual") for e in ("A@example.com", "b@example.com")]
    added = delivery.call_campaigns(
        "AddSuppressions", campaign_pb.AddSuppressionsRequest(tenant="sos-expat", entries=entries), token=operator
    )
    assert added.added == 2
    with pytest.raises(grpc.RpcError) as bad:
        delivery.call_campaigns(
            "RemoveSuppressions",
            campaign_pb.RemoveSuppressionsRequest(tenant="sos-expat", emails=["not an address"]),
            token=operator,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "emails[0]" in bad.value.details()
    with pytest.raises(grpc.RpcError) as denied:
        listing = campaign_pb.ListSuppressionsRequest(tenant="sos-expat")
        delivery.call_campaigns("ListSuppressions", listing, token=other)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as denied:
        removal = campaign_pb.RemoveSuppressionsRequest(tenant="sos-expat", emails=["b@example.com"])
        delivery.call_campaigns("RemoveSuppressions", removal, token=other)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    removed = delivery.call_campaigns(
        "RemoveSuppressions",
        campaign_pb.RemoveSuppressionsRequest(tenant="sos-expat", emails=["a@EXAMPLE.com", "c@example.com"]),
        token=operator,
    )
    assert (removed.removed, removed.not_present) == (1, 1)
    with pytest.raises(grpc.RpcError) as weak:
        delivery.call(
            "CreateBounceRoute",
            pb.CreateBounceRouteRequest(
                tenant_id="sos-expat", bounce_route=pb.BounceRoute(url="ftp://x", secret="short")
            ),
            token=operator,
        )
    assert "bounce_route.url" in weak.value.details() and "bounce_route.secret" in weak.value.details()
    route = delivery.call(
        "CreateBounceRoute",
        pb.CreateBounceRouteRequest(
            tenant_id="sos-expat", bounce_route=pb.BounceRoute(url="https://hooks.example.com/x", secret=SECRET)
        ),
        token=operator,
    )
    with pytest.raises(grpc.RpcError) as hidden:
        delivery.call(
            "GetBounceRoute", pb.GetBounceRouteRequest(tenant_id="ulixai", route_id=route.route_id), token=other
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
