"""`tenants update` has a flag for every policy field the contract has, named after its path."""

from __future__ import annotations

import click
import pytest

from cli.schedules import Steps
from cli.tenants import POLICY, Duration, Share, tenant_body
from ippool.app.tenants import PART_FIELDS, TOP_FIELDS


def test_every_field_ip_pool_updates_has_its_flag() -> None:
    updatable = {*TOP_FIELDS, *(f"{part}.{name}" for part, names in PART_FIELDS.items() for name in names)}
    assert {field.path for field in POLICY} == updatable
    assert {field.flag for field in POLICY} >= {
        "--time-zone",
        "--health-max-bounce-rate-to-advance",
        "--provider-shares-gmail",
        "--rotation-enabled",
    }


def test_the_body_nests_the_flags_given_and_the_mask_names_them_and_the_resets() -> None:
    body, mask = tenant_body(
        {
            "time_zone": "Europe/Paris",
            "health__min_sample": 150,
            "rotation__enabled": False,
            "health__min_delivered_share": None,
        },
        ("provider_shares", "time_zone"),
    )
    assert body == {"time_zone": "Europe/Paris", "health": {"min_sample": 150}, "rotation": {"enabled": False}}
    assert mask == ["time_zone", "health.min_sample", "rotation.enabled", "provider_shares"]


@pytest.mark.parametrize(("given", "sent"), [("0.02", 0.02), ("2%", 0.02), ("1.5 %", 0.015), (0.4, 0.4)])
def test_shares_as_fractions_or_percentages(given: object, sent: float) -> None:
    assert Share().convert(given, None, None) == pytest.approx(sent)


@pytest.mark.parametrize(("given", "sent"), [("90", "90s"), ("30m", "1800s"), ("24h", "86400s"), ("2d", "172800s")])
def test_durations_as_people_write_them(given: str, sent: str) -> None:
    assert Duration().convert(given, None, None) == sent


@pytest.mark.parametrize("bad", ["lots", "1 week", "-5h"])
def test_a_duration_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(bad, None, None)


def test_schedule_steps() -> None:
    assert Steps().convert("50:7, 200:7,10000", None, None) == [
        {"daily_volume": 50, "sending_days": 7},
        {"daily_volume": 200, "sending_days": 7},
        {"daily_volume": 10000, "sending_days": 0},
    ]
