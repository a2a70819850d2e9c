"""Each tenant's MailWizz, built from its settings: an API client and its `delivery_server` table.

Implements `app.ports.MailwizzDirectory`. One API client and one database engine per tenant per process, made
when first needed (a tenant whose MySQL is down never keeps the service from starting) and disposed on stop.

The API client goes through the platform's guarded client for user-supplied URLs (`libs.outbound`): its
allow-list, whole-call deadline and answer-size cap hold for every MailWizz call. MailWizz's MySQL is reached
with PyMySQL (connect, read and write timeouts) at the URL the operator configured.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from campaign_gateway.adapters.mailwizz_api import ApiKey, Credentials, MailwizzClient, RetryPolicy, SignedKeyPair
from campaign_gateway.adapters.mailwizz_db import MailwizzDbSettings, MailwizzDeliveryServers
from campaign_gateway.app.ports import BindingView, TenantMailwizz
from campaign_gateway.config import MailwizzTenantSettings
from libs.outbound import GuardedClient, origin_of


class MailwizzBindings:
    def __init__(
        self,
        settings: dict[str, MailwizzTenantSettings],
        http: GuardedClient,
        *,
        retry: RetryPolicy = RetryPolicy(),
        max_response_bytes: int | None = None,
    ):
        self._settings = dict(settings)
        self._http = http
        self._retry = retry
        self._max_response_bytes = max_response_bytes
        self._made: dict[str, TenantMailwizz] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MailwizzBindings(tenants={self.tenants()!r})"

    def tenants(self) -> list[str]:
        return sorted(self._settings)

    def binding(self, tenant: str) -> TenantMailwizz | None:
        settings = self._settings.get(tenant)
        if settings is None:
            return None
        with self._lock:
            made = self._made.get(tenant)
            if made is None:
                made = TenantMailwizz(
                    view=binding_view(tenant, settings),
                    api=MailwizzClient(
                        settings.base_url,
                        _credentials(settings),
                        self._http,
                        retry=self._retry,
                        max_response_bytes=self._max_response_bytes,
                    ),
                    servers=MailwizzDeliveryServers.connect(
                        MailwizzDbSettings(url=settings.database_url, table_prefix=settings.table_prefix)
                    ),
                )
                self._made[tenant] = made
            return made

    def close(self) -> None:
        with self._lock:
            for made in self._made.values():
                made.servers.dispose()  # type: ignore[attr-defined]
            self._made.clear()


def _credentials(settings: MailwizzTenantSettings) -> Credentials:
    if settings.api_key is not None:
        return ApiKey(settings.api_key)
    assert settings.public_key is not None and settings.private_key is not None  # checked by the settings
    return SignedKeyPair(settings.public_key, settings.private_key)


def binding_view(tenant: str, settings: MailwizzTenantSettings) -> BindingView:
    """What may be shown: the API's origin, the database's host and name, never a key, user or password."""
    database = urlsplit(settings.database_url.get_secret_value())
    port = f":{database.port}" if database.port else ""
    return BindingView(
        tenant=tenant,
        api_origin=origin_of(settings.base_url),
        auth="api-key" if settings.api_key is not None else "signed",
        database=f"{database.hostname or '?'}{port}{database.path}",
        table_prefix=settings.table_prefix,
        time_zone=settings.timezone,
        customer_id=settings.customer_id,
        from_name=settings.from_name,
        from_email=settings.from_email,
        reply_to=settings.reply_to or settings.from_email,
        subject=settings.subject,
        chunk_size=settings.chunk_size,
    )
