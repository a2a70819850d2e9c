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
that default does, and ip-pool's own IpStateChanged announces a standby when it happens.
"""

from __future__ import annotations

from notifier.domain.alert import Severity

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
    "HIGH": (
        "By default ip-pool puts the IP on standby and moves its volume to the tenant's other healthy IPs; "
        "the standby is announced on its own."
    ),
}
_DEFAULT_ACTION["CRITICAL"] = _DEFAULT_ACTION["HIGH"]


def listing_alert_severity(listing_severity: str) -> Severity:
    """The alert severity of a new listing, from the listing's severity name ("LOW", …; "" when not given)."""
    return _ALERT_SEVERITY.get(listing_severity.upper(), Severity.CRITICAL)


def listing_action(listing_severity: str) -> str:
    """What the platform does about a listing of this severity under the default listing policy ("" unknown)."""
    return _DEFAULT_ACTION.get(listing_severity.upper(), "")
