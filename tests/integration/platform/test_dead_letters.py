"""Dead letters listed and replayed on a real service (reputation, in process): an event its handler could not
apply is applied again on demand, once; a new failure keeps it, one attempt more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import any_pb2
from google.protobuf.message import Message

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from emailengine.platform.v1 import platform_service_pb2 as pb
from emailengine.platform.v1 import platform_service_pb2_grpc as pb_grpc
from libs.clock import FakeClock
from libs.service_catalog import definition_of
from tests.harness.in_process import InProcessService, in_process_service

pytestmark = pytest.mark.integration


@pytest.fixture()
def reputation(tmp_path: Path) -> Iterator[InProcessService]:
    env = {"EE_DNS_NAMESERVERS": "127.0.0.1:9", "EE_REPUTATION_SCAN_TICK_SECONDS": "3600"}
    with in_process_service(definition_of("reputation"), tmp_path, clock=FakeClock(), env=env) as service:
        yield service


def envelope(event: Message) -> bytes:
    payload = any_pb2.Any()
    payload.Pack(event)
    message = event_pb2.EventEnvelope(event_id=str(uuid.uuid4()), source="ip-pool", tenant_id="sos-expat")
    message.payload.CopyFrom(payload)
    message.occurred_at.GetCurrentTime()
    return message.SerializeToString()


def call(service: InProcessService, method: str, request: Any) -> Any:
    stub = pb_grpc.PlatformServiceStub(service.channel)
    return getattr(stub, method)(request, metadata=(("authorization", f"Bearer {service.token()}"),), timeout=15)


def watched(service: InProcessService) -> set[str]:
    with service.db.transaction() as session:
        return {row.address for row in session.execute(sa.text("SELECT address FROM monitored_ips")).all()}


def test_a_dead_letter_is_listed_then_applied_once_by_a_replay(reputation: InProcessService) -> None:
    consumer = reputation.host.runtime.consumer
    raw = envelope(ippool_events.IpRegistered(address="192.0.2.70", tenant_id="sos-expat"))
    event_id = event_pb2.EventEnvelope.FromString(raw).event_id
    consumer.dead_letter(raw, RuntimeError("database is locked"), 5)  # as after five failed attempts

    listed = call(reputation, "ListServiceDeadLetters", pb.ListDeadLettersRequest()).dead_letters
    assert [(d.event_id, d.event_type, d.attempts, d.tenant_id) for d in listed] == [
        (event_id, "emailengine.ippool.v1.IpRegistered", 5, "sos-expat")
    ]
    assert "database is locked" in listed[0].error and not listed[0].HasField("replayed_at")

    replayed = call(
        reputation, "ReplayServiceDeadLetter", pb.ReplayDeadLetterRequest(service="reputation", event_id=event_id)
    )
    assert replayed.HasField("replayed_at") and "192.0.2.70" in watched(reputation)
    assert call(reputation, "ListServiceDeadLetters", pb.ListDeadLettersRequest()).dead_letters == []
    assert (
        len(call(reputation, "ListServiceDeadLetters", pb.ListDeadLettersRequest(include_replayed=True)).dead_letters)
        == 1
    )
    again = call(
        reputation, "ReplayServiceDeadLetter", pb.ReplayDeadLetterRequest(service="reputation", event_id=event_id)
    )
    assert again.replayed_at == replayed.replayed_at  # replaying again changes nothing


def test_a_replay_that_fails_again_keeps_the_letter_with_one_attempt_more(reputation: InProcessService) -> None:
    consumer = reputation.host.runtime.consumer

    def still_broken(_uow: Any, _envelope: Any, _event: Any) -> None:
        raise RuntimeError("MailWizz answered 500")

    consumer.on(ippool_events.IpQuotaChanged, still_broken)
    raw = envelope(ippool_events.IpQuotaChanged(address="192.0.2.71", tenant_id="sos-expat", daily_quota=50))
    event_id = event_pb2.EventEnvelope.FromString(raw).event_id
    consumer.dead_letter(raw, RuntimeError("MailWizz answered 500"), 5)
    with pytest.raises(grpc.RpcError) as failed:
        call(reputation, "ReplayServiceDeadLetter", pb.ReplayDeadLetterRequest(service="reputation", event_id=event_id))
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "failed again" in (failed.value.details() or "")
    (letter,) = call(reputation, "ListServiceDeadLetters", pb.ListDeadLettersRequest()).dead_letters
    assert letter.attempts == 6 and not letter.HasField("replayed_at")


def test_only_admins_see_or_replay_dead_letters(reputation: InProcessService) -> None:
    stub = pb_grpc.PlatformServiceStub(reputation.channel)
    operator = (("authorization", f"Bearer {reputation.token('sos-expat')}"),)
    for method, request in (
        ("ListServiceDeadLetters", pb.ListDeadLettersRequest()),
        ("ReplayServiceDeadLetter", pb.ReplayDeadLetterRequest(service="reputation", event_id="x")),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            getattr(stub, method)(request, metadata=operator, timeout=15)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
