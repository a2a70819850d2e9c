"""Pure reputation rules: no I/O, no clock reads, no DNS; everything here is testable with plain values.

* `zones` — the blocklist catalogue (each zone's answer codes, meaning and severity);
* `dnsbl` — **where a DNSBL answer is interpreted**: query names, code meaning, zone health;
* `scan` — scan results, the listed/delisted changes between them, what an IP's history and state keep;
* `watch` — the IPs under watch; `tenant_zones` — which zones a tenant's IPs and domains are checked against;
* `tenant_domains` — a tenant's domains, their checks, and how a believed verdict changes;
* `spf_record`, `dkim`, `dmarc`, `host_dns`, `tag_list` — parsing and verdicts of the domain checks;
* `checks` — the verdict types; `validation` — input checks raising `libs.errors.InvalidArgument`.
"""
