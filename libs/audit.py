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
from sqlalchemy.orm import Session

from emailengine.platform.v1 import platform_service_pb2 as pb
from libs.db import Database
from libs.pagination import decode_token, encode_token
from libs.tables import audit_entries


@dataclass
class AuditNote:
    """The audit entry of the API call being served, filled as the call goes.

    The interceptor opens it with who calls what; a use case may name the resource and tenant it touched
    (`note`); the unit of work that commits the change writes it in the same transaction
    (`write_pending`), so a committed write always has its line. Calls that end without committing
    (refused, invalid, failed) are written by the interceptor with their outcome (`write_outcome`).
    """

    actor: str = "anonymous"
    actor_role: str = ""
    service: str = ""
    method: str = ""
    tenant_id: str = ""
    resource: str = ""
    is_write: bool = False
    written: bool = False
    extra: dict[str, str] = field(default_factory=dict)


_note: ContextVar[AuditNote | None] = ContextVar("audit_note", default=None)


def begin_note(**fields: object) -> AuditNote:
    note_ = AuditNote(**fields)  # type: ignore[arg-type]
    _note.set(note_)
    return note_


def end_note() -> None:
    _note.set(None)


def current_note() -> AuditNote | None:
    return _note.get()


def note(*, tenant_id: str = "", resource: str = "") -> None:
    """Names the tenant and resource a call touched (for its audit line)."""
    current = _note.get()
    if current is None:
        return
    if tenant_id:
        current.tenant_id = tenant_id
    if resource:
        current.resource = resource


def write_pending(session: Session, now: datetime) -> None:
    """Writes the current write call's line as OK inside the caller's transaction, once per call."""
    current = _note.get()
    if current is None or not current.is_write or current.written:
        return
    _insert(session, current, "OK", "", now)
    current.written = True


def write_outcome(db: Database, current: AuditNote, outcome: str, message: str) -> None:
    """The line of a write call that ended without a committed change, or ended badly after one."""
    if not current.is_write or (current.written and outcome == "OK"):
        return
    with db.transaction() as session:
        _insert(session, current, outcome, message, datetime.now(UTC))
    current.written = True


def _insert(session: Session, current: AuditNote, outcome: str, message: str, now: datetime) -> None:
    session.execute(
        _AUDIT_INSERT,
        {
            "id": str(uuid.uuid4()),
            "time": now,
            "actor": _fit(current.actor, 200),
            "actor_role": _fit(current.actor_role, 20),
            "tenant_id": _fit(current.tenant_id, 100),
            "service": _fit(current.service, 50),
            "method": _fit(current.method, 200),
            "resource": _fit(current.resource, 300),
            "outcome": _fit(outcome, 40),
            "outcome_message": _fit(message, 2000),
        },
    )


_AUDIT_INSERT = audit_entries.insert()  # built once; the values come at execution (cheaper per write)


def _fit(value: str, size: int) -> str:
    """Cut to the column's size (PostgreSQL refuses a longer value and would lose the whole line)."""
    return value if len(value) <= size else value[: size - 1] + "…"


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
    """One line written on its own (tests and tools)."""
    line = AuditNote(
        actor=actor,
        actor_role=actor_role,
        service=service,
        method=method,
        tenant_id=tenant_id,
        resource=resource,
        is_write=True,
    )
    with db.transaction() as session:
        _insert(session, line, outcome, outcome_message, datetime.now(UTC))


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
