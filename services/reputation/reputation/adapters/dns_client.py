"""Resolver settings and a fast asyncio DNS client for blocklist scanning.

Why a hand-rolled client: a scan is tens of thousands of one-question A lookups. dnspython's
resolver opens a socket per query and waits for each answer; here a few UDP sockets carry hundreds of
queries in flight, matched back by (source, id, question), each socket replaced after
`QUERIES_PER_SOCKET` queries so that its random source port does not stay guessable (RFC 5452). Answers
are still decoded by dnspython, and a truncated reply is retried over TCP with dnspython.

Time is bounded: each query ends within `timeout` seconds whatever the server does (no answer,
ICMP refused, garbage), as a `DnsAnswer` with outcome TIMEOUT/ERROR — never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Protocol

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from libs.errors import InvalidArgument
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome

# A socket carries at most this many queries, then a new one (a new random source port) takes over.
QUERIES_PER_SOCKET = 64

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
TXT = dns.rdatatype.TXT


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _parse_one(item: str, field_name: str) -> Nameserver:
    text = item.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidArgument(field_name, f"{item!r}: expected [ipv6]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        ip_address(host)
    except ValueError:
        raise InvalidArgument(field_name, f"{item!r}: the nameserver must be an IP address") from None
    port = 53
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidArgument(field_name, f"{item!r}: port must be 1-65535")
        port = int(port_text)
    return Nameserver(host, port)


def parse_nameservers(value: str, field_name: str = "EE_DNS_NAMESERVERS") -> tuple[Nameserver, ...]:
    """Comma-separated `host:port` (`[v6]:port`; the port defaults to 53); empty gives none.

    They should be the operator's own recursive resolvers: public resolvers are refused by Spamhaus
    (127.255.255.254) and others.
    """
    return tuple(_parse_one(item, field_name) for item in value.split(",") if item.strip())


def system_nameservers() -> tuple[Nameserver, ...]:
    """The nameservers of /etc/resolv.conf; loopback:53 when there is none."""
    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.exception.DNSException:
        servers = []
    found = tuple(Nameserver(str(s), 53) for s in servers if isinstance(s, str))
    return found or (Nameserver("127.0.0.1", 53),)


@dataclass(frozen=True)
class DnsSettings:
    """DNS settings shared by scanning and domain checks."""

    nameservers: tuple[Nameserver, ...]
    timeout: float = 2.0  # one query, all attempts included
    attempts: int = 2  # sends per query (each nameserver in turn)
    check_timeout: float = 10.0  # one whole check (an SPF evaluation, a selector's DKIM, …)


class DnsQueryClient(Protocol):
    """What the scanner needs: one question in, one `DnsAnswer` out, never raising for DNS trouble."""

    async def query(self, name: str, rdtype: int = A) -> DnsAnswer: ...


class _Pending:
    __slots__ = ("deadline", "future", "question")

    def __init__(self, future: asyncio.Future[bytes], question: bytes, deadline: float) -> None:
        self.future = future
        self.question = question  # the question section as sent, its name in lower case
        self.deadline = deadline


class _Endpoint:
    """One connected, non-blocking UDP socket to one nameserver, with its table of queries in flight.

    Against off-path forgery (RFC 5452): the socket's source port is one the kernel picks at random, it carries
    at most `uses` queries and is then retired (closed once its last answer is in); a query id comes from
    `secrets`; an answer is taken only from the nameserver's address and port, with the id of a query in
    flight and exactly its question (name, any case; type; class). Anything else is dropped.

    Readable → drain every waiting datagram in one wake-up (asyncio's datagram transport reads one
    per event loop turn, which halves throughput under load).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, server: Nameserver, uses: int) -> None:
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        self.loop = loop
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.pending: dict[int, _Pending] = {}
        self.uses_left = uses
        try:
            self.sock.setblocking(False)
            with contextlib.suppress(OSError):  # bigger buffer: bursts of answers must not be dropped
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sock.connect((server.host, server.port))  # binds a random source port, filters other sources
            self.peer = self.sock.getpeername()[:2]
        except OSError:
            self.sock.close()
            raise
        loop.add_reader(self.sock.fileno(), self._readable)

    @property
    def retired(self) -> bool:
        return self.uses_left <= 0

    def send(self, data: bytes) -> None:
        self.uses_left -= 1
        self.sock.send(data)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        self._fail_all(ConnectionError("socket closed"))

    def _readable(self) -> None:
        recvfrom, pending_table, peer = self.sock.recvfrom, self.pending, self.peer
        while True:
            try:
                data, source = recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP port/host unreachable on a connected socket: the server is not there; fail fast.
                self._fail_all(exc)
                return
            if source[:2] != peer or len(data) < 12 or not data[2] & 0x80 or data[4:6] != b"\x00\x01":
                continue  # not from the nameserver, a runt, not a response, or not one question
            pending = pending_table.get((data[0] << 8) | data[1])
            if pending is None:
                continue
            question = pending.question
            size = len(question)
            if data[12 : 8 + size].lower() != question[:-4] or data[8 + size : 12 + size] != question[-4:]:
                continue  # an answer to another question (or a forgery): ignore
            del pending_table[(data[0] << 8) | data[1]]
            if not pending.future.done():
                pending.future.set_result(data)

    def _fail_all(self, exc: BaseException) -> None:
        pending, self.pending = self.pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(exc)

    def expire(self, now: float) -> None:
        """Fail the queries whose attempt deadline has passed (one sweep instead of a timer each)."""
        late = [qid for qid, item in self.pending.items() if item.deadline <= now]
        for qid in late:
            item = self.pending.pop(qid)
            if not item.future.done():
                item.future.set_exception(TimeoutError())

    def new_id(self) -> int:
        """An id nobody off the path can predict (never `random`: its state can be learnt or seeded)."""
        while True:
            qid = secrets.randbits(16)
            if qid not in self.pending:
                return qid


_LENGTH_BYTE = [bytes([n]) for n in range(64)]


def encode_question(name: str, rdtype: int) -> bytes:
    """The question section of a query: name labels, type, class IN."""
    labels = name.rstrip(".").encode("ascii").split(b".")
    lengths = list(map(len, labels))
    if min(lengths) == 0 or max(lengths) > 63:
        raise ValueError(f"invalid DNS name {name!r}")
    wire = b"".join([_LENGTH_BYTE[n] + label for n, label in zip(lengths, labels, strict=True)]) + b"\x00"
    if len(wire) > 255:
        raise ValueError(f"DNS name too long: {name[:60]!r}…")
    return wire + struct.pack("!HH", rdtype, 1)


def decode_answer(name: str, rdtype: int, data: bytes) -> DnsAnswer:
    """Reduce a reply to a `DnsAnswer` (rcode and the asked-for records, in text)."""
    rcode = data[3] & 0x0F
    if rcode == dns.rcode.NXDOMAIN:
        return DnsAnswer(DnsOutcome.NXDOMAIN)
    if rcode == dns.rcode.SERVFAIL:
        return DnsAnswer(DnsOutcome.SERVFAIL)
    if rcode == dns.rcode.REFUSED:
        return DnsAnswer(DnsOutcome.REFUSED)
    if rcode != dns.rcode.NOERROR:
        return DnsAnswer(DnsOutcome.ERROR, detail=f"rcode {dns.rcode.to_text(rcode)}")
    if data[6] == 0 and data[7] == 0:
        return DnsAnswer(DnsOutcome.NODATA)
    try:
        message = dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.DNSException as exc:
        return DnsAnswer(DnsOutcome.ERROR, detail=f"malformed reply: {exc}")
    return answer_from_message(message, rdtype)


def answer_from_message(message: dns.message.Message, rdtype: int) -> DnsAnswer:
    """Records of `rdtype` in a reply (CNAME chains included), as text."""
    records: list[str] = []
    for rrset in message.answer:
        if rrset.rdtype != rdtype:
            continue
        for rdata in rrset:
            records.append(rdata_text(rdata))
    if not records:
        return DnsAnswer(DnsOutcome.NODATA)
    return DnsAnswer(DnsOutcome.ANSWER, tuple(records))


def rdata_text(rdata: object) -> str:
    """A record in the form the domain layer expects (TXT strings joined, names without the final dot)."""
    rdtype = rdata.rdtype  # type: ignore[attr-defined]
    if rdtype in (A, AAAA):
        return str(rdata.address)  # type: ignore[attr-defined]
    if rdtype == TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.MX:
        exchange = rdata.exchange  # type: ignore[attr-defined]
        host = "." if exchange == dns.name.root else exchange.to_text(omit_final_dot=True)
        return f"{rdata.preference} {host}"  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.PTR, dns.rdatatype.CNAME):
        return rdata.target.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


class UdpDnsClient:
    """Pipelined DNS over a few UDP sockets per nameserver; use as `async with UdpDnsClient(...)`.

    Each socket carries `queries_per_socket` queries, then a fresh one (a new random source port) takes its
    place; the old one is closed once the answers it waits for are in or timed out.
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver],
        *,
        timeout: float = 2.0,
        attempts: int = 2,
        sockets_per_server: int = 4,
        queries_per_socket: int = QUERIES_PER_SOCKET,
    ) -> None:
        if not nameservers:
            raise ValueError("at least one nameserver is required")
        self.nameservers = tuple(nameservers)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.sockets_per_server = max(1, sockets_per_server)
        self.queries_per_socket = max(1, queries_per_socket)
        self._endpoints: list[list[_Endpoint]] = []
        self._retired: list[_Endpoint] = []  # waiting for their last answers
        self._turn = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_every = min(0.05, timeout / 20)

    @classmethod
    def from_settings(cls, settings: DnsSettings, **kwargs: int) -> UdpDnsClient:
        return cls(settings.nameservers, timeout=settings.timeout, attempts=settings.attempts, **kwargs)

    async def __aenter__(self) -> UdpDnsClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _new_endpoint(self, server: Nameserver) -> _Endpoint:
        return _Endpoint(asyncio.get_running_loop(), server, self.queries_per_socket)

    async def open(self) -> None:
        try:
            for server in self.nameservers:
                self._endpoints.append([self._new_endpoint(server) for _ in range(self.sockets_per_server)])
        except OSError:
            await self.close()
            raise
        self._sweeper = asyncio.create_task(self._sweep(), name="dns-timeouts")

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._sweep_every)
            now = loop.time()
            for group in self._endpoints:
                for endpoint in group:
                    if endpoint.pending:
                        endpoint.expire(now)
            for endpoint in self._retired:
                endpoint.expire(now)
            self._close_finished()

    def _close_finished(self) -> None:
        finished = [e for e in self._retired if not e.pending]
        if finished:
            self._retired = [e for e in self._retired if e.pending]
            for endpoint in finished:
                endpoint.close()

    def _endpoint(self, server_index: int) -> _Endpoint:
        """The next socket to the server, a fresh one when the one in turn has carried its share."""
        group = self._endpoints[server_index]
        self._turn = (self._turn + 1) % len(group)
        endpoint = group[self._turn]
        if endpoint.retired:
            self._retired.append(endpoint)
            endpoint = group[self._turn] = self._new_endpoint(self.nameservers[server_index])
        return endpoint

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for group in self._endpoints:
            for endpoint in group:
                endpoint.close()
        for endpoint in self._retired:
            endpoint.close()
        self._endpoints = []
        self._retired = []

    async def query(self, name: str, rdtype: int = A) -> DnsAnswer:
        """Ask the nameservers in turn until one answers or `timeout` has passed."""
        if not self._endpoints:
            raise RuntimeError("UdpDnsClient is not open")
        try:
            question = encode_question(name, rdtype)
        except (ValueError, UnicodeError) as exc:
            return DnsAnswer(DnsOutcome.ERROR, detail=str(exc))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last = DnsAnswer(DnsOutcome.TIMEOUT, detail=f"no answer within {self.timeout:g} s")
        for attempt in range(self.attempts):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            server_index = attempt % len(self.nameservers)
            wait = remaining / (self.attempts - attempt)
            try:
                endpoint = self._endpoint(server_index)
                data = await self._exchange(loop, endpoint, question, wait)
            except TimeoutError:
                last = DnsAnswer(
                    DnsOutcome.TIMEOUT,
                    detail=f"no answer from {self.nameservers[server_index]} within {self.timeout:g} s",
                )
                continue
            except OSError as exc:
                last = DnsAnswer(DnsOutcome.ERROR, detail=f"{self.nameservers[server_index]}: {exc.strerror or exc}")
                continue
            if data[2] & 0x02:  # TC: the answer did not fit in UDP
                answer = await self._tcp(name, rdtype, self.nameservers[server_index], deadline - loop.time())
            else:
                answer = decode_answer(name, rdtype, data)
            if answer.outcome in (DnsOutcome.SERVFAIL, DnsOutcome.REFUSED) and attempt + 1 < min(
                self.attempts, len(self.nameservers)
            ):
                last = answer  # another nameserver may do better
                continue
            return answer
        return last

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, endpoint: _Endpoint, question: bytes, wait: float
    ) -> bytes:
        qid = endpoint.new_id()
        future: asyncio.Future[bytes] = loop.create_future()
        pending = _Pending(future, question[:-4].lower() + question[-4:], loop.time() + wait)
        endpoint.pending[qid] = pending
        try:
            endpoint.send(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question)
            return await future
        finally:
            if endpoint.pending.get(qid) is pending:
                del endpoint.pending[qid]
            if endpoint.retired and not endpoint.pending and endpoint in self._retired:
                self._retired.remove(endpoint)
                endpoint.close()

    async def _tcp(self, name: str, rdtype: int, server: Nameserver, remaining: float) -> DnsAnswer:
        if remaining <= 0:
            return DnsAnswer(DnsOutcome.TIMEOUT, detail="truncated UDP answer and no time left for TCP")
        try:
            message = await dns.asyncquery.tcp(
                dns.message.make_query(name, rdtype), server.host, port=server.port, timeout=remaining
            )
        except dns.exception.Timeout:
            return DnsAnswer(DnsOutcome.TIMEOUT, detail=f"no TCP answer from {server}")
        except (OSError, dns.exception.DNSException) as exc:
            return DnsAnswer(DnsOutcome.ERROR, detail=f"TCP to {server}: {exc}")
        return decode_answer(name, rdtype, message.to_wire())
