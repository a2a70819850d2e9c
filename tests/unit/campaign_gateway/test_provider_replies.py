"""Receiver replies, as PowerMTA writes them in dsnDiag, read per provider group."""

from __future__ import annotations

import re

import pytest

from campaign_gateway.domain.provider_replies import (
    REPLY_PATTERNS,
    ReplyClass,
    backoff_patterns,
    classify_reply,
    is_reputation_throttling,
)
from campaign_gateway.domain.providers import ProviderGroup

G, R = ProviderGroup, ReplyClass


@pytest.mark.parametrize(
    ("group", "reply", "expected"),
    [
        (
            G.GMAIL,
            "smtp;421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating "
            "from your IP address.",
            R.REPUTATION,
        ),
        (
            G.GMAIL,
            "smtp;421-4.7.0 This message is suspicious due to the very low reputation of the sending IP",
            R.REPUTATION,
        ),
        (G.GMAIL, "smtp;550-5.7.1 This message is likely unsolicited mail.", R.REPUTATION),
        (G.GMAIL, "smtp;421-4.7.26 This mail has been rate limited because it is unauthenticated.", R.POLICY),
        (G.GMAIL, "smtp;550-5.7.26 Unauthenticated email from example.com is not accepted", R.POLICY),
        (
            G.MICROSOFT,
            "smtp;451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation. "
            "For e-mail delivery information, see https://aka.ms/postmaster (S775)",
            R.REPUTATION,
        ),
        (G.MICROSOFT, "smtp;421 RP-001 (BAY004-MC1F42) Unfortunately, some messages from 192.0.2.1", R.REPUTATION),
        (
            G.MICROSOFT,
            "smtp;550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. ... on our block list (S3140)",
            R.BLOCKLIST,
        ),
        (
            G.MICROSOFT,
            "smtp;550 5.7.515 Access denied, sending domain does not meet the required authentication level",
            R.POLICY,
        ),
        (
            G.YAHOO,
            "smtp;421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user "
            "complaints - 4.16.55.1",
            R.REPUTATION,
        ),
        (G.YAHOO, "smtp;421 4.7.1 [TS03] All messages from 192.0.2.1 will be permanently deferred", R.REPUTATION),
        (
            G.YAHOO,
            "smtp;553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; "
            "Retrying will NOT succeed",
            R.BLOCKLIST,
        ),
        (G.YAHOO, "smtp;421 Max message per connection reached, closing transmission channel", R.CAPACITY),
        (G.ORANGE, "smtp;421 mwinf5c10 ME Service refuse. Veuillez essayer plus tard. OFR_999 [999]", R.REPUTATION),
        (G.ORANGE, "smtp;421 mwinf5c79 ME Trop de connexions, ralentissez. OFR004_104 [104]", R.CAPACITY),
        (G.ORANGE, "smtp;550 5.7.1 Service refuse. OFR_416 [416]", R.RECIPIENT),
        (G.SFR, "smtp;450 4.7.1 <a@sfr.fr>: Recipient address rejected: SFR_IN_105", R.REPUTATION),
        (
            G.GMX,
            "smtp;421-Too many messages from your IP in a short period, please reduce the sending rate",
            R.REPUTATION,
        ),
        (G.ICLOUD, "smtp;421 4.7.1 Messages to a@icloud.com deferred due to excessive volume", R.REPUTATION),
        (G.FREE, "smtp;550 spam detected", R.CONTENT),
        (G.GMAIL, "smtp;450 4.2.0 greylisted, try again later", R.ORDINARY),
        (G.OTHER, "smtp;421 4.7.0 [TSS04] deferred", R.ORDINARY),
        (G.GMAIL, "smtp;421 4.7.0 [TSS04] deferred", R.ORDINARY),  # another provider's code means nothing here
        (G.GMAIL, "", R.ORDINARY),
    ],
)
def test_replies_are_read_with_their_provider_patterns(group: ProviderGroup, reply: str, expected: ReplyClass) -> None:
    assert classify_reply(group=group, reply=reply) is expected


def test_patterns_ignore_case() -> None:
    assert is_reputation_throttling(group=G.YAHOO, reply="421 4.7.0 [tss04] deferred")
    assert not is_reputation_throttling(group=G.YAHOO, reply="450 mailbox busy")


def test_every_pattern_means_the_same_in_python_and_in_powermta_files() -> None:
    for row in REPLY_PATTERNS:
        re.compile(row.pattern)
        # '#' starts a comment in PowerMTA's files, '/' ends the pattern, quotes and backslashes need escaping.
        assert not set(row.pattern) & set('#/"\\'), row.pattern
        assert row.group is not G.OTHER


def test_backoff_patterns_are_the_reputation_ones() -> None:
    gmail = backoff_patterns(G.GMAIL)
    assert gmail and all(row.reply_class is R.REPUTATION and row.group is G.GMAIL for row in gmail)
    assert "4[.]7[.]28" in {row.pattern for row in gmail}
    assert backoff_patterns(G.LAPOSTE) == ()
