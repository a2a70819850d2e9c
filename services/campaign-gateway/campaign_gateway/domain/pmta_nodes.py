"""THE place where a PowerMTA node registration is judged, and where a deploy's result is named.

Public API:
    NodeSpec                     -- a registered node: how to reach it, its paths, its accounting, MailWizz's SMTP
    NODE_DEFAULTS                -- what an empty field means (port 22, root, /etc/pmta/config, ...)
    with_defaults(spec) -> NodeSpec
    validate_node(spec, *, field_prefix="pmta_node") -> None    -- InvalidArgument naming every bad field
    DeployOutcome                -- APPLIED, UNCHANGED, ROLLED_BACK, UNREACHABLE, FAILED
    DEPLOY_FAILURES              -- the outcomes that are alerted
    sending_window_hours(start_hour, end_hour) -> int            -- a tenant's window length, 1..24
    DeployTrigger                -- why a deploy ran: hourly, ip-event, api, standby

The rules:
* a node name is what ip-pool's IPs name in `pmta_node`: lower-case letters, digits and dashes, 1-63 characters;
* the host key is an OpenSSH public key line ("ssh-ed25519 AAAA..."): a node is only ever reached with the key it
  was registered with (the adapter checks the key itself parses);
* paths are absolute; the pmta command and paths hold no shell metacharacters (they are run over SSH);
* `hostname` is the node's host name (the configuration's header); the SSH host when it is a name;
* the HTTP monitor URL, when given, is an http(s) URL without credentials (it is read through the guarded client).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from libs.errors import Violations
from libs.outbound import check_url

NODE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$")
_SSH_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")
_SSH_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|ssh-ed448) [A-Za-z0-9+/]+={0,3}( \S.*)?$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_PATTERN = re.compile(r"^[A-Za-z0-9._*?\[\]-]{1,200}$")


class DeployTrigger(StrEnum):
    HOURLY = "hourly"
    IP_EVENT = "ip-event"
    API = "api"
    STANDBY = "standby"


class DeployOutcome(StrEnum):
    APPLIED = "APPLIED"
    UNCHANGED = "UNCHANGED"
    ROLLED_BACK = "ROLLED_BACK"
    UNREACHABLE = "UNREACHABLE"
    FAILED = "FAILED"


DEPLOY_FAILURES = frozenset({DeployOutcome.ROLLED_BACK, DeployOutcome.UNREACHABLE, DeployOutcome.FAILED})


@dataclass(frozen=True)
class NodeSpec:
    name: str
    ssh_host: str
    ssh_host_key: str
    hostname: str = ""
    ssh_port: int = 0
    ssh_user: str = ""
    config_path: str = ""
    pmta_command: str = ""
    accounting_directory: str = ""
    accounting_move_to: tuple[str, ...] = ()
    accounting_pattern: str = ""
    accounting_pull: bool = True
    http_monitor_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 0


NODE_DEFAULTS = {
    "ssh_port": 22,
    "ssh_user": "root",
    "config_path": "/etc/pmta/config",
    "pmta_command": "/usr/sbin/pmta",
    "accounting_directory": "/var/log/pmta",
    "accounting_pattern": "acct*.csv",
    "smtp_port": 25,
}


@dataclass(frozen=True)
class NodeRecord:
    """A registered node with what this service knows of it."""

    spec: NodeSpec
    create_time: datetime
    update_time: datetime
    deployed_sha256: str = ""
    deployed_text: str = ""
    consecutive_failures: int = 0


def with_defaults(spec: NodeSpec) -> NodeSpec:
    """Empty fields take NODE_DEFAULTS; the host name is the SSH host when that is a name; SMTP goes to it too."""
    filled = {key: value for key, value in NODE_DEFAULTS.items() if not getattr(spec, key)}
    if not spec.hostname and _is_name(spec.ssh_host.strip()):
        filled["hostname"] = spec.ssh_host.strip().lower()
    if not spec.smtp_host:
        filled["smtp_host"] = spec.ssh_host.strip()
    return replace(spec, **filled)  # type: ignore[arg-type]


def _is_name(host: str) -> bool:
    """A host name, not an address written with dots."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host))
    return False


def validate_node(spec: NodeSpec, *, field_prefix: str = "pmta_node") -> None:
    """Every problem of a (defaulted) node at once, each naming its field."""
    problems = Violations()

    def bad(name: str, why: str) -> None:
        problems.add(f"{field_prefix}.{name}", why)

    if not NODE_NAME.match(spec.name):
        bad("name", "1-63 lower-case letters, digits and dashes, not starting or ending with a dash")
    if not _SSH_HOST.match(spec.ssh_host):
        bad("ssh_host", "is required: a host name or an IP address")
    if not _is_name(spec.hostname):
        bad("hostname", "must be the node's host name (required when ssh_host is an address)")
    if not 1 <= spec.ssh_port <= 65535:
        bad("ssh_port", "must be between 1 and 65535")
    if not 1 <= spec.smtp_port <= 65535:
        bad("smtp_port", "must be between 1 and 65535")
    if not _SSH_USER.match(spec.ssh_user):
        bad("ssh_user", "must be a user name")
    if not _HOST_KEY.match(spec.ssh_host_key.strip()):
        bad("ssh_host_key", "must be the node's OpenSSH public host key, e.g. 'ssh-ed25519 AAAA...'")
    for name in ("config_path", "pmta_command", "accounting_directory"):
        value = getattr(spec, name)
        if not _SAFE_PATH.match(value) or "/../" in value + "/":
            bad(name, "must be an absolute path of letters, digits, '.', '_', '-' and '/'")
    for index, directory in enumerate(spec.accounting_move_to):
        if not _SAFE_PATH.match(directory):
            bad(f"accounting_move_to_directories[{index}]", "must be an absolute path")
    if not _PATTERN.match(spec.accounting_pattern):
        bad("accounting_file_pattern", "must be a file name pattern such as 'acct*.csv'")
    if spec.http_monitor_url and (problem := check_url(spec.http_monitor_url)) is not None:
        bad("http_monitor_url", problem)
    if spec.smtp_host and not _SSH_HOST.match(spec.smtp_host):
        bad("smtp_host", "must be a host name or an IP address")
    problems.raise_if_any()


def sending_window_hours(start_hour: int, end_hour: int) -> int:
    """Length of a tenant's sending window [start, end) in hours, wrapping midnight; the whole day when equal."""
    start, end = start_hour % 24, end_hour % 24
    if start == end:
        return 24
    return (end - start) % 24
