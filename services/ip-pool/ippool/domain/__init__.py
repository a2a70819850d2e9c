"""The ip-pool domain: pure rules, no I/O, time always passed in.

Modules, and where to look for what:

- `address`      -- an IP address value: parsed, normalised, refused if it can never send mail.
- `registration` -- the facts given when an IP is registered (tenant, purpose, HELO name, ...), validated.
- `ip`           -- a tenant's sending IP (`Ip`): registration facts, state, warmup position, standby bookkeeping.
- `schedule`     -- warmup schedules (steps of N sending days at a daily volume) and an IP's position in one.
- `health`       -- per-tenant health thresholds (`HealthPolicy`) and one day's delivery report (`DayReport`).
- `warmup`       -- THE place where a warmup day is decided: `decide_day(...)` -> `Decision`.
- `lifecycle`    -- IP states (WARMING, WARM, STANDBY, PAUSED, RETIRED) and their legal transitions.
- `sending_day`  -- tenant time zone and sending window: local day, day bounds, hourly quota.
- `providers`    -- mailbox provider groups, recipient-domain classification, per-provider caps.
- `allocation`   -- spreading a campaign's volume over a tenant's IPs today, plus a send plan for the rest.
- `rotation`     -- optional resting of warm IPs, staggered above a warm-capacity floor.
- `tenant`       -- a tenant (`Tenant`) and the per-tenant bundle of the policies above (`TenantPolicy`).
- `history`      -- an IP's history entries (`IpDecision`) and how a change becomes one.
- `usage`        -- what an IP sent and was committed to on a day; the day report the warmup decision reads.
- `quota`        -- an IP's quota today: daily, hourly, used and left, per provider group.
"""
