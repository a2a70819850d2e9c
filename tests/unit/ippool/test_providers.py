"""Provider groups and caps."""

from __future__ import annotations

import pytest

from ippool.domain.providers import (
    DEFAULT_PROVIDER_SHARES,
    ProviderGroup,
    ProviderShares,
    classify_recipient_domain,
    provider_cap,
)
from libs.errors import InvalidArgument


@pytest.mark.parametrize(
    ("recipient", "group"),
    [
        ("gmail.com", ProviderGroup.GMAIL),
        ("Someone@GoogleMail.com", ProviderGroup.GMAIL),
        ("outlook.com", ProviderGroup.MICROSOFT),
        ("hotmail.fr", ProviderGroup.MICROSOFT),
        ("live.co.uk", ProviderGroup.MICROSOFT),
        ("msn.com", ProviderGroup.MICROSOFT),
        ("yahoo.com", ProviderGroup.YAHOO),
        ("jean@yahoo.fr", ProviderGroup.YAHOO),
        ("aol.com", ProviderGroup.YAHOO),
        ("ymail.com", ProviderGroup.YAHOO),
        ("orange.fr", ProviderGroup.OTHER),
        ("sos-expat.com", ProviderGroup.OTHER),
        ("gmail.fr", ProviderGroup.OTHER),
        ("live.example.org", ProviderGroup.OTHER),
        ("mail.yahoo.example", ProviderGroup.OTHER),
        ("gmail.com.", ProviderGroup.GMAIL),
    ],
)
def test_classification(recipient: str, group: ProviderGroup) -> None:
    assert classify_recipient_domain(recipient) is group


def test_caps_are_shares_of_the_ips_quota() -> None:
    assert [provider_cap(50, DEFAULT_PROVIDER_SHARES, g) for g in ProviderGroup] == [20, 15, 10, 50]
    assert [provider_cap(10000, DEFAULT_PROVIDER_SHARES, g) for g in ProviderGroup] == [4000, 3000, 2000, 10000]


def test_caps_are_exact_integers() -> None:
    assert provider_cap(100, ProviderShares(gmail=0.29), ProviderGroup.GMAIL) == 29


def test_shares_are_validated() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProviderShares(gmail=1.5, yahoo=-0.1)
    assert [v.field for v in caught.value.violations] == ["gmail", "yahoo"]
