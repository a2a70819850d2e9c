"""Where the letter of a rule meets real mailbox providers: listing severity, provider caps against the delivered
gate, throttling per provider, fair complaint rates, the decision hour and late figures, purposes and pools --
each with the figures of the review that asked for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ippool.domain.allocation import IpCapacity, allocate
from ippool.domain.complaints import complaint_figures
from ippool.domain.health import DayCounts, DayReport, HealthPolicy
from ippool.domain.lifecycle import IpState
from ippool.domain.listings import (
    ActiveListing,
    ListingAction,
    ListingPolicy,
    ListingSeverity,
    effect,
    listing_action,
    stronger,
)
from ippool.domain.providers import DEFAULT_FEEDBACK_LOOPS, DEFAULT_PROVIDER_SHARES, FeedbackLoops, ProviderGroup
from ippool.domain.purposes import CampaignPurpose, PurposePolicy, parse_campaign_purpose, placement
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupPosition
from ippool.domain.sending_day import decision_day
from ippool.domain.throttling import decide_provider_holds, throttle_rate
from ippool.domain.warmup import Action, Rule, decide_day
from libs.errors import InvalidArgument

G = ProviderGroup
DAY = date(2026, 3, 10)
TODAY = DAY + timedelta(days=1)
STEP_200 = WarmupPosition(step_index=1, sending_day_in_step=3)
STEP_500 = WarmupPosition(step_index=2, sending_day_in_step=3)


def clean(sent: int) -> DayCounts:
    return DayCounts(sent=sent, delivered=sent)


def report(day: date = DAY, **by_provider: DayCounts) -> DayReport:
    return DayReport.of(day=day, by_provider={G(name.upper()): counts for name, counts in by_provider.items()})


def decide(position: WarmupPosition, yesterday: DayReport, **kwargs: object):
    return decide_day(
        today=yesterday.day + timedelta(days=1),
        schedule=DEFAULT_SCHEDULE,
        position=position,
        yesterday=yesterday,
        **kwargs,
    )  # type: ignore[arg-type]


# -- 1. listing severity -> action ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "action", "field"),
    [
        (ListingSeverity.CRITICAL, ListingAction.STANDBY, "listings.critical"),  # Spamhaus SBL/XBL
        (ListingSeverity.HIGH, ListingAction.STANDBY, "listings.high"),
        (ListingSeverity.MEDIUM, ListingAction.HOLD_WARMUP, "listings.medium"),  # UCEPROTECT level 1, PSBL
        (ListingSeverity.LOW, ListingAction.ALERT_ONLY, "listings.low"),  # Mailspike L1, JunkEmailFilter brown
        (ListingSeverity.UNSPECIFIED, ListingAction.STANDBY, "listings.critical"),  # as before severities
    ],
)
def test_default_listing_policy(severity: ListingSeverity, action: ListingAction, field: str) -> None:
    assert listing_action(severity=severity, policy=ListingPolicy()) == (action, field)


def test_listing_policy_is_tunable_and_validated() -> None:
    strict = ListingPolicy(medium="standby", low="HOLD_WARMUP")  # type: ignore[arg-type]
    assert listing_action(severity=ListingSeverity.MEDIUM, policy=strict) == (ListingAction.STANDBY, "listings.medium")
    assert listing_action(severity=ListingSeverity.LOW, policy=strict)[0] is ListingAction.HOLD_WARMUP
    assert listing_action(severity=ListingSeverity.INFO, policy=strict)[0] is ListingAction.ALERT_ONLY
    with pytest.raises(InvalidArgument) as caught:
        ListingPolicy(high="PANIC")  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == ["high"]


def test_what_active_listings_mean_together() -> None:
    sbl = ActiveListing("zen.spamhaus.org", ListingSeverity.CRITICAL, ListingAction.STANDBY)
    uce = ActiveListing("dnsbl-1.uceprotect.net", ListingSeverity.MEDIUM, ListingAction.HOLD_WARMUP)
    spike = ActiveListing("bl.mailspike.net", ListingSeverity.LOW, ListingAction.ALERT_ONLY)
    together = effect([spike, uce, sbl])
    assert (together.standby, together.holds, together.alerts) == ((sbl,), (uce,), (spike,))
    # Delisting Spamhaus lifts the standby only; UCEPROTECT still holds the warmup.
    assert effect([spike, uce]).standby == () and effect([spike, uce]).stops_or_holds
    assert not effect([spike]).stops_or_holds
    assert stronger(ListingAction.STANDBY, ListingAction.HOLD_WARMUP)
    assert not stronger(ListingAction.ALERT_ONLY, ListingAction.HOLD_WARMUP)


def test_a_low_listing_leaves_the_ip_warming_a_medium_one_holds_it() -> None:
    spike = ActiveListing("bl.mailspike.net", ListingSeverity.LOW, ListingAction.ALERT_ONLY, "listings.low")
    yesterday = DayReport.of(day=DAY, by_provider={G.OTHER: clean(500)}, listings=effect([spike]))
    decision = decide(STEP_500, yesterday)
    assert (decision.action, decision.rule) == (Action.ADVANCE, Rule.HEALTHY)
    assert any("bl.mailspike.net (LOW: ALERT_ONLY): alert only" in note for note in decision.notes)
    assert decision.policy["listings.low"] == "ALERT_ONLY"
    assert decision.figures is not None and not decision.figures.blocklisted
    assert [(x.zone, x.severity, x.action) for x in decision.figures.listings] == [
        ("bl.mailspike.net", "LOW", "ALERT_ONLY")
    ]


# -- 2. provider caps against the delivered gate -----------------------------------------------------------


def test_200_step_with_a_gmail_microsoft_yahoo_list_advances_on_the_180_the_caps_allow() -> None:
    yesterday = report(gmail=clean(80), microsoft=clean(60), yahoo=clean(40))
    decision = decide(STEP_200, yesterday)
    assert (decision.action, decision.rule) == (Action.ADVANCE, Rule.HEALTHY)
    assert decision.figures is not None
    assert decision.figures.delivered_share_basis == 180 and decision.figures.delivered_share == 1.0
    assert decision.figures.capped_providers == ("GMAIL", "MICROSOFT", "YAHOO")
    assert any("limited by the provider caps to 180" in note for note in decision.notes)
    # 90 % of 180 is the bar: 162 delivered advances, 161 holds.
    at_bar = report(gmail=DayCounts(80, 72), microsoft=DayCounts(60, 54), yahoo=DayCounts(40, 36))
    assert decide(STEP_200, at_bar).action is Action.ADVANCE
    under = report(gmail=DayCounts(80, 71), microsoft=DayCounts(60, 54), yahoo=DayCounts(40, 36))
    assert decide(STEP_200, under).rule is Rule.DELIVERED_SHARE


def test_200_step_with_a_gmail_only_list_advances_on_80() -> None:
    decision = decide(STEP_200, report(gmail=clean(80)))
    assert (decision.action, decision.rule) == (Action.ADVANCE, Rule.HEALTHY)
    assert decision.figures is not None and decision.figures.delivered_share_basis == 80


def test_the_allocation_counts_as_given_even_where_less_was_sent() -> None:
    # Allocated 80 to Gmail, 78 went out and were delivered: the cap bound, 78 of 80 is 97.5 %.
    yesterday = DayReport.of(day=DAY, by_provider={G.GMAIL: clean(78)}, given={G.GMAIL: 80})
    decision = decide(STEP_200, yesterday)
    assert decision.figures is not None and decision.figures.delivered_share_basis == 80
    assert decision.action is Action.ADVANCE


def test_a_shortfall_no_cap_explains_still_holds() -> None:
    # 60 Gmail recipients for a 200 step: no cap bound, the IP never carried its volume.
    decision = decide(STEP_200, report(gmail=clean(60), other=clean(40)))
    assert (decision.action, decision.rule) == (Action.HOLD, Rule.DELIVERED_SHARE)
    assert decision.figures is not None and decision.figures.delivered_share_basis == 200


def test_a_held_provider_cap_lowers_what_the_ip_could_send() -> None:
    # Microsoft held at 60 while the IP is at 500: Gmail 200 + Microsoft 60 + Yahoo 100 = 360 is the basis.
    yesterday = report(gmail=clean(200), microsoft=clean(60), yahoo=clean(100))
    decision = decide(STEP_500, yesterday, provider_holds={G.MICROSOFT: 60})
    assert decision.figures is not None and decision.figures.delivered_share_basis == 360
    assert decision.action is Action.ADVANCE


# -- 3. throttling per provider ----------------------------------------------------------------------------


def test_one_microsoft_451_is_not_a_hold() -> None:
    yesterday = report(gmail=clean(80), microsoft=DayCounts(60, 60, throttled=1, deferred=1), yahoo=clean(40))
    decision = decide(STEP_200, yesterday)
    assert (decision.action, decision.rule) == (Action.ADVANCE, Rule.HEALTHY)
    assert decision.provider_holds_after == {}
    assert decision.figures is not None and decision.figures.throttled_providers == ()
    microsoft = next(p for p in decision.figures.by_provider if p.provider == "MICROSOFT")
    assert (microsoft.attempts, microsoft.throttled, microsoft.throttle_rate_counted) == (61, 1, True)


def test_a_few_deferrals_on_few_attempts_do_not_count() -> None:
    counts = DayCounts(sent=15, delivered=15, throttled=4, deferred=5)
    rate = throttle_rate(provider=G.MICROSOFT, counts=counts, policy=HealthPolicy())
    assert (rate.attempts, rate.counted) == (20, False) and rate.rate == pytest.approx(0.2)
    decision = decide(WarmupPosition(0, 3), report(microsoft=counts, gmail=clean(20)))
    assert decision.provider_holds_after == {}
    assert any("rests on 20 attempts (< 50): not counted" in note for note in decision.notes)


def test_a_throttling_provider_has_its_cap_held_while_the_ip_climbs() -> None:
    # Yahoo TSS04 on 12 of 52 attempts (23 %) at the 200 step: Yahoo stays at 40, the IP goes on to 500.
    yahoo = DayCounts(sent=40, delivered=40, throttled=12, deferred=12)
    position = WarmupPosition(step_index=1, sending_day_in_step=7)
    decision = decide(position, report(gmail=clean(80), microsoft=clean(60), yahoo=yahoo))
    assert (decision.action, decision.quota_after) == (Action.ADVANCE, 500)
    assert decision.provider_holds_after == {G.YAHOO: 40}
    assert any("YAHOO cap held at 40/day" in note for note in decision.notes)
    assert decision.policy["health.throttle_hold_rate"] == "0.1"


def test_heavy_throttling_steps_the_providers_cap_back() -> None:
    microsoft = DayCounts(sent=150, delivered=150, throttled=80, deferred=90)  # 80 of 240: 33 %
    decision = decide(STEP_500, report(microsoft=microsoft, other=clean(350)))
    assert decision.provider_holds_after == {G.MICROSOFT: 60}  # one step down its ladder: 150 -> 60
    assert decision.action is Action.ADVANCE


def test_a_held_cap_climbs_one_step_per_clean_day_then_is_lifted() -> None:
    policy = HealthPolicy()
    warm = WarmupPosition(step_index=5, sending_day_in_step=3)  # 10 000/day: Microsoft's share is 3 000
    holds = {G.MICROSOFT: 60}
    seen = []
    for _ in range(5):
        yesterday = report(microsoft=clean(holds.get(G.MICROSOFT, 3000)))
        holds, _ = decide_provider_holds(
            schedule=DEFAULT_SCHEDULE,
            position=warm,
            position_after=warm,
            holds=holds,
            yesterday=yesterday,
            shares=DEFAULT_PROVIDER_SHARES,
            policy=policy,
        )
        seen.append(holds.get(G.MICROSOFT))
    assert seen == [150, 450, 1500, None, None]  # 60 -> 150 -> 450 -> 1 500 -> lifted (3 000 is its share)


def test_no_mail_to_a_held_provider_changes_nothing() -> None:
    decision = decide(STEP_500, report(gmail=clean(200), other=clean(300)), provider_holds={G.YAHOO: 40})
    assert decision.provider_holds_after == {G.YAHOO: 40}


# -- 4. complaints --------------------------------------------------------------------------------------------


def test_one_complaint_in_199_at_the_100_message_minimum_is_not_a_step_back() -> None:
    yesterday = report(yahoo=DayCounts(sent=199, delivered=199, complained=1))
    decision = decide(STEP_200, yesterday)
    assert decision.action is not Action.STEP_BACK and decision.rule is not Rule.COMPLAINT_HOLD
    assert decision.figures is not None and decision.figures.complaint_rate == pytest.approx(1 / 199)
    assert not decision.figures.complaint_rate_counted
    assert any("not counted" in note for note in decision.notes)


def test_gmails_deliveries_do_not_dilute_the_complaint_rate() -> None:
    # 5 Yahoo complaints: over every delivery 5 / 3 300 = 0.15 % (a hold), over Yahoo's 1 000 it is 0.5 %.
    yesterday = report(gmail=clean(2300), yahoo=DayCounts(1000, 1000, complained=5))
    decision = decide(WarmupPosition(3, 2), yesterday)
    assert (decision.action, decision.rule) == (Action.STEP_BACK, Rule.COMPLAINT_STEP_BACK)
    assert decision.figures is not None
    assert (decision.figures.feedback_loop_delivered, decision.figures.feedback_loop_complained) == (1000, 5)
    assert "0.50%" in decision.reason and "all feedback-loop providers" in decision.reason
    assert decision.policy["feedback_loops"] == "MICROSOFT,YAHOO,ORANGE,SFR,LAPOSTE,OTHER"


def test_a_complaint_from_a_provider_without_a_feedback_loop_rates_nothing() -> None:
    figures = complaint_figures(
        yesterday=report(gmail=DayCounts(500, 500, complained=5), microsoft=clean(500)),
        window=[],
        feedback_loops=DEFAULT_FEEDBACK_LOOPS,
        policy=HealthPolicy(),
    )
    assert (figures.yesterday.delivered, figures.yesterday.complained, figures.ignored_complaints) == (500, 0, 5)
    # A tenant enrolled in Gmail's feedback loop can say so.
    enrolled = complaint_figures(
        yesterday=report(gmail=DayCounts(500, 500, complained=5)),
        window=[],
        feedback_loops=FeedbackLoops(gmail=True),
        policy=HealthPolicy(),
    )
    assert enrolled.yesterday.counted and enrolled.yesterday.rate == pytest.approx(0.01)


def test_one_provider_above_the_step_back_limit_is_enough() -> None:
    # Microsoft 5 in 800 (0.63 %), Orange clean: all loops together 5 / 2 500 = 0.2 % (a hold), Microsoft alone
    # steps back.
    yesterday = report(microsoft=DayCounts(800, 800, complained=5), orange=clean(1700))
    decision = decide(WarmupPosition(3, 2), yesterday)
    assert decision.rule is Rule.COMPLAINT_STEP_BACK and "MICROSOFT" in decision.reason


def test_one_provider_between_the_limits_alone_does_not_hold() -> None:
    # Microsoft 5 in 2 500 (0.2 %) but every loop provider together 5 in 12 500 (0.04 %): the hold reads them
    # together, the step back (0.3 %) is not reached, the IP advances.
    yesterday = report(microsoft=DayCounts(2500, 2500, complained=5), orange=clean(10000))
    decision = decide(WarmupPosition(5, 2), yesterday)
    assert decision.action is Action.ADVANCE
    assert decision.figures is not None
    microsoft = next(p for p in decision.figures.by_provider if p.provider == "MICROSOFT")
    assert microsoft.complaint_rate == pytest.approx(0.002) and microsoft.complaint_rate_counted


def test_complaints_spread_over_days_count_in_the_window_and_never_twice() -> None:
    days = [report(day=DAY - timedelta(days=n), yahoo=DayCounts(200, 200, complained=1)) for n in (4, 3, 2, 1)]
    yesterday = report(yahoo=DayCounts(200, 200, complained=1))
    decision = decide(STEP_200, yesterday, earlier=days)  # 5 in 1 000 over five days: 0.5 %
    assert (decision.action, decision.rule) == (Action.STEP_BACK, Rule.COMPLAINT_STEP_BACK)
    assert decision.window_start_after == TODAY
    assert decision.figures is not None and decision.figures.window is not None
    assert (decision.figures.window.first_day, decision.figures.window.days) == (DAY - timedelta(days=4), 5)
    # The next day the same three complaints are behind the window's start: they do not step back again.
    after = decide(
        decision.position_after,
        report(day=TODAY, yahoo=clean(50)),
        earlier=[*days, yesterday],
        window_start=decision.window_start_after,
    )
    assert after.action is Action.ADVANCE


def test_the_brief_thresholds_stay_where_they_apply() -> None:
    policy = HealthPolicy()
    assert (policy.max_complaint_rate_to_advance, policy.step_back_complaint_rate, policy.min_sample) == (
        0.001,
        0.003,
        100,
    )
    hold = report(microsoft=DayCounts(2500, 2500, complained=5))  # 0.2 %
    assert decide(WarmupPosition(3, 2), hold).rule is Rule.COMPLAINT_HOLD


# -- 5. decision hour and late figures ----------------------------------------------------------------------


def test_the_day_is_decided_at_the_tenants_decision_hour() -> None:
    # Europe/Paris in March is UTC+1: 06:00 local is 05:00 UTC.
    before = datetime(2026, 3, 11, 4, 59, tzinfo=UTC)
    at_six = datetime(2026, 3, 11, 5, 0, tzinfo=UTC)
    assert decision_day(before, "Europe/Paris", 6) == date(2026, 3, 10)
    assert decision_day(at_six, "Europe/Paris", 6) == date(2026, 3, 11)
    assert decision_day(before, "Europe/Paris", 0) == date(2026, 3, 11)


def test_a_late_bounce_figure_still_holds_the_next_decision() -> None:
    # Day D-1 looked clean when D was decided; its asynchronous bounces arrived since: 60 of 500 (12 %). Yesterday
    # alone is clean, the window of revised totals is 60 of 1 000 = 6 %: a step back.
    revised = report(day=DAY - timedelta(days=1), other=DayCounts(500, 440, bounced=60))
    decision = decide(STEP_500, report(other=clean(500)), earlier=[revised])
    assert (decision.action, decision.rule) == (Action.STEP_BACK, Rule.BOUNCE_STEP_BACK)
    assert "over 2026-03-09..2026-03-10" in decision.reason
    assert any("as revised at the decision" in note for note in decision.notes)


def test_the_window_is_a_tenant_setting_and_never_reaches_before_its_start() -> None:
    old = report(day=DAY - timedelta(days=5), other=DayCounts(500, 470, bounced=30))
    yesterday = report(other=clean(500))
    assert decide(STEP_500, yesterday, earlier=[old]).rule is Rule.BOUNCE_HOLD  # 30 of 1 000 over six days: 3 %
    assert decide(STEP_500, yesterday, earlier=[old], policy=HealthPolicy(window_days=3)).action is Action.ADVANCE
    assert decide(STEP_500, yesterday, earlier=[old], window_start=DAY - timedelta(days=4)).action is Action.ADVANCE


# -- 6. purposes and pools -----------------------------------------------------------------------------------


def test_purpose_placement() -> None:
    policy = PurposePolicy()
    kw = {"pool": "", "policy": policy}
    assert placement(ip_purpose="transactional", ip_pool="default", purpose=CampaignPurpose.MARKETING, **kw) == (
        "transactional IP: takes no marketing volume"
    )
    assert isinstance(placement(ip_purpose="transactional", ip_pool="default", purpose=CampaignPurpose.COLD, **kw), str)
    assert placement(ip_purpose="transactional", ip_pool="default", purpose=CampaignPurpose.TRANSACTIONAL, **kw) == 0
    assert placement(ip_purpose="marketing", ip_pool="default", purpose=CampaignPurpose.TRANSACTIONAL, **kw) == 1
    assert placement(ip_purpose="marketing", ip_pool="default", purpose=CampaignPurpose.COLD, **kw) == 0
    strict = PurposePolicy(transactional_on_marketing_ips=False, cold_pool="cold")
    assert isinstance(
        placement(
            ip_purpose="marketing", ip_pool="default", purpose=CampaignPurpose.TRANSACTIONAL, pool="", policy=strict
        ),
        str,
    )
    assert placement(ip_purpose="marketing", ip_pool="cold", purpose=CampaignPurpose.COLD, pool="", policy=strict) == 0
    assert (
        placement(ip_purpose="marketing", ip_pool="default", purpose=CampaignPurpose.COLD, pool="", policy=strict)
        == "cold volume goes to the cold pool cold only"
    )
    assert (
        placement(ip_purpose="marketing", ip_pool="cold", purpose=CampaignPurpose.MARKETING, pool="", policy=strict)
        == "cold pool cold: takes cold volume only"
    )
    assert (
        placement(ip_purpose="marketing", ip_pool="eu", purpose=CampaignPurpose.MARKETING, pool="us", policy=policy)
        == "pool eu: the campaign asks for pool us"
    )
    assert parse_campaign_purpose("") is CampaignPurpose.MARKETING
    with pytest.raises(InvalidArgument):
        parse_campaign_purpose("spam")
    with pytest.raises(InvalidArgument):
        PurposePolicy(cold_pool="Not A Pool")


def _ip(address: str, purpose: str = "marketing", pool: str = "default") -> IpCapacity:
    return IpCapacity(
        address=address,
        tenant_id="sos-expat",
        state=IpState.WARM,
        schedule=DEFAULT_SCHEDULE,
        position=WarmupPosition(5, 3),
        purpose=purpose,
        pool=pool,
    )


def test_allocation_never_gives_marketing_volume_to_transactional_ips() -> None:
    fleet = [_ip("192.0.2.1"), _ip("192.0.2.2", "transactional")]
    result = allocate(tenant_id="sos-expat", ips=fleet, volume=15000, today=DAY)  # no purpose: MARKETING
    assert [a.address for a in result.allocations] == ["192.0.2.1"] and result.remainder == 5000
    assert [(e.address, e.reason) for e in result.excluded] == [
        ("192.0.2.2", "transactional IP: takes no marketing volume")
    ]


def test_transactional_volume_fills_transactional_ips_first_then_overflows() -> None:
    fleet = [_ip("192.0.2.1"), _ip("192.0.2.2", "transactional")]
    result = allocate(tenant_id="sos-expat", ips=fleet, volume=12000, today=DAY, purpose=CampaignPurpose.TRANSACTIONAL)
    assert {a.address: a.total for a in result.allocations} == {"192.0.2.1": 2000, "192.0.2.2": 10000}
    kept = allocate(
        tenant_id="sos-expat",
        ips=fleet,
        volume=12000,
        today=DAY,
        purpose=CampaignPurpose.TRANSACTIONAL,
        purposes=PurposePolicy(transactional_on_marketing_ips=False),
    )
    assert {a.address: a.total for a in kept.allocations} == {"192.0.2.2": 10000} and kept.remainder == 2000


def test_cold_volume_goes_to_the_cold_pool_only_and_a_named_pool_narrows() -> None:
    fleet = [_ip("192.0.2.1"), _ip("192.0.2.2", pool="cold"), _ip("192.0.2.3", pool="eu")]
    policy = PurposePolicy(cold_pool="cold")
    cold = allocate(
        tenant_id="sos-expat", ips=fleet, volume=30000, today=DAY, purpose=CampaignPurpose.COLD, purposes=policy
    )
    assert [a.address for a in cold.allocations] == ["192.0.2.2"]
    marketing = allocate(tenant_id="sos-expat", ips=fleet, volume=30000, today=DAY, purposes=policy)
    assert [a.address for a in marketing.allocations] == ["192.0.2.1", "192.0.2.3"]
    eu = allocate(tenant_id="sos-expat", ips=fleet, volume=30000, today=DAY, pool="eu", purposes=policy)
    assert [a.address for a in eu.allocations] == ["192.0.2.3"]


def test_allocation_respects_held_provider_caps() -> None:
    held = IpCapacity(
        address="192.0.2.1",
        tenant_id="sos-expat",
        state=IpState.WARMING,
        schedule=DEFAULT_SCHEDULE,
        position=STEP_500,
        provider_holds={G.MICROSOFT: 60},
    )
    result = allocate(tenant_id="sos-expat", ips=[held], volume={G.MICROSOFT: 1000}, today=DAY)
    assert result.allocated_today == 60 and result.remainder_by_provider == {G.MICROSOFT: 940}


# -- 8. every decision names its policy values -----------------------------------------------------------------


def test_a_decision_names_the_policy_values_and_figures_it_used() -> None:
    decision = decide(STEP_200, report(gmail=clean(80), microsoft=clean(60)))
    assert decision.policy["health.min_delivered_share"] == "0.9"
    assert decision.policy["health.min_sample"] == "100" and decision.policy["health.min_complaints"] == "5"
    assert decision.policy["health.decision_hour"] == "6" and decision.policy["health.window_days"] == "7"
    assert decision.policy["provider_shares.gmail"] == "0.4"
    record = decision.to_record()
    assert record["policy"] == decision.policy
    gmail = next(p for p in record["figures"]["by_provider"] if p["provider"] == "GMAIL")
    assert (gmail["cap"], gmail["given"], gmail["feedback_loop"]) == (80, 80, False)
    assert record["figures"]["window"]["first_day"] == "2026-03-10"
