"""The reputation service: blocklist scans of sending IPs and DNS authentication checks of domains.

`reputation.domain` holds the rules (pure); `reputation.adapters` talks to DNS.
"""
