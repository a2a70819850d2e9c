"""The campaign-gateway's own settings (EE_CAMPAIGN_GATEWAY_*), read and validated once at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load


class CampaignGatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_CAMPAIGN_GATEWAY_", extra="ignore")

    max_contacts_per_request: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Contacts one CreateCampaign call may carry"
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


def load_config() -> CampaignGatewaySettings:
    return load(CampaignGatewaySettings)
