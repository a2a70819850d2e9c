"""The audit log: every write through the API, who made it, on which tenant and resource, and how it ended.

Recorded by the server interceptor in the service's own database; request bodies are never stored, so
secrets cannot leak into it.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from emailengine.platform.v1 import platform_service_pb2 as pb
from libs.db import Database
from libs.pagination import decode_token, encode_token
from libs.tables import audit_entries


@dataclass
class AuditNote:
    """What a handler can add to its audit entry (e.g. the tenant of the IP it touched)."""

    tenant_id: str = ""
    resource: str = ""
    extra: dict[str, str] = field(default_factory=dict)


_note: ContextVar[AuditNote | None] = ContextVar("audit_note", default=None)


def begin_note() -> AuditNote:
    note = AuditNote()
    _note.set(note)
    return note


def note(*, tenant_id: str = "", resource: str = "") -> None:
    current = _note.get()
    if current is None:
        return
    if tenant_id:
        current.tenant_id = tenant_id
    if resource:
        current.resource = resource


def record(
    db: Database,
    *,
    actor: str,
    actor_role: str,
    tenant_id: str,
    service: str,
    method: str,
    resource: str,
    outcome: str,
    outcome_message: str,
) -> None:
    with db.transaction() as session:
        session.execute(
            audit_entries.insert().values(
                id=str(uuid.uuid4()),
                time=datetime.now(UTC),
                actor=actor,
                actor_role=actor_role,
                tenant_id=tenant_id,
                service=service,
                method=method,
                resource=resource,
                outcome=outcome,
                outcome_message=outcome_message[:2000],
            )
        )


def list_entries(db: Database, *, tenant_id: str, limit: int, page_token: str) -> list[pb.AuditEntry]:
    """Entries newest first, strictly after the position in page_token."""
    query = sa.select(audit_entries).order_by(audit_entries.c.time.desc(), audit_entries.c.id.desc()).limit(limit)
    if tenant_id:
        query = query.where(audit_entries.c.tenant_id == tenant_id)
    position = decode_token(page_token)
    if position:
        after = datetime.fromisoformat(position["t"])
        query = query.where(
            sa.or_(
                audit_entries.c.time < after,
                sa.and_(audit_entries.c.time == after, audit_entries.c.id < position["i"]),
            )
        )
    with db.transaction() as session:
        rows = session.execute(query).all()
    entries = []
    for row in rows:
        entry = pb.AuditEntry(
            id=row.id,
            actor=row.actor,
            actor_role=row.actor_role,
            tenant_id=row.tenant_id,
            service=row.service,
            method=row.method,
            resource=row.resource,
            outcome=row.outcome,
            outcome_message=row.outcome_message,
        )
        when = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
        entry.time.FromDatetime(when)
        entries.append(entry)
    return entries


def position_of(entry: pb.AuditEntry) -> str:
    return encode_token({"t": entry.time.ToDatetime(tzinfo=UTC).isoformat(), "i": entry.id})
