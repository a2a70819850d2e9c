"""The bot token is a secret: validated, never in a repr, an error text or a log line."""

from __future__ import annotations

import pickle

import pytest

from libs.errors import InvalidArgument
from notifier.adapters.telegram import DEFAULT_API_BASE, BotToken, TelegramBotClient
from tests.standins.telegram_bot_api import make_token


def test_repr_shows_the_bot_id_only() -> None:
    token = make_token(123456789)
    bot_token = BotToken(token)
    assert bot_token.bot_id == 123456789
    assert token.split(":")[1] not in repr(bot_token) and token.split(":")[1] not in str(bot_token)
    assert bot_token.reveal() == token
    assert bot_token.redact(f"GET /bot{token}/sendMessage failed") == "GET /bot<redacted>/sendMessage failed"


def test_invalid_tokens_are_refused_without_echo() -> None:
    with pytest.raises(InvalidArgument) as caught:
        BotToken("123:short-secret-value")
    assert "short-secret-value" not in str(caught.value)


def test_tokens_do_not_travel_in_pickles() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(BotToken(make_token()))


def test_client_repr_and_configuration() -> None:
    token = make_token()
    with TelegramBotClient(token) as client:
        assert client.api_base == DEFAULT_API_BASE
        assert token not in repr(client) and token.split(":")[1] not in repr(client)
    with pytest.raises(InvalidArgument, match="api_base"):
        TelegramBotClient(token, api_base="api.telegram.org")


def test_invalid_chat_ids_fail_before_any_request() -> None:
    with (
        TelegramBotClient(make_token(), api_base="http://127.0.0.1:9") as client,
        pytest.raises(InvalidArgument, match="chat_id"),
    ):
        client.send_message("not a chat", "x")
