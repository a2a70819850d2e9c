"""Registration input and tenant policies."""

from __future__ import annotations

import pytest

from ippool.domain.health import HealthPolicy
from ippool.domain.registration import Purpose, validate_registration
from ippool.domain.rotation import RotationPolicy
from ippool.domain.tenant import TenantPolicy
from libs.errors import InvalidArgument


def test_a_complete_registration_is_valid() -> None:
    registration = validate_registration(address="192.0.2.10", purpose="marketing", tenant_id="sos-expat")
    assert str(registration.address) == "192.0.2.10"
    assert registration.purpose is Purpose.MARKETING
    assert (registration.tenant_id, registration.pool) == ("sos-expat", "default")


def test_optional_fields_are_normalised() -> None:
    registration = validate_registration(
        address="2001:db8::10",
        purpose="TRANSACTIONAL",
        tenant_id="ulixai",
        pmta_node="pmta-1",
        helo_hostname="MTA1.Example.com.",
    )
    assert registration.helo_hostname == "mta1.example.com"
    assert registration.pmta_node == "pmta-1"


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_registration(
            address="300.1.1.1", purpose="spam", tenant_id="Sos Expat", pool="-x", helo_hostname="localhost"
        )
    assert [v.field for v in caught.value.violations] == ["address", "tenant_id", "purpose", "pool", "helo_hostname"]


def test_tenant_policy_defaults_and_cross_checks() -> None:
    policy = TenantPolicy("sos-expat")
    assert policy.window.time_zone == "UTC" and not policy.rotation.enabled
    assert policy.health == HealthPolicy()
    with pytest.raises(InvalidArgument) as caught:
        TenantPolicy("sos-expat", health=HealthPolicy(idle_rewarm_days=10), rotation=RotationPolicy(rest_days=10))
    assert [v.field for v in caught.value.violations] == ["rotation.rest_days"]


def test_health_policy_validation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        HealthPolicy(max_bounce_rate_to_advance=0.06, min_sample=0, min_delivered_share=2)
    assert [v.field for v in caught.value.violations] == ["min_delivered_share", "min_sample"]
    with pytest.raises(InvalidArgument) as caught:
        HealthPolicy(max_bounce_rate_to_advance=0.06)
    assert [v.field for v in caught.value.violations] == ["max_bounce_rate_to_advance"]
