"""Keys and tokens: API keys and node tokens (stored hashed), node join proofs, per-server seat secrets and seat tokens.

Seat token wire format (the Node.js runtime verifies the same):
    base64url(json payload) + "." + base64url(HMAC-SHA256(seat_secret, payload_b64))
payload = {"sid": server_id, "pid": player_id, "exp": unix_seconds, "n": nonce}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

API_KEY_PREFIX = "gsf_"
NODE_TOKEN_PREFIX = "gsfn_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- API keys -----------------------------------------------------------------


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the key shown once, its lookup prefix, its stored hash)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_prefix(key), hash_api_key(key)


def key_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + 8]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- node credentials ------------------------------------------------------------------
# A node agent authenticates with a credential the platform issued and stores hashed (table
# `node_credentials`), so that it can be rotated and revoked. An agent gets its first one by
# enrolling with its join proof: an HMAC of its node id under the platform secret, which every
# agent holds already (it derives the per-server seat secrets from it). The proof only admits a
# node never admitted before; it is no credential for any agent route (core/node_credentials.py).


def new_node_token() -> tuple[str, str, str]:
    """A fresh node token: (the token shown once, its lookup prefix, its stored hash)."""
    token = NODE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, key_prefix(token), hash_api_key(token)


def is_node_token(token: str) -> bool:
    return token.startswith(NODE_TOKEN_PREFIX) and len(token) > len(NODE_TOKEN_PREFIX) + 8


def join_proof(secret_key: str, node_id: str) -> str:
    return _mac(secret_key, "join:" + node_id)


def verify_join_proof(secret_key: str, node_id: str, proof: str) -> bool:
    return hmac.compare_digest(proof.encode(errors="replace"), join_proof(secret_key, node_id).encode())


# --- seats --------------------------------------------------------------------------


def seat_secret(secret_key: str, server_id: str) -> str:
    """The per-server key handed to one container; it can sign nothing for other servers."""
    return _mac(secret_key, "seat:" + server_id)


def agent_key(secret_key: str, server_id: str) -> str:
    """What the node agent presents to a container's /status endpoint."""
    return _mac(secret_key, "agent:" + server_id)


@dataclass(frozen=True)
class SeatToken:
    token: str
    server_id: str
    player_id: str
    expires_at: float
    nonce: str
    room_id: str = ""


def sign_seat_token(secret: str, server_id: str, player_id: str, ttl_seconds: float,
                    now: float | None = None, *, room_id: str | None = None,
                    new_room: dict[str, Any] | None = None) -> SeatToken:
    """A seat in one room of one server, good for one connection until it expires.

    Claims: `sid` server, `pid` player, `exp` unix seconds, `n` nonce; `rid` the room (absent: the
    server's first room, whose id is the server id); `new` when the matchmaker reserved a room the
    server has not created yet: `{"opt": room options}`, and the runtime creates it on this connection.
    """
    exp = (time.time() if now is None else now) + ttl_seconds
    nonce = secrets.token_urlsafe(12)
    claims: dict[str, Any] = {"sid": server_id, "pid": player_id, "exp": exp, "n": nonce}
    if room_id is not None:
        claims["rid"] = room_id
    if new_room is not None:
        claims["new"] = new_room
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return SeatToken(f"{payload}.{sig}", server_id, player_id, exp, nonce, room_id or server_id)


def verify_seat_token(secret: str, token: str, server_id: str, now: float | None = None) -> dict[str, object] | None:
    try:
        payload, sig = token.split(".", 1)
        expected = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig.encode(errors="replace"), expected.encode()):
            return None
        data = json.loads(_unb64(payload))
    except (ValueError, UnicodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("sid") != server_id:
        return None
    if float(data.get("exp", 0)) < (time.time() if now is None else now):
        return None
    return data
