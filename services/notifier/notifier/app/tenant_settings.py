"""A tenant's notifier settings: the Telegram chats its routes may use. Any caller of the tenant reads them;
only admins change them (the shared bot must never become a tenant's way to write into someone else's chat,
the admin chat included)."""

from __future__ import annotations

from collections.abc import Sequence

from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import InvalidArgument, Violations
from notifier.app.unit_of_work import UnitOfWorkFactory
from notifier.domain.alert import TENANT_PATTERN
from notifier.domain.routing import TenantSettings, chat_key

MAX_ALLOWED_CHATS = 100


class TenantSettingsUseCases:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def get(self, caller: Caller, tenant_id: str) -> TenantSettings:
        tenant = _tenant(tenant_id)
        caller.require_read(tenant)
        with self._uow() as uow:
            return uow.tenant_settings.get(tenant)

    def set_allowed_chats(self, caller: Caller, tenant_id: str, chat_ids: Sequence[str]) -> TenantSettings:
        """Replaces the tenant's allowed Telegram chats (admins only)."""
        tenant = _tenant(tenant_id, field="settings.tenant_id")
        caller.require_admin()
        problems = Violations()
        keys: set[str] = set()
        if len(chat_ids) > MAX_ALLOWED_CHATS:
            problems.add("settings.allowed_telegram_chat_ids", f"at most {MAX_ALLOWED_CHATS} chats")
        for index, chat in enumerate(chat_ids[:MAX_ALLOWED_CHATS]):
            try:
                keys.add(chat_key(chat))
            except ValueError as exc:
                problems.add(f"settings.allowed_telegram_chat_ids[{index}]", str(exc))
        problems.raise_if_any()
        settings = TenantSettings(tenant, frozenset(keys), self._clock.now())
        audit.note(resource=f"alert-settings/{tenant}", tenant_id=tenant)
        with self._uow() as uow:
            uow.tenant_settings.save(settings)
            uow.commit()
        return settings


def _tenant(tenant_id: str, *, field: str = "tenant_id") -> str:
    if not TENANT_PATTERN.match(tenant_id):
        raise InvalidArgument(field, "must be a tenant id (lowercase letters, digits, '-')")
    return tenant_id
