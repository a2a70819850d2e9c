"""A real OpenSSH server per PowerMTA test node, on a free loopback port, with the stand-in `pmta` command.

Each node gets its own directory with its own host key, sshd_config, pid file and authorized_keys, all generated
with ssh-keygen; sshd runs in the foreground (`sshd -D -e -f <config>`) as a child of the test process and is stopped
by its own pid. It works as root (CI runs the tests as root): `UsePAM no` and `StrictModes no` (the temp dir is not
root-owned the way sshd wants), key-only authentication, `PermitRootLogin prohibit-password`, `AllowUsers` the
current user, SFTP through `internal-sftp`. sshd needs its privilege separation directory (/run/sshd) when started
as root; it is created if missing, the way Debian's package does at boot.

The node's directory is the stand-in's home: the config file at `etc/pmta/config`, the command at `bin/pmta`,
accounting files under `var/log/pmta`, the stand-in's journal. sshd's `SetEnv PMTA_STANDIN_HOME=...` tells the
stand-in where it is, so the product runs `<pmta_command> reload` exactly as it would on a real node.

A server that cannot start raises (the test fails); nothing here skips.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.config import REPO_ROOT
from tests.harness.servers import free_port, port_open, wait_until

STANDIN = REPO_ROOT / "tests" / "standins" / "pmta"
INITIAL_CONFIG = "# PowerMTA configuration before email-engine's first deploy\n"
_SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/bin/sshd")


def _tool(name: str, candidates: tuple[str, ...] = ()) -> str:
    found = shutil.which(name) or next((path for path in candidates if os.access(path, os.X_OK)), None)
    if found is None:
        raise RuntimeError(f"{name} not found: run tools/ensure_system_packages.sh (Debian package openssh-server)")
    return found


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public: str
    """The public key line, "ssh-ed25519 AAAA... comment"."""

    @property
    def private(self) -> str:
        return self.private_path.read_text()


def generate_key(path: Path, comment: str = "email-engine-test", kind: str = "ed25519") -> KeyPair:
    """A fresh key pair (ed25519, or rsa at 3072 bits) with no passphrase, made by ssh-keygen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", kind, *size, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return KeyPair(private_path=path, public=path.with_suffix(".pub").read_text().strip())


@dataclass
class PmtaNodeServer:
    """One fake PowerMTA host: a real sshd, the stand-in `pmta`, and the files a node has."""

    name: str
    root: Path
    client_key: KeyPair
    port: int = field(default_factory=free_port)
    user: str = field(default_factory=lambda: pwd.getpwuid(os.getuid()).pw_name)
    host_key: KeyPair | None = None
    rsa_host_key: KeyPair | None = None
    """A second host key of another type: a node may be registered with either."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.root / "node"

    @property
    def config_path(self) -> Path:
        return self.home / "etc" / "pmta" / "config"

    @property
    def pmta_command(self) -> Path:
        return self.home / "bin" / "pmta"

    @property
    def accounting_dir(self) -> Path:
        return self.home / "var" / "log" / "pmta"

    def registration(self, **overrides: Any) -> dict[str, Any]:
        """The node as `POST /api/v2/pmta-nodes` (and `CreatePmtaNode`) takes it: its SSH address and host key, its
        paths, and an SMTP address on loopback; `overrides` replace or add fields."""
        assert self.host_key is not None, "the node's host key is made when it starts"
        return {
            "name": self.name,
            "hostname": f"{self.name}.example.net",
            "ssh_host": "127.0.0.1",
            "ssh_port": self.port,
            "ssh_user": self.user,
            "ssh_host_key": self.host_key.public,
            "config_path": str(self.config_path),
            "pmta_command": str(self.pmta_command),
            "accounting_directory": str(self.accounting_dir),
            "smtp_host": "127.0.0.1",
            "smtp_port": 2525,
            **overrides,
        }

    @property
    def journal_path(self) -> Path:
        return self.home / "journal.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "sshd.log"

    def start(self) -> PmtaNodeServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = generate_key(self.root / "ssh_host_ed25519_key", comment=f"{self.name}-host")
        self.rsa_host_key = generate_key(self.root / "ssh_host_rsa_key", comment=f"{self.name}-host", kind="rsa")
        (self.root / "authorized_keys").write_text(self.client_key.public + "\n")
        self._install_node()
        config = self.root / "sshd_config"
        config.write_text(self._sshd_config())
        _ensure_privilege_separation_dir()
        sshd = _tool("sshd", _SSHD_CANDIDATES)
        check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects its test configuration: {check.stderr.strip()}")
        self._launch()
        return self

    def _launch(self) -> None:
        sshd = _tool("sshd", _SSHD_CANDIDATES)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.root / "sshd_config")], stdout=log, stderr=log
            )
        wait_until(lambda: port_open(self.port), 15, f"sshd for {self.name}", self.proc)

    def start_again(self) -> None:
        """The node back after `stop`: the same host keys, files and port (the host was down, nothing changed)."""
        self._launch()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def _sshd_config(self) -> str:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            "AddressFamily inet",
            f"HostKey {self.root / 'ssh_host_ed25519_key'}",
            f"HostKey {self.root / 'ssh_host_rsa_key'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            f"AllowUsers {self.user}",
            "Subsystem sftp internal-sftp",
            f"SetEnv PMTA_STANDIN_HOME={self.home}",
            "MaxStartups 64",
            "LogLevel VERBOSE",
        ]
        return "\n".join(lines) + "\n"

    def _install_node(self) -> None:
        for directory in (self.config_path.parent, self.pmta_command.parent, self.accounting_dir):
            directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STANDIN, self.pmta_command)
        self.pmta_command.chmod(self.pmta_command.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.reset()

    def reset(self) -> None:
        """Back to a node that never saw email-engine: initial config in force, empty journal, no queue paused."""
        self.config_path.write_text(INITIAL_CONFIG)
        state = self.home / "state"
        if state.exists():
            shutil.rmtree(state)
        state.mkdir()
        (state / "active-config").write_text(INITIAL_CONFIG)
        for leftover in (self.journal_path, self.home / "fail-next-reload"):
            leftover.unlink(missing_ok=True)
        for path in self.accounting_dir.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for stray in self.config_path.parent.glob(".config.email-engine-*"):
            stray.unlink()

    def fail_next_reload(self, message: str = "argument missing") -> None:
        (self.home / "fail-next-reload").write_text(message)

    def journal(self) -> list[dict[str, object]]:
        if not self.journal_path.exists():
            return []
        return [json.loads(line) for line in self.journal_path.read_text().splitlines() if line.strip()]

    def active_config(self) -> str:
        return (self.home / "state" / "active-config").read_text()

    def queues(self) -> dict[str, list[str]]:
        path = self.home / "state" / "queues.json"
        return json.loads(path.read_text()) if path.exists() else {"paused": [], "disabled": []}


def _ensure_privilege_separation_dir() -> None:
    if os.geteuid() != 0:
        return
    path = Path("/run/sshd")
    if not path.exists():
        path.mkdir(mode=0o755, parents=True)


@contextmanager
def running_nodes(root: Path, names: tuple[str, ...], client_key: KeyPair) -> Iterator[list[PmtaNodeServer]]:
    """One sshd per name, started in order and all stopped (by their own pids) on exit."""
    started: list[PmtaNodeServer] = []
    try:
        for name in names:
            started.append(PmtaNodeServer(name=name, root=root / name, client_key=client_key).start())
        yield started
    finally:
        for node in started:
            node.stop()
