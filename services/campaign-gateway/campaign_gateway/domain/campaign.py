"""A campaign as the gateway keeps it: who sends it, with which template, to how many, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CampaignState(StrEnum):
    PENDING = "PENDING"  # accepted and stored; not yet handed to MailWizz
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    tenant: str
    name: str
    template_id: str
    state: CampaignState
    state_reason: str
    contact_count: int
    create_time: datetime
