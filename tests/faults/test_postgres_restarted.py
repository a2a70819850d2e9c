"""Fault: PostgreSQL restarted under the running services (a fast shutdown cuts every session; the cluster comes
back on the same port with its data)."""

from __future__ import annotations

import itertools
import threading

import grpc
import httpx
import pytest

from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as ippool_grpc
from tests.faults.world import CAMPAIGN_IPS, LOAD_TENANT, FaultWorld, describe
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e

IP = "198.51.100.70"


def _calls(world: FaultWorld) -> list[tuple[str, str, str, dict | None]]:
    """(token, method, path, body): a read of each service and writes that need the database."""
    return [
        ("acme", "GET", f"/api/v2/ips/{IP}", None),
        ("acme", "GET", f"/api/v2/tenants/{LOAD_TENANT}", None),
        ("sos", "GET", f"/api/v2/reputation/ips/{CAMPAIGN_IPS[0]}", None),
        ("sos", "GET", "/api/v2/campaigns?tenant=sos-expat", None),
        ("sos", "GET", "/api/v2/suppressions?tenant=sos-expat", None),
        ("ulixai", "GET", "/api/v2/alerts", None),
        ("acme", "POST", f"/api/v2/ips/{IP}:resume", {"reason": "postgres fault"}),
        ("ulixai", "POST", "/api/v2/alerts", {"severity": "ALERT_SEVERITY_INFO", "text": "postgres fault"}),
        ("sos", "POST", "/api/v2/suppressions:batchAdd", {"tenant": "sos-expat", "entries": [{"email": "pg@r1.test"}]}),
    ]


def _call(world: FaultWorld, token: str, method: str, path: str, body: dict | None) -> httpx.Response:
    return world.rest(method, path, token, json=body) if body is not None else world.rest(method, path, token)


def test_postgres_restarted_calls_are_unavailable_meanwhile_and_every_service_serves_again_without_a_restart(
    fault_world: FaultWorld,
) -> None:
    """While PostgreSQL is down every call that needs it answers 503 with a JSON body whose code is UNAVAILABLE (14),
    over REST and gRPC, never INTERNAL. Once it is back, every service serves again with the same processes (their
    pools drop the dead connections), what was committed before is all there, and the events written since drain."""
    world = fault_world
    made = world.rest("POST", "/api/v2/ips", "acme", json={"address": IP, "tenant_id": LOAD_TENANT})
    assert made.status_code == 200, made.text
    paused = world.rest("POST", f"/api/v2/ips/{IP}:pause", "acme", json={"reason": "before the restart"})
    assert paused.status_code == 200, paused.text
    alert = world.rest("POST", "/api/v2/alerts", "ulixai", json={"severity": "ALERT_SEVERITY_INFO", "text": "before"})
    assert alert.status_code == 200, alert.text
    pids = {name: proc.pid for name, proc in world.stack.procs.items()}
    # Calls all along, through the shutdown, the outage and the start (when PostgreSQL refuses sessions with
    # "shutting down" and "starting up").
    answers: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def probe() -> None:
        for token, method, path, body in itertools.cycle(_calls(world)):
            if stop.is_set():
                return
            reply = _call(world, token, method, path, body)
            answers.append((f"{method} {path}", reply.status_code, reply.text[:300]))

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    world.postgres.halt()
    try:
        for token, method, path, body in _calls(world):
            reply = _call(world, token, method, path, body)
            assert reply.status_code == 503, (
                f"{method} {path} while PostgreSQL is down: {reply.status_code} {reply.text}"
            )
            assert reply.headers["content-type"] == "application/json"
            assert reply.json()["code"] == 14, f"{method} {path}: {reply.text}"
        with pytest.raises(grpc.RpcError) as down:
            ippool_grpc.IpPoolServiceStub(grpc.insecure_channel(world.stack.grpc_target)).GetIp(
                ippool_pb.GetIpRequest(address=IP), metadata=(("authorization", f"Bearer {world.tokens['acme']}"),)
            )
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE, down.value
    finally:
        world.postgres.start_again()

    first_answers = {}
    for token, method, path, body in _calls(world):
        # A write may meet a replica's pool still holding a connection from before: that call answers 503 (nothing
        # done) and the pool drops its dead connections; reads are retried by Envoy on UNAVAILABLE.
        statuses: list[int] = []

        def served(call: tuple = (token, method, path, body), statuses: list[int] = statuses) -> bool:
            statuses.append(_call(world, *call).status_code)
            return statuses[-1] == 200

        wait_until(served, 15, f"{method} {path} served again")
        first_answers[f"{method} {path}"] = statuses
    stop.set()
    prober.join(30)
    wrong = [a for a in answers if a[1] not in (200, 503) or (a[1] == 503 and '"code":14' not in a[2])]
    assert not wrong, f"answers other than served or UNAVAILABLE around the restart: {wrong[:5]}"
    assert any(a[1] == 503 for a in answers), "the prober saw the outage"
    reads_after = {call: statuses for call, statuses in first_answers.items() if call.startswith("GET")}
    assert all(statuses == [200] for statuses in reads_after.values()), f"reads served at once: {reads_after}"
    assert all(proc.pid == pids[name] and proc.poll() is None for name, proc in world.stack.procs.items()), (
        "no process was restarted or died"
    )
    ip = world.rest("GET", f"/api/v2/ips/{IP}", "acme").json()
    assert ip["state"] == "IP_STATE_WARMING", "resumed after the restart, paused before it"
    before = world.rest("GET", f"/api/v2/alerts/{alert.json()['alert_id']}", "ulixai")
    assert before.status_code == 200, "an alert accepted before the restart is still there"
    found = world.consistent()
    assert not found, "after the PostgreSQL restart:\n" + describe(found)
