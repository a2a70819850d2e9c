"""A minimal accounting ingestion loop over a real node: pull over SFTP, parse from stored offsets, aggregate.

It is the shape the service's ingestion job takes (the job stores `IngestState` per node and the aggregator's totals
and identities between runs); the tests use it to check that offsets, rotation and duplicates add up.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from campaign_gateway.adapters.accounting_csv import AccountingCsvParser, ParseProblem, ResumePoint
from campaign_gateway.adapters.pmta_node import (
    AccountingPiece,
    AccountingSource,
    NodeAccess,
    PmtaNodeClient,
    RemoteFileCursor,
)
from campaign_gateway.domain.accounting import AccountingAggregator


@dataclass(frozen=True)
class IngestState:
    cursor: RemoteFileCursor | None = None
    columns: tuple[str, ...] | None = None
    """The CSV header in force at the cursor (needed to resume in the middle of a file)."""


@dataclass
class IngestReport:
    records: int = 0
    problems: list[ParseProblem] | None = None
    notes: tuple[str, ...] = ()


async def ingest(
    access: NodeAccess,
    source: AccountingSource,
    state: IngestState,
    aggregator: AccountingAggregator,
    *,
    max_bytes: int = 8 << 20,
    report: IngestReport | None = None,
) -> IngestState:
    """One run: pull, parse every piece from where the state says, move the state to where parsing stopped.

    A piece the byte budget cut inside a multi-line record gives the parser nothing to finish: the pull is made
    again with four times the budget until it does (or there is nothing more to read).
    """
    async with PmtaNodeClient(access) as node:
        budget = max_bytes
        while True:
            pull = await node.pull_accounting(source, state.cursor, max_bytes=budget)
            before = state
            state = _take(pull.pieces, state, aggregator, report)
            if report is not None:
                report.notes += pull.notes
            last = pull.pieces[-1] if pull.pieces else None
            if last is None or not last.cut or state != before:
                break
            budget *= 4
    aggregator.resolve_pending()
    return state


def _take(
    pieces: tuple[AccountingPiece, ...],
    state: IngestState,
    aggregator: AccountingAggregator,
    report: IngestReport | None,
) -> IngestState:
    for piece in pieces:
        same_file = state.cursor is not None and piece.start.inode == state.cursor.inode and piece.start.offset > 0
        parser = AccountingCsvParser(resume=ResumePoint(piece.start.offset, state.columns if same_file else None))
        records = [record for _offset, record in parser.parse(io.BytesIO(piece.data), final=piece.complete)]
        aggregator.add_all(records)
        state = IngestState(piece.start.advanced_to(parser.resume_point.offset), parser.resume_point.columns)
        if report is not None:
            report.records += len(records)
            report.problems = [*(report.problems or []), *parser.problems]
    return state
