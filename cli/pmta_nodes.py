"""`emailengine pmta-nodes`: the PowerMTA nodes (admins): register one, see them, plan and deploy their configuration.

The platform's SSH client key is a setting of the campaign gateway, never an option here; the node's forwarder token
is shown once, in the answer of `add`.
"""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import page_options
from cli.render import Col, Output, enum_text, text, when


@click.group("pmta-nodes", cls=OperatorGroup)
def pmta_nodes() -> None:
    """PowerMTA nodes: where each IP sends from, and its configuration (admins).

    \b
    emailengine pmta-nodes add pmta1 --ssh-host 203.0.113.5 --hostname pmta1.example.net \\
        --ssh-host-key 'ssh-ed25519 AAAA...' --smtp-host pmta1.example.net --smtp-port 2525 --admin
    emailengine pmta-nodes list --admin
    emailengine pmta-nodes plan --admin
    emailengine pmta-nodes deploy pmta1 --admin
    """


def _deploy_text(node: dict[str, Any]) -> str:
    last = node.get("last_deployment") or {}
    if not last.get("outcome"):
        return "never"
    return f"{enum_text(last.get('outcome'))} {when(last.get('time'), seconds=False)}"


COLUMNS = [
    Col("node", "name"),
    Col("ssh", lambda n: f"{n.get('ssh_user') or 'root'}@{n.get('ssh_host')}:{n.get('ssh_port') or 22}"),
    Col("smtp", lambda n: f"{n.get('smtp_host') or '-'}:{n.get('smtp_port') or '-'}"),
    Col("last deploy", _deploy_text),
]


def render_node(out: Output, node: dict[str, Any]) -> None:
    accounting = node.get("accounting") or {}
    out.fields(
        [
            ("node", node.get("name")),
            ("host name", text(node.get("hostname"))),
            ("ssh", f"{node.get('ssh_user') or 'root'}@{node.get('ssh_host')}:{node.get('ssh_port') or 22}"),
            ("smtp (MailWizz)", f"{node.get('smtp_host') or '-'}:{node.get('smtp_port') or '-'}"),
            ("config", text(node.get("config_path"))),
            ("accounting", "pushed by the forwarder" if node.get("accounting_push_only") else "pulled over SFTP"),
            ("accounting read", when(last_read) if (last_read := accounting.get("last_ingest_time")) else None),
            ("last deploy", _deploy_text(node)),
            ("deployed sha256", node.get("deployed_config_sha256") or None),
            ("forwarder token", node.get("forwarder_token") or None),
        ]
    )
    if node.get("forwarder_token"):
        out.line("the forwarder token is shown this once: put it in the node's forwarder now", style="yellow")


@pmta_nodes.command("list")
@operator_options
@page_options
def list_(api: Api, page_size: int | None, page_token: str) -> None:
    """The registered nodes and their last deploy."""

    def render(out: Output, data: dict[str, Any]) -> None:
        out.table(COLUMNS, data.get("pmta_nodes") or [], empty="no PowerMTA nodes")
        out.more(data)

    api.show(api.gateway.get("/api/v2/pmta-nodes", {"page_size": page_size, "page_token": page_token}), render)


@pmta_nodes.command("show")
@operator_options
@click.argument("name")
def show(api: Api, name: str) -> None:
    """One node."""
    api.show(api.gateway.get(f"/api/v2/pmta-nodes/{segment(name)}"), render_node)


@pmta_nodes.command("add")
@operator_options
@click.argument("name")
@click.option("--ssh-host", required=True, help="Host name or address the platform reaches the node's SSH on.")
@click.option("--ssh-host-key", required=True, help="The node's public host key ('ssh-ed25519 AAAA...').")
@click.option("--hostname", help="The node's host name (default: the SSH host, when that is a name).")
@click.option("--ssh-port", type=int, help="Default 22.")
@click.option("--ssh-user", help="Default root.")
@click.option("--smtp-host", help="The SMTP listener MailWizz's delivery servers for the node's IPs use.")
@click.option("--smtp-port", type=int, help="Its port.")
@click.option("--http-monitor-url", help="PowerMTA's HTTP monitor, e.g. http://pmta1.example.net:8080.")
@click.option("--accounting-push-only", is_flag=True, help="Take only what the node's forwarder pushes (no SFTP).")
def add(
    api: Api,
    name: str,
    ssh_host: str,
    ssh_host_key: str,
    hostname: str | None,
    ssh_port: int | None,
    ssh_user: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    http_monitor_url: str | None,
    accounting_push_only: bool,
) -> None:
    """Register a node; the answer carries its forwarder token, once."""
    body = {
        "name": name,
        "ssh_host": ssh_host,
        "ssh_host_key": ssh_host_key,
        "hostname": hostname,
        "ssh_port": ssh_port,
        "ssh_user": ssh_user,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "http_monitor_url": http_monitor_url,
        "accounting_push_only": accounting_push_only,
    }
    api.show(api.gateway.post("/api/v2/pmta-nodes", {k: v for k, v in body.items() if v}), render_node)


@pmta_nodes.command("plan")
@operator_options
@click.argument("names", nargs=-1)
def plan(api: Api, names: tuple[str, ...]) -> None:
    """What a deploy would change on each node (every node when none is named), as a diff. Nothing is written."""

    def render(out: Output, data: dict[str, Any]) -> None:
        plans = data.get("plans") or []
        if not plans:
            out.line("no PowerMTA nodes")
        for node_plan in plans:
            state = "changes" if node_plan.get("changed") else "unchanged"
            out.line(f"{node_plan.get('node')}: {state} (against {node_plan.get('compared_with') or '-'})")
            if node_plan.get("diff"):
                out.line(node_plan["diff"].rstrip("\n"))

    api.show(api.gateway.post("/api/v2/pmta-nodes:plan", {"names": list(names)}), render)


@pmta_nodes.command("deploy")
@operator_options
@click.argument("name")
@click.option("--force", is_flag=True, help="Write and reload even when the node already runs the rendered file.")
def deploy(api: Api, name: str, force: bool) -> None:
    """Render and deploy the node's configuration now (the previous file comes back if the reload fails)."""

    def render(out: Output, data: dict[str, Any]) -> None:
        out.fields(
            [
                ("node", data.get("node")),
                ("outcome", enum_text(data.get("outcome"))),
                ("detail", data.get("detail") or None),
                ("sha256", data.get("config_sha256") or None),
            ]
        )

    api.show(api.gateway.post(f"/api/v2/pmta-nodes/{segment(name)}:deploy", {"force": force}), render)
