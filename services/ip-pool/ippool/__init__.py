"""ip-pool service: IPs, pools, warmup schedules, IP state and volume allocation per tenant.

`ippool.domain` holds the business rules as pure functions over immutable values (no I/O, no clock:
every instant or day is passed in). The use cases (`ippool.app`) read through a unit of work, ask the
domain, and store what it decides; `ippool.adapters` holds the tables and repositories behind it.
"""
