"""Pure reputation rules: no I/O, no clock reads, no DNS; everything here is testable with plain values.

* `zones` — the blocklist catalogue (each zone's answer codes, meaning and severity);
* `dnsbl` — **where a DNSBL answer is interpreted**: query names, code meaning, zone health;
* `scan` — scan results, the listed/delisted changes between them, what an IP's history and state keep;
* `watch` — the IPs under watch; `tenant_zones` — which zones a tenant's IPs and domains are checked against;
* `scan_schedule` — **when each IP is scanned periodically** (its own moment of its tenant's interval, once per
  interval) and who may choose the interval; `query_budget` — **how a zone's daily query budget is shared out**;
* `tenant_domains` — a tenant's domains, their checks, and how a believed verdict changes;
* `spf_record`, `dkim`, `dmarc`, `host_dns`, `tag_list` — parsing and verdicts of the domain checks;
* `alignment` — DMARC alignment of the From domain with the Return-Path and the DKIM d=; `organizational` — registered
  domains (Public Suffix List); `check_policy` — a tenant's weight for the judgement calls;
* `checks` — the verdict types; `validation` — input checks raising `libs.errors.InvalidArgument`.
"""
