"""Pure reputation rules: no I/O, no clock reads, no DNS; everything here is testable with plain values.

* `zones` — the blocklist catalogue (each zone's answer codes, meaning and severity);
* `dnsbl` — **where a DNSBL answer is interpreted**: query names, code meaning, zone health;
* `scan` — scan results and the listed/delisted changes between them;
* `spf_record`, `dkim`, `dmarc`, `host_dns` — parsing and verdicts of the domain checks;
* `checks` — the verdict types; `validation` — input checks raising `libs.errors.InvalidArgument`.
"""
