"""A campaign as the gateway keeps it: who sends it, with which template, to how many, where its creation
stands in MailWizz, and how its volume goes out.

Public API:
    CampaignState, CampaignStage (creation steps in order), StepOutcome
    IpShare, SendPlan, MailwizzRefs, CampaignStep, Campaign
    mailwizz_name(*, campaign_id, name) -> str     -- the name of its list and campaign in MailWizz
    request_fingerprint(*, tenant, template_id, ...) -> str

The rules:

 1. A campaign is created in stages (ACCEPTED, ALLOCATED, LIST_CREATED, SUBSCRIBED, CAMPAIGN_CREATED); the
    stage is the last one that completed, so a creation that stopped is resumed at the next one and never
    redoes one that completed (no second allocation, list or campaign).
 2. Its list and campaign in MailWizz are named after the gateway's campaign id: that is how one whose
    creation answer was lost is found again instead of being created twice.
 3. A client's `request_id` stands for one request: the same id with a different request (tenant, template,
    sender, subject or contacts) is refused rather than answered with a campaign that is not the one asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from campaign_gateway.domain.contacts import Contact, ContactProblem
from campaign_gateway.domain.preflight import PreflightCheck


class CampaignState(StrEnum):
    PENDING = "PENDING"  # accepted; being created in MailWizz (see the stage)
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    FAILED = "FAILED"  # stopped before it was complete in MailWizz (the reason says why, the stage where)


class CampaignStage(StrEnum):
    ACCEPTED = "ACCEPTED"
    ALLOCATED = "ALLOCATED"
    LIST_CREATED = "LIST_CREATED"
    SUBSCRIBED = "SUBSCRIBED"
    CAMPAIGN_CREATED = "CAMPAIGN_CREATED"

    def reached(self, other: CampaignStage) -> bool:
        """True when this stage is `other` or a later one."""
        order = list(CampaignStage)
        return order.index(self) >= order.index(other)


class StepOutcome(StrEnum):
    OK = "OK"
    FAILED = "FAILED"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class IpShare:
    address: str
    volume: int
    by_provider: dict[str, int] = field(default_factory=dict)
    delivery_server_id: int | None = None
    vmta: str = ""


@dataclass(frozen=True)
class SendPlan:
    allocation_id: str = ""
    day: date | None = None
    requested: int = 0
    requested_by_provider: dict[str, int] = field(default_factory=dict)
    allocated_today: int = 0
    ips: tuple[IpShare, ...] = ()
    remainder: int = 0
    later_days: tuple[tuple[date, int], ...] = ()
    unplanned: int = 0
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def delivery_server_ids(self) -> tuple[int, ...]:
        return tuple(ip.delivery_server_id for ip in self.ips if ip.delivery_server_id is not None)


@dataclass(frozen=True)
class MailwizzRefs:
    list_uid: str = ""
    campaign_uid: str = ""
    template_uid: str = ""
    status: str = ""
    subscribers_added: int = 0
    subscribers_already_present: int = 0
    chunk_size: int = 0


@dataclass(frozen=True)
class CampaignStep:
    step: str
    outcome: StepOutcome
    detail: str
    time: datetime


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
    request_id: str = ""
    fingerprint: str = ""
    stage: CampaignStage | None = None
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    reply_to: str = ""
    send_time: datetime | None = None
    received: int = 0
    preflight: tuple[PreflightCheck, ...] = ()
    plan: SendPlan = field(default_factory=SendPlan)
    mailwizz: MailwizzRefs = field(default_factory=MailwizzRefs)
    update_time: datetime | None = None


@dataclass(frozen=True)
class CampaignReport:
    """A campaign with what a reader wants beside it: its contact problems and the steps of its creation."""

    campaign: Campaign
    problems: tuple[ContactProblem, ...] = ()
    problem_counts: dict[str, int] = field(default_factory=dict)
    problems_total: int = 0
    steps: tuple[CampaignStep, ...] = ()


def mailwizz_name(*, campaign_id: str, name: str) -> str:
    """Rule 2: "<display name> [ee <campaign id>]", cut to fit MailWizz's 255 characters."""
    marker = f" [ee {campaign_id}]"
    return f"{name.strip()[: 255 - len(marker)]}{marker}"


def request_fingerprint(
    *,
    tenant: str,
    template_id: str,
    name: str,
    subject: str,
    from_name: str,
    from_email: str,
    reply_to: str,
    send_time: datetime | None,
    contacts: Sequence[Contact],
) -> str:
    """Rule 3: a digest of everything that makes the request what it is."""
    digest = hashlib.sha256()
    head = [
        tenant,
        template_id,
        name,
        subject,
        from_name,
        from_email,
        reply_to,
        send_time.isoformat() if send_time else "",
    ]
    digest.update(json.dumps(head).encode())
    for contact in contacts:
        digest.update(
            json.dumps([contact.email, contact.first_name, contact.last_name, sorted(contact.fields.items())]).encode()
        )
    return digest.hexdigest()
