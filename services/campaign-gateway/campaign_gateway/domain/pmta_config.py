"""THE place where a PowerMTA node's configuration is decided: one text per node, rendered from the IP pool.

Public API:
    IpState, SENDING_STATES                    -- the ip-pool service's IP states (from `ip_states.py`)
    PmtaNode(name, hostname)
    NodeIp(address, helo_hostname, tenant_id, state, daily_quota, hourly_quota, provider_caps={},
           sending_window_hours=None)
    NodeIp.may_send -> bool                    -- WARMING/WARM with both quotas above 0
    RenderSettings(sending_window_hours=24, accounting_file=..., accounting_forwarder_command=None, ...)
    BackoffPolicy, BACKOFF_POLICIES            -- per provider group: what a queue in backoff mode may do
    RenderedConfig(text, pools, excluded)
    vmta_name(address) -> str                  -- "vmta-1-2-3-4", "vmta-2001-db8--1"
    address_from_vmta(name) -> str | None      -- the inverse, None for a name this module never makes
    pool_name(tenant_id) -> str                -- "tenant-sos-expat"
    rate(count, hours) -> str                  -- PowerMTA rate syntax: "0", "500/h", "200/24h"
    render_node_config(*, node, ips, settings=DEFAULT_RENDER_SETTINGS) -> RenderedConfig
    diff_configs(old, new, *, old_label="current", new_label="rendered") -> str   -- unified diff, "" when equal

What the rendered file holds (the part of PowerMTA's configuration email-engine owns; a node's main config includes
it, or it is the whole config of a node email-engine manages entirely), all sorted so the same pool renders the
same bytes:

* a header comment saying it is generated and must not be edited;
* `<acct-file>`: the accounting file, and (when the forwarder command is set) the same records piped to the
  forwarder. The file copy stays because a broken pipe stays broken until the next reload (UG 11.3). Records
  d,b,t,rb,f with explicit `record-fields`, so every column the ingester needs is there whatever the defaults;
* one `<smtp-pattern-list backoff-<group>>` per provider group that has reputation-throttling replies in
  `provider_replies` (Gmail 421-4.7.28, Microsoft 451 4.7.650, Yahoo TSS04, ...), each reply `mode=backoff`;
* global `<domain>` blocks for those groups' queue domains: the pattern list and what backoff mode allows
  (BACKOFF_POLICIES). Backoff is sticky in PowerMTA, so every policy sets `backoff-to-normal-after`;
* one `<virtual-mta vmta-a-b-c-d>` per IP that is not RETIRED: `smtp-source-host IP HELO` (in that order),
  `max-smtp-msg-rate` from the hourly quota, and per-provider `<domain>` blocks whose `max-msg-rate` is the IP's
  daily cap for that provider spread over the sending window. An IP that may not send (STANDBY, PAUSED, or a quota
  of 0) keeps its VMTA, so its queued mail stays addressable and its queues can be paused, with
  `max-smtp-msg-rate 0` and no provider blocks;
* one `<virtual-mta-pool tenant-<id>>` per tenant with the VMTAs that may send, and only those. Pools carry no
  `<domain>` blocks, and an IP belongs to one tenant, so no VMTA is ever in two pools with `<domain>` blocks
  (an error in PowerMTA, UG 3.3.13.2). A tenant with no IP allowed to send gets no pool (it is listed in
  `RenderedConfig.excluded`), since an empty pool would accept mail it cannot send.

The provider rate formula: `max-msg-rate = <daily cap>/<W>h` where W is the sending window in hours (the IP's
tenant's window when `NodeIp.sending_window_hours` says it, else the node's) (PowerMTA 5
accepts a multiple in the denominator, UG 3.3.10.33), i.e. the cap spread evenly over the hours the tenant sends in:
exact, no rounding, and a cap of 5 over a 12 h window stays 5, not 12 x ceil(5/12). A cap of 0 renders `0`.
PowerMTA applies it per queue (domain/VMTA): each of a group's queue domains gets the group's rate, so the small
ones (googlemail.com next to gmail.com) can add a little on top; MailWizz's quotas hold the exact daily figure, and
these rates are the ceiling against bursts. The VMTA's `max-smtp-msg-rate` is its hourly quota per hour.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from campaign_gateway.domain.ip_states import SENDING_STATES, IpState
from campaign_gateway.domain.provider_replies import backoff_patterns
from campaign_gateway.domain.providers import PROVIDERS, ProviderGroup, spec_of
from libs.errors import Violations


@dataclass(frozen=True)
class PmtaNode:
    name: str
    hostname: str


@dataclass(frozen=True)
class NodeIp:
    """One IP configured on a node, as the IP pool sees it today."""

    address: str
    helo_hostname: str
    tenant_id: str
    state: IpState
    daily_quota: int
    hourly_quota: int
    provider_caps: Mapping[ProviderGroup, int] = field(default_factory=dict)
    """Most messages this IP may send to each provider group per day; a group left out has no cap of its own."""
    sending_window_hours: int | None = None
    """Hours per day its tenant sends in; None: the node's `RenderSettings.sending_window_hours`."""

    @property
    def may_send(self) -> bool:
        return self.state in SENDING_STATES and self.daily_quota > 0 and self.hourly_quota > 0

    @property
    def vmta(self) -> str:
        return vmta_name(self.address)


@dataclass(frozen=True)
class BackoffPolicy:
    """What a provider's queue may do once one of its throttling replies put it in backoff mode."""

    max_smtp_out: int
    retry_after: str
    to_normal_after: str
    max_msg_rate: str | None = None


# From the mailbox-providers reference, section 3 ("Action / source" column).
BACKOFF_POLICIES: Mapping[ProviderGroup, BackoffPolicy] = {
    # Gmail: pause at least 10 minutes, then one connection.
    ProviderGroup.GMAIL: BackoffPolicy(max_smtp_out=1, retry_after="10m", to_normal_after="1h"),
    # Microsoft: 1 message per minute, 1 connection, for 90 minutes (KumoMTA's shaping).
    ProviderGroup.MICROSOFT: BackoffPolicy(
        max_smtp_out=1, retry_after="10m", to_normal_after="90m", max_msg_rate="1/m"
    ),
    # Yahoo: suspend at least 2 hours (TSS05: 4 hours).
    ProviderGroup.YAHOO: BackoffPolicy(max_smtp_out=1, retry_after="2h", to_normal_after="4h"),
    # Orange OFR_999 and SFR_IN_1xx: about 2 hours of suspension.
    ProviderGroup.ORANGE: BackoffPolicy(max_smtp_out=1, retry_after="2h", to_normal_after="3h"),
    ProviderGroup.SFR: BackoffPolicy(max_smtp_out=1, retry_after="2h", to_normal_after="3h"),
    # GMX / WEB.DE: retry in hours.
    ProviderGroup.GMX: BackoffPolicy(max_smtp_out=1, retry_after="1h", to_normal_after="3h"),
    # iCloud: KumoMTA suspends 15 minutes.
    ProviderGroup.ICLOUD: BackoffPolicy(max_smtp_out=1, retry_after="15m", to_normal_after="1h"),
}

ACCOUNTING_RECORDS = ("d", "b", "t", "rb", "f")
_DELIVERY_FIELDS = (
    "timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
    "dlvSourceIp,vmta,vmtaPool,jobId,envId,queue,header_Message-Id"
)
ACCOUNTING_FIELDS: Mapping[str, str] = {
    "d": _DELIVERY_FIELDS,
    "b": _DELIVERY_FIELDS,
    "t": _DELIVERY_FIELDS,
    "rb": "timeLogged,orig,rcpt,dsnStatus,dsnDiag,dsnMta,bounceCat,envId,format",
    "f": "timeLogged,feedbackType,format,envid,orig,rcpt,reportingMTA,dlvSourceIp,reportedDomain,header_Message-Id",
}


@dataclass(frozen=True)
class RenderSettings:
    sending_window_hours: int = 24
    """Hours per day a tenant sends in; per-provider daily caps are spread over them."""
    accounting_file: str = "/var/log/pmta/acct.csv"
    accounting_forwarder_command: str | None = None
    """Command PowerMTA pipes accounting records to (the forwarder that posts NDJSON); None: file only."""
    accounting_move_interval: str = "1d"
    accounting_max_size: str = "250M"
    max_smtp_out_per_vmta: int | None = None


DEFAULT_RENDER_SETTINGS = RenderSettings()


@dataclass(frozen=True)
class RenderedConfig:
    text: str
    pools: Mapping[str, tuple[str, ...]]
    """Pool name -> the VMTAs in it, as rendered."""
    excluded: tuple[tuple[str, str], ...]
    """(VMTA or pool name, why it may not send), for every VMTA kept out of its pool and every pool not rendered."""


_VMTA_PREFIX = "vmta-"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$")
_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_INTERVAL = re.compile(r"^(\d+[wdhms])+$")
_COMMAND_FORBIDDEN = re.compile(r"[\n\r<>#]")


def vmta_name(address: str) -> str:
    """The VMTA of an IP: "vmta-" + the canonical address with dots or colons as dashes."""
    canonical = str(ipaddress.ip_address(address.strip()))
    return _VMTA_PREFIX + canonical.replace(".", "-").replace(":", "-")


def address_from_vmta(name: str) -> str | None:
    """The IP a `vmta_name` came from; None for any other VMTA name."""
    if not name.startswith(_VMTA_PREFIX):
        return None
    body = name[len(_VMTA_PREFIX) :]
    for candidate in (body.replace("-", "."), body.replace("-", ":")):
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
        if vmta_name(address) == name:
            return address
    return None


def pool_name(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


def rate(count: int, hours: int) -> str:
    """`count` messages per `hours` hours in PowerMTA's rate syntax (N/[M]{s|m|h|d}); 0 stays 0."""
    if count <= 0:
        return "0"
    return f"{count}/h" if hours == 1 else f"{count}/{hours}h"


def _validate(node: PmtaNode, ips: Sequence[NodeIp], settings: RenderSettings) -> None:
    problems = Violations()
    if not node.name.strip():
        problems.add("node.name", "must not be empty")
    if not _HOSTNAME.match(node.hostname):
        problems.add("node.hostname", f"{node.hostname!r} is not a host name")
    if not 1 <= settings.sending_window_hours <= 24:
        problems.add("settings.sending_window_hours", "must be between 1 and 24")
    if not settings.accounting_file.startswith("/"):
        problems.add("settings.accounting_file", "must be an absolute path")
    command = settings.accounting_forwarder_command
    if command is not None and (not command.strip() or _COMMAND_FORBIDDEN.search(command)):
        problems.add("settings.accounting_forwarder_command", "must be one line without '<', '>' or '#'")
    seen: set[str] = set()
    for index, ip in enumerate(ips):
        _validate_ip(problems, f"ips[{index}]", ip, seen)
    problems.raise_if_any()


def _validate_ip(problems: Violations, where: str, ip: NodeIp, seen: set[str]) -> None:
    try:
        canonical = str(ipaddress.ip_address(ip.address.strip()))
    except ValueError:
        problems.add(f"{where}.address", f"{ip.address!r} is not an IP address")
        return
    if canonical in seen:
        problems.add(f"{where}.address", f"{canonical} is listed twice")
    seen.add(canonical)
    if not _HOSTNAME.match(ip.helo_hostname):
        problems.add(f"{where}.helo_hostname", f"{ip.helo_hostname!r} is not a host name")
    if not _TENANT.match(ip.tenant_id):
        problems.add(f"{where}.tenant_id", "lower-case letters, digits and dashes only")
    if ip.sending_window_hours is not None and not 1 <= ip.sending_window_hours <= 24:
        problems.add(f"{where}.sending_window_hours", "must be between 1 and 24")
    if ip.daily_quota < 0 or ip.hourly_quota < 0:
        problems.add(f"{where}.quota", "quotas must be 0 or more")
    for group, cap in ip.provider_caps.items():
        if group is ProviderGroup.OTHER or cap < 0:
            problems.add(f"{where}.provider_caps.{group}", "a cap is 0 or more, for a named provider group")


def _header(node: PmtaNode, settings: RenderSettings) -> list[str]:
    return [
        f"# generated by email-engine (campaign-gateway) for PowerMTA node {node.name} ({node.hostname})",
        "# do not edit: every deploy overwrites this file",
        f"# sending window {settings.sending_window_hours} h: provider max-msg-rate = daily cap / window",
        "",
    ]


def _acct_block(target: str, settings: RenderSettings, *, pipe: bool) -> list[str]:
    lines = [f"<acct-file {target}>", f"    records {','.join(ACCOUNTING_RECORDS)}"]
    lines += [f"    record-fields {kind} {ACCOUNTING_FIELDS[kind]}" for kind in ACCOUNTING_RECORDS]
    if not pipe:
        lines += [
            f"    move-interval {settings.accounting_move_interval}",
            f"    max-size {settings.accounting_max_size}",
        ]
    return [*lines, "</acct-file>", ""]


def _accounting(settings: RenderSettings) -> list[str]:
    lines = _acct_block(settings.accounting_file, settings, pipe=False)
    if settings.accounting_forwarder_command:
        lines += _acct_block("|" + settings.accounting_forwarder_command.strip(), settings, pipe=True)
    return lines


def _pattern_list_name(group: ProviderGroup) -> str:
    return f"backoff-{group.value.lower()}"


def _backoff_groups() -> list[ProviderGroup]:
    return [spec.group for spec in PROVIDERS if backoff_patterns(spec.group) and spec.group in BACKOFF_POLICIES]


def _pattern_lists() -> list[str]:
    lines: list[str] = []
    for group in _backoff_groups():
        lines.append(f"<smtp-pattern-list {_pattern_list_name(group)}>")
        lines += [f"    reply /{row.pattern}/ mode=backoff" for row in backoff_patterns(group)]
        lines += ["</smtp-pattern-list>", ""]
    return lines


def _global_domains() -> list[str]:
    lines: list[str] = []
    for group in _backoff_groups():
        policy = BACKOFF_POLICIES[group]
        spec = spec_of(group)
        for domain in spec.queue_domains if spec else ():
            lines += [
                f"<domain {domain}>",
                f"    smtp-pattern-list {_pattern_list_name(group)}",
                f"    backoff-max-smtp-out {policy.max_smtp_out}",
                f"    backoff-retry-after {policy.retry_after}",
                f"    backoff-to-normal-after {policy.to_normal_after}",
            ]
            if policy.max_msg_rate:
                lines.append(f"    backoff-max-msg-rate {policy.max_msg_rate}")
            lines += ["</domain>", ""]
    return lines


def _exclusion_reason(ip: NodeIp) -> str:
    if ip.state not in SENDING_STATES:
        return ip.state.value
    return "quota 0"


def _provider_domains(ip: NodeIp, hours: int) -> list[str]:
    lines: list[str] = []
    for spec in PROVIDERS:
        if spec.group not in ip.provider_caps:
            continue
        cap_rate = rate(ip.provider_caps[spec.group], hours)
        for domain in spec.queue_domains:
            lines += [f"    <domain {domain}>", f"        max-msg-rate {cap_rate}", "    </domain>"]
    return lines


def _vmta_block(ip: NodeIp, settings: RenderSettings) -> list[str]:
    address = str(ipaddress.ip_address(ip.address.strip()))
    sending = ip.may_send
    status = ip.state.value if sending else f"may not send ({_exclusion_reason(ip)})"
    lines = [
        f"<virtual-mta {ip.vmta}>",
        f"    # tenant {ip.tenant_id}; {status}; {ip.daily_quota}/day, {ip.hourly_quota}/h",
        f"    smtp-source-host {address} {ip.helo_hostname.lower()}",
        f"    max-smtp-msg-rate {rate(ip.hourly_quota, 1) if sending else '0'}",
    ]
    if settings.max_smtp_out_per_vmta is not None:
        lines.append(f"    max-smtp-out {settings.max_smtp_out_per_vmta}")
    if sending:
        lines += _provider_domains(ip, ip.sending_window_hours or settings.sending_window_hours)
    return [*lines, "</virtual-mta>", ""]


def _address_key(ip: NodeIp) -> tuple[int, int]:
    parsed = ipaddress.ip_address(ip.address.strip())
    return parsed.version, int(parsed)


def _pools(ips: Sequence[NodeIp]) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str]]]:
    members: dict[str, list[str]] = {}
    excluded: list[tuple[str, str]] = []
    for ip in ips:
        members.setdefault(pool_name(ip.tenant_id), [])
        if ip.may_send:
            members[pool_name(ip.tenant_id)].append(ip.vmta)
        else:
            excluded.append((ip.vmta, _exclusion_reason(ip)))
    pools = {name: tuple(vmtas) for name, vmtas in sorted(members.items()) if vmtas}
    excluded += [(name, "no IP may send") for name, vmtas in sorted(members.items()) if not vmtas]
    return pools, excluded


def render_node_config(
    *, node: PmtaNode, ips: Sequence[NodeIp], settings: RenderSettings = DEFAULT_RENDER_SETTINGS
) -> RenderedConfig:
    """The configuration text for `node` and the IPs configured on it (RETIRED ones are left out entirely)."""
    _validate(node, ips, settings)
    live = sorted((ip for ip in ips if ip.state is not IpState.RETIRED), key=_address_key)
    pools, excluded = _pools(live)
    lines = _header(node, settings) + _accounting(settings) + _pattern_lists() + _global_domains()
    for ip in live:
        lines += _vmta_block(ip, settings)
    for name, vmtas in pools.items():
        lines += [
            f"<virtual-mta-pool {name}>",
            *(f"    virtual-mta {vmta}" for vmta in vmtas),
            "</virtual-mta-pool>",
            "",
        ]
    return RenderedConfig(text="\n".join(lines).rstrip("\n") + "\n", pools=pools, excluded=tuple(excluded))


def diff_configs(old: str, new: str, *, old_label: str = "current", new_label: str = "rendered") -> str:
    """Unified diff from the node's current file to the rendered one (what `:plan` shows); "" when identical."""
    if old == new:
        return ""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="")
    return "\n".join(lines) + "\n"


def is_time_interval(value: str) -> bool:
    """PowerMTA's TIME-INTERVAL syntax ("1w2d12h", "300s", "90m")."""
    return bool(_INTERVAL.match(value))
