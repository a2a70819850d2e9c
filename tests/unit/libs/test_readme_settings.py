"""Every setting a process reads is documented in the README with its default."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from libs.config import Settings

README = (Path(__file__).parents[3] / "README.md").read_text()


def env_names(cls: type[BaseSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return [
        (field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name}").upper()
        for name, field in cls.model_fields.items()
    ]


def test_platform_settings_are_in_the_readme() -> None:
    missing = [name for name in env_names(Settings) if f"`{name}`" not in README]
    assert missing == []


def test_service_settings_are_in_the_readme() -> None:
    from campaign_gateway.config import CampaignGatewaySettings
    from ippool.config import IpPoolSettings
    from notifier.config import NotifierSettings, TelegramSettings
    from reputation.config import DnsEnvSettings, ReputationSettings

    classes = (
        IpPoolSettings,
        NotifierSettings,
        TelegramSettings,
        DnsEnvSettings,
        ReputationSettings,
        CampaignGatewaySettings,
    )
    missing = [name for cls in classes for name in env_names(cls) if f"`{name}`" not in README]
    assert missing == []
    for telegram in ("EE_TELEGRAM_BOT_TOKEN", "EE_TELEGRAM_API_BASE", "EE_TELEGRAM_TIMEOUT_SECONDS"):
        assert f"`{telegram}`" in README
