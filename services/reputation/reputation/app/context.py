"""What every reputation use case works with, handed over once by bootstrap.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from libs.clock import Clock
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


class UseCases:
    """Base of the use-case classes: the context's parts under short names."""

    def __init__(self, context: ReputationContext) -> None:
        self._uow = context.unit_of_work
        self._config = context.config
        self._clock = context.clock
        self._dns = context.dns
        self._claims = context.claims
        self._metrics = context.metrics
