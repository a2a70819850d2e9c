"""Acceptance 2 and 4 (accounting): the campaign-gateway's ingestion of a node's accounting over SFTP and of
pushed NDJSON, from a file with every nasty case to exact per-IP, per-provider, per-day totals; again, killed
half-way (a real process, SIGKILL) and restarted; the totals in ip-pool and its next daily decision."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
import sqlalchemy as sa
from google.api import httpbody_pb2

from campaign_gateway import jobs
from campaign_gateway.adapters.accounting_csv import AccountingCsvParser
from campaign_gateway.adapters.tables import accounting_cursors
from campaign_gateway.domain.accounting import AccountingAggregator
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from ippool import jobs as ippool_jobs
from libs.config import REPO_ROOT
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.campaign_gateway.delivery_fixtures import Delivery, running_delivery
from tests.integration.campaign_gateway.test_accounting_pull import EXPECTED_NASTY, HEADER, _nasty_file, crlf, row

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
IP = "192.0.2.10"


@pytest.fixture
def delivery(tmp_path: Path, pmta_nodes: list[PmtaNodeServer], ssh_client_key: KeyPair) -> Iterator[Delivery]:
    env = {"EE_CAMPAIGN_GATEWAY_ACCOUNTING_PULL_MAX_BYTES": "4096"}
    with running_delivery(tmp_path, pmta_nodes, ssh_client_key, env=env) as running:
        running.ippool.call(
            "UpdateTenant",
            ippool_pb.UpdateTenantRequest(
                tenant=ippool_pb.Tenant(tenant_id="sos-expat", time_zone="Europe/Paris"),
                update_mask={"paths": ["time_zone"]},
            ),
        )
        running.register_node(pmta_nodes[0])
        running.register_ip(IP, pmta_nodes[0].name)
        yield running


def stored_totals(delivery: Delivery) -> dict:
    with delivery.app.unit_of_work() as uow:
        return uow.accounting.totals()


def ingest_until_idle(delivery: Delivery, node: str) -> None:
    for _ in range(200):
        if jobs.ingest_node(delivery.app, node).batches == 0:
            return
    raise AssertionError("ingestion never caught up")


def test_a_nasty_file_gives_exact_totals_once_however_often_it_is_read(delivery: Delivery) -> None:
    node = delivery.nodes[0]
    first, second = _nasty_file()
    live = node.accounting_dir / "acct.csv"
    live.write_bytes(first)
    ingest_until_idle(delivery, node.name)
    with live.open("ab") as out:
        out.write(second)
    ingest_until_idle(delivery, node.name)
    assert stored_totals(delivery) == EXPECTED_NASTY

    # Garbage lines are reported with their line number in the file, and nothing stopped.
    state = delivery.call("GetPmtaNode", pb.GetPmtaNodeRequest(name=node.name)).accounting
    garbage = sorted((p.line, p.detail) for p in state.recent_problems if p.kind == "GARBAGE")
    assert [line for line, _detail in garbage] == [6, 13]
    assert "1 fields" in garbage[0][1] and "never closed" in garbage[1][1]
    assert all(p.source == str(live) for p in state.recent_problems)
    assert state.file == str(live) and state.pending == 0
    assert state.offset == live.stat().st_size - len(b"d,a9@gmail.com,2026-01-05 09:09:30+0000,2026-01")

    # Read again from the start (the cursor lost): every record is recognised, nothing counts twice.
    with delivery.gateway.db.transaction() as session:
        session.execute(accounting_cursors.delete())
    ingest_until_idle(delivery, node.name)
    assert stored_totals(delivery) == EXPECTED_NASTY

    # The same records pushed by the forwarder (the pipe carries them too): duplicates, counted once.
    records = [
        '{"type":"d","timeLogged":"2026-01-05 09:05:30+0000","timeQueued":"2026-01-05 09:05:00+0000",'
        '"rcpt":"a5@orange.fr","vmta":"vmta-192-0-2-10","dsnDiag":"ok","header_Message-Id":"<msg-5@x>",'
        '"orig":"bounce+5@x","bounceCat":""}',
        "not json at all",
    ]
    answer = push(delivery, node.name, "\n".join(records).encode())
    assert (answer.records, answer.counted, answer.duplicates) == (1, 0, 1)
    assert [(p.kind, p.line) for p in answer.problems] == [("GARBAGE", 2)]
    assert stored_totals(delivery) == EXPECTED_NASTY


def push(delivery: Delivery, node: str, body: bytes, token: str | None = None) -> pb.PushAccountingResponse:
    request = pb.PushAccountingRequest(
        name=node, body=httpbody_pb2.HttpBody(content_type="application/x-ndjson", data=body)
    )
    header = (("x-emailengine-forwarder-token", token if token is not None else delivery.tokens[node]),)
    return delivery.call("PushAccounting", request, metadata=header)


def test_a_push_needs_the_nodes_forwarder_token(delivery: Delivery) -> None:
    with pytest.raises(grpc.RpcError) as denied:
        push(delivery, "pmta-a", b"{}", token="not-the-token")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as unknown:
        push(delivery, "no-such-node", b"{}", token="x")
    assert unknown.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_totals_reach_ip_pool_and_its_next_daily_decision_uses_them(delivery: Delivery) -> None:
    node = delivery.nodes[0]
    first, second = _nasty_file()
    (node.accounting_dir / "acct.csv").write_bytes(first + second)
    ingest_until_idle(delivery, node.name)
    # January 5th in Paris: 6 sent (3 Gmail, 1 Microsoft, 1 Yahoo, 1 Orange counted as OTHER), 3 bounces,
    # 1 complaint, Gmail throttling. January 6th's record waits until that day has begun for the tenant.
    delivery.clock.advance(timedelta(hours=20))  # 05:00 UTC on the 6th: 06:00 in Paris, the decision hour
    assert jobs.push_stats(delivery.app) == 1
    assert ippool_jobs.daily_warmup(delivery.ippool.app).decided == 1
    decision = delivery.ippool.decisions(IP, ippool_pb.DECISION_KIND_WARMUP)[0]
    figures = decision.figures
    assert figures.day == "2026-01-05"
    assert (figures.sent, figures.delivered, figures.bounced, figures.complained) == (6, 4, 3, 1)
    # The Gmail deferral reached ip-pool per provider; one deferral in four attempts is below the sample that
    # judges throttling, so the day is judged on what it delivered of what it could send.
    gmail = next(p for p in figures.by_provider if p.provider == "GMAIL")
    assert (gmail.sent, gmail.throttled, gmail.attempts) == (3, 1, 4)
    assert decision.rule == "DELIVERED_SHARE" and decision.action == "HOLD"
    # Sending the same totals again changes nothing in ip-pool (absolute day totals).
    assert jobs.push_stats(delivery.app) == 0


def _big_file(count: int) -> bytes:
    lines = [HEADER]
    for n in range(count):
        kind = "b" if n % 10 == 3 else "d"
        lines.append(row(kind, n % 600, f"u{n}@{['gmail.com', 'yahoo.fr', 'orange.fr'][n % 3]}", cat="bad-mailbox"))
        if n % 50 == 7:
            lines.append(row("f", n % 600, f"u{n}@gmail.com", about=n % 600))
    return crlf(*lines)


def _ingester(delivery: Delivery, node: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EE_")}
    env.update(
        {
            "EE_DATA_DIR": str(delivery.gateway.settings.data_dir),
            "EE_IPPOOL_GRPC_PORT": str(delivery.ippool.settings.ippool_grpc_port),
            "EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE": str(delivery.client_key.private_path),
            "EE_CAMPAIGN_GATEWAY_ACCOUNTING_PULL_MAX_BYTES": "8192",
            "EE_CAMPAIGN_GATEWAY_ACCOUNTING_LEASE_SECONDS": "10",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.campaign_gateway.ingest_process", node],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _offset(delivery: Delivery, node: str) -> int:
    with delivery.gateway.db.engine.connect() as conn:
        value = conn.execute(
            sa.select(accounting_cursors.c.offset).where(accounting_cursors.c.node == node)
        ).scalar_one_or_none()
    return int(value or 0)


def test_an_ingester_killed_half_way_and_restarted_counts_every_record_once(delivery: Delivery) -> None:
    node = delivery.nodes[0]
    data = _big_file(1500)
    (node.accounting_dir / "acct.csv").write_bytes(data)
    expected = AccountingAggregator(timezone_for=lambda _address: PARIS)
    expected.add_all(record for _offset, record in AccountingCsvParser().parse(io.BytesIO(data)))
    expected.resolve_pending()

    worker = _ingester(delivery, node.name)
    deadline = time.monotonic() + 120
    while _offset(delivery, node.name) < len(data) // 4:
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        assert time.monotonic() < deadline, "the ingester made no progress"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    killed_at = _offset(delivery, node.name)
    assert 0 < killed_at < len(data)

    time.sleep(10.5)  # the killed worker's lease runs out
    restarted = _ingester(delivery, node.name)
    output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output
    assert _offset(delivery, node.name) == len(data)
    assert stored_totals(delivery) == expected.totals()
