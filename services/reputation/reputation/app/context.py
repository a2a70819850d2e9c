"""What every reputation use case works with, handed over once by bootstrap.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from libs.auth import Caller
from libs.clock import Clock
from libs.rate_limit import Limit, RateLimiter
from reputation.app.dns import DnsChecks
from reputation.app.metrics import ReputationMetrics
from reputation.app.unit_of_work import ReputationUnitOfWork, SlotClaims
from reputation.config import ReputationConfig


@dataclass(frozen=True)
class ReputationContext:
    unit_of_work: Callable[[], ReputationUnitOfWork]
    config: ReputationConfig
    clock: Clock
    dns: DnsChecks  # the scanner port
    claims: SlotClaims  # once-per-slot periodic runs
    metrics: ReputationMetrics
    limiter: RateLimiter  # per-tenant limits on the calls that ask the blocklists on demand


class UseCases:
    """Base of the use-case classes: the context's parts under short names."""

    def __init__(self, context: ReputationContext) -> None:
        self._uow = context.unit_of_work
        self._config = context.config
        self._clock = context.clock
        self._dns = context.dns
        self._claims = context.claims
        self._metrics = context.metrics
        self._limiter = context.limiter

    def _limit(self, caller: Caller, limit: Limit, what: str) -> None:
        """Takes one call from the caller's allowance: one tenant's loop must not get the platform's resolver
        blocked by the blocklist operators for every tenant (admins and services have their own allowance)."""
        self._limiter.acquire(caller.tenant_id or f"role:{caller.role}", limit, what=what)
