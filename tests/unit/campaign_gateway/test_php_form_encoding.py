"""PHP form encoding: what the client writes is what PHP (and so MailWizz) reads back."""

from __future__ import annotations

from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_gateway.adapters.mailwizz_api import http_build_query, php_form_fields, php_urlencode
from tests.standins.php_input import parse_php_input


def test_nested_keys_round_trip_through_phps_reading() -> None:
    data = {
        "campaign": {"name": "a b&c", "template": {"content": "PGh0bWw+~+/="}, "delivery_servers": [3, 7]},
        "subscribers": [{"EMAIL": "x@example.com", "details": {"status": "confirmed"}}],
    }
    parsed, dropped = parse_php_input(http_build_query(data))
    assert dropped == 0
    assert parsed == {
        "campaign": {"name": "a b&c", "template": {"content": "PGh0bWw+~+/="}, "delivery_servers": {0: "3", 1: "7"}},
        "subscribers": {0: {"EMAIL": "x@example.com", "details": {"status": "confirmed"}}},
    }


def test_encoding_is_byte_for_byte_phps_http_build_query() -> None:
    # php -r 'echo http_build_query(["a" => ["b c" => "~x y*"], "t" => true, "n" => null]);'
    assert http_build_query({"a": {"b c": "~x y*"}, "t": True, "n": None}) == "a%5Bb+c%5D=%7Ex+y%2A&t=1"


def test_fields_are_flat_pairs() -> None:
    assert php_form_fields({"s": [{"EMAIL": "e"}]}) == [("s[0][EMAIL]", "e")]


def test_php_drops_fields_past_max_input_vars_silently() -> None:
    body = "&".join(f"subscribers[{i}][EMAIL]=u{i}%40example.com" for i in range(5))
    parsed, dropped = parse_php_input(body, max_input_vars=3)
    assert list(parsed["subscribers"]) == [0, 1, 2] and dropped == 2


def test_php_name_mangling() -> None:
    parsed, _ = parse_php_input("a.b=1&c d=2&e[=3&f[]=4&f[]=5&g[x]=6&g=7&h[01]=8")
    assert parsed == {"a_b": "1", "c_d": "2", "e_": "3", "f": {0: "4", 1: "5"}, "g": "7", "h": {"01": "8"}}


@settings(max_examples=500, derandomize=True)
@given(st.text())
def test_urlencode_is_phps_for_any_text(text: str) -> None:
    # PHP's urlencode() is quote_plus with nothing safe but alphanumerics and -_. (so '~' is escaped too).
    assert php_urlencode(text) == quote_plus(text, safe="").replace("~", "%7E")
