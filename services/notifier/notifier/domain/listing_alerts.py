"""How loud a blocklisting is, and what the platform does about it: the words of an IpListingChanged alert.

The alert's severity follows the listing's own (the zone catalogue's, as reputation publishes it), the same scale
reputation uses when it calls a LOW listing a warning:

| listing severity        | alert    | why |
|-------------------------|----------|-----|
| LOW (Mailspike L1/L2, HostKarma brown, URIBL grey) | WARNING | a reputation hint; few receivers block on it |
| MEDIUM (UCEPROTECT L1, PSBL, NiX Spam, RATS-Dyna) | WARNING | some receivers block; worth acting on today |
| HIGH, CRITICAL (Spamhaus SBL/XBL/CSS/PBL, SpamCop, Barracuda) | CRITICAL | major receivers refuse the mail |
| NONE, INFO (never a listing in the catalogue) | WARNING | a listing is never only information |
| unspecified (a producer on an older contract) | CRITICAL | as every listing was before severities travelled |

A delisting is INFO and resolves the listing's incident. What ip-pool does is the tenant's listing policy there
(by default: HIGH and CRITICAL → standby, MEDIUM → hold the warmup step, LOW → alert only); the alert says what
that default does.

A listing that puts the IP on standby and the standby itself are one thing for the person reading: they are told
in one message (`fold_into_standby`). The standby alert (ip-pool's IpStateChanged, which says what the tenant's
own policy did and when the IP resumes) carries the listing: its severity when worse, its removal page, its zone.
So a listing alert that expects a standby (`expects_standby`) waits `STANDBY_FOLD_WAIT` before it is sent; the
standby alert arriving meanwhile takes it in, and a standby told just before it (events from two services come in
either order) makes it a duplicate of that one. A listing whose standby does not come (a tenant policy that only
alerts, ip-pool slow or down) is sent alone once the wait is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from notifier.domain.alert import Alert, Severity

# How long a listing alert that expects a standby waits for it (the standby follows within about a second).
STANDBY_FOLD_WAIT = timedelta(seconds=5)
STANDBY_STATE = "standby"

_ALERT_SEVERITY = {
    "LOW": Severity.WARNING,
    "MEDIUM": Severity.WARNING,
    "HIGH": Severity.CRITICAL,
    "CRITICAL": Severity.CRITICAL,
    "NONE": Severity.WARNING,
    "INFO": Severity.WARNING,
}

_DEFAULT_ACTION = {
    "LOW": "By default the IP keeps sending and warming up: this listing is a warning (alert only).",
    "MEDIUM": "By default ip-pool holds the IP's warmup step (no advance) until the listing ends.",
    "HIGH": ("By default ip-pool puts the IP on standby and moves its volume to the tenant's other healthy IPs."),
}
_DEFAULT_ACTION["CRITICAL"] = _DEFAULT_ACTION["HIGH"]


def listing_alert_severity(listing_severity: str) -> Severity:
    """The alert severity of a new listing, from the listing's severity name ("LOW", …; "" when not given)."""
    return _ALERT_SEVERITY.get(listing_severity.upper(), Severity.CRITICAL)


def listing_action(listing_severity: str) -> str:
    """What the platform does about a listing of this severity under the default listing policy ("" unknown)."""
    return _DEFAULT_ACTION.get(listing_severity.upper(), "")


def expects_standby(listing_severity: str) -> bool:
    """A new listing of this severity puts the IP on standby under the default policy (HIGH, CRITICAL)."""
    return listing_severity.upper() in ("HIGH", "CRITICAL")


def listing_key_prefix(address: str) -> str:
    """The dedup keys of an IP's listing alerts start with this (`ip-listing:<address>:<zone>`)."""
    return f"ip-listing:{address}:"


def standby_key(address: str) -> str:
    """The dedup key of an IP's state alerts (the standby among them)."""
    return f"ip-state:{address}"


def fold_into_standby(*, standby: Alert, listings: Sequence[Alert]) -> Alert:
    """The standby alert telling the listings that caused it too: the worst severity of them all, the first
    removal page, the zones and listing severities in its labels. Its text (ip-pool's reason) already names the
    list; the listing's own lines are added when it does not."""
    if not listings:
        return standby
    labels = dict(standby.labels)
    zones = [z for z in dict.fromkeys(a.labels.get("zone", "") for a in listings) if z]
    if zones:
        labels["zone"] = ", ".join(zones)
    severities = [a.labels["listing_severity"] for a in listings if a.labels.get("listing_severity")]
    if severities:
        labels["listing_severity"] = ", ".join(dict.fromkeys(severities))
    lines = [standby.text] if standby.text else []
    lines += [
        f"{a.title}: {a.text.splitlines()[0]}"
        for a in listings
        if a.text and a.labels.get("zone", "") not in standby.text
    ]
    return replace(
        standby,
        severity=max([standby.severity, *(a.severity for a in listings)]),
        url=standby.url or next((a.url for a in listings if a.url), ""),
        labels=labels,
        text="\n".join(lines),
    )
