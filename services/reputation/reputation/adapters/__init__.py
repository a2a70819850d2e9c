"""The outside world of the reputation service: its tables, migrations, repositories and unit of work; DNS
(blocklist scanning, authentication lookups, SPF evaluation)."""
