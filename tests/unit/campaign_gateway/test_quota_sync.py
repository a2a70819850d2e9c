"""Quota sync rules: what each IP's MailWizz delivery server must look like, and what a sync changes."""

from __future__ import annotations

import itertools

import pytest

from campaign_gateway.domain.quota_sync import (
    ChangeKind,
    CurrentServer,
    IpSending,
    IpState,
    ServerSettings,
    ServerStatus,
    desired_server,
    plan_sync,
)

ACTIVE, INACTIVE, DISABLED = ServerStatus.ACTIVE, ServerStatus.INACTIVE, ServerStatus.DISABLED


def ip(state: IpState = IpState.WARMING, daily: int = 500, hourly: int = 50, **extra: object) -> IpSending:
    return IpSending("203.0.113.7", "ee-203-0-113-7", state, daily, hourly, **extra)  # type: ignore[arg-type]


def row(status: ServerStatus, hourly: int, daily: int, *, server_id: int = 1, vmta: str = "ee-203-0-113-7", **extra):
    return CurrentServer(server_id, vmta, ServerSettings(status, hourly, daily), **extra)


def test_a_warming_ip_inside_its_window_is_active_with_todays_quotas() -> None:
    assert desired_server(ip=ip()).settings == ServerSettings(ACTIVE, 50, 500)


@pytest.mark.parametrize(
    ("sending", "status"),
    [
        (ip(IpState.STANDBY), INACTIVE),
        (ip(IpState.PAUSED), INACTIVE),
        (ip(IpState.RETIRED), DISABLED),
        (ip(resting=True), INACTIVE),
        (ip(inside_window=False), INACTIVE),
        (ip(daily=0), INACTIVE),
        (ip(hourly=0), INACTIVE),
    ],
)
def test_an_ip_that_must_not_send_is_stopped_never_given_quota_zero(sending: IpSending, status: ServerStatus) -> None:
    desired = desired_server(ip=sending)
    assert desired.settings.status is status
    assert desired.settings.hourly_quota >= 1 and desired.settings.daily_quota >= 1
    assert desired.reason


def test_at_no_moment_is_a_row_active_with_a_zero_quota() -> None:
    states = list(IpState)
    quotas = [0, 1, 50]
    for state, daily, hourly, window, resting in itertools.product(
        states, quotas, quotas, [True, False], [True, False]
    ):
        settings = desired_server(ip=ip(state, daily, hourly, inside_window=window, resting=resting)).settings
        assert settings.hourly_quota > 0 and settings.daily_quota > 0
        if settings.status is ACTIVE:
            assert state in (IpState.WARMING, IpState.WARM) and window and not resting


def test_every_write_in_a_plan_carries_status_and_both_quotas_together() -> None:
    current = [row(ACTIVE, 0, 0)]  # a hand-made row: active and unlimited
    for sending in (ip(IpState.STANDBY, 0, 0), ip(IpState.WARM, 1000, 100)):
        plan = plan_sync(current=current, desired=[desired_server(ip=sending)])
        for change in plan.writes():
            after = change.after
            assert after is not None and after.hourly_quota > 0 and after.daily_quota > 0


def test_a_row_with_a_warmup_plan_is_a_conflict_and_never_written() -> None:
    plan = plan_sync(current=[row(ACTIVE, 10, 100, warmup_plan_id=3)], desired=[desired_server(ip=ip())])
    assert [c.kind for c in plan.changes] == [ChangeKind.CONFLICT]
    assert plan.writes() == ()
    assert "warmup plan 3" in plan.conflicts()[0].reason


def test_warmup_plan_zero_means_no_plan() -> None:
    plan = plan_sync(current=[row(ACTIVE, 10, 100, warmup_plan_id=0)], desired=[desired_server(ip=ip())])
    assert [c.kind for c in plan.changes] == [ChangeKind.UPDATE]


def test_unchanged_rows_are_not_written_and_in_use_counts_as_active() -> None:
    plan = plan_sync(current=[row(ServerStatus.IN_USE, 50, 500)], desired=[desired_server(ip=ip())])
    assert [c.kind for c in plan.changes] == [ChangeKind.UNCHANGED]


def test_a_new_ip_is_created_inactive_and_a_retired_one_without_row_is_not_created() -> None:
    fresh = IpSending("203.0.113.8", "ee-203-0-113-8", IpState.WARMING, 50, 5)
    gone = IpSending("203.0.113.9", "ee-203-0-113-9", IpState.RETIRED, 0, 0)
    plan = plan_sync(current=[], desired=[desired_server(ip=fresh), desired_server(ip=gone)])
    assert [(c.kind, c.vmta) for c in plan.changes] == [(ChangeKind.CREATE, "ee-203-0-113-8")]
    assert plan.changes[0].after == ServerSettings(INACTIVE, 5, 50)


def test_a_retired_ip_is_disabled_not_deleted() -> None:
    plan = plan_sync(current=[row(ACTIVE, 50, 500)], desired=[desired_server(ip=ip(IpState.RETIRED, 0, 0))])
    change = plan.changes[0]
    assert (change.kind, change.after) == (ChangeKind.UPDATE, ServerSettings(DISABLED, 1, 1))


def test_duplicates_pending_deletes_and_orphans_are_reported_not_touched() -> None:
    current = [
        row(ACTIVE, 1, 1, server_id=1),
        row(ACTIVE, 1, 1, server_id=2),
        row(ServerStatus.PENDING_DELETE, 1, 1, server_id=3, vmta="ee-b"),
        row(ACTIVE, 1, 1, server_id=4, vmta="someone-else"),
    ]
    desired = [desired_server(ip=ip()), desired_server(ip=IpSending("x", "ee-b", IpState.WARM, 9, 9))]
    kinds = [(c.server_id, c.kind) for c in plan_sync(current=current, desired=desired).changes]
    assert kinds == [
        (1, ChangeKind.CONFLICT),
        (2, ChangeKind.CONFLICT),
        (3, ChangeKind.CONFLICT),
        (4, ChangeKind.ORPHANED),
    ]


def test_the_dry_run_says_what_would_change() -> None:
    plan = plan_sync(current=[row(ACTIVE, 50, 500)], desired=[desired_server(ip=ip(IpState.STANDBY))])
    assert plan.describe() == [
        "UPDATE 203.0.113.7 (vmta ee-203-0-113-7, server 1): active hourly=50 daily=500 -> "
        "inactive hourly=50 daily=500 (IP is STANDBY)"
    ]
