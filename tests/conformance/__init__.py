"""Conformance suites run against the service code (SPF: RFC 7208)."""
