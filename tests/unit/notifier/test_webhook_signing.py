"""Webhook body and signature: canonical JSON, HMAC over "<timestamp>." + body, replay window."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from datetime import timedelta

import pytest

from libs.errors import InvalidArgument
from libs.outbound import origin_of
from notifier.adapters.webhook import WebhookSecret, sign, verify_signature
from notifier.domain.webhook_payload import webhook_body
from tests.unit.notifier.conftest import T0, make_alert

SECRET = "s3cret-s3cret-s3cret"


def test_body_is_canonical_json() -> None:
    body = webhook_body([make_alert(labels={"z": "1", "a": "2"})], delivery_id="d-1")
    document = json.loads(body)
    assert document["type"] == "emailengine.alerts" and document["version"] == 1
    assert document["delivery_id"] == "d-1"
    [alert] = document["alerts"]
    assert alert["severity"] == "critical" and alert["occurred_at"] == "2026-01-05T09:00:00Z"
    assert list(alert["labels"]) == ["a", "z"]
    assert body == webhook_body([make_alert(labels={"a": "2", "z": "1"})], delivery_id="d-1")
    with pytest.raises(ValueError):
        webhook_body([], delivery_id="d")


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"x":1}'
    expected = hmac.new(SECRET.encode(), b"1767603600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1767603600, body) == f"sha256={expected}"


def test_verify_accepts_fresh_matching_signatures_only() -> None:
    body = b'{"x":1}'
    stamp = int(T0.timestamp())
    good = sign(SECRET, stamp, body)
    assert verify_signature(SECRET, body, signature_header=good, timestamp_header=str(stamp), now=T0)
    assert not verify_signature(SECRET, body + b" ", signature_header=good, timestamp_header=str(stamp), now=T0)
    assert not verify_signature(
        "another-secret-value", body, signature_header=good, timestamp_header=str(stamp), now=T0
    )
    # Replay: the same request later, or a new timestamp glued onto an old signature.
    assert not verify_signature(
        SECRET, body, signature_header=good, timestamp_header=str(stamp), now=T0 + timedelta(minutes=6)
    )
    assert not verify_signature(SECRET, body, signature_header=good, timestamp_header=str(stamp + 60), now=T0)
    assert not verify_signature(SECRET, body, signature_header=None, timestamp_header=str(stamp), now=T0)
    assert not verify_signature(SECRET, body, signature_header="sha256=zz", timestamp_header=str(stamp), now=T0)
    assert not verify_signature(SECRET, body, signature_header=good, timestamp_header="-5", now=T0)


def test_secrets_and_target_urls_are_not_shown() -> None:
    secret = WebhookSecret(SECRET)
    assert SECRET not in repr(secret) and SECRET not in str(secret)
    assert origin_of("https://hooks.example:8443/T000/B000/XXXXsecretpath?token=abc") == "https://hooks.example:8443"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_weak_secrets_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="secret"):
        WebhookSecret("short")
