"""Where each PowerMTA node takes mail from MailWizz, from the settings (`EE_CAMPAIGN_GATEWAY_PMTA_SMTP_HOSTS`,
JSON `{"node name": "host:port"}`): the hostname and port of the delivery servers made for the node's IPs.

It implements `app.ports.NodeDirectory`; the registry of PMTA nodes kept in the service's database can take its
place without the use cases noticing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?$")
SMTP_PORT = 25


def parse_endpoint(text: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` -> (host, port); ValueError when it is none of them."""
    match = _HOST_PORT.match(text.strip())
    port = int(match["port"]) if match and match["port"] else SMTP_PORT
    if match is None or not 1 <= port <= 65535:
        raise ValueError(f"{text!r} is not host or host:port")
    return match["host"].strip("[]"), port


class SettingsNodeDirectory:
    def __init__(self, endpoints: Mapping[str, str]):
        self._endpoints = {node: parse_endpoint(text) for node, text in endpoints.items()}

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None:
        return self._endpoints.get(node_name)
