"""The campaign-gateway's own settings (EE_CAMPAIGN_GATEWAY_*), read and validated once at start."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load
from libs.outbound import check_url

_TABLE_PREFIX = re.compile(r"^[A-Za-z0-9_]{0,32}$")


class MailwizzTenantSettings(BaseModel):
    """One tenant's MailWizz: its API, its MySQL (for the delivery_server quotas) and the campaign defaults.

    Keys and the database URL are secrets: `SecretStr`, so they never appear in a repr, a log line or an answer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="The API's base URL, e.g. https://mail.example.com/api")
    api_key: SecretStr | None = Field(default=None, description="MailWizz 2.x key (X-API-KEY)")
    public_key: SecretStr | None = Field(default=None, description="MailWizz 1.x public key (signed requests)")
    private_key: SecretStr | None = Field(default=None, description="MailWizz 1.x private key (signed requests)")
    database_url: SecretStr = Field(description="mysql+pymysql://user:password@host:3306/mailwizz?charset=utf8mb4")
    table_prefix: str = Field(default="mw_", description="MailWizz's DB_PREFIX")
    timezone: str = Field(default="UTC", description="MailWizz's own time zone (its quota hours and days)")
    customer_id: int | None = Field(
        default=None, ge=1, description="MailWizz customer owning the delivery servers created (None: system servers)"
    )
    from_name: str = Field(min_length=2, max_length=100)
    from_email: str = Field(min_length=5, max_length=100)
    reply_to: str = Field(default="", max_length=100, description="from_email when empty")
    subject: str = Field(default="", max_length=255, description="Default subject (the template's name when empty)")
    chunk_size: int = Field(default=200, ge=1, le=10_000, description="Subscribers per bulk call")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = check_url(value)
        if problem is not None:
            raise ValueError(f"the URL {problem}")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _mysql(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("mysql+pymysql://", "mariadb+pymysql://")):
            raise ValueError("must be a mysql+pymysql:// URL")
        return value

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _TABLE_PREFIX.match(value):
            raise ValueError("may hold letters, digits and '_' only (at most 32)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _one_kind_of_key(self) -> MailwizzTenantSettings:
        signed = self.public_key is not None or self.private_key is not None
        if self.api_key is not None and signed:
            raise ValueError("give api_key (MailWizz 2.x) or public_key and private_key (1.x), not both")
        if self.api_key is None and (self.public_key is None or self.private_key is None):
            raise ValueError("api_key (MailWizz 2.x), or both public_key and private_key (1.x), is required")
        return self


class CampaignGatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_CAMPAIGN_GATEWAY_", extra="ignore", populate_by_name=True)

    max_contacts_per_request: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Contacts one CreateCampaign call may carry"
    )
    mailwizz: dict[str, MailwizzTenantSettings] = Field(
        default_factory=dict, description="JSON {tenant: MailWizz settings}; secrets, never logged or returned"
    )
    mailwizz_file: Path | None = Field(
        default=None, description="A JSON file of the same map (e.g. a mounted secret), merged over `mailwizz`"
    )
    max_contacts_per_upload: int = Field(
        default=1_000_000, ge=1, le=10_000_000, description="Contacts one UploadCampaign stream may carry"
    )
    max_reported_problems: int = Field(
        default=1000, ge=0, le=100_000, description="Contact problems listed in a campaign (all are counted)"
    )
    quota_sync_seconds: float = Field(
        default=300, ge=10, le=3600, description="Every tenant's quotas are synced into MailWizz this often"
    )
    mailwizz_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries of one MailWizz call on 5xx, timeouts and lost connections"
    )
    mailwizz_first_wait_seconds: float = Field(default=0.5, gt=0, le=60, description="First backoff wait")
    mailwizz_max_wait_seconds: float = Field(default=8.0, gt=0, le=600, description="Longest backoff wait")
    mailwizz_max_response_bytes: int = Field(
        default=32 << 20, ge=1 << 20, le=256 << 20, description="Largest MailWizz answer read (a bulk call's records)"
    )
    campaign_lease_seconds: float = Field(
        default=300, ge=10, le=3600, description="How long a stalled creation blocks its resumption"
    )
    check_recipient_domains: bool = Field(
        default=True, description="Look up each recipient domain's MX (or A) and drop those nobody can receive at"
    )
    dns_concurrency: int = Field(default=64, ge=1, le=1024, description="Recipient-domain lookups in flight")
    dns_nameservers: str = Field(
        default="",
        validation_alias="EE_DNS_NAMESERVERS",
        description="The platform's resolver (shared EE_DNS_NAMESERVERS)",
    )
    dns_timeout: float = Field(
        default=2.0, gt=0, le=60, validation_alias="EE_DNS_TIMEOUT", description="Shared EE_DNS_TIMEOUT"
    )

    # PowerMTA nodes, accounting, bounce forwarding
    pmta_ssh_key_file: Path | None = Field(
        default=None,
        description="Private key (OpenSSH or PEM, no passphrase) the service logs in to PowerMTA nodes with; a "
        "platform secret, never an API field. Unset: nodes are planned against their last deploy, never contacted",
    )
    pmta_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="SSH connect and login")
    pmta_command_timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="One pmta command over SSH")
    pmta_connect_attempts: int = Field(default=3, ge=1, le=10, description="Connection attempts per node operation")
    pmta_deploy_interval_seconds: int = Field(
        default=3600, ge=60, le=86400, description="Every node's configuration is rendered and deployed this often"
    )
    pmta_lease_seconds: int = Field(
        default=300, ge=10, le=3600, description="How long a worker owns a node's deploy (taken over after a crash)"
    )
    pmta_accounting_forwarder_command: str = Field(
        default="",
        description="Command PowerMTA pipes accounting records to (the forwarder posting NDJSON to PushAccounting); "
        "empty = accounting file only",
    )
    accounting_pull_interval_seconds: int = Field(
        default=60, ge=5, le=86400, description="Each node's accounting files are pulled over SFTP this often"
    )
    accounting_pull_max_bytes: int = Field(
        default=8 << 20, ge=4096, le=256 << 20, description="Accounting bytes read (and committed) per batch"
    )
    accounting_lease_seconds: int = Field(
        default=600, ge=10, le=7200, description="How long a worker owns a node's ingestion (taken over after a crash)"
    )
    accounting_stats_interval_seconds: int = Field(
        default=300, ge=5, le=86400, description="Totals ip-pool could not take are sent again this often"
    )
    bounce_delivery_poll_seconds: float = Field(
        default=2.0, gt=0, le=300, description="How often due bounce-forwarding deliveries are looked for"
    )
    bounce_retry_max_delay_seconds: int = Field(
        default=600, ge=1, le=86400, description="Backoff cap between two attempts of one bounce delivery"
    )

    @field_validator("dns_nameservers")
    @classmethod
    def _nameservers(cls, value: str) -> str:
        from campaign_gateway.adapters.recipient_dns import parse_nameservers

        parse_nameservers(value)
        return value

    @model_validator(mode="after")
    def _merge_file(self) -> CampaignGatewaySettings:
        if self.mailwizz_file is None:
            return self
        try:
            raw: Any = json.loads(self.mailwizz_file.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read the MailWizz settings file: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"the MailWizz settings file is not JSON (line {exc.lineno})") from None
        if not isinstance(raw, dict):
            raise ValueError("the MailWizz settings file must hold a JSON object {tenant: settings}")
        merged = dict(self.mailwizz)
        for tenant, values in raw.items():
            merged[str(tenant)] = MailwizzTenantSettings.model_validate(values)
        object.__setattr__(self, "mailwizz", merged)
        return self


def load_config() -> CampaignGatewaySettings:
    return load(CampaignGatewaySettings)
