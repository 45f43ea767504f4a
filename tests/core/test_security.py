"""Keys and tokens."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from core import security


def test_api_keys_are_stored_hashed_with_a_lookup_prefix() -> None:
    key, prefix, digest = security.new_api_key()
    assert key.startswith("gsf_")
    assert key.startswith(prefix)
    assert digest == security.hash_api_key(key)
    assert key not in digest


def test_node_tokens_are_random_and_stored_hashed_with_a_lookup_prefix() -> None:
    token, prefix, digest = security.new_node_token()
    assert token.startswith("gsfn_")
    assert token.startswith(prefix)
    assert security.is_node_token(token)
    assert digest == security.hash_api_key(token)
    assert token not in digest
    assert security.new_node_token()[0] != token
    assert not security.is_node_token(security.new_api_key()[0])


def test_a_join_proof_speaks_for_one_node_only() -> None:
    proof = security.join_proof("s3cret", "node-a")
    assert security.verify_join_proof("s3cret", "node-a", proof)
    assert not security.verify_join_proof("s3cret", "node-b", proof)
    assert not security.verify_join_proof("other", "node-a", proof)


def test_seat_secrets_differ_per_server() -> None:
    assert security.seat_secret("k", "a") != security.seat_secret("k", "b")
    assert security.agent_key("k", "a") != security.seat_secret("k", "a")


def test_seat_token_round_trip_and_refusals() -> None:
    secret = security.seat_secret("k", "srv")
    seat = security.sign_seat_token(secret, "srv", "p1", 15)
    assert security.verify_seat_token(secret, seat.token, "srv")["pid"] == "p1"  # type: ignore[index]
    assert security.verify_seat_token(secret, seat.token, "other") is None
    assert security.verify_seat_token(security.seat_secret("k", "x"), seat.token, "srv") is None
    assert security.verify_seat_token(secret, seat.token, "srv", now=time.time() + 16) is None


@given(st.text(max_size=200))
def test_garbage_tokens_never_verify(token: str) -> None:
    assert security.verify_seat_token("k", token, "srv") is None
