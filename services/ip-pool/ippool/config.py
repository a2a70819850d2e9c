"""The ip-pool's own settings (EE_IPPOOL_*), read and validated once at start."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load


class IpPoolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_IPPOOL_", extra="ignore")

    seed_tenants: str = Field(
        default="", description="Comma-separated tenant ids created at start-up if missing (e.g. sos-expat,ulixai)"
    )
    warmup_job_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often the daily warmup job looks for tenants whose day began"
    )
    standby_job_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often cooled-down standby IPs are looked for"
    )

    @property
    def seed_tenant_ids(self) -> list[str]:
        return [t.strip() for t in self.seed_tenants.split(",") if t.strip()]


def load_config() -> IpPoolSettings:
    return load(IpPoolSettings)
