"""`emailengine domains`: SPF, DKIM, DMARC, PTR, MX and domain blocklists of sending domains (reputation)."""

from __future__ import annotations

from typing import Any

import click

from cli.command import Api, OperatorGroup, operator_options
from cli.gateway import segment
from cli.options import tenant_id_option
from cli.render import Col, Output, styled_enum, text, when


@click.group(cls=OperatorGroup)
def domains() -> None:
    """Sending domains: check any domain now, or declare a tenant's domains (a campaign's preflight needs them
    checked and passing).

    \b
    emailengine domains validate news.example.com --ips 192.0.2.10 --dkim-selectors s1 --tenant sos-expat
    emailengine domains set --tenant sos-expat --sending-domains news.example.com:s1
    emailengine domains check --tenant sos-expat
    emailengine domains show --tenant sos-expat
    """


CHECK_COLUMNS = [
    Col("check", "check"),
    Col("about", "subject"),
    Col("verdict", "verdict", styled_enum),
    Col("why", "reason"),
]


def render_validation(out: Output, data: dict[str, Any]) -> None:
    out.fields(
        [
            ("domain", data.get("domain")),
            ("verdict", styled_enum(data.get("verdict"))),
            ("checked", when(data.get("check_time"))),
        ]
    )
    out.line()
    out.table(CHECK_COLUMNS, data.get("checks") or [], empty="no checks")


def render_tenant_check(out: Output, data: dict[str, Any]) -> None:
    out.fields(
        [
            ("tenant", data.get("tenant_id")),
            ("verdicts changed", text(data.get("changes"))),
            ("could not judge", f"{text(data.get('unknown'))} (their last known verdict stands)"),
        ]
    )
    reports = [*(data.get("sending_domains") or []), *(data.get("tracking_domains") or [])]
    if not reports:
        out.line()
        out.line("the tenant declares no domain: emailengine domains set --tenant-id NAME --sending-domains DOMAIN")
    for report in reports:
        out.line()
        render_validation(out, report)


def _sending(data: dict[str, Any]) -> str:
    parts = []
    for domain in data.get("sending_domains") or []:
        selectors = domain.get("dkim_selectors") or []
        parts.append(f"{domain.get('domain')}" + (f" (DKIM {', '.join(selectors)})" if selectors else ""))
    return ", ".join(parts) or "-"


def render_tenant_domains(out: Output, data: dict[str, Any]) -> None:
    out.fields(
        [
            ("tenant", data.get("tenant_id")),
            ("sending domains", _sending(data)),
            ("tracking domains", text(data.get("tracking_domains"))),
            ("verdict", styled_enum(data.get("verdict"))),
            ("checked", when(data["check_time"]) if data.get("check_time") else "not yet"),
        ]
    )
    checks = data.get("checks") or []
    if checks:
        out.line()
        out.table(
            [
                Col("domain", "domain"),
                Col("role", "domain_role"),
                Col("check", "result.check"),
                Col("about", "result.subject"),
                Col("verdict", "result.verdict", styled_enum),
                Col("why", lambda c: c.get("unknown_reason") or (c.get("result") or {}).get("reason")),
                Col("since", "change_time", lambda v: when(v, seconds=False)),
            ],
            checks,
        )


class SendingDomain(click.ParamType):
    """DOMAIN or DOMAIN:SELECTOR[,SELECTOR]: a sending domain and the DKIM selectors PowerMTA signs it with."""

    name = "DOMAIN[:SELECTOR,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        domain, _, selectors = str(value).partition(":")
        if not domain:
            self.fail(f"{value!r}: give DOMAIN or DOMAIN:SELECTOR", param, ctx)
        return {"domain": domain, "dkim_selectors": [s for s in selectors.split(",") if s]}


@domains.command("validate")
@operator_options
@click.argument("domain")
@click.option("--ips", multiple=True, help="An IP that sends for the domain (SPF, PTR); repeatable.")
@click.option("--dkim-selectors", multiple=True, help="A DKIM selector to check; repeatable.")
@click.option("--helo-hostname", help="HELO name the IPs' PTR should name (a registered IP uses its own).")
@click.option("--tracking-domains", multiple=True, help="A tracking domain to check on the blocklists; repeatable.")
@tenant_id_option(help="Whose zone choice applies (default: the token's tenant).")
def validate(
    api: Api,
    domain: str,
    ips: tuple[str, ...],
    dkim_selectors: tuple[str, ...],
    helo_hostname: str | None,
    tracking_domains: tuple[str, ...],
    tenant: str,
) -> None:
    """Check a domain now: SPF for each IP, DKIM per selector, DMARC, PTR, MX and the domain blocklists."""
    body: dict[str, Any] = {
        "ips": list(ips),
        "dkim_selectors": list(dkim_selectors),
        "tracking_domains": list(tracking_domains),
    }
    if helo_hostname:
        body["helo_hostname"] = helo_hostname
    if tenant:
        body["tenant_id"] = tenant
    with api.out.working(f"checking {domain}"):
        reply = api.gateway.post(f"/api/v2/domains/{segment(domain)}:validate", body)
    api.show(reply, render_validation)


@domains.command("check")
@operator_options
@tenant_id_option(help="Whose domains.")
def check(api: Api, tenant: str) -> None:
    """Check a tenant's declared domains now (as the periodic check does); campaigns use these verdicts."""
    name = api.need_tenant()
    with api.out.working(f"checking {name}'s domains"):
        reply = api.gateway.post(f"/api/v2/reputation/tenants/{segment(name)}/domains:check")
    api.show(reply, render_tenant_check)


@domains.command("show")
@operator_options
@tenant_id_option(help="Whose domains.")
def show(api: Api, tenant: str) -> None:
    """A tenant's sending and tracking domains with the latest verdict of each check."""
    reply = api.gateway.get(f"/api/v2/reputation/tenants/{segment(api.need_tenant())}/domains")
    api.show(reply, render_tenant_domains)


@domains.command("set")
@operator_options
@tenant_id_option(help="Whose domains.")
@click.option(
    "--sending-domains",
    type=SendingDomain(),
    multiple=True,
    help="A domain the tenant sends from, with its DKIM selectors: news.example.com:s1,s2; repeatable.",
)
@click.option("--tracking-domains", multiple=True, help="A domain of the tenant's links and pixels; repeatable.")
def set_(api: Api, tenant: str, sending_domains: tuple[dict[str, Any], ...], tracking_domains: tuple[str, ...]) -> None:
    """Replace a tenant's domains (they are checked at the next tick; `domains check` checks them now)."""
    body = {"sending_domains": list(sending_domains), "tracking_domains": list(tracking_domains)}
    reply = api.gateway.put(f"/api/v2/reputation/tenants/{segment(api.need_tenant())}/domains", body)
    api.show(reply, render_tenant_domains)
