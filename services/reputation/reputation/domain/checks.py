"""Verdicts of the DNS authentication checks of a sending domain (one per check and subject)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class Verdict(StrEnum):
    """PASS/WARN/FAIL judge the published DNS; UNKNOWN means DNS did not let us judge (never a pass)."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Badness, for "the worst check decides": fail > unknown > warn > pass."""
        return {Verdict.PASS: 0, Verdict.WARN: 1, Verdict.UNKNOWN: 2, Verdict.FAIL: 3}[self]


class CheckKind(StrEnum):
    SPF = "spf"  # the sending domain's SPF, for postmaster@<domain>
    RETURN_PATH_SPF = "return_path_spf"  # the Return-Path (bounce) domain's SPF: what receivers check
    DKIM = "dkim"
    DMARC = "dmarc"
    ALIGNMENT = "alignment"  # DMARC alignment of the From domain with the Return-Path and the DKIM d=
    PTR = "ptr"  # reverse DNS, forward-confirmed, against the HELO name
    MX = "mx"
    BLOCKLIST = "blocklist"  # the domain on domain lists (DBL, SURBL, URIBL)


@dataclass(frozen=True)
class CheckResult:
    """One verdict: `subject` is the IP (SPF, Return-Path SPF, PTR), the selector (DKIM) or the domain (DMARC,
    alignment, MX, blocklist)."""

    check: CheckKind
    subject: str
    verdict: Verdict
    reason: str
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    return max(verdicts, key=lambda v: v.rank, default=Verdict.PASS)


@dataclass(frozen=True)
class DomainReport:
    """All checks of one domain validation, in a stable order (SPF per IP, DKIM per selector, …)."""

    domain: str
    checked_at: datetime
    checks: tuple[CheckResult, ...]

    @property
    def verdict(self) -> Verdict:
        return worst([c.verdict for c in self.checks])

    def of(self, kind: CheckKind) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.check is kind)
