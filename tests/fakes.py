"""In-memory stand-ins for the storage port, so the use cases are tested in milliseconds with no I/O.

A service's fake unit of work subclasses `FakeUnitOfWork` and gives it in-memory repositories. Like the real
one, it keeps nothing that was not committed: repositories hold their rows in `self.store` (shared by every
unit of work of one fake database) and write to a staging copy that `commit()` makes the committed state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from google.protobuf.message import Message


@dataclass
class FakeStore:
    """Everything committed so far: tables by name, and the events published."""

    tables: dict[str, Any] = field(default_factory=dict)
    published: list[tuple[str, Message]] = field(default_factory=list)
    commits: int = 0


class FakeUnitOfWork:
    def __init__(self, store: FakeStore):
        self.store = store
        self.tables: dict[str, Any] = {}
        self._events: list[tuple[str, Message]] = []

    def __enter__(self) -> Self:
        self.tables = copy.deepcopy(self.store.tables)
        self._events = []
        self._bind(self.tables)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._events = []

    def _bind(self, tables: dict[str, Any]) -> None:
        """Subclasses create their repositories over `tables` here."""

    def commit(self) -> None:
        self.store.tables = copy.deepcopy(self.tables)
        self.store.published.extend(self._events)
        self.store.commits += 1
        self._events = []

    def rollback(self) -> None:
        self.tables = copy.deepcopy(self.store.tables)
        self._bind(self.tables)
        self._events = []

    def publish(self, event: Message, *, tenant_id: str) -> str:
        self._events.append((tenant_id, event))
        return f"event-{len(self.store.published) + len(self._events)}"

    def publish_all(self, messages: Sequence[Message], *, tenant_id: str) -> list[str]:
        return [self.publish(message, tenant_id=tenant_id) for message in messages]


class Aborted(Exception):
    """What `FakeGrpcContext.abort_with_status` raises, as grpc's real context raises on abort."""


class FakeGrpcContext:
    """The part of grpc.ServicerContext the platform interceptor uses, recording the status it aborts with."""

    def __init__(self) -> None:
        self.status: Any = None

    def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise Aborted

    def code(self) -> None:
        return None

    def details(self) -> str:
        return ""
