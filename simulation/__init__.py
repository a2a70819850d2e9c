"""A simulated fleet run through the real rules of every service, day by day, on a virtual clock.

`emailengine simulate` (`simulation.command`) runs `simulation.engine.simulate` and shows what it decided:
`simulation.report` prints it day by day, `simulation.chart` draws each IP's daily quota and state as a PNG.

What is real and what is made up:
  real     ip-pool's use cases (registration, listings, the daily decision, standby release, allocation) over a
           throwaway SQLite file, their events read from its outbox; reputation's reading of DNSBL answers and its
           listing changes (`dnsbl.interpret_answer`, `scan.apply_scan`, the IpListingChanged it publishes);
           campaign-gateway's accounting aggregation (`accounting.AccountingAggregator`), MailWizz rows
           (`quota_sync.desired_server`, `plan_sync`) and PowerMTA configs (`pmta_config.render_node_config`);
           the notifier's alerts from events, its dedup per incident and its routes.
  made up  the world around them (`simulation.traffic`, `simulation.scenarios`): the list, what receivers answer
           (PowerMTA accounting records), what the blocklists answer, and the scenarios (a listing, a bad-bounce
           week, Gmail throttling). Everything drawn comes from a generator seeded per IP and day: the same seed
           gives the same run.
"""
