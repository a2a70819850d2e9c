"""The audit log as the interceptor writes it, for every way a write call can end, on a real database."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from libs import audit
from libs.auth import Role, TokenVerifier, ensure_local_keys, mint_token
from libs.clock import SystemClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from libs.errors import InvalidArgument
from libs.interceptor import PlatformInterceptor
from libs.service_catalog import definition_of
from libs.tables import audit_entries, event_outbox
from libs.unit_of_work import SqlUnitOfWork
from tests.fakes import Aborted, FakeGrpcContext

pytestmark = pytest.mark.integration

CREATE = "/emailengine.ippool.v1.IpPoolService/CreateIp"
PAUSE = "/emailengine.ippool.v1.IpPoolService/PauseIp"
SECRET = "hunter2-super-secret-webhook-key"


@pytest.fixture()
def setup(tmp_path: Path) -> Any:
    db = connect(Settings(data_dir=tmp_path, database_url=""), "ip-pool")
    migrate(db, definition_of("ip-pool").migrations)
    private, jwks = tmp_path / "k.pem", tmp_path / "jwks.json"
    ensure_local_keys(private, jwks)
    interceptor = PlatformInterceptor("ip-pool", TokenVerifier(jwks, "ee", "ee"), db)

    def token(role: Role) -> str:
        return mint_token(private, issuer="ee", audience="ee", subject=f"{role}-sos", role=role, tenant_id="sos-expat")

    def run(method: str, request: Any, role: Role, handler: Any) -> None:
        metadata = {"authorization": f"Bearer {token(role)}"}
        with contextlib.suppress(Aborted), interceptor._serving(method, metadata, request, FakeGrpcContext()):  # type: ignore[arg-type]
            handler(request)

    yield db, run
    db.dispose()


def lines(db: Database) -> list[Any]:
    with db.transaction() as session:
        return session.execute(sa.select(audit_entries).order_by(audit_entries.c.time)).all()


def test_every_outcome_is_audited_with_one_resource_naming(setup: Any) -> None:
    db, run = setup
    request = pb.CreateIpRequest(address="192.0.2.40", tenant_id="sos-expat")

    def commits(_request: Any) -> None:
        with SqlUnitOfWork(db, source="ip-pool", clock=SystemClock()) as uow:
            uow.publish(ippool_events.IpRegistered(address="192.0.2.40", tenant_id="sos-expat"), tenant_id="sos-expat")
            uow.commit()

    def invalid(_request: Any) -> None:
        raise InvalidArgument("address", "is not an IP address")

    def broken(_request: Any) -> None:
        raise RuntimeError("boom")

    run(CREATE, request, Role.OPERATOR, commits)
    run(PAUSE, pb.PauseIpRequest(address="192.0.2.40"), Role.VIEWER, commits)
    run(CREATE, request, Role.OPERATOR, invalid)
    run(CREATE, request, Role.OPERATOR, broken)
    found = [(line.method.rsplit("/", 1)[1], line.resource, line.outcome, line.actor_role) for line in lines(db)]
    assert found == [
        ("CreateIp", "ips/192.0.2.40", "OK", "operator"),
        ("PauseIp", "ips/192.0.2.40", "PERMISSION_DENIED", "viewer"),
        ("CreateIp", "ips/192.0.2.40", "INVALID_ARGUMENT", "operator"),
        ("CreateIp", "ips/192.0.2.40", "INTERNAL", "operator"),
    ]
    assert all(line.tenant_id == "sos-expat" for line in lines(db))


def test_the_audit_line_commits_with_the_change_and_only_with_it(setup: Any) -> None:
    db, run = setup

    def rolled_back(_request: Any) -> None:
        with SqlUnitOfWork(db, source="ip-pool", clock=SystemClock()) as uow:
            uow.publish(ippool_events.IpRegistered(address="192.0.2.41"), tenant_id="sos-expat")
            raise RuntimeError("after writing, before committing")

    run(CREATE, pb.CreateIpRequest(address="192.0.2.41", tenant_id="sos-expat"), Role.OPERATOR, rolled_back)
    with db.transaction() as session:
        assert session.execute(sa.select(event_outbox)).all() == []  # nothing of the change
    assert [line.outcome for line in lines(db)] == ["INTERNAL"]  # and a line saying how it ended


def test_an_audit_write_failure_cannot_leave_a_change_without_its_line(setup: Any) -> None:
    """The line is written inside the change's transaction: if it cannot be written, the change is not either."""
    db, run = setup

    def commits(_request: Any) -> None:
        note = audit.current_note()
        assert note is not None
        note.resource = "x" * 5000  # longer than its column: cut to fit, never the reason to lose the line
        with SqlUnitOfWork(db, source="ip-pool", clock=SystemClock()) as uow:
            uow.publish(ippool_events.IpRegistered(address="192.0.2.42"), tenant_id="sos-expat")
            uow.commit()

    run(CREATE, pb.CreateIpRequest(address="192.0.2.42", tenant_id="sos-expat"), Role.OPERATOR, commits)
    (line,) = lines(db)
    assert line.outcome == "OK" and len(line.resource) == 300


def test_a_secret_sent_in_a_body_never_reaches_the_audit_log(setup: Any) -> None:
    db, run = setup
    from emailengine.notifier.v1 import notifier_service_pb2 as notifier_pb

    def refuses(_request: Any) -> None:
        raise InvalidArgument("route.webhook_secret", "must be at least 16 bytes")

    request = notifier_pb.CreateRouteRequest(
        tenant_id="sos-expat", webhook_url=f"https://hooks.example/{SECRET}", webhook_secret=SECRET
    )
    run("/emailengine.notifier.v1.NotifierService/CreateRoute", request, Role.OPERATOR, refuses)
    with db.transaction() as session:
        dump = " ".join(str(value) for row in session.execute(sa.select(audit_entries)).all() for value in row)
    assert SECRET not in dump
