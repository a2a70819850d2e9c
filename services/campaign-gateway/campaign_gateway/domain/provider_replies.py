"""THE place where a receiver's SMTP reply is read: reputation throttling, capacity, policy, blocklist, recipient.

Public API:
    ReplyClass                                 -- REPUTATION, CAPACITY, POLICY, BLOCKLIST, RECIPIENT, CONTENT, ORDINARY
    ReplyPattern(group, pattern, reply_class, note)
    REPLY_PATTERNS                             -- the table, per provider group, first match wins
    classify_reply(*, group, reply) -> ReplyClass
    is_reputation_throttling(*, group, reply) -> bool
    backoff_patterns(group) -> tuple[ReplyPattern, ...]   -- what goes into that group's smtp-pattern-list

The table is section 3 of the mailbox-providers reference ("Replies in PowerMTA accounting"). Its classes:
REPUTATION (R: the provider slows or defers this IP for volume or reputation -- hold the provider's share on that
IP), CAPACITY (C: connections or messages per connection), POLICY (A: authentication, DNS, TLS -- fix the
configuration, not a reputation signal), BLOCKLIST (B: stop IP to provider, delist), RECIPIENT (U: suppress the
address), CONTENT (the message was judged, not the IP). A reply that matches nothing is ORDINARY.

The status code alone misleads (Yahoo's `553 [TSS09]` is an IP block, Gmail's `421-4.7.26` is authentication), so
patterns match the provider's own codes and wording inside the diagnostic text, and only for that provider's group.

The same patterns are rendered into PowerMTA's `<smtp-pattern-list>` (REPUTATION ones, `mode=backoff`), so every
pattern is written to mean the same in Python's `re` and in PCRE, inside PowerMTA's `reply /.../` syntax: no `#`
(a comment in PowerMTA's files), no `/`, no quote, no backslash (literal dots are `[.]`), case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from campaign_gateway.domain.providers import ProviderGroup


class ReplyClass(StrEnum):
    REPUTATION = "REPUTATION"
    CAPACITY = "CAPACITY"
    POLICY = "POLICY"
    BLOCKLIST = "BLOCKLIST"
    RECIPIENT = "RECIPIENT"
    CONTENT = "CONTENT"
    ORDINARY = "ORDINARY"


@dataclass(frozen=True)
class ReplyPattern:
    group: ProviderGroup
    pattern: str
    reply_class: ReplyClass
    note: str


_G, _M, _Y = ProviderGroup.GMAIL, ProviderGroup.MICROSOFT, ProviderGroup.YAHOO
_R, _C, _A, _B, _U, _X = (
    ReplyClass.REPUTATION,
    ReplyClass.CAPACITY,
    ReplyClass.POLICY,
    ReplyClass.BLOCKLIST,
    ReplyClass.RECIPIENT,
    ReplyClass.CONTENT,
)

REPLY_PATTERNS: tuple[ReplyPattern, ...] = (
    # Gmail
    ReplyPattern(_G, "4[.]7[.]28", _R, "421-4.7.28 unusual rate of mail from your IP, netblock, DKIM or SPF domain"),
    ReplyPattern(_G, "low reputation", _R, "421-4.7.0 / 550-5.7.1 very low reputation of the sending IP or domain"),
    ReplyPattern(_G, "likely unsolicited", _R, "550-5.7.1 likely unsolicited mail"),
    ReplyPattern(_G, "4[.]7[.](26|27|29|30|32|40)", _A, "421-4.7.2x/3x/40 authentication, alignment or TLS"),
    ReplyPattern(_G, "5[.]7[.]2[456]", _A, "550-5.7.24/25/26 bad SPF, missing PTR, DMARC or authentication"),
    # Microsoft (Outlook.com and Microsoft 365)
    ReplyPattern(_M, "4[.]7[.]65[01]", _R, "451 4.7.650/651 temporarily rate limited due to IP reputation"),
    ReplyPattern(_M, "RP-00[123]", _R, "421 RP-001/002/003 rate or connection limit tied to reputation"),
    ReplyPattern(_M, "SC-00[14]", _R, "SC-001/SC-004 content or complaints"),
    ReplyPattern(_M, "S31[45]0|AS3130|OU-001", _B, "on our block list (S3140/S3150), Spamhaus (AS3130), OU-001"),
    ReplyPattern(_M, "5[.]7[.]6(0[6-9]|[1-4][0-9])", _B, "550 5.7.606-649 banned sending IP"),
    ReplyPattern(_M, "5[.]7[.]515|DY-001", _A, "550 5.7.515 authentication level; DY-001 dynamic IP"),
    # Yahoo and AOL
    ReplyPattern(_Y, "TSS0[45]|IPTS04", _R, "421 4.7.0 [TSS04]/[TSS05]/[IPTS04] unexpected volume or complaints"),
    ReplyPattern(_Y, "TS0[123]", _R, "[TS01] complaints, [TS02]/[TS03] unusual traffic"),
    ReplyPattern(_Y, "TSS09|TSS11|BL2[13]", _B, "553 [TSS09]/[TSS11] retrying will not succeed; [BL21]/[BL23]"),
    ReplyPattern(_Y, "5[.]7[.]9|unresolvable RFC[.]5321", _A, "550 5.7.9 unauthenticated; no SOA on MAIL FROM"),
    ReplyPattern(_Y, "max message per connection", _C, "421 max message per connection reached"),
    # Orange
    ReplyPattern(ProviderGroup.ORANGE, "OFR_999", _R, "421 service refused, about 2 h IP suspension"),
    ReplyPattern(ProviderGroup.ORANGE, "OFR004_104", _C, "421 too many connections, slow down"),
    ReplyPattern(ProviderGroup.ORANGE, "OFR006_102", _B, "550 blocked for spamming issues (Cloudmark)"),
    ReplyPattern(ProviderGroup.ORANGE, "OFR004_405|OFR_415", _A, "invalid sender, SPF/DNS of the sending domain"),
    ReplyPattern(ProviderGroup.ORANGE, "OFR_416", _U, "unknown user"),
    ReplyPattern(ProviderGroup.ORANGE, "OFR_506", _X, "spam content"),
    # La Poste
    ReplyPattern(ProviderGroup.LAPOSTE, "LPN105_104", _C, "too many connections"),
    ReplyPattern(ProviderGroup.LAPOSTE, "LPNAAA_101|LPN007_102|LPN007_510", _B, "RBL listing; refused at DATA"),
    ReplyPattern(ProviderGroup.LAPOSTE, "LPN004_401|LPN007_517", _A, "SPF, DMARC"),
    # SFR
    ReplyPattern(ProviderGroup.SFR, "SFR_IN_1[0-9][0-9]", _R, "450 4.7.1 SFR_IN_1xx: about 2 h block each"),
    # Free
    ReplyPattern(ProviderGroup.FREE, "spam detected", _X, "550 spam detected"),
    # GMX / WEB.DE
    ReplyPattern(ProviderGroup.GMX, "too many messages", _R, "421 too many messages in a short period"),
    ReplyPattern(ProviderGroup.GMX, "c=r0201|IP address is block listed", _B, "554 IP address is block listed"),
    ReplyPattern(ProviderGroup.GMX, "policy restrictions", _A, "554 reject due to policy restrictions"),
    # iCloud
    ReplyPattern(ProviderGroup.ICLOUD, "excessive volume|HCM1|BS02", _R, "421 4.7.1 deferred: excessive volume"),
    ReplyPattern(ProviderGroup.ICLOUD, "HME1", _A, "554 5.7.1 [HME1] SPF and DKIM fail"),
)


@cache
def _compiled(group: ProviderGroup) -> tuple[tuple[re.Pattern[str], ReplyClass], ...]:
    return tuple(
        (re.compile(row.pattern, re.IGNORECASE), row.reply_class) for row in REPLY_PATTERNS if row.group is group
    )


def classify_reply(*, group: ProviderGroup, reply: str) -> ReplyClass:
    """Class of a reply (dsnDiag text) from a receiver of `group`; ORDINARY when none of its patterns match."""
    if not reply:
        return ReplyClass.ORDINARY
    for pattern, reply_class in _compiled(group):
        if pattern.search(reply):
            return reply_class
    return ReplyClass.ORDINARY


def is_reputation_throttling(*, group: ProviderGroup, reply: str) -> bool:
    """True when the provider is slowing this IP down for volume or reputation (the warmup must hold)."""
    return classify_reply(group=group, reply=reply) is ReplyClass.REPUTATION


def backoff_patterns(group: ProviderGroup) -> tuple[ReplyPattern, ...]:
    """The group's REPUTATION patterns, in table order: they put a PowerMTA queue in backoff mode."""
    return tuple(row for row in REPLY_PATTERNS if row.group is group and row.reply_class is ReplyClass.REPUTATION)
