"""The notifier's unit of work over its own database."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.orm import Session

from libs.unit_of_work import SqlUnitOfWork
from notifier.adapters.repositories import (
    SqlAlertRepository,
    SqlDedupRepository,
    SqlDeliveryRepository,
    SqlDispatchRepository,
    SqlRouteLeaseRepository,
    SqlRouteRepository,
    SqlTenantSettingsRepository,
)


class SqlNotifierUnitOfWork(SqlUnitOfWork):
    alerts: SqlAlertRepository
    dedup: SqlDedupRepository
    routes: SqlRouteRepository
    leases: SqlRouteLeaseRepository
    deliveries: SqlDeliveryRepository
    dispatches: SqlDispatchRepository
    tenant_settings: SqlTenantSettingsRepository
    _committed_callbacks: list[Callable[[], None]]

    def _bind(self, session: Session) -> None:
        self._committed_callbacks = []
        self.alerts = SqlAlertRepository(session)
        self.dedup = SqlDedupRepository(session)
        self.routes = SqlRouteRepository(session)
        self.leases = SqlRouteLeaseRepository(session)
        self.deliveries = SqlDeliveryRepository(session)
        self.dispatches = SqlDispatchRepository(session, self.deliveries)
        self.tenant_settings = SqlTenantSettingsRepository(session)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._committed_callbacks.append(callback)

    def commit(self) -> None:
        super().commit()
        callbacks, self._committed_callbacks = self._committed_callbacks, []
        for callback in callbacks:
            callback()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._committed_callbacks = []
        super().__exit__(exc_type, exc, tb)
