"""The campaign use cases over an in-memory unit of work: accept, read, list, and who may see what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from campaign_gateway.app.campaigns import CampaignUseCases
from campaign_gateway.domain.campaign import Campaign, CampaignState
from campaign_gateway.domain.contacts import Contact
from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.errors import InvalidArgument, NotFound, PermissionDenied
from libs.pagination import TimePosition
from tests.fakes import FakeStore, FakeUnitOfWork

SOS = Caller("sos-operator", Role.OPERATOR, "sos-expat")
ULIXAI = Caller("ulixai-operator", Role.OPERATOR, "ulixai")
ADMIN = Caller("admin", Role.ADMIN, "")


class FakeCampaigns:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, Campaign] = tables.setdefault("campaigns", {})
        self.contacts: dict[str, list[Contact]] = tables.setdefault("contacts", {})

    def add(self, campaign: Campaign, contacts: list[Contact]) -> None:
        self._rows[campaign.campaign_id] = campaign
        self.contacts[campaign.campaign_id] = list(contacts)

    def get(self, campaign_id: str) -> Campaign | None:
        return self._rows.get(campaign_id)

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Campaign]:
        rows = sorted(self._rows.values(), key=lambda c: (c.create_time, c.campaign_id), reverse=True)
        rows = [c for c in rows if not tenant or c.tenant == tenant]
        if after is not None:
            rows = [c for c in rows if (c.create_time, c.campaign_id) < (after.time, after.id)]
        return rows[:limit]


class FakeCampaignUnitOfWork(FakeUnitOfWork):
    campaigns: FakeCampaigns

    def _bind(self, tables: dict[str, Any]) -> None:
        self.campaigns = FakeCampaigns(tables)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def campaigns(store: FakeStore, clock: FakeClock) -> CampaignUseCases:
    return CampaignUseCases(lambda: FakeCampaignUnitOfWork(store), clock, max_contacts=1000)


def test_a_campaign_is_stored_pending_with_its_cleaned_contacts(campaigns: CampaignUseCases, store: FakeStore) -> None:
    contacts = [Contact("Ann@Example.COM"), Contact("Ann@example.com"), Contact("bob@example.org")]
    campaign = campaigns.create(SOS, tenant="sos-expat", template_id="cold_v1", name="", contacts=contacts)
    assert campaign.state is CampaignState.PENDING and campaign.contact_count == 2
    assert campaign.name == "cold_v1"
    stored = store.tables["contacts"][campaign.campaign_id]
    assert [c.email for c in stored] == ["Ann@example.com", "bob@example.org"]
    assert store.commits == 1


def test_bad_input_names_every_field_and_stores_nothing(campaigns: CampaignUseCases, store: FakeStore) -> None:
    with pytest.raises(InvalidArgument) as error:
        campaigns.create(SOS, tenant="", template_id="", name="", contacts=[Contact("not-an-address")])
    assert {v.field for v in error.value.violations} == {"tenant", "template_id", "contacts[0].email"}
    assert store.commits == 0


def test_an_operator_may_not_create_for_another_tenant(campaigns: CampaignUseCases, store: FakeStore) -> None:
    with pytest.raises(PermissionDenied):
        campaigns.create(ULIXAI, tenant="sos-expat", template_id="t", name="", contacts=[Contact("a@b.example")])
    assert store.commits == 0


def test_another_tenants_campaign_reads_exactly_like_a_missing_one(campaigns: CampaignUseCases) -> None:
    mine = campaigns.create(SOS, tenant="sos-expat", template_id="t", name="", contacts=[Contact("a@b.example")])
    with pytest.raises(NotFound) as foreign:
        campaigns.get(ULIXAI, mine.campaign_id)
    with pytest.raises(NotFound) as missing:
        campaigns.get(ULIXAI, "00000000-0000-4000-8000-000000000000")
    assert type(foreign.value) is type(missing.value)
    assert campaigns.get(ADMIN, mine.campaign_id) == mine


def test_lists_page_newest_first_within_the_callers_tenant(campaigns: CampaignUseCases, clock: FakeClock) -> None:
    made = []
    for _ in range(5):
        made.append(campaigns.create(SOS, tenant="sos-expat", template_id="t", name="", contacts=[Contact("a@b.io")]))
        clock.advance(timedelta(minutes=1))
    campaigns.create(ULIXAI, tenant="ulixai", template_id="t", name="", contacts=[Contact("a@b.io")])
    first, token = campaigns.list(SOS, tenant="", size=3, token="")
    rest, last = campaigns.list(SOS, tenant="", size=3, token=token)
    assert [c.campaign_id for c in first + rest] == [c.campaign_id for c in reversed(made)]
    assert last == ""


def test_a_page_token_this_api_did_not_hand_out_is_a_clear_error(campaigns: CampaignUseCases) -> None:
    for token in ("garbage", "eyJ0IjoxfQ", "eyJ0Ijoibm90IGEgdGltZSIsImkiOiJ4In0"):
        with pytest.raises(InvalidArgument) as error:
            campaigns.list(SOS, tenant="", size=3, token=token)
        assert error.value.violations[0].field == "page_token"
