"""Pure tests of the reputation rules (no network, no servers)."""
