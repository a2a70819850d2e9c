"""Errors every service raises, mapped once to google.rpc.Status by the server bootstrap.

Domain and application code raise these; they hold no business rule, only the kind of failure
and the facts a caller needs (which field, which resource).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ServiceError(Exception):
    """Base class: a failure that is the caller's to know about, never a stack trace."""

    reason: str = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = dict(metadata or {})


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(ServiceError):
    """Bad input; names every offending field (HTTP 400)."""

    reason = "INVALID_ARGUMENT"

    # An answer names at most this many problems, each cut to a sane length: a hostile request with a thousand
    # bad items (or one huge value echoed back) must not make an answer too large for gRPC's headers.
    MAX_VIOLATIONS = 10
    MAX_TEXT = 300

    def __init__(self, field_name: str, description: str, *, more: list[FieldViolation] | None = None):
        everything = [FieldViolation(field_name, description), *(more or [])]
        shown = [FieldViolation(_cut(v.field, 120), _cut(v.description, self.MAX_TEXT)) for v in everything]
        if len(shown) > self.MAX_VIOLATIONS:
            hidden = len(shown) - self.MAX_VIOLATIONS
            summary = FieldViolation(shown[self.MAX_VIOLATIONS].field, f"and {hidden} more problems from here on")
            shown = [*shown[: self.MAX_VIOLATIONS], summary]
        self.violations = shown
        text = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(text, metadata={"field": shown[0].field})

    @classmethod
    def many(cls, violations: list[FieldViolation]) -> InvalidArgument:
        first, *rest = violations
        return cls(first.field, first.description, more=rest)


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def quoted(value: object, size: int = 40) -> str:
    """A caller's value as an error shows it back: quoted, and cut short (an answer never grows with the input)."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text) if len(text) <= size else repr(text[:size]) + "…"


class NotFound(ServiceError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, name: str):
        self.resource_type = resource_type
        self.resource_name = name
        super().__init__(f"{resource_type} {quoted(name, 120)} not found", metadata={"resource": name[:200]})


class AlreadyExists(ServiceError):
    reason = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, name: str, detail: str = ""):
        self.resource_type = resource_type
        self.resource_name = name
        msg = f"{resource_type} {name!r} already exists" + (f": {detail}" if detail else "")
        super().__init__(msg, metadata={"resource": name})


class FailedPrecondition(ServiceError):
    reason = "FAILED_PRECONDITION"


class PermissionDenied(ServiceError):
    reason = "PERMISSION_DENIED"


class Unauthenticated(ServiceError):
    reason = "UNAUTHENTICATED"


class Aborted(ServiceError):
    """A concurrent change got there first; the same call again will see it (HTTP 409)."""

    reason = "ABORTED"


class Unavailable(ServiceError):
    """A peer (database, MailWizz, Telegram, DNS) did not answer; the caller may retry."""

    reason = "UNAVAILABLE"


class ResourceExhausted(ServiceError):
    """Too many calls of a costly kind (HTTP 429); `retry_after_seconds` says when to try again."""

    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_seconds: float):
        self.retry_after_seconds = max(0.0, retry_after_seconds)
        super().__init__(message, metadata={"retry_after_seconds": f"{self.retry_after_seconds:.0f}"})


@dataclass
class Violations:
    """Collects field violations so a request is rejected whole, naming every bad field."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument.many(self.items)
