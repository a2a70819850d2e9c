"""Provider groups, caps and feedback loops."""

from __future__ import annotations

import pytest

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool.domain.providers import (
    DEFAULT_FEEDBACK_LOOPS,
    DEFAULT_PROVIDER_SHARES,
    FeedbackLoops,
    ProviderGroup,
    ProviderShares,
    provider_cap,
)
from libs.errors import InvalidArgument

G = ProviderGroup


def test_the_groups_are_the_campaign_gateways_and_the_contracts() -> None:
    from campaign_gateway.domain.providers import ProviderGroup as GatewayGroup

    assert {g.value for g in ProviderGroup} == {g.value for g in GatewayGroup}
    assert {f"PROVIDER_GROUP_{g}" for g in ProviderGroup} == set(pb.ProviderGroup.keys()) - {
        "PROVIDER_GROUP_UNSPECIFIED"
    }
    # The numbers the contract had before the customer's market was added are unchanged.
    assert [pb.ProviderGroup.Value(f"PROVIDER_GROUP_{g}") for g in ("GMAIL", "MICROSOFT", "YAHOO", "OTHER")] == [
        1,
        2,
        3,
        4,
    ]
    assert list(ProviderGroup)[-1] is G.OTHER  # served last: it may use any IP's room


def test_caps_are_shares_of_the_ips_quota() -> None:
    caps = {g: provider_cap(200, DEFAULT_PROVIDER_SHARES, g) for g in ProviderGroup}
    assert caps == {
        G.GMAIL: 80,
        G.MICROSOFT: 60,
        G.YAHOO: 40,
        G.ORANGE: 40,
        G.FREE: 30,
        G.SFR: 30,
        G.LAPOSTE: 20,
        G.GMX: 20,
        G.ICLOUD: 20,
        G.OTHER: 200,
    }
    assert [provider_cap(10000, DEFAULT_PROVIDER_SHARES, g) for g in (G.GMAIL, G.MICROSOFT, G.YAHOO, G.OTHER)] == [
        4000,
        3000,
        2000,
        10000,
    ]


def test_a_held_cap_bounds_the_share_and_never_raises_it() -> None:
    assert provider_cap(500, DEFAULT_PROVIDER_SHARES, G.MICROSOFT, held=60) == 60
    assert provider_cap(50, DEFAULT_PROVIDER_SHARES, G.MICROSOFT, held=60) == 15


def test_caps_are_exact_integers() -> None:
    assert provider_cap(100, ProviderShares(gmail=0.29), G.GMAIL) == 29


def test_shares_are_validated() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProviderShares(gmail=1.5, yahoo=-0.1, laposte=2)
    assert [v.field for v in caught.value.violations] == ["gmail", "yahoo", "laposte"]


def test_feedback_loops_follow_the_reference_and_are_tunable() -> None:
    assert DEFAULT_FEEDBACK_LOOPS.groups == (G.MICROSOFT, G.YAHOO, G.ORANGE, G.SFR, G.LAPOSTE, G.OTHER)
    assert not DEFAULT_FEEDBACK_LOOPS.covers(G.GMAIL) and not DEFAULT_FEEDBACK_LOOPS.covers(G.ICLOUD)
    assert FeedbackLoops(free=True, other=False).groups == (
        G.MICROSOFT,
        G.YAHOO,
        G.ORANGE,
        G.FREE,
        G.SFR,
        G.LAPOSTE,
    )
    with pytest.raises(InvalidArgument) as caught:
        FeedbackLoops(gmail="yes")  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == ["gmail"]
