"""Fault: Telegram answering 429 Too Many Requests (with `retry_after`) during a burst of alerts."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter

import pytest

from tests.faults.world import ULIXAI_CHAT, FaultWorld, describe
from tests.harness.servers import wait_until

pytestmark = pytest.mark.e2e

BURST = 10


def test_telegram_answering_429_during_a_burst_delivers_every_alert_once_and_none_before_its_retry_after(
    fault_world: FaultWorld,
) -> None:
    """A burst of alerts to one chat while the Bot API rate-limits: the first message is refused with
    `retry_after` 2, and the chat takes at most one message every 0.4 s (the rest refused with `retry_after` 1, as
    Telegram does per chat). Both notifier replicas deliver. Afterwards: every alert is in the chat exactly once
    and recorded DELIVERED, and no call to the chat came back before the `retry_after` it was given."""
    world, telegram = fault_world, fault_world.telegram
    marker = f"burst-{uuid.uuid4().hex[:8]}"
    start = len(telegram.requests)
    telegram.per_chat_min_interval = 0.4
    telegram.fail_next(1, status=429, retry_after=2)
    try:
        ids = []
        for n in range(BURST):
            reply = world.rest(
                "POST",
                "/api/v2/alerts",
                "ulixai",
                json={"severity": "ALERT_SEVERITY_WARNING", "text": f"{marker}-{n} complaint rate up"},
            )
            assert reply.status_code == 200, reply.text
            ids.append(reply.json()["alert_id"])

        def delivered() -> list[str]:
            states = [world.rest("GET", f"/api/v2/alerts/{i}", "ulixai").json()["delivery_state"] for i in ids]
            return [i for i, s in zip(ids, states, strict=True) if s != "DELIVERY_STATE_DELIVERED"]

        wait_until(lambda: not delivered(), 60, "every alert of the burst delivered")
    finally:
        telegram.per_chat_min_interval = None
        telegram.clear_faults()

    found = (re.search(rf"{marker}-\d+", m.text) for m in telegram.messages(ULIXAI_CHAT))
    sent = Counter(match.group(0) for match in found if match)
    assert sent == Counter({f"{marker}-{n}": 1 for n in range(BURST)}), "each alert in the chat exactly once"

    calls = [r for r in telegram.requests[start:] if r.api_method == "sendmessage"]
    limited = [r for r in calls if r.status == 429]
    assert limited, "Telegram rate-limited the burst"
    early = [
        (refused.at, refused.answer["parameters"]["retry_after"], later.at)  # type: ignore[index]
        for refused in limited
        for later in calls
        if refused.at < later.at < refused.at + refused.answer["parameters"]["retry_after"]  # type: ignore[index]
    ]
    assert not early, f"calls before the retry_after they were given (429 at, retry_after, next call at): {early}"
    assert telegram.early_retries == 0
    time.sleep(0.5)  # room for a late duplicate, were there one
    assert len([m for m in telegram.messages(ULIXAI_CHAT) if marker in m.text]) == BURST
    inconsistent = world.consistent()
    assert not inconsistent, describe(inconsistent)
