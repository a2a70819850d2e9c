"""A PowerMTA node over SSH: its configuration file, its `pmta` command line, its accounting files.

Public API:
    NodeAccess(name, host, port=22, username="root", host_key="ssh-ed25519 AAAA...", client_key=<private key text>,
               config_path="/etc/pmta/config", pmta_command="/usr/sbin/pmta", connect_timeout=10.0,
               command_timeout=60.0, connect_attempts=3)
    PmtaNodeClient(access)                         -- `async with PmtaNodeClient(access) as node: ...`
        .read_config() -> str | None               -- None when the file does not exist
        .deploy_config(text, *, force=False) -> DeployResult
        .run_pmta(*args) -> CommandResult          -- any `pmta` command; never raises on a non-zero exit
        .pause_queue(vmta, domain="*") / .resume_queue(vmta, domain="*") -> CommandResult
        .disable_source(address, vmta, domain="*", reenable_after=None) / .enable_source(...) -> CommandResult
        .list_files(directories, pattern) -> list[RemoteFile]
        .pull_accounting(source, cursor, *, max_bytes=8 MiB) -> AccountingPull
    pause_vmta_on_nodes(accesses, vmta) / resume_vmta_on_nodes(accesses, vmta)
        -> dict[node name, CommandResult | PmtaNodeError]   -- every node at once (asyncio.gather)
    CommandResult, DeployResult, RemoteFile, RemoteFileCursor, AccountingSource, AccountingPiece, AccountingPull
    PmtaNodeError and its kinds: NodeUnreachable, NodeHostKeyMismatch, NodeAuthRefused, NodeCommandFailed,
    NodeCommandTimeout, NodeFileError -- every message names the node, never a key.

Why asyncssh (pinned in requirements.txt): a maintained, fully typed SSH and SFTP client whose host key check is
explicit (the trusted keys are passed in; there is no auto-accept path unless one passes known_hosts=None, which
this module never does), with connect and login timeouts of its own, and asyncio, so one standby IP's queues are
paused on every node in the same instant instead of node after node. Nothing is read from ~/.ssh (no config, no
known_hosts, no agent, no default keys): a node is reached only with what it was registered with.

Deploy: the new file is written next to the old one (same directory, so the rename is atomic on one file system)
and renamed over it (`posix-rename@openssh.com`); then `pmta reload`. When the reload fails, PowerMTA keeps the
old configuration in memory (UG 6.3.4), so the previous file is put back the same way and reloaded again, and the
result says so, with both reload outputs. A text identical to the node's file is not written nor reloaded unless
`force`.

Accounting over SFTP: PowerMTA writes `acct-YYYY-MM-DD-NNNN.csv` next to the configured name and starts a new file
at each rotation (move-interval, max-size, `pmta rotate acct`), in place or in the `move-to` directory (UG 3.3.11,
11.3.1); a plain `acct.csv` renamed away by logrotate is the same story. So the files are found by listing the
accounting directory and the move-to directories with a name pattern and ordered by name (date, then counter); the
cursor remembers the path, the inode and the offset of the file being read. A pull reads the rest of the cursor's
file, found again by its inode wherever it moved, then each newer file from 0. The cursor's file being smaller
than the offset (truncated or rewritten in place) restarts it at 0; its inode gone (deleted by delete-after) skips
to the newer files. Both are reported in `AccountingPull.notes`. Every file but the newest is complete
(`AccountingPiece.complete`): parse it with `final=True`.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

import asyncssh
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from libs.errors import FailedPrecondition, InvalidArgument, ServiceError, Unavailable

_DEFAULT_PULL_BYTES = 8 << 20
_READ_CHUNK = 1 << 20
_LINE_EXTENSION_LIMIT = 4 << 20


# ---------------------------------------------------------------- errors


class PmtaNodeError(ServiceError):
    """A node operation failed; the message names the node and says why, and never carries a key."""

    def __init__(self, node: str, detail: str) -> None:
        self.node = node
        self.detail = detail
        super().__init__(f"PowerMTA node {node!r}: {detail}", metadata={"node": node})


class NodeUnreachable(PmtaNodeError, Unavailable):
    reason = "PMTA_NODE_UNREACHABLE"


class NodeHostKeyMismatch(PmtaNodeError, FailedPrecondition):
    reason = "PMTA_NODE_HOST_KEY_MISMATCH"


class NodeAuthRefused(PmtaNodeError, FailedPrecondition):
    reason = "PMTA_NODE_AUTH_REFUSED"


class NodeCommandFailed(PmtaNodeError, FailedPrecondition):
    reason = "PMTA_NODE_COMMAND_FAILED"

    def __init__(self, node: str, detail: str, result: CommandResult | None = None) -> None:
        super().__init__(node, detail)
        self.result = result


class NodeCommandTimeout(PmtaNodeError, Unavailable):
    reason = "PMTA_NODE_COMMAND_TIMEOUT"


class NodeFileError(PmtaNodeError, Unavailable):
    reason = "PMTA_NODE_FILE_ERROR"


# ---------------------------------------------------------------- plain data


@dataclass(frozen=True)
class NodeAccess:
    """How to reach one node. `client_key` is a secret: it is not in the repr and never in a message."""

    name: str
    host: str
    port: int = 22
    username: str = "root"
    host_key: str = ""
    """The node's registered public host key, OpenSSH format ("ssh-ed25519 AAAA... [comment]")."""
    client_key: str = field(default="", repr=False)
    """Private key text (OpenSSH or PEM) email-engine logs in with."""
    config_path: str = "/etc/pmta/config"
    pmta_command: str = "/usr/sbin/pmta"
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    connect_attempts: int = 3


@dataclass(frozen=True)
class CommandResult:
    node: str
    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def output(self) -> str:
        """stdout then stderr, stripped: what PowerMTA said."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


@dataclass(frozen=True)
class DeployResult:
    node: str
    applied: bool
    """The new configuration is on disk and in force."""
    changed: bool
    """The node's file differed from the new text (False: nothing was written nor reloaded)."""
    reload: CommandResult | None
    restored: bool = False
    """The reload failed and the previous file was put back."""
    restore_reload: CommandResult | None = None


@dataclass(frozen=True)
class RemoteFile:
    path: str
    inode: int
    size: int
    mtime: float


@dataclass(frozen=True)
class RemoteFileCursor:
    """Where reading a node's accounting stopped: a file (path and inode) and a byte offset in it."""

    path: str
    inode: int
    offset: int = 0

    def advanced_to(self, offset: int) -> RemoteFileCursor:
        return replace(self, offset=offset)


@dataclass(frozen=True)
class AccountingSource:
    directory: str = "/var/log/pmta"
    pattern: str = "acct*.csv"
    """Shell pattern of the accounting files' names: matches acct.csv and acct-YYYY-MM-DD-NNNN.csv."""
    other_directories: tuple[str, ...] = ()
    """`move-to` directories where rotated files go."""

    @property
    def directories(self) -> tuple[str, ...]:
        return (self.directory, *self.other_directories)


@dataclass(frozen=True)
class AccountingPiece:
    start: RemoteFileCursor
    """The file and the offset `data` starts at."""
    data: bytes
    complete: bool
    """`data` runs to the end of a file that will not grow (a newer file exists)."""
    cut: bool = False
    """The byte budget stopped the read before the end of the file (more is there to read)."""


@dataclass(frozen=True)
class AccountingPull:
    pieces: tuple[AccountingPiece, ...]
    notes: tuple[str, ...] = ()

    @property
    def cursor(self) -> RemoteFileCursor | None:
        """Where the data read ends (store the parser's offset instead when it stopped before a partial record)."""
        if not self.pieces:
            return None
        last = self.pieces[-1]
        return last.start.advanced_to(last.start.offset + len(last.data))


# ---------------------------------------------------------------- the client


class PmtaNodeClient:
    def __init__(self, access: NodeAccess) -> None:
        self.access = access
        self._connection: asyncssh.SSHClientConnection | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def name(self) -> str:
        return self.access.name

    async def connect(self) -> None:
        """Opens the SSH connection, retrying an unreachable node with backoff; host key and auth are not retried."""
        keys = _keys(self.access)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.access.connect_attempts)),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type(NodeUnreachable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self._connection = await self._open(*keys)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            await self._connection.wait_closed()
            self._connection = None

    async def _open(self, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey) -> asyncssh.SSHClientConnection:
        access = self.access
        try:
            return await asyncssh.connect(
                access.host,
                access.port,
                username=access.username,
                # The registered key only; asyncssh then also offers only that key's signature algorithms.
                known_hosts=([host_key], [], []),
                client_keys=[client_key],
                config=None,
                agent_path=None,
                preferred_auth="publickey",
                password_auth=False,
                kbdint_auth=False,
                host_based_auth=False,
                gss_auth=False,
                gss_kex=False,
                connect_timeout=access.connect_timeout,
                login_timeout=access.connect_timeout,
                keepalive_interval=30,
                errors="replace",
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise NodeHostKeyMismatch(self.name, "host key does not match the registered key; refusing") from exc
        except asyncssh.PermissionDenied as exc:
            raise NodeAuthRefused(self.name, f"{access.username}@{access.host} refused the client key") from exc
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise NodeUnreachable(self.name, f"cannot connect to {access.host}:{access.port}: {_why(exc)}") from exc

    def _conn(self) -> asyncssh.SSHClientConnection:
        if self._connection is None:
            raise NodeUnreachable(self.name, "not connected")
        return self._connection

    # ------------------------------------------------------------ commands

    async def _exec(self, command: str, timeout: float | None = None) -> CommandResult:
        limit = timeout or self.access.command_timeout
        try:
            done = await asyncio.wait_for(self._conn().run(command, check=False), limit)
        except TimeoutError as exc:
            raise NodeCommandTimeout(self.name, f"{command!r} did not finish in {limit:g} s") from exc
        except (OSError, asyncssh.Error) as exc:
            raise NodeUnreachable(self.name, f"connection lost running {command!r}: {_why(exc)}") from exc
        return CommandResult(
            node=self.name,
            command=command,
            exit_status=done.exit_status if done.exit_status is not None else -1,
            stdout=_text(done.stdout),
            stderr=_text(done.stderr),
        )

    async def run_pmta(self, *args: str) -> CommandResult:
        """`<pmta command> args...` with every argument quoted for the remote shell."""
        return await self._exec(shlex.join([self.access.pmta_command, *args]))

    async def _checked(self, *args: str) -> CommandResult:
        result = await self.run_pmta(*args)
        if not result.ok:
            detail = f"`pmta {' '.join(args)}` exited {result.exit_status}: {result.output[:300]}"
            raise NodeCommandFailed(self.name, detail, result)
        return result

    async def pause_queue(self, vmta: str, domain: str = "*") -> CommandResult:
        """`pmta pause queue domain/vmta`: the VMTA stops delivering at once (queued mail stays)."""
        return await self._checked("pause", "queue", f"{domain}/{vmta}")

    async def resume_queue(self, vmta: str, domain: str = "*") -> CommandResult:
        return await self._checked("resume", "queue", f"{domain}/{vmta}")

    async def disable_source(
        self, address: str, vmta: str, domain: str = "*", reenable_after: str | None = None
    ) -> CommandResult:
        options = [f"--reenable-after={reenable_after}"] if reenable_after else []
        return await self._checked("disable", "source", *options, address, f"{domain}/{vmta}")

    async def enable_source(self, address: str, vmta: str, domain: str = "*") -> CommandResult:
        return await self._checked("enable", "source", address, f"{domain}/{vmta}")

    # ------------------------------------------------------------ configuration

    async def read_config(self) -> str | None:
        data = await self._read_file(self.access.config_path)
        return None if data is None else data.decode("utf-8", "replace")

    async def deploy_config(self, text: str, *, force: bool = False) -> DeployResult:
        path = self.access.config_path
        new = text.encode("utf-8")
        previous = await self._read_file(path)
        if previous == new and not force:
            return DeployResult(node=self.name, applied=True, changed=False, reload=None)
        await self._write_atomically(path, new)
        reload = await self.run_pmta("reload")
        if reload.ok:
            return DeployResult(node=self.name, applied=True, changed=True, reload=reload)
        restore_reload = None
        if previous is None:
            await self._remove(path)
        else:
            await self._write_atomically(path, previous)
            restore_reload = await self.run_pmta("reload")
        return DeployResult(
            node=self.name, applied=False, changed=True, reload=reload, restored=True, restore_reload=restore_reload
        )

    async def _read_file(self, path: str) -> bytes | None:
        try:
            async with self._conn().start_sftp_client() as sftp:
                try:
                    async with sftp.open(path, "rb") as handle:
                        return await handle.read()
                except asyncssh.SFTPNoSuchFile:
                    return None
        except (OSError, asyncssh.Error) as exc:
            raise NodeFileError(self.name, f"cannot read {path}: {_why(exc)}") from exc

    async def _write_atomically(self, path: str, data: bytes) -> None:
        directory, name = posixpath.split(path)
        temporary = posixpath.join(directory, f".{name}.email-engine-{secrets.token_hex(6)}")
        try:
            async with self._conn().start_sftp_client() as sftp:
                mode = await _mode_of(sftp, path)
                async with sftp.open(temporary, "wb", asyncssh.SFTPAttrs(permissions=mode)) as handle:
                    await handle.write(data)
                    await _fsync(handle)
                await sftp.chmod(temporary, mode)
                await sftp.posix_rename(temporary, path)
        except (OSError, asyncssh.Error) as exc:
            await self._remove(temporary, quiet=True)
            raise NodeFileError(self.name, f"cannot write {path}: {_why(exc)}") from exc

    async def _remove(self, path: str, *, quiet: bool = False) -> None:
        try:
            async with self._conn().start_sftp_client() as sftp:
                await sftp.remove(path)
        except (OSError, asyncssh.Error) as exc:
            if not quiet:
                raise NodeFileError(self.name, f"cannot remove {path}: {_why(exc)}") from exc

    # ------------------------------------------------------------ accounting

    async def list_files(self, directories: Sequence[str], pattern: str) -> list[RemoteFile]:
        """Regular files named like `pattern` directly in `directories`, ordered by name then directory."""
        if not directories:
            return []
        command = (
            "find "
            + " ".join(shlex.quote(directory) for directory in directories)
            + f" -maxdepth 1 -type f -name {shlex.quote(pattern)} -printf '%i\\t%s\\t%T@\\t%p\\n' 2>/dev/null; true"
        )
        result = await self._exec(command)
        files = [_remote_file(line) for line in result.stdout.splitlines() if line.strip()]
        return sorted((file for file in files if file is not None), key=lambda f: (posixpath.basename(f.path), f.path))

    async def pull_accounting(
        self, source: AccountingSource, cursor: RemoteFileCursor | None, *, max_bytes: int = _DEFAULT_PULL_BYTES
    ) -> AccountingPull:
        """The accounting data written since `cursor` (None: every file there is), about `max_bytes` of it.

        `max_bytes` is a soft limit: a read goes on to the end of the line it stops in, so a one-line record is
        never cut. A record spanning lines (a quoted newline) can be: when the parser finishes nothing in a `cut`
        piece, pull again with a larger `max_bytes`.
        """
        files = await self.list_files(source.directories, source.pattern)
        plan, notes = _plan(files, cursor)
        pieces: list[AccountingPiece] = []
        budget = max_bytes
        for file, offset in plan:
            if budget <= 0:
                break
            data = await self._read_lines(file, offset, budget)
            end = offset + len(data)
            complete = file is not files[-1] and end >= file.size
            pieces.append(
                AccountingPiece(RemoteFileCursor(file.path, file.inode, offset), data, complete, cut=end < file.size)
            )
            budget -= len(data)
            if not complete:
                break
        return AccountingPull(pieces=tuple(pieces), notes=tuple(notes))

    async def _read_lines(self, file: RemoteFile, offset: int, budget: int) -> bytes:
        """About `budget` bytes from `offset`, extended to the end of the line they stop in (so a pull never cuts
        a one-line record), up to the size listed (what is written after the listing waits for the next pull)."""
        if file.size <= offset:
            return b""
        try:
            async with self._conn().start_sftp_client() as sftp, sftp.open(file.path, "rb") as handle:
                await handle.seek(offset)
                data = await _read_up_to(handle, min(budget, file.size - offset))
                limit = file.size - offset
                while len(data) < limit and not data.endswith(b"\n") and len(data) < budget + _LINE_EXTENSION_LIMIT:
                    more = await _read_up_to(handle, min(_READ_CHUNK, limit - len(data)))
                    if not more:
                        break
                    end = more.find(b"\n")
                    data += more if end < 0 else more[: end + 1]
                return data
        except (OSError, asyncssh.Error) as exc:
            raise NodeFileError(self.name, f"cannot read {file.path}: {_why(exc)}") from exc


async def _read_up_to(handle: asyncssh.SFTPClientFile, length: int) -> bytes:
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = await handle.read(min(remaining, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _plan(files: list[RemoteFile], cursor: RemoteFileCursor | None) -> tuple[list[tuple[RemoteFile, int]], list[str]]:
    """Which files to read from which offset: the cursor's file (found by inode) from its offset, then newer ones."""
    if cursor is None:
        return [(file, 0) for file in files if file.size > 0], []
    notes: list[str] = []
    current = next((file for file in files if file.inode == cursor.inode), None)
    cursor_name = posixpath.basename(cursor.path)
    if current is None:
        notes.append(f"{cursor.path} (inode {cursor.inode}) is gone: data after offset {cursor.offset} may be lost")
        return [(file, 0) for file in files if posixpath.basename(file.path) > cursor_name], notes
    plan: list[tuple[RemoteFile, int]] = []
    if current.size < cursor.offset:
        notes.append(f"{current.path} shrank below offset {cursor.offset}: read again from 0")
        plan.append((current, 0))
    elif current.size > cursor.offset:
        plan.append((current, cursor.offset))
    position = files.index(current)
    plan += [(file, 0) for file in files[position + 1 :] if file.size > 0]
    return plan, notes


def _remote_file(line: str) -> RemoteFile | None:
    parts = line.split("\t", 3)
    if len(parts) != 4:
        return None
    try:
        return RemoteFile(path=parts[3], inode=int(parts[0]), size=int(parts[1]), mtime=float(parts[2]))
    except ValueError:
        return None


async def _mode_of(sftp: asyncssh.SFTPClient, path: str) -> int:
    try:
        attrs = await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return 0o644
    return (attrs.permissions or 0o644) & 0o7777


async def _fsync(handle: asyncssh.SFTPClientFile) -> None:
    """fsync@openssh.com when the server has it: the rename must not publish an empty file after a crash."""
    with contextlib.suppress(asyncssh.SFTPOpUnsupported):
        await handle.fsync()


def _keys(access: NodeAccess) -> tuple[asyncssh.SSHKey, asyncssh.SSHKey]:
    problems: list[str] = []
    host_key = client_key = None
    try:
        host_key = asyncssh.import_public_key(access.host_key.strip())
    except (asyncssh.KeyImportError, ValueError, TypeError):
        problems.append("host_key: not an OpenSSH public key")
    try:
        client_key = asyncssh.import_private_key(access.client_key)
    except (asyncssh.KeyImportError, ValueError, TypeError):
        problems.append("client_key: not a private key (OpenSSH or PEM, without passphrase)")
    if host_key is None or client_key is None:
        raise InvalidArgument(f"nodes[{access.name}]", "; ".join(problems))
    return host_key, client_key


def _why(exc: BaseException) -> str:
    """A short reason from an exception, without anything it might carry beyond its class and reason text."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    text = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return text[:200]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# ---------------------------------------------------------------- many nodes at once


async def _on_node(access: NodeAccess, verb: str, vmta: str) -> CommandResult | PmtaNodeError:
    try:
        async with PmtaNodeClient(access) as node:
            if verb == "pause":
                return await node.pause_queue(vmta)
            return await node.resume_queue(vmta)
    except PmtaNodeError as error:
        return error


async def pause_vmta_on_nodes(accesses: Sequence[NodeAccess], vmta: str) -> dict[str, CommandResult | PmtaNodeError]:
    """`pmta pause queue */<vmta>` on every node at the same time; each node's result or typed error."""
    results = await asyncio.gather(*(_on_node(access, "pause", vmta) for access in accesses))
    return {access.name: result for access, result in zip(accesses, results, strict=True)}


async def resume_vmta_on_nodes(accesses: Sequence[NodeAccess], vmta: str) -> dict[str, CommandResult | PmtaNodeError]:
    results = await asyncio.gather(*(_on_node(access, "resume", vmta) for access in accesses))
    return {access.name: result for access, result in zip(accesses, results, strict=True)}
