"""Use cases that turn PowerMTA accounting into delivery figures, suppressions and forwarded bounces.

Two ways in, one pipeline:
* `ingest_node` (a job, one per node, under the node's "ingest" lease): pull the node's accounting files over
  SFTP from the stored cursor, parse, count, store; one transaction per batch holds the new cursor, the totals,
  the identities of the records counted, the originals rb/f records will be matched to, the rb/f records still
  waiting, the problems, the suppressions and the bounce deliveries. A kill between two batches loses nothing
  and counts nothing twice: the next run starts from the last committed cursor, and a record read again is
  recognised by its identity.
* `push`: the same for a batch the node's forwarder posts (JSON, array or NDJSON), under the same lease.

After each batch the ABSOLUTE totals of the (IP, day) pairs that changed are sent to ip-pool
(`RecordDeliveryStats` replaces its rows, so sending again is harmless); what could not be sent stays marked
and `push_stats` (periodic) sends it later.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from campaign_gateway.adapters.accounting_columns import ColumnarAccountingReader
from campaign_gateway.adapters.accounting_csv import (
    AccountingCsvParser,
    ParseProblem,
    ProblemKind,
    ResumePoint,
    parse_json_accounting,
)
from campaign_gateway.adapters.accounting_reader_process import ColumnarReaderInProcess, ReaderProcess
from campaign_gateway.adapters.ippool_peer import DayTotals as PoolDayTotals
from campaign_gateway.adapters.pmta_node import AccountingPiece, PmtaNodeError, RemoteFileCursor
from campaign_gateway.app.delivery_views import CursorState, IngestReport, NewDelivery, ProblemView, PushReport
from campaign_gateway.app.ports import IpPool, NodeGateway, Scheduler
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.accounting import (
    AccountingAggregator,
    AccountingRecord,
    Outcome,
    RecordColumns,
    TotalsKey,
    identity_hour,
    origin_keys,
    record_identity,
)
from campaign_gateway.domain.bounce_forwarding import (
    bounce_body,
    delivery_id,
    event_from,
    suppression_for,
    suppression_of,
    wants,
)
from campaign_gateway.domain.contacts import Suppression
from campaign_gateway.domain.pmta_nodes import NodeRecord
from campaign_gateway.domain.providers import ip_pool_group
from libs.clock import Clock
from libs.errors import NotFound, PermissionDenied, ServiceError, Unavailable
from libs.read_ahead import read_ahead

log = logging.getLogger(__name__)

INGEST = "ingest"
STATS_MAX_AGE_DAYS = 399  # ip-pool refuses days older than 400


@dataclass(frozen=True)
class AccountingSettings:
    pull_max_bytes: int = 8 << 20
    max_batches_per_run: int = 100
    lease: timedelta = timedelta(minutes=10)
    push_wait_seconds: float = 10.0
    stats_pairs_per_call: int = 500
    origins_kept: timedelta = timedelta(days=45)
    """How long an original is remembered for the rb/f records about it (a complaint comes within weeks)."""
    reader_process: bool = True
    """Read large backlogs in a child process (`accounting_reader_process`) while this one counts and stores."""


class PoolDirectory:
    """ip-pool's IPs for one run: the tenant of an address and its time zone (UTC for an address ip-pool lacks)."""

    def __init__(self, ippool: IpPool):
        self._ippool = ippool
        self._tenants = {ip.address: ip.tenant_id for ip in ippool.list_ips()}
        self._zones: dict[str, tzinfo] = {}

    def knows(self, address: str) -> bool:
        return address in self._tenants

    def tenant_of(self, address: str) -> str | None:
        return self._tenants.get(address)

    def zone_of_tenant(self, tenant: str) -> tzinfo:
        zone = self._zones.get(tenant)
        if zone is None:
            try:
                zone = ZoneInfo(self._ippool.tenant_day(tenant).time_zone or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                zone = UTC
            self._zones[tenant] = zone
        return zone

    def timezone_for(self, address: str) -> tzinfo:
        tenant = self._tenants.get(address)
        return self.zone_of_tenant(tenant) if tenant else UTC


@dataclass
class _Batch:
    records: list[AccountingRecord]
    problems: list[ProblemView]
    cursor: CursorState | None
    columns: RecordColumns | None = None
    """The batch as columns instead of `records` (a local file read the fast way)."""

    def __len__(self) -> int:
        return len(self.columns) if self.columns is not None else len(self.records)


@dataclass(frozen=True)
class _PullFailed:
    """A pull that failed, handed over after the batches read before it."""

    message: str


class AccountingUseCases:
    def __init__(
        self,
        unit_of_work: Callable[[], CampaignUnitOfWork],
        clock: Clock,
        *,
        ippool: IpPool,
        nodes: NodeGateway,
        scheduler: Scheduler,
        settings: AccountingSettings,
        check_token: Callable[[str, str], bool],
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._ippool = ippool
        self._nodes = nodes
        self._scheduler = scheduler
        self._settings = settings
        self._check_token = check_token

    # ------------------------------------------------------------ leases

    def _acquire(self, name: str, owner: str) -> bool:
        now = self._clock.now()
        with self._uow() as uow:
            taken = uow.leases.acquire(name, INGEST, owner, now=now, until=now + self._settings.lease)
            if taken:
                uow.commit()
            return taken

    def _release(self, name: str, owner: str) -> None:
        with self._uow() as uow:
            uow.leases.release(name, INGEST, owner)
            uow.commit()

    def _node(self, name: str) -> NodeRecord:
        with self._uow() as uow:
            record = uow.pmta_nodes.get(name)
        if record is None:
            raise NotFound("pmta node", name)
        return record

    # ------------------------------------------------------------ pull

    def ingest_all(self) -> int:
        """One ingestion job per node that is pulled; returns how many were enqueued."""
        with self._uow() as uow:
            names = [r.spec.name for r in uow.pmta_nodes.list(limit=10_000, after="") if r.spec.accounting_pull]
        for name in names:
            self._scheduler.ingest_node(name)
        return len(names)

    def ingest_node(self, name: str) -> IngestReport:
        report = IngestReport(node=name)
        record = self._node(name)
        if not record.spec.accounting_pull:
            report.skipped = "accounting pull is off for this node"
            return report
        if not self._nodes.configured:
            report.skipped = "no SSH client key is configured"
            return report
        owner = f"ingest-{uuid.uuid4().hex[:12]}"
        if not self._acquire(name, owner):
            report.skipped = "another worker is ingesting this node"
            return report
        try:
            self._pull_batches(record, report)
        finally:
            self._release(name, owner)
        self._push_stats_quietly()
        return report

    def _pull_batches(self, record: NodeRecord, report: IngestReport) -> None:
        name = record.spec.name
        with self._uow() as uow:
            state = uow.accounting.cursor(name) or CursorState()
        directory: PoolDirectory | None = None
        process: list[ReaderProcess] = []  # started once a pull shows more than one pull's worth waiting
        try:
            with _gc_paused():
                # The next pulls are made and read (SFTP, Arrow, numpy; the child process when there is one) on a
                # thread of their own while this one counts and stores the batches already read.
                for item in read_ahead(self._pulled(record, state, report, process), name="accounting-read"):
                    if isinstance(item, _PullFailed):
                        with self._uow() as uow:
                            current = uow.accounting.cursor(name) or CursorState()
                        report.error = item.message
                        self._note_error(name, current, item.message)
                        return
                    directory = directory or PoolDirectory(self._ippool)  # ip-pool asked only when there is news
                    self._apply(name, item, directory, report)
        finally:
            for started in process:
                started.close()

    def _pulled(
        self, record: NodeRecord, state: CursorState, report: IngestReport, process: list[ReaderProcess]
    ) -> Iterator[_Batch | _PullFailed]:
        """The batches of each pull from `state` on, each pull made from the cursor of the last batch read (the
        cursor that batch stores); a failed pull ends them with a `_PullFailed`."""
        budget = self._settings.pull_max_bytes
        for _ in range(self._settings.max_batches_per_run):
            remote = RemoteFileCursor(state.path, state.inode, state.offset) if state.path else None
            try:
                pull = self._nodes.pull(record.spec, remote, max_bytes=budget)
            except PmtaNodeError as exc:
                yield _PullFailed(exc.message)
                return
            report.notes += list(pull.notes)
            if not pull.pieces:
                return
            last = pull.pieces[-1]
            if last.cut and not process and self._settings.reader_process:
                process.append(ReaderProcess())  # more waiting than one pull holds: worth the other core
            applied = 0
            for batch in self._read_pieces(pull.pieces, state, process[0] if process else None):
                applied += 1
                if batch.cursor is not None:
                    state = batch.cursor
                yield batch
            if not applied:
                if last.cut and budget < (256 << 20):
                    budget *= 4  # a record spanning lines was cut by the budget: read more at once
                    continue
                return
            budget = self._settings.pull_max_bytes
            if not last.cut and not last.complete:
                return  # read to the end of the newest file

    def _read_pieces(
        self, pieces: tuple[AccountingPiece, ...], state: CursorState, process: ReaderProcess | None = None
    ) -> Iterator[_Batch]:
        """The pulled pieces as batches, each with the cursor just after it (one transaction each, so a batch's
        cursor is stored with its counts): plain records as columns, anything else as the parser reads it (see
        `ColumnarAccountingReader`), by `process` whenever it is ready. Then, when the cursor moved past the last
        batch (a header, ignored records), an empty batch that stores it. Nothing at all when nothing was read."""
        now = self._clock.now()
        current = stored = state
        for piece in pieces:
            same_file = bool(current.path) and piece.start.inode == current.inode and piece.start.offset > 0
            line_base = current.line if same_file else 0
            resume = ResumePoint(piece.start.offset, current.columns if same_file else None)
            reader = (
                ColumnarReaderInProcess(process, resume=resume, lines_read=line_base)
                if process is not None
                else ColumnarAccountingReader(resume=resume, lines_read=line_base)
            )
            for chunk in reader.read_piece(piece.data, final=piece.complete):
                problems = [_problem(p, piece.start.path, 0, now) for p in chunk.problems if _reportable(p)]
                stored = _cursor_after(current, piece, reader)
                yield _Batch(chunk.records, problems, stored, chunk.columns)
            current = _cursor_after(current, piece, reader)
        if current != stored:
            yield _Batch([], [], current)

    def _note_error(self, name: str, state: CursorState, error: str) -> None:
        with self._uow() as uow:
            uow.accounting.save_cursor(name, replace(state, last_error=error))
            uow.commit()

    # ------------------------------------------------------------ push

    def push(self, name: str, token: str, body: bytes) -> PushReport:
        if not self._check_token(name, token):
            # The same answer for an unknown node: the token is what proves the caller is that node's forwarder.
            raise PermissionDenied("the x-emailengine-forwarder-token header is missing or is not this node's")
        records, parse_problems = parse_json_accounting(body)
        now = self._clock.now()
        problems = [_problem(p, "push", 0, now) for p in parse_problems]
        owner = f"push-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + self._settings.push_wait_seconds
        while not self._acquire(name, owner):
            if time.monotonic() >= deadline:
                raise Unavailable(f"the accounting of pmta node {name!r} is being ingested; retry shortly")
            time.sleep(0.05)
        report = IngestReport(node=name)
        try:
            self._apply(name, _Batch(records, problems, None), PoolDirectory(self._ippool), report)
        finally:
            self._release(name, owner)
        self._push_stats_quietly()
        return PushReport(
            records=len(records),
            counted=report.counted,
            duplicates=report.duplicates,
            pending=report.pending,
            unattributed=report.unattributed,
            problems=tuple(problems),
        )

    # ------------------------------------------------------------ a local file

    def ingest_file(self, name: str, path: str, *, batch_bytes: int = 16 << 20) -> IngestReport:
        """Counts a local accounting file (plain or gzip) for node `name`, in batches of about `batch_bytes` (some
        50 000 records), without touching the node's SFTP cursor: a backfill, or a file copied off a node. Records
        already counted count once. Read as columns where the file is plain records (`ColumnarAccountingReader`),
        by the parser elsewhere: the same records, problems and line numbers either way."""
        self._node(name)
        report = IngestReport(node=name)
        owner = f"file-{uuid.uuid4().hex[:12]}"
        if not self._acquire(name, owner):
            report.skipped = "another worker is ingesting this node"
            return report
        # A file of several batches is read by a child process (on the other core) once it has started.
        large = self._settings.reader_process and os.path.getsize(path) > 2 * batch_bytes
        process = ReaderProcess() if large else None
        try:
            directory = PoolDirectory(self._ippool)
            reader = (
                ColumnarReaderInProcess(process, chunk_bytes=batch_bytes)
                if process is not None
                else ColumnarAccountingReader(chunk_bytes=batch_bytes)
            )
            with _gc_paused():
                for batch in read_ahead(self._file_batches(path, reader), name="accounting-read"):
                    self._apply(name, batch, directory, report)
        finally:
            if process is not None:
                process.close()
            self._release(name, owner)
        return report

    def _file_batches(self, path: str, reader: ColumnarAccountingReader) -> Iterator[_Batch]:
        now = self._clock.now()
        for chunk in reader.read_file(path):
            problems = [_problem(p, path, 0, now) for p in chunk.problems if _reportable(p)]
            yield _Batch(chunk.records, problems, None, chunk.columns)

    def _new_problems(self, parser: AccountingCsvParser, path: str, already: int) -> tuple[list[ProblemView], int]:
        now = self._clock.now()
        fresh = [_problem(p, path, 0, now) for p in parser.problems[already:] if _reportable(p)]
        return fresh, len(parser.problems)

    # ------------------------------------------------------------ the pipeline

    def _apply(self, node: str, batch: _Batch, directory: PoolDirectory, report: IngestReport) -> None:
        with _gc_paused():
            self._apply_batch(node, batch, directory, report)

    def _apply_batch(self, node: str, batch: _Batch, directory: PoolDirectory, report: IngestReport) -> None:
        now = self._clock.now()
        hours = {identity_hour(moment) for moment in {record.time_logged for record in batch.records}}
        if batch.columns is not None:
            hours.update(np.unique(batch.columns.hour).tolist())
        with self._uow() as uow:
            seen = uow.accounting.load_seen(node, hours)
            pending = uow.accounting.pending(node)
        aggregator = AccountingAggregator(
            timezone_for=directory.timezone_for, seen_seed=seen, pending_seed=pending, collect=True
        )
        aggregator.add_all(batch.records)
        if batch.columns is not None:
            aggregator.add_columns(batch.columns)
        if aggregator.pending:
            keys = [key for record in aggregator.pending for key in origin_keys(record)]
            with self._uow() as uow:
                found = uow.accounting.find_origins(keys, since=now.date() - self._settings.origins_kept)
            aggregator.origins.preload(found)  # type: ignore[attr-defined]  # an OriginIndex
            aggregator.resolve_pending()
        counts = aggregator.counts
        counted = counts.get(Outcome.COUNTED, 0)
        duplicates = counts.get(Outcome.DUPLICATE, 0)
        deliveries, suppressed = self._forwarding(node, aggregator, directory, now)
        with self._uow() as uow:
            uow.accounting.add_totals(aggregator.totals())
            uow.accounting.add_seen(node, aggregator.fresh_identities)
            uow.accounting.add_origins(aggregator.origins.fresh_items(), day=now.date())  # type: ignore[attr-defined]
            uow.accounting.add_origin_digests(*aggregator.origins.fresh_digests(), day=now.date())  # type: ignore[attr-defined]
            uow.accounting.replace_pending(node, list(aggregator.pending), now=now)
            uow.suppressions.add_uncounted(suppressed)
            forwarded = uow.bounce_deliveries.add_many(deliveries)
            uow.accounting.add_problems(node, batch.problems)
            if batch.cursor is not None:
                previous = uow.accounting.cursor(node) or CursorState()
                uow.accounting.save_cursor(
                    node,
                    replace(
                        batch.cursor,
                        last_ingest_time=now,
                        records_counted=previous.records_counted + counted,
                        duplicates=previous.duplicates + duplicates,
                        last_error="",
                    ),
                )
            uow.commit()
        for problem in batch.problems:
            log.warning(
                "accounting line not read",
                extra={"node": node, "source": problem.source, "line": problem.line, "kind": problem.kind},
            )
        report.batches += 1
        report.records += len(batch)
        report.counted += counted
        report.duplicates += duplicates
        report.pending = len(aggregator.pending)
        report.unattributed += counts.get(Outcome.UNATTRIBUTED, 0)
        report.forwarded += forwarded
        report.suppressed += len(suppressed)
        report.problems += batch.problems

    def _forwarding(
        self, node: str, aggregator: AccountingAggregator, directory: PoolDirectory, now: datetime
    ) -> tuple[list[NewDelivery], list[Suppression]]:
        """Deliveries to each route of the tenant, and suppressions, for the hard bounces and complaints."""
        if not aggregator.notable:
            return [], []
        deliveries: list[NewDelivery] = []
        suppressed: list[Suppression] = []
        with self._uow() as uow:
            routes_of = {tenant: uow.bounce_routes.for_tenant(tenant) for tenant in _tenants(aggregator, directory)}
        source = f"pmta:{node}"
        for notable in aggregator.notable:
            tenant = directory.tenant_of(notable.address)
            if tenant is None:
                continue
            routes = routes_of.get(tenant)
            if not routes:
                # Only the suppression: the event (and its body) is built for a tenant's routes.
                suppression = suppression_for(
                    kind=notable.kind.value,
                    tenant_id=tenant,
                    recipient=notable.record.rcpt.strip(),
                    source=source,
                    create_time=now,
                )
                if suppression is not None:
                    suppressed.append(suppression)
                continue
            event = event_from(notable, tenant_id=tenant, node=node)
            suppression = suppression_of(event, source=source, create_time=now)
            if suppression is not None:
                suppressed.append(suppression)
            identity = record_identity(notable.record)
            for route in routes:
                if not wants(route.events, event.kind):
                    continue
                key = delivery_id(route.route_id, identity)
                deliveries.append(NewDelivery(key, route.route_id, tenant, bounce_body(event, delivery_id=key), now))
        return deliveries, suppressed

    # ------------------------------------------------------------ totals to ip-pool

    def _push_stats_quietly(self) -> None:
        try:
            self.push_stats()
        except ServiceError as exc:
            log.warning("delivery totals not sent to ip-pool; sent again later", extra={"error": exc.message})

    def push_stats(self) -> int:
        """Sends the absolute totals of every changed (IP, day) to ip-pool, summed into its provider groups.

        A day that has not begun yet in the tenant's time zone (a clock a little ahead) stays marked for the next
        call; an IP ip-pool does not know, or a day older than it keeps, is kept here and not sent.
        """
        sent = 0
        directory: PoolDirectory | None = None
        for _ in range(1000):
            with self._uow() as uow:
                rows = uow.accounting.unpushed(limit=self._settings.stats_pairs_per_call)
            if not rows:
                return sent  # nothing changed: ip-pool is not even asked
            directory = directory or PoolDirectory(self._ippool)
            sums: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
            done: list[tuple[TotalsKey, int]] = []
            for key, totals, version in rows:
                verdict = self._sendable(directory, key.address, key.day)
                if verdict == "later":
                    continue
                done.append((key, version))
                if verdict == "skip":
                    continue
                entry = sums[(key.address, key.day, ip_pool_group(key.provider))]
                entry[0] += totals.sent
                entry[1] += totals.delivered
                entry[2] += totals.bounced
                entry[3] += totals.complained
                entry[4] += totals.throttled
            if not done:
                return sent
            stats = [
                PoolDayTotals(address, day, group, *(min(value, 2**31 - 1) for value in values))
                for (address, day, group), values in sorted(sums.items())
            ]
            if stats:
                self._ippool.record_delivery_stats(stats)
            with self._uow() as uow:
                uow.accounting.mark_pushed(done)
                uow.commit()
            sent += len(stats)
        return sent

    def _sendable(self, directory: PoolDirectory, address: str, day: date) -> str:
        """ "send", "later" (the day has not begun for the tenant) or "skip" (ip-pool would refuse it for good)."""
        if not directory.knows(address):
            return "skip"
        tenant = directory.tenant_of(address) or ""
        today = self._clock.now().astimezone(directory.zone_of_tenant(tenant)).date()
        if day > today:
            return "later"
        return "send" if day >= today - timedelta(days=STATS_MAX_AGE_DAYS) else "skip"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A batch makes hundreds of thousands of small tuples and strings and no reference cycle: the cycle collector
    would run over and over for nothing (a third of the time). It runs once after the batch instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cursor_after(before: CursorState, piece: AccountingPiece, reader: ColumnarAccountingReader) -> CursorState:
    """The cursor where `reader` stands in `piece`'s file (its counters are those of `before`)."""
    resume = reader.resume_point
    return replace(
        before,
        path=piece.start.path,
        inode=piece.start.inode,
        offset=resume.offset,
        line=reader.lines_read,
        columns=resume.columns,
    )


def _tenants(aggregator: AccountingAggregator, directory: PoolDirectory) -> set[str]:
    return {tenant for n in aggregator.notable if (tenant := directory.tenant_of(n.address)) is not None}


def _reportable(problem: ParseProblem) -> bool:
    """A last line still being written is not a problem: it is read complete next time."""
    return not (problem.kind is ProblemKind.TRUNCATED and "next read" in problem.detail)


def _problem(problem: ParseProblem, source: str, line_base: int, now: datetime) -> ProblemView:
    return ProblemView(problem.kind.value, source, line_base + problem.line, problem.detail, now)
