"""The notifier's own settings (EE_NOTIFIER_*) and the Telegram bot's (EE_TELEGRAM_*), read and validated once
at start by `load_config`.

Telegram is disabled unless EE_TELEGRAM_BOT_TOKEN is set: alerts for Telegram routes are then stored with the
delivery state DISABLED, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load
from libs.errors import InvalidArgument
from notifier.adapters.telegram import DEFAULT_API_BASE, TOKEN_PATTERN, normalize_api_base
from notifier.domain.dedup import DedupPolicy
from notifier.domain.retry import RetryPolicy
from notifier.domain.storm import StormPolicy


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_NOTIFIER_", extra="ignore")

    dedup_window_seconds: float = Field(
        default=3600, gt=0, description="A second alert with the same tenant and dedup key within this is suppressed"
    )
    delivery_runner: Literal["service", "rq"] = Field(
        default="service",
        description="service: each notifier process runs the delivery loop itself (any mode, N replicas safe); "
        "rq: the delivery job is a periodic RQ job run by `emailengine scheduler` + `emailengine worker notifier`",
    )
    delivery_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often due deliveries are looked for"
    )
    delivery_concurrency: int = Field(default=8, ge=1, le=64, description="Routes served in parallel per poll")
    lease_seconds: float = Field(
        default=60, gt=0, le=3600, description="How long a worker owns a route while sending (crash: retaken after it)"
    )
    retry_initial_seconds: float = Field(default=1.0, gt=0)
    retry_max_delay_seconds: float = Field(default=60.0, gt=0, description="Backoff cap: a recovery is seen this soon")
    retry_give_up_hours: float = Field(default=24.0, gt=0, description="After this, a delivery is marked FAILED")
    storm_threshold: int = Field(default=4, ge=1, description="Alerts to one route within the storm window = a storm")
    storm_window_seconds: float = Field(default=60.0, ge=0)
    storm_group_wait_seconds: float = Field(default=20.0, ge=0, description="A storm's alerts wait this to be grouped")
    storm_max_alerts_per_digest: int = Field(default=50, ge=2)
    min_spacing_seconds: float = Field(default=1.0, ge=0, description="Between two messages to one route")
    telegram_max_parts: int = Field(default=4, ge=1, le=20, description="A long alert is split in at most this many")
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Whole-call deadline of one webhook request (never above EE_OUTBOUND_DEADLINE_SECONDS)",
    )

    def dedup_policy(self) -> DedupPolicy:
        return DedupPolicy(window=timedelta(seconds=self.dedup_window_seconds))

    def retry_policy(self) -> RetryPolicy:
        initial = timedelta(seconds=self.retry_initial_seconds)
        return RetryPolicy(
            initial_delay=initial,
            max_delay=max(initial, timedelta(seconds=self.retry_max_delay_seconds)),
            give_up_after=timedelta(hours=self.retry_give_up_hours),
        )

    def storm_policy(self) -> StormPolicy:
        return StormPolicy(
            window=timedelta(seconds=self.storm_window_seconds),
            threshold=self.storm_threshold,
            group_wait=timedelta(seconds=self.storm_group_wait_seconds),
            max_alerts_per_digest=self.storm_max_alerts_per_digest,
            min_spacing=timedelta(seconds=self.min_spacing_seconds),
        )


class TelegramSettings(BaseSettings):
    """The shared bot. The token is a secret: never shown by repr, never echoed in a configuration error."""

    model_config = SettingsConfigDict(env_prefix="EE_TELEGRAM_", extra="ignore")

    bot_token: SecretStr | None = Field(
        default=None, description="BotFather's token; unset: Telegram is disabled (deliveries stored as DISABLED)"
    )
    api_base: str = Field(default=DEFAULT_API_BASE, description="The Bot API's base URL")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description="Whole-call deadline of one Bot API call")

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token_shape(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not TOKEN_PATTERN.match(value.strip()):
            # Never echo the value: a token pasted with a typo is still mostly a secret.
            raise ValueError("must look like <bot id>:<secret> as BotFather issues it")
        return value.strip()

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str) -> str:
        try:
            return normalize_api_base(value)
        except InvalidArgument as exc:
            raise ValueError(exc.violations[0].description) from None

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None


@dataclass(frozen=True)
class NotifierConfig:
    """Everything the notifier reads from its environment, loaded once."""

    notifier: NotifierSettings
    telegram: TelegramSettings


def load_config() -> NotifierConfig:
    return NotifierConfig(notifier=load(NotifierSettings), telegram=load(TelegramSettings))
