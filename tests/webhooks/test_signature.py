"""The signature the platform sends is the one docs/samples/verify_webhook.py verifies; tampering and replays fail."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.webhooks import EventType, WebhookEvent, body_bytes, sign
from tests.webhooks.conftest import load_sample

sample = load_sample()
SECRET = "whsec_test-secret-of-enough-length"


def event() -> WebhookEvent:
    return WebhookEvent(id="evt_1", type=EventType.SERVER_RUNNING, time=datetime(2025, 1, 2, tzinfo=UTC),
                        resource={"kind": "server", "id": "s1", "name": "ünïcode ✓"},
                        links={"resource": "http://api/api/v1/servers/s1"})


def test_a_signed_body_verifies_and_parses() -> None:
    body = body_bytes(event())
    now = int(time.time())
    got = sample.verify(SECRET, sign(SECRET, body, now), body)
    assert got["id"] == "evt_1"
    assert got["type"] == "server.running"
    assert got["resource"]["name"] == "ünïcode ✓"


@pytest.mark.parametrize("mutate", [
    lambda b, h: (b.replace(b"s1", b"s2"), h),  # body altered
    lambda b, h: (b + b" ", h),  # re-serialised
    lambda b, h: (b, h.replace("v1=", "v1=0")),  # signature altered
    lambda b, h: (b, h.split(",")[1]),  # no timestamp
    lambda b, h: (b, ""),  # no header
])
def test_tampering_is_refused(mutate: object) -> None:
    body = body_bytes(event())
    header = sign(SECRET, body, int(time.time()))
    body, header = mutate(body, header)  # type: ignore[operator]
    with pytest.raises(sample.InvalidSignature):
        sample.verify(SECRET, header, body)


def test_another_secret_is_refused() -> None:
    body = body_bytes(event())
    with pytest.raises(sample.InvalidSignature):
        sample.verify("whsec_another-secret-entirely", sign(SECRET, body, int(time.time())), body)


def test_an_old_delivery_is_a_replay() -> None:
    body = body_bytes(event())
    old = int(time.time()) - 301
    with pytest.raises(sample.InvalidSignature, match="tolerance"):
        sample.verify(SECRET, sign(SECRET, body, old), body)
    assert sample.verify(SECRET, sign(SECRET, body, old), body, tolerance=600)["id"] == "evt_1"


def test_a_rotated_secret_may_sit_beside_the_old_one() -> None:
    body = body_bytes(event())
    now = int(time.time())
    header = sign(SECRET, body, now) + "," + sign("whsec_the-next-secret-value", body, now).split(",")[1]
    assert sample.verify("whsec_the-next-secret-value", header, body)["id"] == "evt_1"


def test_event_ids_are_remembered_once() -> None:
    seen = sample.SeenEvents()
    assert seen.first_time("evt_1")
    assert not seen.first_time("evt_1")
    assert seen.first_time("evt_2")


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=64), st.integers(0, 2**40))
def test_sign_and_check_agree_on_any_body(body: bytes, secret: str, timestamp: int) -> None:
    header = sign(secret, body, timestamp)
    sample.check_signature(secret, header, body, now=timestamp)
    with pytest.raises(sample.InvalidSignature):
        sample.check_signature(secret + "x", header, body, now=timestamp)
    with pytest.raises(sample.InvalidSignature):
        sample.check_signature(secret, header, body + b"x", now=timestamp)
