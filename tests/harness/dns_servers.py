"""Real DNS servers on loopback for tests and benchmarks: rbldnsd (blocklists) and nsd (authoritative).

Each server runs from a throwaway directory on a free 127.0.0.1 port and is stopped by its own
process id. Anything that keeps a server from starting raises `HarnessError`, so the test using it
fails; nothing here ever skips. Debian packages: `rbldnsd`, `nsd` (and `dnsperf` for the benchmark).

rbldnsd re-reads a zone file whose mtime changed every `-c` seconds; `Rbldnsd.update` rewrites a
file, moves its mtime forward by at least one second (rbldnsd compares whole seconds) and waits
for the "zones reloaded" line in the server's log, so a test can list an IP while a service runs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.harness.servers import free_port

LOOPBACK = "127.0.0.1"


class HarnessError(RuntimeError):
    """A test server could not be started or driven: the test must fail, not skip."""


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        raise HarnessError(f"{name} is not installed (Debian package {package!r}; `make test` installs it)")
    return path


def make_workdir(prefix: str) -> Path:
    """A private temporary directory the servers can read after dropping root (mode 0755)."""
    path = Path(tempfile.mkdtemp(prefix=f"ee-{prefix}-"))
    path.chmod(0o755)
    return path


def ask(port: int, name: str, rdtype: str = "A", timeout: float = 1.0) -> dns.message.Message:
    """One UDP question to a harness server (for readiness checks and test assertions)."""
    return dns.query.udp(dns.message.make_query(name, rdtype), LOOPBACK, port=port, timeout=timeout)


class _Process:
    """A daemon run in the foreground with its output in a log file, stopped by its own pid."""

    def __init__(self, workdir: Path, log_name: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str]) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise HarnessError(f"cannot run {argv[0]}: {exc}") from exc
        finally:
            log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


class _Daemon:
    """Stop, clean up, and `with` for a server started in its own work directory."""

    workdir: Path
    _process: _Process | None

    def start(self, timeout: float = 10.0) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        if self._process is None:
            try:
                self.start()
            except BaseException:
                self.cleanup()  # a failed start leaves no directory behind
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@dataclass
class _Dataset:
    zone: str
    kind: str
    path: Path
    lines: list[str] = field(default_factory=list)
    soa: bool = True


@dataclass
class Rbldnsd(_Daemon):
    """A real rbldnsd on 127.0.0.1:<free port>, serving throwaway dataset files.

    Usage::

        server = Rbldnsd()
        server.add_dataset("zen.spamhaus.org", "ip4set", "zen4", ["127.0.0.2", "192.0.2.10 :127.0.0.4:XBL"])
        with server:
            ...  # nameserver: server.nameserver ("127.0.0.1:<port>")
    """

    workdir: Path = field(default_factory=lambda: make_workdir("rbldnsd"))
    check_interval: int = 1
    port: int = 0
    datasets: dict[str, _Dataset] = field(default_factory=dict)
    _process: _Process | None = None
    _mtimes: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nameserver(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def add_dataset(self, zone: str, kind: str, name: str, lines: Iterable[str], soa: bool = True) -> Path:
        """Declare one dataset file of `zone` (before `start`); several datasets may share a zone."""
        if name in self.datasets:
            raise HarnessError(f"dataset {name!r} declared twice")
        path = self.workdir / name
        header = [f"$SOA 60 ns.{zone} hostmaster.{zone} 1 60 60 60 60", "$TTL 60"] if soa else []
        self.datasets[name] = _Dataset(zone, kind, path, list(lines), soa)
        self._write(name, [*header, *self.datasets[name].lines])
        return path

    def _write(self, name: str, lines: Sequence[str]) -> None:
        path = self.datasets[name].path
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o644)
        # rbldnsd notices a change by mtime in whole seconds: always move it forward by one at least.
        stamp = max(int(time.time()), self._mtimes.get(name, 0) + 1)
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)
        self._mtimes[name] = stamp

    def start(self, timeout: float = 10.0) -> Rbldnsd:
        binary = _binary("rbldnsd", "rbldnsd")
        if not self.datasets:
            raise HarnessError("rbldnsd needs at least one dataset")
        user: list[str] = []
        if os.geteuid() == 0:  # it refuses to run as root; nobody must be able to read the files
            try:
                pwd.getpwnam("nobody")
            except KeyError:
                raise HarnessError("running as root and there is no 'nobody' user for rbldnsd -u") from None
            user = ["-u", "nobody"]
        specs = [f"{d.zone}:{d.kind}:{d.path}" for d in self.datasets.values()]
        last_error = ""
        for _ in range(3):  # a port taken between free_port() and bind() gets another try
            self.port = self.port or free_port()
            self._process = _Process(self.workdir, f"rbldnsd-{self.port}.log")
            argv = [binary, "-n", *user, "-c", str(self.check_interval), "-b", f"{LOOPBACK}/{self.port}", *specs]
            self._process.spawn(argv)
            try:
                self._await_ready(timeout)
                return self
            except HarnessError as exc:
                last_error = str(exc)
                self._process.terminate()
                if "Address already in use" not in self._process.log():
                    break
                self.port = 0
        raise HarnessError(last_error)

    def _await_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self._process.log()
            if not self._process.alive():
                raise HarnessError(f"rbldnsd exited at start:\n{log}")
            if "not all datasets are loaded" in log or "unable to" in log or "rbldnsd: file " in log:
                # "file X(3): invalid address": a bad test data line would silently change the zone
                raise HarnessError(f"rbldnsd could not load its zones:\n{log}")
            if " started" in log:
                zone = next(iter(self.datasets.values())).zone
                with contextlib.suppress(dns.exception.DNSException, OSError):
                    ask(self.port, zone, "SOA", timeout=0.5)
                    return
            time.sleep(0.02)
        raise HarnessError(f"rbldnsd did not answer within {timeout} s:\n{self._process.log()}")

    def reload_count(self) -> int:
        return self._process.log().count("zones reloaded") if self._process else 0

    def update(self, name: str, lines: Iterable[str], soa: bool = True, timeout: float = 10.0) -> None:
        """Replace a dataset's contents while the server runs, and wait until rbldnsd has reloaded it."""
        with self._lock:
            if name not in self.datasets:
                raise HarnessError(f"unknown dataset {name!r}")
            zone = self.datasets[name].zone
            before = self.reload_count()
            log_size = len(self._process.log()) if self._process else 0
            lines = list(lines)
            header = [f"$SOA 60 ns.{zone} hostmaster.{zone} 1 60 60 60 60", "$TTL 60"] if soa else []
            self._write(name, [*header, *lines])
            self.datasets[name].lines, self.datasets[name].soa = lines, soa
            if self._process is None:  # not started yet: the file is all there is to change
                return
            deadline = time.monotonic() + timeout
            while self.reload_count() <= before:
                if not self._process or not self._process.alive():
                    raise HarnessError(f"rbldnsd died during reload:\n{self._process.log() if self._process else ''}")
                if time.monotonic() > deadline:
                    raise HarnessError(f"rbldnsd did not reload {name} within {timeout} s")
                time.sleep(0.05)
            fresh = self._process.log()[log_size:]
            if "not all datasets are loaded" in fresh or "rbldnsd: file " in fresh:
                raise HarnessError(f"rbldnsd failed to reload {name}:\n{fresh}")

    def add_entry(self, name: str, line: str, timeout: float = 10.0) -> None:
        """List one more entry (`"192.0.2.7 :127.0.0.2:reason"`) while running; waits for the reload."""
        dataset = self.datasets[name]
        self.update(name, [*dataset.lines, line], soa=dataset.soa, timeout=timeout)

    def remove_entry(self, name: str, key: str, timeout: float = 10.0) -> None:
        """Delist every entry whose first word is `key` (an IP, a range, a domain); waits for the reload."""
        dataset = self.datasets[name]
        kept = [line for line in dataset.lines if line.split(maxsplit=1)[:1] != [key]]
        if len(kept) == len(dataset.lines):
            raise HarnessError(f"{key!r} is not listed in dataset {name!r}")
        self.update(name, kept, soa=dataset.soa, timeout=timeout)


def txt_rdata(text: str) -> str:
    """A TXT value as zone-file rdata: quoted, split into 255-byte strings (long DKIM keys need it)."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


@dataclass
class Nsd(_Daemon):
    """A real nsd on 127.0.0.1:<free port> (UDP and TCP), authoritative for throwaway zones.

    Usage::

        server = Nsd()
        server.add_zone("example.test", ['@ TXT "v=spf1 ip4:192.0.2.10 -all"', "mx A 192.0.2.10"])
        with server:
            ...
    """

    workdir: Path = field(default_factory=lambda: make_workdir("nsd"))
    port: int = 0
    zones: dict[str, Path] = field(default_factory=dict)
    _process: _Process | None = None

    @property
    def nameserver(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def add_zone(self, origin: str, records: Iterable[str], ttl: int = 60) -> Path:
        """A zone from record lines relative to `origin` (`name [TYPE] rdata`); SOA and NS are added."""
        origin = origin.rstrip(".").lower()
        path = self.workdir / f"{origin}.zone"
        lines = [
            f"$ORIGIN {origin}.",
            f"$TTL {ttl}",
            f"@ IN SOA ns.harness.invalid. hostmaster.harness.invalid. 1 3600 600 86400 {ttl}",
            "@ IN NS ns.harness.invalid.",
            *records,
        ]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
        self.zones[origin] = path
        return path

    def start(self, timeout: float = 10.0) -> Nsd:
        binary = _binary("nsd", "nsd")
        if not self.zones:
            raise HarnessError("nsd needs at least one zone")
        last_error = ""
        for _ in range(3):
            self.port = self.port or free_port()
            conf = self.workdir / "nsd.conf"
            conf.write_text(self._config())
            checker = shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf"
            if os.path.exists(checker):
                check = subprocess.run([checker, str(conf)], capture_output=True, text=True, check=False)
                if check.returncode != 0:
                    raise HarnessError(f"nsd configuration rejected: {check.stderr or check.stdout}")
            self._process = _Process(self.workdir, f"nsd-{self.port}.log")
            self._process.spawn([binary, "-d", "-c", str(conf)])
            try:
                self._await_ready(timeout)
                return self
            except HarnessError as exc:
                last_error = str(exc)
                self._process.terminate()
                if "already in use" not in self._process.log():
                    break
                self.port = 0
        raise HarnessError(last_error)

    def _config(self) -> str:
        w = self.workdir
        zones = "".join(
            f"zone:\n    name: {origin}\n    zonefile: {path.name}\n" for origin, path in self.zones.items()
        )
        return (
            "server:\n"
            f"    ip-address: {LOOPBACK}\n"
            f"    port: {self.port}\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    zonesdir: "{w}"\n'
            '    database: ""\n'
            f'    zonelistfile: "{w}/zone.list"\n'
            f'    xfrdfile: "{w}/xfrd.state"\n'
            f'    xfrdir: "{w}"\n'
            f'    pidfile: "{w}/nsd.pid"\n'
            "    server-count: 1\n"
            "    verbosity: 1\n"
            "    hide-version: yes\n"
            "    do-ip6: no\n"
            "remote-control:\n"
            "    control-enable: no\n"
            f"{zones}"
        )

    def _await_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        origins = list(self.zones)
        while time.monotonic() < deadline:
            log = self._process.log()
            if not self._process.alive():
                raise HarnessError(f"nsd exited at start:\n{log}")
            with contextlib.suppress(dns.exception.DNSException, OSError):
                answers = [ask(self.port, origin, "SOA", timeout=0.5) for origin in origins]
                if all(a.rcode() == dns.rcode.NOERROR and a.answer for a in answers):
                    return
                missing = [o for o, a in zip(origins, answers, strict=True) if not a.answer]
                if "nsd started" in log and missing:
                    raise HarnessError(f"nsd does not serve {missing}:\n{log}")
            time.sleep(0.02)
        raise HarnessError(f"nsd did not answer within {timeout} s:\n{self._process.log()}")


@contextlib.contextmanager
def silent_nameserver() -> Iterator[str]:
    """A UDP port on loopback that takes queries and never answers (a dead resolver): yields host:port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((LOOPBACK, 0))
        yield f"{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port() -> str:
    """host:port where nothing listens (queries get ICMP port unreachable)."""
    return f"{LOOPBACK}:{free_port()}"


def wait_for_answer(port: int, name: str, expect_listed: bool, timeout: float = 5.0) -> None:
    """Poll until `name` is (or is not) answered with an A record: a test's proof a reload took effect."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(dns.exception.DNSException, OSError):
            reply = ask(port, name)
            listed = any(rr.rdtype == dns.rdatatype.A for rr in reply.answer)
            if listed == expect_listed:
                return
        time.sleep(0.05)
    raise HarnessError(f"{name} still {'not ' if expect_listed else ''}listed after {timeout} s")


# --- a resolver chain stand-in: a UDP relay that delays every answer ---------------------------------


class _RelayCore:
    """Queries in on the front socket → forwarded upstream under relay ids → answers held `delay`, sent back.

    Raw non-blocking sockets drained on each wake-up: the relay must not be the bottleneck it measures.
    """

    def __init__(self, port: int, upstream_port: int, delay: float) -> None:
        import asyncio
        import collections

        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.front, self.back):
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.front.bind((LOOPBACK, port))
        self.back.connect((LOOPBACK, upstream_port))
        self.next_id = 0
        self.waiting: dict[int, tuple[tuple[str, int], bytes]] = {}
        self.held: collections.deque[tuple[float, bytes, tuple[str, int]]] = collections.deque()
        self.flush_scheduled = False
        self.loop.add_reader(self.front.fileno(), self.on_query)
        self.loop.add_reader(self.back.fileno(), self.on_answer)

    def on_query(self) -> None:
        while True:
            try:
                data, addr = self.front.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error about some client: ignore
            if len(data) < 12:
                continue
            self.next_id = (self.next_id + 1) & 0xFFFF
            self.waiting[self.next_id] = (addr, data[:2])
            with contextlib.suppress(OSError):
                self.back.send(self.next_id.to_bytes(2, "big") + data[2:])

    def on_answer(self) -> None:
        now = self.loop.time()
        while True:
            try:
                data = self.back.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            entry = self.waiting.pop(int.from_bytes(data[:2], "big"), None) if len(data) >= 12 else None
            if entry is None:
                continue
            addr, original_id = entry
            self.held.append((now + self.delay, original_id + data[2:], addr))
        if self.held and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_at(self.held[0][0], self.flush)

    def flush(self) -> None:
        now = self.loop.time()
        held, front = self.held, self.front
        while held and held[0][0] <= now:
            _, data, addr = held.popleft()
            with contextlib.suppress(OSError):
                front.sendto(data, addr)
        if held:
            self.loop.call_at(held[0][0], self.flush)
        else:
            self.flush_scheduled = False


def _relay_main(port: int, upstream_port: int, delay: float, ready: object) -> None:
    """Entry point of the relay process (runs until terminated)."""
    import asyncio

    async def serve() -> None:
        _RelayCore(port, upstream_port, delay)
        ready.set()  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    asyncio.run(serve())


@dataclass
class DelayingRelay:
    """A UDP relay on 127.0.0.1 in its own process that holds every answer for `delay` seconds.

    It stands for a resolver chain (stub → recursive → list servers): the same answers, later.
    """

    upstream_port: int
    delay: float = 0.020
    port: int = 0
    _process: object = None

    @property
    def nameserver(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10.0) -> DelayingRelay:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.port = self.port or free_port()
        process = ctx.Process(target=_relay_main, args=(self.port, self.upstream_port, self.delay, ready), daemon=True)
        process.start()
        self._process = process
        if not ready.wait(timeout):
            self.stop()
            raise HarnessError(f"the delaying relay did not start within {timeout} s")
        return self

    def stop(self) -> None:
        process = self._process
        if process is not None:
            process.terminate()  # type: ignore[attr-defined]
            process.join(5)  # type: ignore[attr-defined]
            self._process = None

    def __enter__(self) -> DelayingRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
