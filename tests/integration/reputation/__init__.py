"""Reputation service against real rbldnsd and nsd servers on loopback."""
