"""The deliverability judgement through the running service's gRPC contract: the tenant's new policy parts by
field mask, listings with a severity, the customer's provider groups with deferrals, purposes in allocation, and
decision records that carry their policy values and per-provider figures."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from tests.integration.ippool.conftest import IpPoolService
from tests.integration.ippool.test_api import failure

pytestmark = pytest.mark.integration


def update(ippool: IpPoolService, paths: list[str], **fields: object) -> pb.Tenant:
    return ippool.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(tenant_id="sos-expat", **fields), update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
    )


def test_the_new_policy_parts_have_their_defaults_and_take_a_field_mask(ippool: IpPoolService) -> None:
    tenant = ippool.call("GetTenant", pb.GetTenantRequest(tenant_id="sos-expat"))
    assert (tenant.listings.critical, tenant.listings.high, tenant.listings.medium, tenant.listings.low) == (
        pb.LISTING_ACTION_STANDBY,
        pb.LISTING_ACTION_STANDBY,
        pb.LISTING_ACTION_HOLD_WARMUP,
        pb.LISTING_ACTION_ALERT_ONLY,
    )
    assert (tenant.feedback_loops.gmail, tenant.feedback_loops.yahoo, tenant.feedback_loops.icloud) == (
        False,
        True,
        False,
    )
    assert (tenant.health.decision_hour, tenant.health.window_days, tenant.health.min_complaints) == (6, 7, 5)
    assert (tenant.provider_shares.orange, tenant.provider_shares.laposte) == (pytest.approx(0.2), pytest.approx(0.1))
    assert tenant.purposes.transactional_on_marketing_ips and tenant.purposes.cold_pool == ""

    changed = update(
        ippool,
        [
            "listings.medium",
            "feedback_loops.gmail",
            "health.decision_hour",
            "purposes.cold_pool",
            "provider_shares.free",
        ],
        listings=pb.ListingPolicy(medium=pb.LISTING_ACTION_STANDBY, low=pb.LISTING_ACTION_STANDBY),  # low: no mask
        feedback_loops=pb.FeedbackLoops(gmail=True),
        health=pb.HealthGates(decision_hour=0),
        purposes=pb.PurposePolicy(cold_pool="cold"),
        provider_shares=pb.ProviderShares(free=0.05),
    )
    assert changed.listings.medium == pb.LISTING_ACTION_STANDBY and changed.listings.low == pb.LISTING_ACTION_ALERT_ONLY
    assert changed.feedback_loops.gmail and changed.health.decision_hour == 0
    assert changed.purposes.cold_pool == "cold" and changed.provider_shares.free == pytest.approx(0.05)
    assert ippool.call("GetTenant", pb.GetTenantRequest(tenant_id="sos-expat")) == changed
    # UNSPECIFIED in the mask: back to the default.
    assert update(ippool, ["listings.medium"], listings=pb.ListingPolicy()).listings.medium == (
        pb.LISTING_ACTION_HOLD_WARMUP
    )
    assert failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="sos-expat",
                listings=pb.ListingPolicy(high=42),  # type: ignore[arg-type]
                health=pb.HealthGates(decision_hour=24, throttle_hold_rate=0.5),
                purposes=pb.PurposePolicy(cold_pool="Not A Pool"),
            )
        ),
    ) == (
        "INVALID_ARGUMENT",
        ["tenant.listings.high"],
    )
    assert failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="sos-expat",
                health=pb.HealthGates(decision_hour=24, throttle_hold_rate=0.5),
                purposes=pb.PurposePolicy(cold_pool="Not A Pool"),
            )
        ),
    ) == (
        "INVALID_ARGUMENT",
        ["tenant.health.throttle_hold_rate", "tenant.health.decision_hour", "tenant.purposes.cold_pool"],
    )


def test_listings_by_severity_over_grpc(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    low = ippool.call(
        "RecordListing",
        pb.RecordListingRequest(
            address="192.0.2.10", zone="bl.mailspike.net", listed=True, severity=pb.LISTING_SEVERITY_LOW
        ),
    )
    assert low.state == pb.IP_STATE_WARMING and list(low.active_listings) == ["bl.mailspike.net"]
    critical = ippool.call(
        "RecordListing",
        pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=True, reason="SBL"),
    )
    assert critical.state == pb.IP_STATE_STANDBY
    entries = ippool.decisions("192.0.2.10", pb.DECISION_KIND_LIFECYCLE)
    assert [(d.action, d.listing.zone, d.listing.severity, d.listing.action) for d in entries[:2]] == [
        ("STANDBY", "zen.spamhaus.org", pb.LISTING_SEVERITY_UNSPECIFIED, pb.LISTING_ACTION_STANDBY),
        ("ALERT_ONLY", "bl.mailspike.net", pb.LISTING_SEVERITY_LOW, pb.LISTING_ACTION_ALERT_ONLY),
    ]
    assert dict(entries[0].policy) == {"listings.critical": "STANDBY"}
    assert entries[0].listing.policy == "listings.critical"
    assert failure(
        ippool,
        "RecordListing",
        pb.RecordListingRequest(address="192.0.2.10", zone="x.example.org", listed=True, severity=99),  # type: ignore[arg-type]
    ) == ("INVALID_ARGUMENT", ["severity"])


def test_the_customers_provider_groups_deferrals_and_the_decision_record(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.20")
    ip = ippool.ip("192.0.2.20")
    caps = {pb.ProviderGroup.Name(p.provider): p.cap for p in ip.quota.by_provider}
    assert caps == {
        "PROVIDER_GROUP_GMAIL": 20,
        "PROVIDER_GROUP_MICROSOFT": 15,
        "PROVIDER_GROUP_YAHOO": 10,
        "PROVIDER_GROUP_ORANGE": 10,
        "PROVIDER_GROUP_FREE": 7,
        "PROVIDER_GROUP_SFR": 7,
        "PROVIDER_GROUP_LAPOSTE": 5,
        "PROVIDER_GROUP_GMX": 5,
        "PROVIDER_GROUP_ICLOUD": 5,
        "PROVIDER_GROUP_OTHER": 50,
    }
    ippool.stats(
        pb.DeliveryStats(address="192.0.2.20", provider=pb.PROVIDER_GROUP_ORANGE, sent=10, delivered=10, deferred=4),
        pb.DeliveryStats(address="192.0.2.20", provider=pb.PROVIDER_GROUP_GMAIL, sent=20, delivered=20, complained=1),
        pb.DeliveryStats(address="192.0.2.20", provider=pb.PROVIDER_GROUP_OTHER, sent=20, delivered=20),
    )
    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    decision = ippool.decisions("192.0.2.20", pb.DECISION_KIND_WARMUP)[0]
    assert (decision.action, decision.rule) == ("ADVANCE", "HEALTHY")
    figures = decision.figures
    assert (figures.feedback_loop_delivered, figures.feedback_loop_complained, figures.ignored_complaints) == (30, 0, 1)
    orange = next(p for p in figures.by_provider if p.provider == "ORANGE")
    assert (orange.cap, orange.given, orange.deferred, orange.attempts, orange.feedback_loop) == (10, 10, 4, 14, True)
    assert figures.window.first_day == figures.window.last_day == figures.day
    assert decision.policy["health.min_complaints"] == "5" and decision.policy["provider_shares.orange"] == "0.2"


def test_allocation_by_purpose_and_pool_over_grpc(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.30")
    ippool.register("192.0.2.31", purpose="transactional")
    ippool.register("192.0.2.32", pool="cold")

    def allocated(**fields: object) -> dict[str, int]:
        request = pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=500, validate_only=True, **fields)
        return {a.address: a.volume for a in ippool.call("AllocateVolume", request).allocations}

    assert allocated() == {"192.0.2.30": 50, "192.0.2.32": 50}  # no cold pool set yet: every marketing IP
    update(ippool, ["purposes.cold_pool"], purposes=pb.PurposePolicy(cold_pool="cold"))
    assert allocated() == {"192.0.2.30": 50}
    assert allocated(purpose=pb.CAMPAIGN_PURPOSE_COLD) == {"192.0.2.32": 50}
    assert allocated(purpose=pb.CAMPAIGN_PURPOSE_TRANSACTIONAL) == {"192.0.2.31": 50, "192.0.2.30": 50}
    assert allocated(pool="default", purpose=pb.CAMPAIGN_PURPOSE_TRANSACTIONAL) == {
        "192.0.2.30": 50,
        "192.0.2.31": 50,
    }
    excluded = ippool.call(
        "AllocateVolume", pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=10, validate_only=True)
    ).excluded
    assert {(e.address, e.reason) for e in excluded} == {
        ("192.0.2.31", "transactional IP: takes no marketing volume"),
        ("192.0.2.32", "cold pool cold: takes cold volume only"),
    }
    assert failure(
        ippool,
        "AllocateVolume",
        pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=1, purpose=9, pool="NO"),  # type: ignore[arg-type]
    ) == ("INVALID_ARGUMENT", ["purpose"])
