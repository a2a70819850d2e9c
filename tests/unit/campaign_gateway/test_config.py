"""The campaign gateway's settings: each tenant's MailWizz from JSON (or a file), keys kept secret everywhere,
bad values refused at start with the variable named and no secret printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from campaign_gateway.adapters.mailwizz_bindings import binding_view
from campaign_gateway.config import CampaignGatewaySettings, load_config

KEY = "secret-api-key-0123456789"
PASSWORD = "db-password-987"


def tenant(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "base_url": "https://mail.sos-expat.example/api/",
        "api_key": KEY,
        "database_url": f"mysql+pymysql://ee:{PASSWORD}@10.0.0.5:3306/mailwizz?charset=utf8mb4",
        "timezone": "Europe/Paris",
        "customer_id": 3,
        "from_name": "SOS Expat",
        "from_email": "news@sos-mail.example",
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def settings(monkeypatch: pytest.MonkeyPatch, **tenants: dict[str, Any]) -> CampaignGatewaySettings:
    monkeypatch.setenv("EE_CAMPAIGN_GATEWAY_MAILWIZZ", json.dumps(tenants))
    return CampaignGatewaySettings()


def test_a_tenants_mailwizz_is_read_from_json_and_its_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, **{"sos-expat": tenant()})
    mailwizz = loaded.mailwizz["sos-expat"]
    assert mailwizz.base_url == "https://mail.sos-expat.example/api" and mailwizz.chunk_size == 200
    assert mailwizz.api_key is not None and mailwizz.api_key.get_secret_value() == KEY
    for shown in (repr(loaded), str(loaded), repr(mailwizz), loaded.model_dump_json()):
        assert KEY not in shown and PASSWORD not in shown
    view = binding_view("sos-expat", mailwizz)
    assert view.database == "10.0.0.5:3306/mailwizz" and view.reply_to == "news@sos-mail.example"
    assert KEY not in repr(view) and PASSWORD not in repr(view) and "ee:" not in repr(view)


def test_a_1x_install_takes_a_key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, t=tenant(api_key=None, public_key="p" * 40, private_key="s" * 40))
    assert binding_view("t", loaded.mailwizz["t"]).auth == "signed"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"public_key": "p" * 40, "private_key": "s" * 40}, "not both"),
        ({"api_key": None}, "is required"),
        ({"api_key": None, "public_key": "p" * 40}, "is required"),
        ({"base_url": "ftp://mail.example/api"}, "http"),
        ({"base_url": "https://user:pw@mail.example/api"}, "credentials"),
        ({"database_url": "postgresql://x@y/z"}, "mysql+pymysql"),
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"table_prefix": "mw; DROP"}, "letters, digits"),
        ({"chunk_size": 20_000}, "10000"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_bad_values_are_refused_without_echoing_secrets(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(monkeypatch, t=tenant(**changes))
    text = "; ".join(error["msg"] for error in refused.value.errors())
    assert words in text and KEY not in text and PASSWORD not in text


def test_a_bad_setting_stops_the_start_naming_the_variable_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "EE_CAMPAIGN_GATEWAY_MAILWIZZ", json.dumps({"t": tenant(database_url=f"postgresql://{PASSWORD}")})
    )
    with pytest.raises(SystemExit):
        load_config()
    printed = capsys.readouterr().err
    assert "EE_CAMPAIGN_GATEWAY_MAILWIZZ" in printed and PASSWORD not in printed


def test_a_file_of_bindings_is_merged_over_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "mailwizz.json"
    path.write_text(json.dumps({"ulixai": tenant(from_email="news@ulixai-mail.example")}))
    monkeypatch.setenv("EE_CAMPAIGN_GATEWAY_MAILWIZZ_FILE", str(path))
    loaded = settings(monkeypatch, **{"sos-expat": tenant()})
    assert sorted(loaded.mailwizz) == ["sos-expat", "ulixai"]
    monkeypatch.setenv("EE_CAMPAIGN_GATEWAY_MAILWIZZ_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError, match="cannot read"):
        CampaignGatewaySettings()


def test_nameservers_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_DNS_NAMESERVERS", "127.0.0.1:5353,[::1]:53")
    assert CampaignGatewaySettings().dns_nameservers == "127.0.0.1:5353,[::1]:53"
    monkeypatch.setenv("EE_DNS_NAMESERVERS", "resolver.example")
    with pytest.raises(ValidationError, match="nameserver"):
        CampaignGatewaySettings()
