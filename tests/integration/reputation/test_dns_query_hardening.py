"""The scanning DNS client against off-path forgery (RFC 5452): query ids nobody can predict, source ports that
change during a scan, and an answer taken only when its id, its question and its source all match.

The nameserver here is a small UDP server on loopback that records every query it gets (source port, id) and can
send a forged answer, a listing (127.0.0.2), before the genuine NXDOMAIN: from another port, for another question,
or under another id.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import dns.message
import dns.rcode
import dns.rrset
import pytest

from reputation.adapters.dns_client import QUERIES_PER_SOCKET, A, Nameserver, UdpDnsClient
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from tests.harness.dns_servers import LOOPBACK
from tests.harness.servers import free_port

pytestmark = pytest.mark.integration

Forgery = Callable[[dns.message.Message], tuple[dns.message.Message, bool]]  # (forged reply, from another port)


def listed(query: dns.message.Message) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "127.0.0.2"))
    return reply


def from_another_port(query: dns.message.Message) -> tuple[dns.message.Message, bool]:
    return listed(query), True


def for_another_question(query: dns.message.Message) -> tuple[dns.message.Message, bool]:
    other = dns.message.make_query("2.0.0.127.zen.spamhaus.org", "A")
    other.id = query.id
    return listed(other), False


def of_another_type(query: dns.message.Message) -> tuple[dns.message.Message, bool]:
    other = dns.message.make_query(query.question[0].name, "TXT")
    other.id = query.id
    reply = listed(query)
    reply.question = other.question
    return reply, False


def under_another_id(query: dns.message.Message) -> tuple[dns.message.Message, bool]:
    reply = listed(query)
    reply.id = (query.id + 1) % 65536
    return reply, False


@dataclass
class RecordingNameserver:
    """Answers NXDOMAIN to everything, 20 ms late when a forgery goes first; records each query's source and id."""

    forge: Forgery | None = None
    port: int = field(default_factory=free_port)
    queries: list[tuple[int, int]] = field(default_factory=list)  # (source port, id)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def nameserver(self) -> Nameserver:
        return Nameserver(LOOPBACK, self.port)

    def serve(self) -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other,
        ):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((LOOPBACK, self.port))
            other.bind((LOOPBACK, 0))
            sock.settimeout(0.05)
            self._ready.set()
            while not self._stop.is_set():
                try:
                    data, source = sock.recvfrom(4096)
                except TimeoutError:
                    continue
                query = dns.message.from_wire(data)
                self.queries.append((source[1], query.id))
                if self.forge is not None:
                    forged, elsewhere = self.forge(query)
                    (other if elsewhere else sock).sendto(forged.to_wire(), source)
                    time.sleep(0.02)
                genuine = dns.message.make_response(query)
                genuine.set_rcode(dns.rcode.NXDOMAIN)
                sock.sendto(genuine.to_wire(), source)

    def __enter__(self) -> RecordingNameserver:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.serve, name="recording-nameserver", daemon=True)
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def recording() -> Iterator[RecordingNameserver]:
    with RecordingNameserver() as server:
        yield server


def ask(server: RecordingNameserver, names: list[str], *, concurrently: bool = True) -> list[DnsOutcome]:
    async def run() -> list[DnsOutcome]:
        in_flight = asyncio.Semaphore(64 if concurrently else 1)  # as the scanner bounds its questions

        async def one(client: UdpDnsClient, name: str) -> DnsAnswer:
            async with in_flight:
                return await client.query(name, A)

        async with UdpDnsClient([server.nameserver], timeout=2.0, attempts=1) as client:
            answers = await asyncio.gather(*(one(client, n) for n in names))
        return [a.outcome for a in answers]

    return asyncio.run(run())


def names(count: int) -> list[str]:
    return [f"{i % 250}.{i // 250}.2.192.zen.spamhaus.org" for i in range(count)]


def test_dns_query_ids_do_not_follow_the_random_module(recording: RecordingNameserver) -> None:
    random.seed(5452)
    ask(recording, names(50), concurrently=False)
    first = [qid for _port, qid in recording.queries]
    recording.queries.clear()
    random.seed(5452)
    ask(recording, names(50), concurrently=False)
    again = [qid for _port, qid in recording.queries]
    assert len(first) == len(again) == 50
    assert first != again, "the ids repeat whenever the random module's state does: they can be predicted"


def test_dns_source_ports_rotate_during_a_scan(recording: RecordingNameserver) -> None:
    count = 2000
    outcomes = ask(recording, names(count))
    assert set(outcomes) == {DnsOutcome.NXDOMAIN}
    per_port = Counter(port for port, _qid in recording.queries)
    # About 31 sockets draw random ports from ~28 000: the kernel giving one port to two sockets in turn happens
    # (about 2 % of runs), and that port then carries two sockets' queries. More than that is a socket overused.
    overused = [n for n in per_port.values() if n > QUERIES_PER_SOCKET]
    assert len(overused) <= 1 and max(per_port.values()) <= 2 * QUERIES_PER_SOCKET, (
        "a source port carried more queries than one socket may"
    )
    assert len(per_port) >= count // QUERIES_PER_SOCKET
    ports = sorted(per_port)
    steps = Counter(b - a for a, b in pairwise(ports))
    assert steps.most_common(1)[0][1] < len(ports) // 2, "the source ports follow a pattern"


@pytest.mark.parametrize(
    "forge",
    [from_another_port, for_another_question, of_another_type, under_another_id],
    ids=["from-another-port", "for-another-question", "of-another-type", "under-another-id"],
)
def test_a_forged_listing_is_dropped_and_the_genuine_answer_taken(forge: Forgery) -> None:
    with RecordingNameserver(forge=forge) as server:
        assert ask(server, names(20)) == [DnsOutcome.NXDOMAIN] * 20
