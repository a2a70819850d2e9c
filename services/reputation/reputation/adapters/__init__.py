"""I/O of the reputation service: DNS (blocklist scanning, authentication lookups, SPF evaluation)."""
