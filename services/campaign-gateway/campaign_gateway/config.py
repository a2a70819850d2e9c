"""The campaign-gateway's own settings (EE_CAMPAIGN_GATEWAY_*), read and validated once at start."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load


class CampaignGatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_CAMPAIGN_GATEWAY_", extra="ignore")

    max_contacts_per_request: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Contacts one CreateCampaign call may carry"
    )


def load_config() -> CampaignGatewaySettings:
    return load(CampaignGatewaySettings)
