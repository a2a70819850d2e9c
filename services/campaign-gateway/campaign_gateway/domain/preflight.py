"""THE place where a campaign's preflight is judged: may this tenant send this campaign now?

Public API:
    Verdict                   -- PASS, WARN, FAIL, UNKNOWN, UNCHECKED (reputation's check verdicts)
    DomainCheck(domain, role, check, subject, verdict, reason)
    IpListing(address, listed, zones=(), scanned=True)
    PreflightCheck(check, passed, detail)
    check_domains(*, from_email, sending_domains, checks) -> PreflightCheck      -- rules 1-3
    check_listings(*, listings) -> PreflightCheck                                  -- rule 4
    check_capacity(*, requested, allocated_today, planned_later, unplanned, horizon_days) -> PreflightCheck -- rule 5
    ServerUse(address, server_id, refusal="")
    campaign_server_refusal(*, status, use_for, customer_id, tenant_customer_id) -> str   -- rule 7
    check_delivery_servers(*, servers) -> PreflightCheck                           -- rules 6-7
    first_failure(checks) -> PreflightCheck | None

The rules (each check is named, so a refusal says which one failed):

 1. "domains": the tenant must declare its sending domains to reputation, and the campaign's From domain must be
    one of them (else nobody checked its SPF, DKIM and DMARC).
 2. Any check of a sending or tracking domain whose latest verdict is FAIL fails the preflight, naming the
    domain, the check and reputation's reason. UNKNOWN (DNS did not let reputation judge) and UNCHECKED fail it
    too: neither is a pass. WARN passes and is reported.
 3. A tenant whose domains reputation has not checked at all yet fails with that reason.
 4. "listings": an IP the campaign would use that a blocklist lists now fails the preflight (ip-pool normally
    has it in standby already; this catches a listing its event has not reached yet). An IP never scanned does
    not fail it: reputation scans every IP it learns of, and ip-pool gates sending on listings.
 5. "capacity": the tenant's healthy IPs must be able to take the whole campaign within ip-pool's plan
    horizon: nothing sendable at all, or contacts left beyond the horizon, fail it.
 6. "delivery_servers": every IP the campaign would use has its MailWizz delivery server (the row naming its
    virtual MTA); otherwise MailWizz could not send through it.
 7. MailWizz keeps, of the servers a campaign is created with, only those available to the customer now: its
    own (the tenant's MailWizz customer), `active` or `in-use`, used for all mail or for campaigns. It drops any
    other id without a word, and a campaign left with no server sends through any server the customer has. So a
    server MailWizz would drop is left out (and reported), and when none is left the check fails: outside the
    tenant's sending window every server is inactive, so a campaign is created within it (its send time may be
    later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    UNCHECKED = "UNCHECKED"


@dataclass(frozen=True)
class DomainCheck:
    domain: str
    role: str  # "sending" or "tracking"
    check: str  # spf, dkim, dmarc, mx, blocklist
    subject: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class IpListing:
    address: str
    listed: bool
    zones: tuple[str, ...] = ()
    scanned: bool = True


@dataclass(frozen=True)
class PreflightCheck:
    check: str
    passed: bool
    detail: str


def _describe(found: DomainCheck) -> str:
    about = f" {found.subject}" if found.subject and found.subject != found.domain else ""
    return f"{found.check}{about} of {found.domain}: {found.verdict} ({found.reason or 'no reason given'})"


def check_domains(*, from_email: str, sending_domains: Sequence[str], checks: Sequence[DomainCheck]) -> PreflightCheck:
    """Rules 1-3."""
    declared = [d.lower().rstrip(".") for d in sending_domains]
    if not declared:
        return PreflightCheck("domains", False, "the tenant declares no sending domain to reputation")
    from_domain = from_email.rpartition("@")[2].lower().rstrip(".")
    if from_domain not in declared:
        return PreflightCheck(
            "domains",
            False,
            f"the From domain {from_domain} is not one of the tenant's sending domains ({', '.join(declared)}): "
            "its SPF, DKIM and DMARC are not checked",
        )
    if not checks:
        return PreflightCheck("domains", False, f"reputation has not checked {', '.join(declared)} yet")
    blocking = [c for c in checks if c.verdict in (Verdict.FAIL, Verdict.UNKNOWN, Verdict.UNCHECKED)]
    if blocking:
        return PreflightCheck("domains", False, "; ".join(_describe(c) for c in blocking))
    warnings = [c for c in checks if c.verdict is Verdict.WARN]
    detail = f"{len(checks)} checks of {', '.join(declared)} pass"
    if warnings:
        detail += "; warnings: " + "; ".join(_describe(c) for c in warnings)
    return PreflightCheck("domains", True, detail)


def check_listings(*, listings: Sequence[IpListing]) -> PreflightCheck:
    """Rule 4."""
    listed = [ip for ip in listings if ip.listed]
    if listed:
        return PreflightCheck(
            "listings",
            False,
            "; ".join(f"{ip.address} is listed on {', '.join(ip.zones) or 'a blocklist'}" for ip in listed),
        )
    unscanned = [ip.address for ip in listings if not ip.scanned]
    detail = f"{len(listings)} IPs, none listed"
    if unscanned:
        detail += f" (not scanned yet: {', '.join(unscanned)})"
    return PreflightCheck("listings", True, detail)


def check_capacity(
    *, requested: int, allocated_today: int, planned_later: int, unplanned: int, horizon_days: int
) -> PreflightCheck:
    """Rule 5."""
    if requested > 0 and allocated_today + planned_later == 0:
        return PreflightCheck("capacity", False, "no IP of the tenant can send (none healthy with a quota)")
    if unplanned > 0:
        return PreflightCheck(
            "capacity",
            False,
            f"{unplanned} of {requested} contacts cannot be sent within {horizon_days} days at the IPs' quotas",
        )
    return PreflightCheck(
        "capacity", True, f"{allocated_today} of {requested} today, {planned_later} on the following days"
    )


@dataclass(frozen=True)
class ServerUse:
    """An IP's MailWizz delivery server (None: it has none), and why MailWizz would drop it ("": it would not)."""

    address: str
    server_id: int | None
    refusal: str = ""


def campaign_server_refusal(
    *, status: str, use_for: str, customer_id: int | None, tenant_customer_id: int | None
) -> str:
    """Rule 7: why MailWizz would drop this server from a new campaign ("" when it would keep it)."""
    if customer_id != tenant_customer_id:
        return f"it belongs to MailWizz customer {customer_id}, not the tenant's ({tenant_customer_id})"
    if status not in ("active", "in-use"):
        return f"it is {status} now"
    if use_for not in ("all", "campaigns"):
        return f"it is used for {use_for} only"
    return ""


def check_delivery_servers(*, servers: Sequence[ServerUse]) -> PreflightCheck:
    """Rules 6-7, for each IP the campaign would use."""
    missing = [s.address for s in servers if s.server_id is None]
    if missing:
        return PreflightCheck(
            "delivery_servers", False, f"no MailWizz delivery server for {', '.join(missing)} (see the quota sync)"
        )
    usable = [s for s in servers if not s.refusal]
    dropped = "; ".join(f"{s.address} (server {s.server_id}) left out: {s.refusal}" for s in servers if s.refusal)
    if not usable:
        return PreflightCheck(
            "delivery_servers",
            False,
            f"MailWizz would take none of the servers ({dropped}) and would then send through any server of the "
            "customer",
        )
    detail = ", ".join(f"{s.address} -> server {s.server_id}" for s in usable)
    return PreflightCheck("delivery_servers", True, detail + (f"; {dropped}" if dropped else ""))


def first_failure(checks: Sequence[PreflightCheck]) -> PreflightCheck | None:
    return next((check for check in checks if not check.passed), None)
