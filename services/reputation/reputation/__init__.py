"""The reputation service: blocklist scans of sending IPs and DNS authentication checks of domains.

Read it top-down (docs/architecture.md): `bootstrap.py` assembles it, `server.py` answers the API through
`mapping.py`, `app/` holds the use cases, `domain/` the rules (pure), `adapters/` the database and DNS.
"""
