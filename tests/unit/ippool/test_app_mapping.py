"""The pure parts of the application layer and the proto mapping: tenant field masks, allocation requests,
what counts as used today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool.app.allocation import requested_volume
from ippool.app.page_tokens import after_key, before_id, token_after, token_before
from ippool.app.tenants import UPDATABLE_PATHS, apply_changes, check_paths
from ippool.domain.providers import ProviderGroup
from ippool.domain.tenant import Tenant, TenantPolicy
from ippool.domain.usage import Usage
from ippool.mapping import tenant_changes
from libs.errors import InvalidArgument
from libs.pagination import encode_token

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


def record() -> Tenant:
    return Tenant("sos-expat", "SOS Expat", TenantPolicy("sos-expat"), NOW)


def fields_of(error: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in error.value.violations]


def test_masked_fields_change_and_the_others_stay() -> None:
    changed = apply_changes(
        record(),
        {"time_zone": "Europe/Paris", "health.min_sample": 200, "rotation.enabled": True, "provider_shares.gmail": 0.5},
    )
    policy = changed.policy
    assert (policy.window.time_zone, policy.health.min_sample, policy.rotation.enabled) == ("Europe/Paris", 200, True)
    assert policy.provider_shares.gmail == 0.5 and policy.provider_shares.microsoft == 0.3
    assert policy.health.max_bounce_rate_to_advance == 0.02
    assert changed.display_name == "SOS Expat"


def test_none_means_default_and_a_whole_part_is_replaced() -> None:
    tuned = apply_changes(record(), {"health.min_sample": 200, "health.max_bounce_rate_to_advance": 0.03})
    assert apply_changes(tuned, {"health.min_sample": None}).policy.health.min_sample == 100
    replaced = apply_changes(tuned, {"health": {"min_sample": 300}})
    assert replaced.policy.health.min_sample == 300
    assert replaced.policy.health.max_bounce_rate_to_advance == 0.02
    assert apply_changes(tuned, {"display_name": ""}).display_name == "sos-expat"


def test_every_bad_field_is_named_with_the_request_path() -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_changes(
            record(),
            {
                "sending_window_start_hour": 20,
                "sending_window_end_hour": 8,
                "health.step_back_bounce_rate": 1.5,
                "rotation.full_use_days": 0,
            },
        )
    assert fields_of(caught) == [
        "tenant.sending_window_end_hour",
        "tenant.health.step_back_bounce_rate",
        "tenant.rotation.full_use_days",
    ]
    with pytest.raises(InvalidArgument) as caught:
        apply_changes(record(), {"rotation.rest_days": 30})
    assert fields_of(caught) == ["tenant.rotation.rest_days"]
    with pytest.raises(InvalidArgument) as caught:
        check_paths(["create_time", "health.nope"])
    assert fields_of(caught) == ["update_mask"]


def test_the_proto_fields_are_the_domains() -> None:
    """The mask paths the use cases accept are exactly the fields of the Tenant message."""
    proto_paths = set()
    for field in pb.Tenant.DESCRIPTOR.fields:
        if field.name in ("tenant_id", "create_time", "update_time"):
            continue
        proto_paths.add(field.name)
        if field.message_type is not None:
            proto_paths |= {f"{field.name}.{sub.name}" for sub in field.message_type.fields}
    assert proto_paths == set(UPDATABLE_PATHS)


def test_without_a_mask_the_fields_present_are_updated() -> None:
    message = pb.Tenant(
        tenant_id="sos-expat",
        time_zone="Europe/Paris",
        health=pb.HealthGates(min_sample=0, standby_cooldown=duration_pb2.Duration(seconds=3600)),
        rotation=pb.RotationPolicy(enabled=False),
    )
    assert tenant_changes(message, []) == {
        "time_zone": "Europe/Paris",
        "health.min_sample": 0,
        "health.standby_cooldown": timedelta(hours=1),
        "rotation.enabled": False,
    }
    whole = tenant_changes(message, ["health"])["health"]
    assert whole["min_sample"] == 0 and whole["max_bounce_rate_to_advance"] is None


def test_allocation_requests() -> None:
    assert requested_volume(1000, []) == 1000
    assert requested_volume(1000, [(ProviderGroup.GMAIL, 300), (ProviderGroup.GMAIL, 100)]) == {
        ProviderGroup.GMAIL: 400,
        ProviderGroup.OTHER: 600,
    }
    assert requested_volume(0, [(ProviderGroup.YAHOO, 5)]) == {ProviderGroup.YAHOO: 5}
    with pytest.raises(InvalidArgument) as caught:
        requested_volume(10, [(None, 5), (ProviderGroup.GMAIL, -1), (ProviderGroup.OTHER, 2)])
    assert fields_of(caught) == ["volume_by_provider[0].provider", "volume_by_provider[1].volume"]
    with pytest.raises(InvalidArgument) as caught:
        requested_volume(10, [(ProviderGroup.OTHER, 20)])
    assert fields_of(caught) == ["volume_by_provider"]
    largest = 2**31 - 1
    assert requested_volume(0, [(ProviderGroup.GMAIL, largest)]) == {ProviderGroup.GMAIL: largest}
    with pytest.raises(InvalidArgument) as caught:
        requested_volume(0, [(ProviderGroup.GMAIL, largest), (ProviderGroup.YAHOO, largest)])
    assert fields_of(caught) == ["volume_by_provider"]


def test_used_today_never_counts_an_allocated_message_twice_nor_forgets_earlier_sends() -> None:
    usage = Usage(
        sent={ProviderGroup.GMAIL: 700, ProviderGroup.OTHER: 300},
        committed={ProviderGroup.GMAIL: 800, ProviderGroup.MICROSOFT: 600},
    )
    assert usage.by_provider == {ProviderGroup.GMAIL: 800, ProviderGroup.MICROSOFT: 600, ProviderGroup.OTHER: 300}
    assert usage.total == 1700
    assert Usage().total == 0


def test_durations_and_day_counts_that_would_leave_the_calendar_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        tenant_changes(
            pb.Tenant(
                tenant_id="sos-expat", health=pb.HealthGates(standby_cooldown=duration_pb2.Duration(seconds=2**62))
            ),
            [],
        )
    assert fields_of(caught) == ["tenant.health.standby_cooldown"]
    with pytest.raises(InvalidArgument) as caught:
        apply_changes(
            record(),
            {
                "health.standby_cooldown": timedelta(days=366),
                "health.idle_rewarm_days": 2**31 - 1,
                "rotation.rest_days": 366,
                "rotation.full_use_days": 10**6,
            },
        )
    assert fields_of(caught) == [
        "tenant.health.idle_rewarm_days",
        "tenant.health.standby_cooldown",
        "tenant.rotation.full_use_days",
        "tenant.rotation.rest_days",
    ]


def test_a_page_token_is_read_back_only_as_this_service_wrote_it() -> None:
    assert (after_key(""), before_id("")) == (None, None)
    assert after_key(token_after("192.0.2.10")) == "192.0.2.10" and before_id(token_before(42)) == 42
    for position in ({"after": 1}, {"after": "\u0000"}, {"after": "a" * 300}, {"before": True}, {"before": 2**64}):
        with pytest.raises(InvalidArgument) as caught:
            after_key(encode_token(position)) if "after" in position else before_id(encode_token(position))
        assert fields_of(caught) == ["page_token"]
