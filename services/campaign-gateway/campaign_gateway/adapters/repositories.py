"""The campaign, suppression and MailWizz-sync repositories over the service's own tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaign_gateway.adapters.tables import (
    campaign_contacts,
    campaign_problems,
    campaign_steps,
    campaigns,
    mailwizz_sync_state,
    suppressions,
)
from campaign_gateway.app.unit_of_work import MailwizzSyncState, SyncConflict
from campaign_gateway.domain.campaign import (
    Campaign,
    CampaignStage,
    CampaignState,
    CampaignStep,
    IpShare,
    MailwizzRefs,
    SendPlan,
    StepOutcome,
)
from campaign_gateway.domain.contacts import Contact, ContactProblem, ProblemKind, Suppression
from campaign_gateway.domain.preflight import PreflightCheck
from libs.db import driver_value, insert_many
from libs.pagination import TimePosition

_INSERT_BATCH = 5000
_IN_BATCH = 900  # values in one IN (...): under SQLite's bound-parameter limit


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dialect_insert(session: Session, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, for the database the session is on (PostgreSQL or SQLite)."""
    return postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)


def _fit(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


class SqlCampaignRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, campaign: Campaign, contacts: list[Contact], positions: Sequence[int] = ()) -> None:
        self._session.execute(campaigns.insert().values(campaign_id=campaign.campaign_id, **_columns(campaign)))
        places = list(positions) or list(range(len(contacts)))
        rows = [
            {
                "campaign_id": campaign.campaign_id,
                "email": c.email,
                "first_name": _fit(c.first_name, 200),
                "last_name": _fit(c.last_name, 200),
                "fields": c.fields,
                "position": position,
            }
            for c, position in zip(contacts, places, strict=True)
        ]
        for start in range(0, len(rows), _INSERT_BATCH):
            self._session.execute(campaign_contacts.insert(), rows[start : start + _INSERT_BATCH])

    def save(self, campaign: Campaign) -> None:
        values = _columns(campaign)
        for fixed in ("tenant", "create_time", "request_id", "fingerprint"):
            values.pop(fixed)
        self._session.execute(
            campaigns.update().where(campaigns.c.campaign_id == campaign.campaign_id).values(**values)
        )

    def get(self, campaign_id: str) -> Campaign | None:
        row = self._session.execute(sa.select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()
        return _campaign(row) if row is not None else None

    def by_request(self, tenant: str, request_id: str) -> Campaign | None:
        row = self._session.execute(
            sa.select(campaigns).where(campaigns.c.tenant == tenant, campaigns.c.request_id == request_id)
        ).first()
        return _campaign(row) if row is not None else None

    def list(
        self, *, tenant: str, limit: int, after: TimePosition | None, state: CampaignState | None = None
    ) -> list[Campaign]:
        query = sa.select(campaigns).order_by(campaigns.c.create_time.desc(), campaigns.c.campaign_id.desc())
        if tenant:
            query = query.where(campaigns.c.tenant == tenant)
        if state is not None:
            query = query.where(campaigns.c.state == state.value)
        if after is not None:
            query = query.where(
                sa.or_(
                    campaigns.c.create_time < after.time,
                    sa.and_(campaigns.c.create_time == after.time, campaigns.c.campaign_id < after.id),
                )
            )
        return [_campaign(row) for row in self._session.execute(query.limit(limit)).all()]

    def contacts(self, campaign_id: str) -> list[tuple[int, Contact]]:
        rows = self._session.execute(
            sa.select(campaign_contacts)
            .where(campaign_contacts.c.campaign_id == campaign_id)
            .order_by(campaign_contacts.c.position, campaign_contacts.c.email)
        ).all()
        return [
            (
                row.position if row.position is not None else index,
                Contact(row.email, row.first_name, row.last_name, dict(row.fields or {})),
            )
            for index, row in enumerate(rows)
        ]

    def claim(self, campaign_id: str, *, owner: str, until: datetime, now: datetime) -> bool:
        free = sa.or_(
            campaigns.c.lease_until.is_(None), campaigns.c.lease_until < now, campaigns.c.lease_owner == owner
        )
        result = self._session.execute(
            campaigns.update()
            .where(campaigns.c.campaign_id == campaign_id, free)
            .values(lease_owner=owner, lease_until=until)
        )
        return result.rowcount == 1

    def release(self, campaign_id: str, *, owner: str) -> None:
        self._session.execute(
            campaigns.update()
            .where(campaigns.c.campaign_id == campaign_id, campaigns.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    def add_problems(self, campaign_id: str, problems: Iterable[ContactProblem]) -> None:
        rows = [
            {
                "campaign_id": campaign_id,
                "position": p.index,
                "email": _fit(p.email, 320),
                "kind": p.kind.value,
                "detail": _fit(p.detail, 2000),
            }
            for p in problems
        ]
        for start in range(0, len(rows), _INSERT_BATCH):
            self._session.execute(campaign_problems.insert(), rows[start : start + _INSERT_BATCH])

    def problems(self, campaign_id: str, *, limit: int) -> tuple[list[ContactProblem], dict[str, int]]:
        mine = campaign_problems.c.campaign_id == campaign_id
        counts = self._session.execute(
            sa.select(campaign_problems.c.kind, sa.func.count()).where(mine).group_by(campaign_problems.c.kind)
        ).all()
        rows = (
            self._session.execute(
                sa.select(campaign_problems).where(mine).order_by(campaign_problems.c.position).limit(limit)
            ).all()
            if limit > 0
            else []
        )
        listed = [ContactProblem(row.position, row.email, ProblemKind(row.kind), row.detail) for row in rows]
        return listed, {kind: int(count) for kind, count in counts}

    def add_step(self, campaign_id: str, step: CampaignStep) -> None:
        self._session.execute(
            campaign_steps.insert().values(
                campaign_id=campaign_id,
                step=_fit(step.step, 40),
                outcome=step.outcome.value,
                detail=_fit(step.detail, 4000),
                time=step.time,
            )
        )

    def steps(self, campaign_id: str) -> list[CampaignStep]:
        rows = self._session.execute(
            sa.select(campaign_steps).where(campaign_steps.c.campaign_id == campaign_id).order_by(campaign_steps.c.id)
        ).all()
        return [CampaignStep(row.step, StepOutcome(row.outcome), row.detail, _utc(row.time)) for row in rows]  # type: ignore[arg-type]


def _columns(campaign: Campaign) -> dict[str, Any]:
    refs = campaign.mailwizz
    return {
        "tenant": campaign.tenant,
        "name": _fit(campaign.name, 200),
        "template_id": campaign.template_id,
        "state": campaign.state.value,
        "state_reason": campaign.state_reason,
        "contact_count": campaign.contact_count,
        "create_time": campaign.create_time,
        "request_id": campaign.request_id or None,
        "fingerprint": campaign.fingerprint or None,
        "stage": campaign.stage.value if campaign.stage else None,
        "subject": campaign.subject,
        "from_name": campaign.from_name,
        "from_email": campaign.from_email,
        "reply_to": campaign.reply_to,
        "send_time": campaign.send_time,
        "received": campaign.received,
        "preflight": [{"check": c.check, "passed": c.passed, "detail": c.detail} for c in campaign.preflight],
        "send_plan": _plan_json(campaign.plan),
        "mailwizz_list_uid": refs.list_uid,
        "mailwizz_campaign_uid": refs.campaign_uid,
        "mailwizz_template_uid": refs.template_uid,
        "mailwizz_status": refs.status,
        "subscribers_added": refs.subscribers_added,
        "subscribers_already_present": refs.subscribers_already_present,
        "chunk_size": refs.chunk_size,
        "update_time": campaign.update_time,
    }


def _plan_json(plan: SendPlan) -> dict[str, Any]:
    return {
        "allocation_id": plan.allocation_id,
        "day": plan.day.isoformat() if plan.day else "",
        "requested": plan.requested,
        "requested_by_provider": plan.requested_by_provider,
        "allocated_today": plan.allocated_today,
        "ips": [
            {
                "address": ip.address,
                "volume": ip.volume,
                "by_provider": ip.by_provider,
                "delivery_server_id": ip.delivery_server_id,
                "vmta": ip.vmta,
            }
            for ip in plan.ips
        ],
        "remainder": plan.remainder,
        "later_days": [[day.isoformat(), volume] for day, volume in plan.later_days],
        "unplanned": plan.unplanned,
        "excluded": [list(item) for item in plan.excluded],
    }


def _plan(data: dict[str, Any] | None) -> SendPlan:
    if not data:
        return SendPlan()
    return SendPlan(
        allocation_id=data.get("allocation_id", ""),
        day=date.fromisoformat(data["day"]) if data.get("day") else None,
        requested=int(data.get("requested", 0)),
        requested_by_provider=dict(data.get("requested_by_provider") or {}),
        allocated_today=int(data.get("allocated_today", 0)),
        ips=tuple(
            IpShare(
                address=ip["address"],
                volume=int(ip["volume"]),
                by_provider=dict(ip.get("by_provider") or {}),
                delivery_server_id=ip.get("delivery_server_id"),
                vmta=ip.get("vmta", ""),
            )
            for ip in data.get("ips") or []
        ),
        remainder=int(data.get("remainder", 0)),
        later_days=tuple((date.fromisoformat(day), int(volume)) for day, volume in data.get("later_days") or []),
        unplanned=int(data.get("unplanned", 0)),
        excluded=tuple((address, reason) for address, reason in data.get("excluded") or []),
    )


def _campaign(row: sa.Row) -> Campaign:
    created: datetime = row.create_time
    return Campaign(
        campaign_id=row.campaign_id,
        tenant=row.tenant,
        name=row.name,
        template_id=row.template_id,
        state=CampaignState(row.state),
        state_reason=row.state_reason,
        contact_count=row.contact_count,
        create_time=created if created.tzinfo else created.replace(tzinfo=UTC),
        request_id=row.request_id or "",
        fingerprint=row.fingerprint or "",
        stage=CampaignStage(row.stage) if row.stage else None,
        subject=row.subject,
        from_name=row.from_name,
        from_email=row.from_email,
        reply_to=row.reply_to,
        send_time=_utc(row.send_time),
        received=row.received,
        preflight=tuple(PreflightCheck(c["check"], bool(c["passed"]), c["detail"]) for c in row.preflight or []),
        plan=_plan(row.send_plan),
        mailwizz=MailwizzRefs(
            list_uid=row.mailwizz_list_uid,
            campaign_uid=row.mailwizz_campaign_uid,
            template_uid=row.mailwizz_template_uid,
            status=row.mailwizz_status,
            subscribers_added=row.subscribers_added,
            subscribers_already_present=row.subscribers_already_present,
            chunk_size=row.chunk_size,
        ),
        update_time=_utc(row.update_time),
    )


_SUPPRESSION_COLUMNS = ("tenant", "address_key", "email", "reason", "source", "create_time")


class SqlSuppressionRepository:
    """`suppressions(tenant, address_key, email, ...)`: one row per (tenant, `Suppression.key`)."""

    def __init__(self, session: Session):
        self._session = session

    def add(self, entries: Sequence[Suppression]) -> int:
        # An entry already there (or added meanwhile by another transaction: two nodes' accounting batches may
        # suppress the same recipient at once) is left as it is. RETURNING counts the rows inserted on both
        # databases (an executemany's rowcount is not reliable).
        statement = self._insert().returning(suppressions.c.address_key)
        rows = self._rows(entries)
        added = 0
        for start in range(0, len(rows), _INSERT_BATCH):
            added += len(self._session.execute(statement, rows[start : start + _INSERT_BATCH]).all())
        return added

    def add_uncounted(self, entries: Sequence[Suppression]) -> None:
        # The same insert without RETURNING, the rows handed to the driver as they are: an accounting batch
        # suppresses tens of thousands of recipients at once, so the loop is kept lean (the key is
        # `Suppression.key`, written out; the few distinct reasons, sources and times are converted once each).
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        fitted: dict[tuple[str, int], str] = {}
        stamps: dict[datetime, Any] = {}
        for e in entries:
            email = e.email.strip()
            key = email.lower()
            if (e.tenant, key) in rows:
                continue  # the first entry of a key wins
            reason = fitted.get((e.reason, 500)) or fitted.setdefault((e.reason, 500), _fit(e.reason, 500))
            source = fitted.get((e.source, 100)) or fitted.setdefault((e.source, 100), _fit(e.source, 100))
            stamp = stamps.get(e.create_time)
            if stamp is None:
                stamp = stamps[e.create_time] = driver_value(self._session, suppressions.c.create_time, e.create_time)
            rows[(e.tenant, key)] = (
                e.tenant,
                key if len(key) <= 320 else _fit(key, 320),
                email if len(email) <= 320 else _fit(email, 320),
                reason,
                source,
                stamp,
            )
        insert_many(
            self._session,
            suppressions,
            _SUPPRESSION_COLUMNS,
            list(rows.values()),
            skip_conflicts_on=("tenant", "address_key"),
        )

    def _insert(self) -> Any:
        return dialect_insert(self._session, suppressions).on_conflict_do_nothing(
            index_elements=["tenant", "address_key"]
        )

    @staticmethod
    def _rows(entries: Sequence[Suppression]) -> list[dict[str, Any]]:
        unique = {(e.tenant, e.key): e for e in reversed(entries)}  # the first entry of a key wins
        return [
            {
                "tenant": e.tenant,
                "address_key": _fit(e.key, 320),
                "email": _fit(e.email.strip(), 320),
                "reason": _fit(e.reason, 500),
                "source": _fit(e.source, 100),
                "create_time": e.create_time,
            }
            for e in unique.values()
        ]

    def remove(self, tenant: str, keys: Iterable[str]) -> int:
        wanted = list(dict.fromkeys(keys))
        removed = 0
        for start in range(0, len(wanted), _IN_BATCH):
            removed += self._session.execute(
                suppressions.delete().where(
                    suppressions.c.tenant == tenant, suppressions.c.address_key.in_(wanted[start : start + _IN_BATCH])
                )
            ).rowcount
        return removed

    def matching(self, tenant: str, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start : start + _IN_BATCH]
            found.update(
                self._session.execute(
                    sa.select(suppressions.c.address_key).where(
                        suppressions.c.tenant == tenant, suppressions.c.address_key.in_(batch)
                    )
                ).scalars()
            )
        return found

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Suppression]:
        query = sa.select(suppressions).order_by(suppressions.c.create_time.desc(), suppressions.c.address_key.desc())
        if tenant:
            query = query.where(suppressions.c.tenant == tenant)
        if after is not None:
            query = query.where(
                sa.or_(
                    suppressions.c.create_time < after.time,
                    sa.and_(suppressions.c.create_time == after.time, suppressions.c.address_key < after.id),
                )
            )
        return [
            Suppression(row.tenant, row.email, row.reason, row.source, _utc(row.create_time))  # type: ignore[arg-type]
            for row in self._session.execute(query.limit(limit)).all()
        ]


class SqlMailwizzSyncRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant: str) -> MailwizzSyncState | None:
        row = self._session.execute(
            sa.select(mailwizz_sync_state).where(mailwizz_sync_state.c.tenant == tenant)
        ).first()
        if row is None:
            return None
        return MailwizzSyncState(
            tenant=row.tenant,
            last_sync_time=_utc(row.last_sync_time),
            last_outcome=row.last_outcome,
            conflicts=tuple(SyncConflict(**c) for c in row.conflicts or []),
        )

    def save(self, state: MailwizzSyncState) -> None:
        values = {
            "last_sync_time": state.last_sync_time,
            "last_outcome": state.last_outcome,
            "conflicts": [
                {"server_id": c.server_id, "vmta": c.vmta, "address": c.address, "reason": c.reason}
                for c in state.conflicts
            ],
        }
        updated = self._session.execute(
            mailwizz_sync_state.update().where(mailwizz_sync_state.c.tenant == state.tenant).values(**values)
        )
        if updated.rowcount == 0:
            self._session.execute(mailwizz_sync_state.insert().values(tenant=state.tenant, **values))
