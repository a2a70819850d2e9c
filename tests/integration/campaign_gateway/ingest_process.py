"""A campaign-gateway ingestion worker in its own process: `python -m tests.integration.campaign_gateway.ingest_process
NODE` builds the service's runtime from the environment (the test's database, keys and ip-pool address) and runs
the node's ingestion job until there is nothing new, printing each run's report. The tests kill it with SIGKILL."""

from __future__ import annotations

import sys

from campaign_gateway import jobs
from campaign_gateway.bootstrap import DEFINITION
from libs.config import Settings
from libs.runtime import build_runtime


def main(node: str) -> None:
    runtime = build_runtime(DEFINITION, Settings(), run_migrations=False, migration_wait_seconds=30)
    while True:
        report = jobs.ingest_node(runtime.app, node)
        print(f"batches={report.batches} records={report.records} skipped={report.skipped!r}", flush=True)
        if report.skipped or report.error:
            sys.exit(f"ingestion stopped: {report.skipped or report.error}")
        if report.batches == 0:
            return


if __name__ == "__main__":
    main(sys.argv[1])
