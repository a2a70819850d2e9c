"""Rendering one PowerMTA node's configuration from the IP pool."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import random
import re
import sys
from types import ModuleType

import pytest

from campaign_gateway.domain.pmta_config import (
    IpState,
    NodeIp,
    PmtaNode,
    RenderSettings,
    address_from_vmta,
    diff_configs,
    pool_name,
    rate,
    render_node_config,
    vmta_name,
)
from campaign_gateway.domain.providers import ProviderGroup
from libs.config import REPO_ROOT
from libs.errors import InvalidArgument

G = ProviderGroup
NODE = PmtaNode(name="pmta-1", hostname="pmta1.example.net")
SETTINGS = RenderSettings(
    sending_window_hours=12, accounting_forwarder_command="/usr/local/bin/ee-acct-forward --node pmta-1"
)


def _ip(address: str, tenant: str = "sos-expat", state: IpState = IpState.WARMING, **kwargs: object) -> NodeIp:
    values: dict[str, object] = {
        "helo_hostname": f"mta-{address.replace('.', '-').replace(':', '-')}.example.net",
        "daily_quota": 500,
        "hourly_quota": 50,
        "provider_caps": {G.GMAIL: 200, G.MICROSOFT: 150},
    }
    values.update(kwargs)
    return NodeIp(address=address, tenant_id=tenant, state=state, **values)  # type: ignore[arg-type]


FLEET = [
    _ip("192.0.2.10"),
    _ip("192.0.2.2", state=IpState.WARM, daily_quota=10_000, hourly_quota=1_000, provider_caps={G.YAHOO: 2_000}),
    _ip("192.0.2.3", state=IpState.STANDBY),
    _ip("192.0.2.4", state=IpState.PAUSED),
    _ip("192.0.2.5", state=IpState.RETIRED),
    _ip("192.0.2.6", daily_quota=0),
    _ip("2001:db8::1", tenant="ulixai"),
    _ip("192.0.2.7", tenant="dormant", state=IpState.STANDBY),
]


def _standin() -> ModuleType:
    """The stand-in `pmta` script as a module: its configuration checker is PowerMTA's rules as tests know them."""
    path = REPO_ROOT / "tests" / "standins" / "pmta"
    loader = importlib.machinery.SourceFileLoader("pmta_standin", str(path))
    spec = importlib.util.spec_from_loader("pmta_standin", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pmta_standin", module)  # its dataclasses look their module up while being built
    loader.exec_module(module)
    return module


def _block(text: str, opening: str) -> str:
    start = text.index(opening)
    tag = opening[1:].split()[0]
    return text[start : text.index(f"</{tag}>", start)]


def test_vmta_names_are_derived_from_the_address_both_ways() -> None:
    assert vmta_name("1.2.3.4") == "vmta-1-2-3-4"
    assert vmta_name(" 2001:DB8:0::1 ") == "vmta-2001-db8--1"
    for address in ("1.2.3.4", "2001:db8::1", "::1", "fe80::1:2"):
        assert address_from_vmta(vmta_name(address)) == address
    assert address_from_vmta("vmta-999-1-1-1") is None
    assert address_from_vmta("customer1") is None
    assert pool_name("sos-expat") == "tenant-sos-expat"


def test_rates_use_powermta_syntax() -> None:
    assert rate(0, 24) == "0"
    assert rate(500, 1) == "500/h"
    assert rate(200, 24) == "200/24h"
    assert rate(5, 12) == "5/12h"


def test_header_says_generated_do_not_edit() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    first_lines = text.splitlines()[:3]
    assert "generated" in first_lines[0] and "pmta-1" in first_lines[0]
    assert "do not edit" in first_lines[1]


def test_each_ip_gets_a_vmta_with_source_host_in_order_and_its_hourly_rate() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    block = _block(text, "<virtual-mta vmta-192-0-2-10>")
    assert "    smtp-source-host 192.0.2.10 mta-192-0-2-10.example.net\n" in block
    assert "    max-smtp-msg-rate 50/h\n" in block
    v6 = _block(text, "<virtual-mta vmta-2001-db8--1>")
    assert "smtp-source-host 2001:db8::1 mta-2001-db8--1.example.net" in v6


def test_provider_caps_become_domain_rates_spread_over_the_window() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    block = _block(text, "<virtual-mta vmta-192-0-2-10>")
    # 200 Gmail messages a day over a 12-hour window: 200/12h, on each Gmail queue domain of the VMTA.
    for domain in ("gmail.com", "googlemail.com"):
        assert f"    <domain {domain}>\n        max-msg-rate 200/12h\n    </domain>" in block
    for domain in ("hotmail.fr", "outlook.com", "live.com"):
        assert f"    <domain {domain}>\n        max-msg-rate 150/12h\n    </domain>" in block
    assert "yahoo" not in block  # no cap given for Yahoo on this IP: the VMTA's own rate applies
    warm = _block(text, "<virtual-mta vmta-192-0-2-2>")
    assert "    <domain yahoo.fr>\n        max-msg-rate 2000/12h\n    </domain>" in warm
    assert "max-smtp-msg-rate 1000/h" in warm


def test_a_cap_of_zero_renders_zero() -> None:
    text = render_node_config(node=NODE, ips=[_ip("192.0.2.10", provider_caps={G.ORANGE: 0})]).text
    assert "    <domain orange.fr>\n        max-msg-rate 0\n    </domain>" in text


def test_pools_hold_only_ips_that_may_send() -> None:
    rendered = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS)
    assert rendered.pools == {
        "tenant-sos-expat": ("vmta-192-0-2-2", "vmta-192-0-2-10"),
        "tenant-ulixai": ("vmta-2001-db8--1",),
    }
    pool = _block(rendered.text, "<virtual-mta-pool tenant-sos-expat>")
    assert pool.splitlines()[1:] == ["    virtual-mta vmta-192-0-2-2", "    virtual-mta vmta-192-0-2-10"]
    assert "<domain" not in pool
    assert dict(rendered.excluded) == {
        "vmta-192-0-2-3": "STANDBY",
        "vmta-192-0-2-4": "PAUSED",
        "vmta-192-0-2-6": "quota 0",
        "vmta-192-0-2-7": "STANDBY",
        "tenant-dormant": "no IP may send",
    }
    assert "tenant-dormant" not in rendered.text


def test_ips_that_may_not_send_keep_a_silent_vmta_and_retired_ones_disappear() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    standby = _block(text, "<virtual-mta vmta-192-0-2-3>")
    assert "max-smtp-msg-rate 0\n" in standby and "<domain" not in standby
    assert "may not send (STANDBY)" in standby
    assert "max-smtp-msg-rate 0\n" in _block(text, "<virtual-mta vmta-192-0-2-6>")
    assert "192.0.2.5" not in text


def test_no_vmta_is_in_two_pools() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    members = re.findall(r"^    virtual-mta (\S+)$", text, flags=re.MULTILINE)
    assert len(members) == len(set(members))


def test_backoff_pattern_lists_are_attached_in_the_provider_domain_blocks() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    assert "    reply /4[.]7[.]28/ mode=backoff\n" in _block(text, "<smtp-pattern-list backoff-gmail>")
    assert "    reply /4[.]7[.]65[01]/ mode=backoff\n" in _block(text, "<smtp-pattern-list backoff-microsoft>")
    assert "    reply /TSS0[45]|IPTS04/ mode=backoff\n" in _block(text, "<smtp-pattern-list backoff-yahoo>")
    gmail = _block(text, "<domain gmail.com>\n    smtp-pattern-list")
    assert "smtp-pattern-list backoff-gmail" in gmail and "backoff-to-normal-after 1h" in gmail
    microsoft = _block(text, "<domain hotmail.fr>\n    smtp-pattern-list")
    assert "backoff-max-msg-rate 1/m" in microsoft and "backoff-max-smtp-out 1" in microsoft
    defined = set(re.findall(r"^<smtp-pattern-list (\S+)>", text, flags=re.MULTILINE))
    used = set(re.findall(r"^    smtp-pattern-list (\S+)$", text, flags=re.MULTILINE))
    assert used == defined


def test_accounting_goes_to_a_file_and_to_the_forwarder() -> None:
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    for target in ("/var/log/pmta/acct.csv", "|/usr/local/bin/ee-acct-forward --node pmta-1"):
        block = _block(text, f"<acct-file {target}>")
        assert "    records d,b,t,rb,f\n" in block
        delivery = re.search(r"record-fields d (\S+)", block)
        assert delivery is not None
        for name in ("header_Message-Id", "vmta", "envId", "timeQueued", "bounceCat", "dsnStatus", "dsnDiag"):
            assert name in delivery.group(1).split(",")
        assert "record-fields f " in block and "record-fields rb " in block
    file_only = render_node_config(node=NODE, ips=FLEET).text
    assert "<acct-file |" not in file_only


def test_rendering_is_deterministic() -> None:
    first = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    shuffled = list(FLEET)
    random.Random(3).shuffle(shuffled)
    assert render_node_config(node=NODE, ips=shuffled, settings=SETTINGS).text == first


def test_the_rendered_file_passes_the_powermta_checks() -> None:
    standin = _standin()
    text = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    config = standin.check_config(text)
    assert set(config.vmtas) == {vmta_name(ip.address) for ip in FLEET if ip.state is not IpState.RETIRED}
    with pytest.raises(standin.ConfigError, match="invalid IP address"):
        standin.check_config(
            text.replace(
                "smtp-source-host 192.0.2.10 mta-192-0-2-10.example.net",
                "smtp-source-host mta-192-0-2-10.example.net 192.0.2.10",
            )
        )


def test_bad_input_is_rejected_naming_every_field() -> None:
    ips = [
        _ip("192.0.2.300"),
        _ip("192.0.2.1", helo_hostname="not a host"),
        _ip("192.0.2.2", tenant="Bad Tenant"),
        _ip("192.0.2.3", hourly_quota=-1),
        _ip("192.0.2.4", provider_caps={G.OTHER: 5}),
        _ip("192.0.2.1"),
    ]
    with pytest.raises(InvalidArgument) as caught:
        render_node_config(
            node=PmtaNode(name="x", hostname="-bad-"), ips=ips, settings=RenderSettings(sending_window_hours=0)
        )
    fields = {violation.field for violation in caught.value.violations}
    assert fields == {
        "node.hostname",
        "settings.sending_window_hours",
        "ips[0].address",
        "ips[1].helo_hostname",
        "ips[2].tenant_id",
        "ips[3].quota",
        "ips[4].provider_caps.OTHER",
        "ips[5].address",
    }


def test_diff_for_plan() -> None:
    old = render_node_config(node=NODE, ips=FLEET, settings=SETTINGS).text
    assert diff_configs(old, old) == ""
    changed = [_ip("192.0.2.10", hourly_quota=60), *FLEET[1:]]
    new = render_node_config(node=NODE, ips=changed, settings=SETTINGS).text
    diff = diff_configs(old, new)
    assert diff.startswith("--- current\n+++ rendered\n")
    assert "-    max-smtp-msg-rate 50/h\n+    max-smtp-msg-rate 60/h\n" in diff
    assert diff_configs("a\nb", "a\nc\n").endswith("-b\n+c\n")
