"""Repositories of the delivery side over the service's own tables: PowerMTA nodes, deploys, node leases,
accounting state, bounce routes and the bounce delivery outbox (the suppression list is `repositories.py`).

Accounting state is stored for speed (millions of records a day): the identities of counted records and the keys
of original messages are packed into binary chunks, one row per batch and bucket, not one row per record, and the
absolute totals are upserted with additions (`x = x + delta`) so concurrent batches of different nodes add up.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, date, datetime

import numpy as np
import sqlalchemy as sa
import xxhash
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaign_gateway.adapters.repositories import dialect_insert
from campaign_gateway.adapters.tables import (
    accounting_cursors,
    accounting_origins,
    accounting_pending,
    accounting_problems,
    accounting_seen,
    accounting_totals,
    bounce_deliveries,
    bounce_routes,
    node_leases,
    pmta_deployments,
    pmta_nodes,
    pmta_queue_holds,
)
from campaign_gateway.app.delivery_views import (
    BounceRouteRecord,
    ClaimedDelivery,
    CursorState,
    DeliveryCounts,
    Deployment,
    NewDelivery,
    ProblemView,
)
from campaign_gateway.domain.accounting import (
    AccountingRecord,
    DayTotals,
    Origin,
    RecordType,
    TotalsKey,
    record_identity,
)
from campaign_gateway.domain.pmta_nodes import DeployOutcome, NodeRecord, NodeSpec
from campaign_gateway.domain.providers import ProviderGroup
from libs.db import driver_value, insert_many
from libs.pagination import TimePosition

PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"
_COUNTERS = tuple(field.name for field in fields(DayTotals))
_ORIGIN_ENTRY = 10  # 8-byte key digest + 2-byte slot index
_IDENTITY_DTYPE = np.dtype("V16")  # a record identity, as `accounting_seen.data` packs them
_ORIGIN_DTYPE = np.dtype([("digest", ">u8"), ("slot", ">u2")])  # the same entry, as numpy packs it
_CHUNK = 500


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# ---------------------------------------------------------------- nodes


def _node(row: sa.Row) -> NodeRecord:
    spec = NodeSpec(
        name=row.name,
        hostname=row.hostname,
        ssh_host=row.ssh_host,
        ssh_port=row.ssh_port,
        ssh_user=row.ssh_user,
        ssh_host_key=row.ssh_host_key,
        config_path=row.config_path,
        pmta_command=row.pmta_command,
        accounting_directory=row.accounting_directory,
        accounting_move_to=tuple(row.accounting_move_to or ()),
        accounting_pattern=row.accounting_pattern,
        accounting_pull=bool(row.accounting_pull),
        http_monitor_url=row.http_monitor_url,
        smtp_host=row.smtp_host,
        smtp_port=row.smtp_port,
    )
    return NodeRecord(
        spec=spec,
        create_time=_aware(row.create_time),  # type: ignore[arg-type]
        update_time=_aware(row.update_time),  # type: ignore[arg-type]
        deployed_sha256=row.deployed_sha256,
        deployed_text=row.deployed_text,
        consecutive_failures=row.consecutive_failures,
    )


def _spec_values(spec: NodeSpec) -> dict[str, object]:
    return {
        "hostname": spec.hostname,
        "ssh_host": spec.ssh_host,
        "ssh_port": spec.ssh_port,
        "ssh_user": spec.ssh_user,
        "ssh_host_key": spec.ssh_host_key.strip(),
        "config_path": spec.config_path,
        "pmta_command": spec.pmta_command,
        "accounting_directory": spec.accounting_directory,
        "accounting_move_to": list(spec.accounting_move_to),
        "accounting_pattern": spec.accounting_pattern,
        "accounting_pull": spec.accounting_pull,
        "http_monitor_url": spec.http_monitor_url,
        "smtp_host": spec.smtp_host,
        "smtp_port": spec.smtp_port,
    }


class SqlPmtaNodeRepository:
    """The node registry; also the `NodeDirectory` the MailWizz side asks for a node's SMTP endpoint."""

    def __init__(self, session: Session):
        self._session = session

    def add(self, node: NodeRecord, *, token_sha256: str) -> None:
        self._session.execute(
            pmta_nodes.insert().values(
                name=node.spec.name,
                **_spec_values(node.spec),
                forwarder_token_sha256=token_sha256,
                create_time=node.create_time,
                update_time=node.update_time,
                deployed_sha256="",
                deployed_text="",
                consecutive_failures=0,
            )
        )

    def get(self, name: str) -> NodeRecord | None:
        row = self._session.execute(sa.select(pmta_nodes).where(pmta_nodes.c.name == name)).first()
        return _node(row) if row is not None else None

    def list(self, *, limit: int, after: str) -> list[NodeRecord]:
        query = sa.select(pmta_nodes).order_by(pmta_nodes.c.name).limit(limit)
        if after:
            query = query.where(pmta_nodes.c.name > after)
        return [_node(row) for row in self._session.execute(query).all()]

    def update_spec(self, spec: NodeSpec, *, now: datetime) -> None:
        self._session.execute(
            pmta_nodes.update().where(pmta_nodes.c.name == spec.name).values(**_spec_values(spec), update_time=now)
        )

    def token_sha256(self, name: str) -> str | None:
        return self._session.execute(
            sa.select(pmta_nodes.c.forwarder_token_sha256).where(pmta_nodes.c.name == name)
        ).scalar_one_or_none()

    def set_token(self, name: str, token_sha256: str, *, now: datetime) -> None:
        self._session.execute(
            pmta_nodes.update()
            .where(pmta_nodes.c.name == name)
            .values(forwarder_token_sha256=token_sha256, update_time=now)
        )

    def delete(self, name: str) -> bool:
        for table in (node_leases, accounting_cursors):
            self._session.execute(table.delete().where(table.c.node == name))
        return bool(self._session.execute(pmta_nodes.delete().where(pmta_nodes.c.name == name)).rowcount)

    def record_deploy(self, name: str, *, deployed_sha256: str, deployed_text: str, consecutive_failures: int) -> None:
        self._session.execute(
            pmta_nodes.update()
            .where(pmta_nodes.c.name == name)
            .values(
                deployed_sha256=deployed_sha256, deployed_text=deployed_text, consecutive_failures=consecutive_failures
            )
        )

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None:
        row = self._session.execute(
            sa.select(pmta_nodes.c.smtp_host, pmta_nodes.c.smtp_port).where(pmta_nodes.c.name == node_name)
        ).first()
        return (row.smtp_host, row.smtp_port) if row is not None else None


def _deployment(row: sa.Row) -> Deployment:
    return Deployment(
        deployment_id=row.deployment_id,
        node=row.node,
        outcome=DeployOutcome(row.outcome),
        time=_aware(row.time),  # type: ignore[arg-type]
        config_sha256=row.config_sha256,
        trigger=row.trigger,
        detail=row.detail,
        consecutive_failures=row.consecutive_failures,
    )


class SqlDeploymentRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, deployment: Deployment) -> None:
        self._session.execute(
            pmta_deployments.insert().values(
                deployment_id=deployment.deployment_id,
                node=deployment.node,
                time=deployment.time,
                outcome=deployment.outcome.value,
                config_sha256=deployment.config_sha256,
                trigger=deployment.trigger,
                detail=deployment.detail[:4000],
                consecutive_failures=deployment.consecutive_failures,
            )
        )

    def latest(self, node: str) -> Deployment | None:
        found = self.list(node, limit=1, after=None)
        return found[0] if found else None

    def list(self, node: str, *, limit: int, after: TimePosition | None) -> list[Deployment]:
        query = (
            sa.select(pmta_deployments)
            .where(pmta_deployments.c.node == node)
            .order_by(pmta_deployments.c.time.desc(), pmta_deployments.c.deployment_id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                sa.or_(
                    pmta_deployments.c.time < after.time,
                    sa.and_(pmta_deployments.c.time == after.time, pmta_deployments.c.deployment_id < after.id),
                )
            )
        return [_deployment(row) for row in self._session.execute(query).all()]


class SqlLeaseRepository:
    """A lease is a row per (node, purpose): taken by an update that matches only a free or expired lease (or the
    owner's own), or by the insert of the first one. Works the same on SQLite and PostgreSQL."""

    def __init__(self, session: Session):
        self._session = session

    def acquire(self, node: str, purpose: str, owner: str, *, now: datetime, until: datetime) -> bool:
        """Use it in a unit of work of its own: a lost race for the first row rolls that unit of work back."""
        key = (node_leases.c.node == node) & (node_leases.c.purpose == purpose)
        taken = self._session.execute(
            node_leases.update()
            .where(key & ((node_leases.c.expires_at < now) | (node_leases.c.owner == owner)))
            .values(owner=owner, expires_at=until)
        ).rowcount
        if taken:
            return True
        if self._session.execute(sa.select(node_leases.c.owner).where(key)).first() is not None:
            return False
        try:
            self._session.execute(
                node_leases.insert().values(node=node, purpose=purpose, owner=owner, expires_at=until)
            )
            self._session.flush()
        except IntegrityError:
            self._session.rollback()
            return False
        return True

    def release(self, node: str, purpose: str, owner: str) -> None:
        self._session.execute(
            node_leases.delete().where(
                (node_leases.c.node == node) & (node_leases.c.purpose == purpose) & (node_leases.c.owner == owner)
            )
        )


class SqlQueueHoldRepository:
    def __init__(self, session: Session):
        self._session = session

    def held(self, node: str) -> dict[str, str]:
        rows = self._session.execute(
            sa.select(pmta_queue_holds.c.vmta, pmta_queue_holds.c.address).where(pmta_queue_holds.c.node == node)
        )
        return {row.vmta: row.address for row in rows}

    def hold(self, node: str, vmta: str, address: str, *, now: datetime) -> None:
        """Idempotent: a hold already there keeps its first time."""
        insert = dialect_insert(self._session, pmta_queue_holds).values(
            node=node, vmta=vmta, address=address, since=now
        )
        self._session.execute(insert.on_conflict_do_nothing(index_elements=["node", "vmta"]))

    def release(self, node: str, vmta: str) -> None:
        self._session.execute(
            pmta_queue_holds.delete().where((pmta_queue_holds.c.node == node) & (pmta_queue_holds.c.vmta == vmta))
        )


# ---------------------------------------------------------------- accounting


def _key_digest(key: str) -> bytes:
    return xxhash.xxh3_64_digest(key.encode("utf-8", "surrogatepass"))


def _record_json(record: AccountingRecord) -> dict[str, object]:
    values = record._asdict()
    values["type"] = record.type.value
    values["time_logged"] = record.time_logged.isoformat()
    values["time_queued"] = record.time_queued.isoformat() if record.time_queued else None
    return values


def _record_from_json(values: dict[str, object]) -> AccountingRecord:
    data = dict(values)
    data["type"] = RecordType(str(data["type"]))
    data["time_logged"] = datetime.fromisoformat(str(data["time_logged"]))
    queued = data.get("time_queued")
    data["time_queued"] = datetime.fromisoformat(str(queued)) if queued else None
    return AccountingRecord(**data)  # type: ignore[arg-type]


class SqlAccountingRepository:
    def __init__(self, session: Session):
        self._session = session

    # cursor

    def cursor(self, node: str) -> CursorState | None:
        row = self._session.execute(sa.select(accounting_cursors).where(accounting_cursors.c.node == node)).first()
        if row is None:
            return None
        return CursorState(
            path=row.path,
            inode=row.inode,
            offset=row.offset,
            line=row.line,
            columns=tuple(row.columns) if row.columns else None,
            last_ingest_time=_aware(row.last_ingest_time),
            records_counted=row.records_counted,
            duplicates=row.duplicates,
            last_error=row.last_error,
        )

    def save_cursor(self, node: str, state: CursorState) -> None:
        values = {
            "path": state.path,
            "inode": state.inode,
            "offset": state.offset,
            "line": state.line,
            "columns": list(state.columns) if state.columns else None,
            "last_ingest_time": state.last_ingest_time,
            "records_counted": state.records_counted,
            "duplicates": state.duplicates,
            "last_error": state.last_error[:2000],
        }
        statement = dialect_insert(self._session, accounting_cursors).values(node=node, **values)
        self._session.execute(statement.on_conflict_do_update(index_elements=["node"], set_=values))

    # identities

    def load_seen(self, node: str, hours: set[int]) -> set[bytes]:
        seen: set[bytes] = set()
        for batch in _chunks(sorted(hours)):
            rows = self._session.execute(
                sa.select(accounting_seen.c.data).where(
                    (accounting_seen.c.node == node) & accounting_seen.c.hour.in_(batch)
                )
            ).scalars()
            for data in rows:
                # 16 bytes each; numpy's void items read back as the whole 16 bytes (trailing NULs kept).
                seen.update(np.frombuffer(data, dtype=_IDENTITY_DTYPE).tolist())
        return seen

    def add_seen(self, node: str, fresh: dict[int, list[bytes]]) -> None:
        rows = [{"node": node, "hour": hour, "data": b"".join(items)} for hour, items in fresh.items() if items]
        if rows:
            self._session.execute(accounting_seen.insert(), rows)

    # originals

    def add_origins(self, items: list[tuple[str, Origin]], *, day: date) -> None:
        if not items:
            return
        # Per partition (the first byte of the key's digest): its origins in slot order, and the packed entries
        # (digest + slot, as parts to join once). This runs once per key of every d/b record: everything is local.
        parts: dict[int, tuple[dict[Origin, bytes], list[bytes]]] = {}
        digest_of, get_part = xxhash.xxh3_64_digest, parts.get
        for key, origin in items:
            digest = digest_of(key.encode("utf-8", "surrogatepass"))
            part = get_part(digest[0])
            if part is None:
                part = parts[digest[0]] = ({}, [])
            slots, pieces = part
            slot = slots.get(origin)
            if slot is None:
                slot = slots[origin] = len(slots).to_bytes(2, "big")
            pieces += (digest, slot)
        written: dict[Origin, list[str]] = {}
        for slots, _pieces in parts.values():
            for origin in slots:
                if origin not in written:
                    written[origin] = [origin.address, origin.day.isoformat(), origin.provider]
        rows = [
            {"part": part, "created_day": day, "slots": [written[o] for o in slots], "data": b"".join(pieces)}
            for part, (slots, pieces) in sorted(parts.items())
        ]
        self._session.execute(accounting_origins.insert(), rows)

    def add_origin_digests(self, digests: np.ndarray, slots: np.ndarray, origins: list[Origin], *, day: date) -> None:
        """The rows `add_origins` writes, from keys already digested (sorted, unique): numpy packs each partition
        (the digest's first byte) at once instead of one key at a time."""
        if not len(digests):
            return
        # Each origin's JSON written once: every partition lists most of the batch's origins again.
        written = [json.dumps([o.address, o.day.isoformat(), o.provider]) for o in origins]
        parts = (digests >> np.uint64(56)).astype(np.int64)
        bounds = np.flatnonzero(np.diff(parts)) + 1
        # Each partition's origins in slot order, and each key's slot in its partition, for all partitions at once:
        # the distinct (partition, origin) pairs, sorted, rank each origin within its partition.
        pairs, pair_of_key = np.unique(parts * len(origins) + slots, return_inverse=True)
        pair_parts, pair_origins = pairs // len(origins), pairs % len(origins)
        firsts = np.searchsorted(pair_parts, pair_parts, side="left")
        local_slot = (np.arange(len(pairs)) - firsts)[pair_of_key.reshape(-1)]
        if len(local_slot) and local_slot.max() > 0xFFFF:
            raise OverflowError("more origins in one partition than a 2-byte slot holds")
        entries = np.empty(len(digests), dtype=_ORIGIN_DTYPE)
        entries["digest"] = digests
        entries["slot"] = local_slot
        pair_bounds = [*np.searchsorted(pair_parts, parts[[0, *bounds.tolist()]], side="left").tolist(), len(pairs)]
        origin_list = pair_origins.tolist()
        created_day = driver_value(self._session, accounting_origins.c.created_day, day)
        rows = []
        key_bounds = [0, *bounds.tolist(), len(digests)]
        for index in range(len(key_bounds) - 1):
            start, end = key_bounds[index], key_bounds[index + 1]
            used = origin_list[pair_bounds[index] : pair_bounds[index + 1]]
            slots_json = "[" + ",".join([written[origin] for origin in used]) + "]"
            rows.append((int(parts[start]), created_day, slots_json, entries[start:end].tobytes()))
        insert_many(self._session, accounting_origins, ("part", "created_day", "slots", "data"), rows)

    def find_origins(self, keys: list[str], *, since: date) -> dict[str, Origin]:
        wanted: dict[int, dict[bytes, str]] = defaultdict(dict)
        for key in keys:
            digest = _key_digest(key)
            wanted[digest[0]][digest] = key
        if not wanted:
            return {}
        table = accounting_origins
        rows = self._session.execute(
            sa.select(table.c.chunk_id, table.c.part, table.c.data)
            .where(table.c.part.in_(sorted(wanted)) & (table.c.created_day >= since))
            .order_by(table.c.chunk_id)
        ).all()
        hits: list[tuple[int, str, int]] = []  # (chunk, key, slot), in chunk order
        for row in rows:
            data = bytes(row.data)
            for digest, key in wanted[row.part].items():
                slot = _find_entry(data, digest)
                if slot is not None:
                    hits.append((row.chunk_id, key, slot))
        # Only the chunks that hold a wanted key have their slots decoded (JSON, hundreds of origins per chunk).
        slots_of: dict[int, list] = {}
        for batch in _chunks(sorted({chunk for chunk, _key, _slot in hits})):
            for chunk_id, slots in self._session.execute(
                sa.select(table.c.chunk_id, table.c.slots).where(table.c.chunk_id.in_(batch))
            ).all():
                slots_of[chunk_id] = slots
        found: dict[str, Origin] = {}
        for chunk_id, key, slot in hits:
            address, day, provider = slots_of[chunk_id][slot]
            found[key] = Origin(address, date.fromisoformat(day), provider)  # later chunks win
        return found

    # pending rb/f

    def pending(self, node: str) -> list[AccountingRecord]:
        rows = self._session.execute(
            sa.select(accounting_pending.c.record)
            .where(accounting_pending.c.node == node)
            .order_by(accounting_pending.c.received_at)
        ).scalars()
        return [_record_from_json(values) for values in rows]

    def replace_pending(self, node: str, records: list[AccountingRecord], *, now: datetime) -> None:
        self._session.execute(accounting_pending.delete().where(accounting_pending.c.node == node))
        unique = {record_identity(record): record for record in records}
        if unique:
            self._session.execute(
                accounting_pending.insert(),
                [
                    {"identity": identity, "node": node, "record": _record_json(record), "received_at": now}
                    for identity, record in unique.items()
                ],
            )

    # totals

    def add_totals(self, deltas: dict[TotalsKey, DayTotals]) -> None:
        if not deltas:
            return
        table = accounting_totals
        rows = [
            {
                "address": key.address,
                "day": key.day,
                "provider": key.provider.value,
                **{name: getattr(counts, name) for name in _COUNTERS},
                "version": 1,
                "pushed_version": 0,
            }
            for key, counts in sorted(deltas.items())
        ]
        statement = dialect_insert(self._session, table)
        statement = statement.on_conflict_do_update(
            index_elements=["address", "day", "provider"],
            set_={
                **{name: table.c[name] + statement.excluded[name] for name in _COUNTERS},
                "version": table.c.version + 1,
            },
        )
        self._session.execute(statement, rows)  # one executemany for the whole batch

    def totals(self, *, address: str = "") -> dict[TotalsKey, DayTotals]:
        query = sa.select(accounting_totals).order_by(
            accounting_totals.c.address, accounting_totals.c.day, accounting_totals.c.provider
        )
        if address:
            query = query.where(accounting_totals.c.address == address)
        return {_totals_key(row): _day_totals(row) for row in self._session.execute(query).all()}

    def unpushed(self, *, limit: int) -> list[tuple[TotalsKey, DayTotals, int]]:
        table = accounting_totals
        pairs = self._session.execute(
            sa.select(table.c.address, table.c.day)
            .where(table.c.version > table.c.pushed_version)
            .distinct()
            .order_by(table.c.address, table.c.day)
            .limit(limit)
        ).all()
        found: list[tuple[TotalsKey, DayTotals, int]] = []
        for address, day in pairs:
            rows = self._session.execute(
                sa.select(table).where((table.c.address == address) & (table.c.day == day))
            ).all()
            found += [(_totals_key(row), _day_totals(row), row.version) for row in rows]
        return found

    def mark_pushed(self, rows: list[tuple[TotalsKey, int]]) -> None:
        table = accounting_totals
        for key, version in rows:
            self._session.execute(
                table.update()
                .where(
                    (table.c.address == key.address)
                    & (table.c.day == key.day)
                    & (table.c.provider == key.provider.value)
                    & (table.c.pushed_version < version)
                )
                .values(pushed_version=version)
            )

    # problems

    def add_problems(self, node: str, problems: list[ProblemView]) -> None:
        if problems:
            self._session.execute(
                accounting_problems.insert(),
                [
                    {
                        "node": node,
                        "source": p.source[:1024],
                        "line": p.line,
                        "kind": p.kind,
                        "detail": p.detail[:2000],
                        "time": p.time,
                    }
                    for p in problems[-200:]
                ],
            )

    def recent_problems(self, node: str, *, limit: int) -> list[ProblemView]:
        rows = self._session.execute(
            sa.select(accounting_problems)
            .where(accounting_problems.c.node == node)
            .order_by(accounting_problems.c.problem_id.desc())
            .limit(limit)
        ).all()
        return [ProblemView(r.kind, r.source, r.line, r.detail, _aware(r.time)) for r in rows]  # type: ignore[arg-type]

    def pending_count(self, node: str) -> int:
        return int(
            self._session.execute(
                sa.select(sa.func.count()).select_from(accounting_pending).where(accounting_pending.c.node == node)
            ).scalar_one()
        )


def _find_entry(data: bytes, digest: bytes) -> int | None:
    """The slot index of `digest` in a packed origins chunk (the last entry with it), None when absent."""
    found, start = None, 0
    while True:
        index = data.find(digest, start)
        if index < 0:
            return found
        if index % _ORIGIN_ENTRY == 0:
            found = int.from_bytes(data[index + 8 : index + _ORIGIN_ENTRY], "big")
        start = index + 1


def _totals_key(row: sa.Row) -> TotalsKey:
    return TotalsKey(row.address, row.day, ProviderGroup(row.provider))


def _day_totals(row: sa.Row) -> DayTotals:
    return DayTotals(**{name: int(getattr(row, name)) for name in _COUNTERS})


# ---------------------------------------------------------------- bounce forwarding


def _route(row: sa.Row) -> BounceRouteRecord:
    return BounceRouteRecord(
        route_id=row.route_id,
        tenant_id=row.tenant_id,
        url=row.url,
        secret=row.secret,
        events=tuple(row.events or ()),
        create_time=_aware(row.create_time),  # type: ignore[arg-type]
    )


class SqlBounceRouteRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, route: BounceRouteRecord) -> None:
        self._session.execute(
            bounce_routes.insert().values(
                route_id=route.route_id,
                tenant_id=route.tenant_id,
                url=route.url,
                secret=route.secret,
                events=list(route.events),
                create_time=route.create_time,
            )
        )

    def get(self, route_id: str) -> BounceRouteRecord | None:
        row = self._session.execute(sa.select(bounce_routes).where(bounce_routes.c.route_id == route_id)).first()
        return _route(row) if row is not None else None

    def for_tenant(self, tenant_id: str) -> list[BounceRouteRecord]:
        rows = self._session.execute(
            sa.select(bounce_routes)
            .where(bounce_routes.c.tenant_id == tenant_id)
            .order_by(bounce_routes.c.create_time, bounce_routes.c.route_id)
        ).all()
        return [_route(row) for row in rows]

    def delete(self, route_id: str) -> bool:
        return bool(self._session.execute(bounce_routes.delete().where(bounce_routes.c.route_id == route_id)).rowcount)


class SqlBounceDeliveryRepository:
    def __init__(self, session: Session):
        self._session = session

    def add_many(self, deliveries: list[NewDelivery]) -> int:
        if not deliveries:
            return 0
        statement = (
            dialect_insert(self._session, bounce_deliveries)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(bounce_deliveries.c.delivery_id)
        )
        added = 0
        for batch in _chunks(deliveries):
            result = self._session.execute(
                statement,
                [
                    {
                        "delivery_id": d.delivery_id,
                        "route_id": d.route_id,
                        "tenant_id": d.tenant_id,
                        "body": d.body,
                        "state": PENDING,
                        "attempts": 0,
                        "created_at": d.created_at,
                        "next_attempt_at": d.created_at,
                        "last_error": "",
                        "lease_owner": "",
                    }
                    for d in batch
                ],
            )
            added += len(result.all())
        return added

    def due(self, *, now: datetime, limit: int) -> list[str]:
        table = bounce_deliveries
        return list(
            self._session.execute(
                sa.select(table.c.delivery_id)
                .where(
                    (table.c.state == PENDING)
                    & (table.c.next_attempt_at <= now)
                    & (table.c.lease_until.is_(None) | (table.c.lease_until < now))
                )
                .order_by(table.c.next_attempt_at, table.c.created_at, table.c.delivery_id)
                .limit(limit)
            ).scalars()
        )

    def claim(self, delivery_id: str, owner: str, *, now: datetime, until: datetime) -> ClaimedDelivery | None:
        table = bounce_deliveries
        taken = self._session.execute(
            table.update()
            .where(
                (table.c.delivery_id == delivery_id)
                & (table.c.state == PENDING)
                & (table.c.lease_until.is_(None) | (table.c.lease_until < now))
            )
            .values(lease_owner=owner, lease_until=until, attempts=table.c.attempts + 1, last_attempt_at=now)
        ).rowcount
        if not taken:
            return None
        row = self._session.execute(sa.select(table).where(table.c.delivery_id == delivery_id)).one()
        return ClaimedDelivery(
            delivery_id=row.delivery_id,
            route_id=row.route_id,
            tenant_id=row.tenant_id,
            body=bytes(row.body),
            attempts=row.attempts,
            created_at=_aware(row.created_at),  # type: ignore[arg-type]
        )

    def settle(
        self,
        delivery_id: str,
        owner: str,
        *,
        delivered: bool,
        now: datetime,
        next_attempt_at: datetime | None,
        error: str,
    ) -> None:
        table = bounce_deliveries
        values: dict[str, object] = {"lease_owner": "", "lease_until": None, "last_error": error[:2000]}
        if delivered:
            values |= {"state": DELIVERED, "delivered_at": now}
        elif next_attempt_at is None:
            values |= {"state": FAILED}
        else:
            values |= {"next_attempt_at": next_attempt_at}
        self._session.execute(
            table.update().where((table.c.delivery_id == delivery_id) & (table.c.lease_owner == owner)).values(**values)
        )

    def give_up_route(self, route_id: str, reason: str) -> int:
        table = bounce_deliveries
        return self._session.execute(
            table.update()
            .where((table.c.route_id == route_id) & (table.c.state == PENDING))
            .values(state=FAILED, last_error=reason, lease_owner="", lease_until=None)
        ).rowcount

    def counts(self, route_id: str) -> DeliveryCounts:
        table = bounce_deliveries
        rows = self._session.execute(
            sa.select(table.c.state, sa.func.count()).where(table.c.route_id == route_id).group_by(table.c.state)
        ).all()
        by_state = {state: int(count) for state, count in rows}
        last_error = self._session.execute(
            sa.select(table.c.last_error)
            .where((table.c.route_id == route_id) & (table.c.last_error != ""))
            .order_by(table.c.last_attempt_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        return DeliveryCounts(
            delivered=by_state.get(DELIVERED, 0),
            pending=by_state.get(PENDING, 0),
            failed=by_state.get(FAILED, 0),
            last_error=last_error or "",
        )
