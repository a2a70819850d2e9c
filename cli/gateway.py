"""The gateway's REST API as the commands use it: one call, its JSON, or a CliError that says what went wrong.

Errors are read from the google.rpc.Status body every answer of the gateway carries (`code`, `message`,
`details`), so a bad field, a refused token and a service that is down each get their own line and exit code.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from cli.auth import Credentials, describe_token, resolve_token
from cli.errors import HTTP_STATUS_RPC_CODE, CliError, ExitCode, exit_code_for, status_message

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
# Envoy gives a REST call 60 s; the client waits a little longer so that Envoy's own answer (504) arrives.
READ_TIMEOUT_SECONDS = 70.0


@dataclass(frozen=True)
class Reply:
    """One successful answer: its JSON text exactly as the gateway sent it, and the parsed value."""

    text: str
    data: Any


def segment(value: str) -> str:
    """One path segment, escaped (an IPv6 address's colons become %3A)."""
    return quote(value, safe="")


def _connect_reason(exc: BaseException) -> str:
    """`connection refused`, `name not known`, ... from the innermost OS error."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno is not None:
            if current.errno == errno.ECONNREFUSED:
                return "connection refused"
            return (current.strerror or str(current)).lower()
        if isinstance(current, OSError) and "Name or service not known" in str(current):
            return "name or service not known"
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    if "connection refused" in text:
        return "connection refused"
    return text or type(exc).__name__


@dataclass
class Gateway:
    url: str
    credentials: Credentials = field(default_factory=Credentials)
    # The command's flags and arguments (`--tenant-id`, `ADDRESS`): a bad field is named by the flag that set it.
    flags: frozenset[str] = frozenset()
    _token: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--gateway {self.url!r}: give an http(s) URL such as {DEFAULT_GATEWAY}", ExitCode.BAD_INPUT)
        self.url = f"{parts.scheme}://{parts.netloc}"

    @property
    def grpc_target(self) -> tuple[str, bool]:
        """host:port for gRPC on the same port, and whether it is TLS."""
        parts = urlsplit(self.url)
        tls = parts.scheme == "https"
        return f"{parts.hostname}:{parts.port or (443 if tls else 80)}", tls

    def token(self) -> str:
        if self._token is None:
            self._token = resolve_token(self.credentials)
        return self._token

    # -- calls

    def get(self, path: str, params: dict[str, Any] | None = None, *, auth: bool = True) -> Reply:
        return self.call("GET", path, params=params, auth=auth)

    def post(self, path: str, body: Any | None = None, params: dict[str, Any] | None = None) -> Reply:
        return self.call("POST", path, body={} if body is None else body, params=params)

    def put(self, path: str, body: Any) -> Reply:
        return self.call("PUT", path, body=body)

    def patch(self, path: str, body: Any, params: dict[str, Any] | None = None) -> Reply:
        return self.call("PATCH", path, body=body, params=params)

    def delete(self, path: str) -> Reply:
        return self.call("DELETE", path)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any | None = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Reply:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        query = {k: v for k, v in (params or {}).items() if v not in (None, "", 0, False)}
        timeout = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=5.0)
        try:
            response = httpx.request(
                method,
                f"{self.url}{path}",
                headers=headers,
                params={k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items()},
                content=None if body is None else json.dumps(body),
                timeout=timeout,
            )
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach the gateway at {self.url}: {_connect_reason(exc)}", ExitCode.UNAVAILABLE
            ) from None
        except httpx.TimeoutException:
            raise CliError(
                f"the gateway at {self.url} did not answer within {READ_TIMEOUT_SECONDS:.0f} s", ExitCode.UNAVAILABLE
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot talk to the gateway at {self.url}: {exc}", ExitCode.UNAVAILABLE) from None
        if response.is_success:
            return self._reply(response)
        raise self.error_for(response)

    def _reply(self, response: httpx.Response) -> Reply:
        text = response.text
        try:
            return Reply(text, json.loads(text) if text.strip() else {})
        except json.JSONDecodeError:
            raise CliError(
                f"the gateway at {self.url} answered {response.status_code} with something that is not JSON",
                ExitCode.OTHER,
            ) from None

    def error_for(self, response: httpx.Response) -> CliError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "message" in body:
            code = body.get("code")
            rpc_code = (
                code if isinstance(code, int) and 0 < code <= 16 else HTTP_STATUS_RPC_CODE.get(response.status_code)
            )
            return self.status_error(rpc_code, str(body.get("message", "")), list(body.get("details") or []))
        rpc_code = HTTP_STATUS_RPC_CODE.get(response.status_code)
        first_line = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        return CliError(
            f"the gateway at {self.url} answered {response.status_code}: {first_line}",
            exit_code_for(rpc_code, response.status_code),
        )

    def status_error(self, rpc_code: int | None, message: str, details: list[Any]) -> CliError:
        """The CliError of a google.rpc.Status (REST body or gRPC trailer)."""
        whose = describe_token(self._token or "")
        the_token = f"the token {whose}" if whose else "the token"
        if rpc_code == 16:
            line = f"the gateway refused {the_token}: {message}"
            if "expired" in message.lower():
                line += " (sign or ask for a new one)"
        elif rpc_code == 7:
            line = f"{the_token} is not allowed to do this: {message}"
        elif rpc_code == 14:
            line = f"a service behind the gateway at {self.url} is unavailable: {message}"
        else:
            line = status_message(rpc_code, message, details, self.flags)
        return CliError(line, exit_code_for(rpc_code), rpc_code=rpc_code)
