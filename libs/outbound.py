"""The one HTTP client for addresses that users supply (webhooks, MailWizz URLs, PMTA monitors).

A tenant can type any URL; the platform must not become its probe of the internal network or its way to hit
the platform's own admin endpoints. So every request made here:

* resolves the name itself and checks every address it resolves to **at connect time** (a name that resolved
  to a public address at validation and to 127.0.0.1 now, DNS rebinding, is refused): loopback, private,
  link-local, multicast, unspecified, reserved and cloud metadata addresses are refused unless the operator
  allowed that network (`EE_OUTBOUND_ALLOW_NETWORKS`, for on-premise MailWizz or PMTA hosts); the platform's
  own ports on loopback (Envoy's admin first) are refused even then;
* connects to the checked address (not the name again), with TLS still verified against the name;
* has one overall deadline, not a per-read timeout, so a peer that drips one byte every few seconds costs at
  most the deadline; and a cap on the response size, so a huge body cannot exhaust memory;
* never follows redirects (a redirect could point anywhere) and never reads proxies from the environment.

Errors are `OutboundError` subclasses whose text names the origin (`scheme://host:port`) and the kind of
failure, never the path (webhook paths often carry secrets) and never the address a name resolved to.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services answer on link-local (refused anyway) and on these, which some clouds route specially.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class OutboundError(Exception):
    """A request to a user-supplied address failed; the text is safe to store and show."""


class DestinationRefused(OutboundError):
    """The address is one the platform never calls (or the URL itself is not acceptable)."""


class OutboundTimeout(OutboundError):
    pass


class ResponseTooLarge(OutboundError):
    pass


class OutboundNetworkError(OutboundError):
    pass


@dataclass(frozen=True)
class OutboundPolicy:
    """Where user-supplied URLs may lead, and how long and how much a call may take."""

    allowed_networks: tuple[IpNetwork, ...] = ()
    # Ports of the platform itself on this host (Envoy admin, the services): never called, allow-list or not.
    protected_local_ports: frozenset[int] = frozenset()
    deadline_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    max_response_bytes: int = 1 << 20

    def refusal(self, address: IpAddress, port: int) -> str | None:
        """Why a connection to address:port is refused, or None when it is allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback and port in self.protected_local_ports:
            return "a port of the platform itself"
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if any(address in network for network in self.allowed_networks):
            return None
        if address.is_unspecified:
            return "an unspecified address"
        if address.is_loopback:
            return "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_private or address.is_reserved or not address.is_global:
            return "a private or reserved address"
        return None


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """`10.20.0.0/16, 192.168.5.7` -> networks; ValueError naming the bad item."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network") from None
    return tuple(networks)


def origin_of(url: str) -> str:
    """scheme://host[:port] only: the part of a URL that is safe to show."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an invalid URL"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def check_url(url: str, *, schemes: Iterable[str] = ("https", "http")) -> str | None:
    """Why a URL cannot be stored as a destination (None when it can). Addresses are checked at connect time."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in tuple(schemes):
        return f"must be an {' or '.join(schemes)} URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if port is not None and not 1 <= port <= 65535:
        return "has a port outside 1-65535"
    return None


def resolve_checked(policy: OutboundPolicy, host: str, port: int) -> list[IpAddress]:
    """The host's addresses, or DestinationRefused (its text: the reason) when any of them may not be called.

    Any refused address refuses the name: a public and a private answer together is a trick. A URL can be
    checked with this when it is stored (a clear error at once); the client checks again at every connection.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(str(exc)) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for address in addresses:
        reason = policy.refusal(address, port)
        if reason is not None:
            raise DestinationRefused(reason)
    return addresses


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, then connects to a checked address: the check cannot be raced."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.NetworkBackend | None = None):
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve_checked(self._policy, host, port)
        except DestinationRefused as refused:
            raise _Refused(str(refused)) from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the host: {exc}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise _Refused("a local socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Refused(httpcore.ConnectError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)
    truncated: bool = False  # the body was longer than the cap (only with truncate=True)

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class GuardedClient:
    """Thread-safe; one per process and purpose. `request` returns the whole (capped) response."""

    def __init__(self, policy: OutboundPolicy, *, user_agent: str = "email-engine/1", verify: bool | str = True):
        self.policy = policy
        transport = httpx.HTTPTransport(verify=verify, trust_env=False, retries=0)
        # httpx has no public hook for the network backend; the pool's is replaced (covered by its tests).
        transport._pool._network_backend = _GuardedBackend(policy)  # type: ignore[attr-defined]
        self._http = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(policy.deadline_seconds, connect=policy.connect_timeout_seconds),
            headers={"User-Agent": user_agent},
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        deadline_seconds: float | None = None,
        max_response_bytes: int | None = None,
        truncate: bool = False,
    ) -> OutboundResponse:
        """The answer, read whole within the deadline. A body over the cap raises ResponseTooLarge, or with
        `truncate` is cut at the cap (the status still counts, e.g. a webhook's 200 with a chatty body)."""
        origin = origin_of(url)
        problem = check_url(url)
        if problem is not None:
            raise DestinationRefused(f"{origin}: the URL {problem}")
        deadline = time.monotonic() + (deadline_seconds or self.policy.deadline_seconds)
        cap = max_response_bytes or self.policy.max_response_bytes
        try:
            request = self._http.build_request(method, url, headers=headers, content=content, data=data, params=params)
            # Each read may wait only for what is left of the overall deadline: httpcore reads this dict before
            # every socket read, so it is shrunk after each chunk.
            timeouts = _remaining_timeouts(deadline, self.policy.connect_timeout_seconds)
            request.extensions["timeout"] = timeouts
            response = self._http.send(request, stream=True)
            try:
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > cap:
                        if truncate:
                            headers = dict(response.headers)
                            return OutboundResponse(response.status_code, headers, bytes(body[:cap]), truncated=True)
                        raise ResponseTooLarge(f"{origin}: the answer is larger than {cap} bytes")
                    if time.monotonic() > deadline:
                        raise OutboundTimeout(f"{origin}: no complete answer within the deadline")
                    timeouts.update(_remaining_timeouts(deadline, self.policy.connect_timeout_seconds))
                return OutboundResponse(response.status_code, dict(response.headers), bytes(body))
            finally:
                response.close()
        except _Refused as exc:
            raise DestinationRefused(f"{origin}: refused, the host resolves to {exc.reason}") from None
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, _Refused) or isinstance(exc.__context__, _Refused):
                refused = exc.__cause__ or exc.__context__
                raise DestinationRefused(f"{origin}: refused, the host resolves to {refused.reason}") from None  # type: ignore[union-attr]
            raise OutboundNetworkError(f"{origin}: cannot connect") from None
        except httpx.TimeoutException:
            raise OutboundTimeout(f"{origin}: no complete answer within the deadline") from None
        except httpx.HTTPError as exc:
            raise OutboundNetworkError(f"{origin}: {type(exc).__name__}") from None


def _remaining_timeouts(deadline: float, connect: float) -> dict[str, float]:
    left = max(0.001, deadline - time.monotonic())
    return {"connect": min(connect, left), "read": left, "write": left, "pool": left}
