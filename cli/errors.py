"""What a failed command prints and the exit code it ends with: one line on stderr, never a traceback.

The exit codes are a contract with scripts (README "Command line"):

    0  done
    1  bad input: a usage error, a file that cannot be read, or the API's INVALID_ARGUMENT / OUT_OF_RANGE
    2  refused: not found, not allowed (401/403), already exists, or the state does not allow it
       (FAILED_PRECONDITION, e.g. a campaign's preflight)
    3  unavailable: the gateway cannot be reached, a service is down, a call timed out or was rate limited
       (try again later)
    4  anything else (an internal error of a service, an answer the CLI does not understand)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    BAD_INPUT = 1
    REFUSED = 2
    UNAVAILABLE = 3
    OTHER = 4


# google.rpc.Code -> exit code. Codes not named here are OTHER.
_BY_RPC_CODE = {
    3: ExitCode.BAD_INPUT,  # INVALID_ARGUMENT
    11: ExitCode.BAD_INPUT,  # OUT_OF_RANGE
    5: ExitCode.REFUSED,  # NOT_FOUND
    6: ExitCode.REFUSED,  # ALREADY_EXISTS
    7: ExitCode.REFUSED,  # PERMISSION_DENIED
    9: ExitCode.REFUSED,  # FAILED_PRECONDITION
    10: ExitCode.REFUSED,  # ABORTED
    16: ExitCode.REFUSED,  # UNAUTHENTICATED
    4: ExitCode.UNAVAILABLE,  # DEADLINE_EXCEEDED
    8: ExitCode.UNAVAILABLE,  # RESOURCE_EXHAUSTED (rate limits: try again later)
    14: ExitCode.UNAVAILABLE,  # UNAVAILABLE
}
# Only for answers without a google.rpc.Status body (a proxy in between, say).
_BY_HTTP_STATUS = {
    400: ExitCode.BAD_INPUT,
    401: ExitCode.REFUSED,
    403: ExitCode.REFUSED,
    404: ExitCode.REFUSED,
    409: ExitCode.REFUSED,
    412: ExitCode.REFUSED,
    429: ExitCode.UNAVAILABLE,
    502: ExitCode.UNAVAILABLE,
    503: ExitCode.UNAVAILABLE,
    504: ExitCode.UNAVAILABLE,
}
HTTP_STATUS_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 503: 14, 504: 4}
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RPC_CODE_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


class CliError(Exception):
    """A failure the operator is told about in one line, ending the command with `exit_code`."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.OTHER, *, rpc_code: int | None = None):
        super().__init__(one_line(message))
        self.message = one_line(message)
        self.exit_code = exit_code
        self.rpc_code = rpc_code  # the google.rpc.Code of the answer, when there was one


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed: an error is one line, whatever the server wrote."""
    return re.sub(r"\s+", " ", text).strip()


def exit_code_for(rpc_code: int | None, http_status: int | None = None) -> ExitCode:
    if rpc_code:
        return _BY_RPC_CODE.get(rpc_code, ExitCode.OTHER)
    if http_status is not None:
        return _BY_HTTP_STATUS.get(http_status, ExitCode.OTHER)
    return ExitCode.OTHER


@dataclass(frozen=True)
class FieldProblem:
    field: str
    description: str


def field_problems(details: list[Any]) -> list[FieldProblem]:
    """The field violations of a google.rpc.Status's BadRequest detail, as the REST gateway renders it."""
    problems: list[FieldProblem] = []
    for detail in details or []:
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST:
            for violation in detail.get("field_violations") or detail.get("fieldViolations") or []:
                problems.append(FieldProblem(str(violation.get("field", "")), str(violation.get("description", ""))))
    return problems


# The request message a REST body is wrapped in (`body: "tenant"`): its name leads the field path.
_WRAPPERS = ("tenant.", "schedule.", "settings.")


def flag_for(field: str, flags: frozenset[str]) -> str:
    """The command's flag for an API field path ("" when it has none): `tenant.health.min_sample` is
    `--health-min-sample`, `tenant_id` is `--tenant-id`; a positional argument is named in upper case."""
    candidates = [field] + [field.removeprefix(w) for w in _WRAPPERS if field.startswith(w)]
    for candidate in candidates:
        name = re.sub(r"\[\d+\]", "", candidate).replace(".", "-").replace("_", "-")
        if f"--{name}" in flags:
            return f"--{name}"
        if name.upper() in flags:
            return name.upper()
    return ""


def status_message(rpc_code: int | None, message: str, details: list[Any], flags: frozenset[str] = frozenset()) -> str:
    """The line for an error answer: each bad field with the flag that set it, or the Status message."""
    problems = field_problems(details)
    if rpc_code in (3, 11) and problems:
        parts = []
        for problem in problems:
            flag = flag_for(problem.field, flags)
            parts.append(f"{problem.field}{f' ({flag})' if flag else ''}: {problem.description}")
        return "invalid " + "; ".join(parts)
    return message or RPC_CODE_NAMES.get(rpc_code or 0, "error")
