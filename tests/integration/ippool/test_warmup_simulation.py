"""90 simulated days of six IPs with a Gmail-heavy list and the replies new IPs really get (a few Microsoft
`451 4.7.650` and Yahoo `[TSS04]` most days at the start, late bounces and complaints): the clean list reaches the
warm step, the same run at 0.5 % complaints does not. The curves are printed (`pytest -s`, or
`python tools/warmup_simulation.py`)."""

from __future__ import annotations

import pytest

from tests.integration.ippool.warmup_simulation import WARM_QUOTA, curve_table, reached_warm, simulate

pytestmark = pytest.mark.integration


def test_a_clean_gmail_heavy_list_reaches_the_warm_step_despite_daily_deferrals() -> None:
    run = simulate(days=90)
    print("\n" + curve_table(run, "Clean list (0.03 % complaints at feedback-loop providers)"))
    warm = reached_warm(run)
    assert all(day is not None and day <= 45 for day in warm), warm  # 35 healthy sending days at the least
    assert all(quota == WARM_QUOTA for quota in run[-1].quotas)
    rules = {rule for day in run for rule in day.rules}
    assert not rules & {"COMPLAINT_HOLD", "COMPLAINT_STEP_BACK", "PROVIDER_THROTTLED"}, rules
    assert any(day.held for day in run)  # a bad Microsoft day held Microsoft's cap, not the IP


def test_the_same_run_at_half_a_percent_of_complaints_never_gets_warm() -> None:
    run = simulate(days=90, complaint_rate=0.005)
    print("\n" + curve_table(run, "Same run, 0.5 % complaints at feedback-loop providers"))
    assert reached_warm(run) == [None] * 6
    assert sum(day.rules.count("COMPLAINT_STEP_BACK") for day in run) >= 6
    assert max(max(day.quotas) for day in run) <= 1500
