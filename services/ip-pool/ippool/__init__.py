"""ip-pool service: IPs, pools, warmup schedules, IP state and volume allocation per tenant.

`ippool.domain` holds the business rules as pure functions over immutable values (no I/O, no clock:
every instant or day is passed in). The application layer loads records, calls the domain, and
persists what it returns.
"""
