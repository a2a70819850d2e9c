"""What the gateway's metrics read from its database at scrape time: a few aggregate queries, no row per record."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from campaign_gateway.adapters.tables import (
    accounting_cursors,
    accounting_totals,
    mailwizz_sync_state,
    pmta_deployments,
    pmta_nodes,
)
from campaign_gateway.app.metrics import GatewaySnapshot, NodeStatus, SyncStatus
from libs.db import Database

SYNC_SUCCEEDED = "OK"  # how a successful sync's outcome starts (app.mailwizz_sync)


class SqlGatewayReadModel:
    def __init__(self, db: Database):
        self._db = db

    def snapshot(self, *, deploys_since: datetime, totals_since: date) -> GatewaySnapshot:
        n, c, d, t, s = (
            pmta_nodes.c,
            accounting_cursors.c,
            pmta_deployments.c,
            accounting_totals.c,
            mailwizz_sync_state.c,
        )
        with self._db.transaction() as session:
            syncs = [
                SyncStatus(
                    row.tenant,
                    row.last_sync_time,
                    row.last_outcome.startswith(SYNC_SUCCEEDED),
                    len(row.conflicts or ()),
                )
                for row in session.execute(sa.select(s.tenant, s.last_sync_time, s.last_outcome, s.conflicts))
            ]
            nodes_query = sa.select(
                n.name, n.consecutive_failures, c.records_counted, c.last_ingest_time, c.last_error
            ).outerjoin(accounting_cursors, c.node == n.name)
            nodes = [
                NodeStatus(
                    row.name,
                    row.consecutive_failures,
                    int(row.records_counted or 0),
                    row.last_ingest_time,
                    bool(row.last_error),
                )
                for row in session.execute(nodes_query)
            ]
            deploys_query = (
                sa.select(d.node, d.outcome, sa.func.count()).where(d.time >= deploys_since).group_by(d.node, d.outcome)
            )
            deploys = [(row[0], row[1], int(row[2])) for row in session.execute(deploys_query)]
            bounced = t.bounced_hard + t.bounced_soft + t.bounced_other
            totals_query = (
                sa.select(
                    t.address,
                    t.provider,
                    sa.func.sum(t.sent),
                    sa.func.sum(t.delivered),
                    sa.func.sum(bounced),
                    sa.func.sum(t.complained),
                )
                .where(t.day >= totals_since)
                .group_by(t.address, t.provider)
            )
            totals = [
                (row[0], row[1], int(row[2] or 0), int(row[3] or 0), int(row[4] or 0), int(row[5] or 0))
                for row in session.execute(totals_query)
            ]
        return GatewaySnapshot(syncs=syncs, nodes=nodes, deploys=deploys, totals=totals)
