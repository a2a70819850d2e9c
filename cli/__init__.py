"""The operator commands of `emailengine`: routine work through the gateway's REST API (gRPC for large uploads).

One module per group (`ips`, `campaigns`, ...); `register` attaches them to the `emailengine` click group. They are
a client of the gateway like any other: they know its URL and a token, nothing of the services behind it.
"""

from __future__ import annotations

import click

EPILOG = """\b
Operator commands talk to the gateway (--gateway, EE_GATEWAY_URL; default http://127.0.0.1:8080) with
--token / EE_TOKEN, or --tenant NAME / --admin to sign a token with the local key (make run's).
Every one takes --json (the API's answer, untouched). Exit codes: 0 done, 1 bad input, 2 refused
(not found, not allowed), 3 gateway or service unavailable, 4 other.

\b
First steps against `make run` (README "Command line"):
  emailengine health
  emailengine pmta-nodes add pmta1 --ssh-host pmta1.sandbox.test --ssh-host-key KEY \
      --smtp-host pmta1.sandbox.test --smtp-port 2525 --admin
  emailengine ips add 192.0.2.10 --tenant sos-expat --pmta-node pmta1
  emailengine domains set --tenant sos-expat --sending-domains sos-expat.sandbox.test:s1
  emailengine domains check --tenant sos-expat
  emailengine campaigns create contacts.csv --tenant sos-expat --template-id cold_v1
"""


def register(main: click.Group) -> None:
    from cli.alerts import alerts
    from cli.campaigns import campaigns, suppressions
    from cli.dead_letters import dead_letters
    from cli.domains import domains
    from cli.health import health
    from cli.ips import ips
    from cli.pmta_nodes import pmta_nodes
    from cli.reputation import reputation
    from cli.routes import routes
    from cli.schedules import schedules
    from cli.tenants import tenants

    for command in (
        health,
        ips,
        schedules,
        tenants,
        reputation,
        domains,
        campaigns,
        suppressions,
        alerts,
        routes,
        dead_letters,
        pmta_nodes,
    ):
        main.add_command(command)
    main.epilog = EPILOG
