"""Verify a Game Server Factory webhook delivery (standard library only; copy it into your receiver).

    X-GSF-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Check the signature over the raw body bytes exactly as received (before any JSON parsing), refuse a
timestamp outside your tolerance (a replayed delivery), and de-duplicate on the event id: a delivery
may arrive more than once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """The delivery is not from the platform, was altered, or is too old (a replay)."""


def verify(secret: str, signature_header: str, body: bytes, *, tolerance: float = TOLERANCE_SECONDS,
           now: float | None = None) -> dict[str, Any]:
    """The event if `body` was signed with `secret` within `tolerance` seconds of `now`; else InvalidSignature."""
    check_signature(secret, signature_header, body, tolerance=tolerance, now=now)
    event: dict[str, Any] = json.loads(body)
    return event


def check_signature(secret: str, signature_header: str, body: bytes, *, tolerance: float = TOLERANCE_SECONDS,
                    now: float | None = None) -> None:
    """Raise InvalidSignature unless `body` was signed with `secret` within `tolerance` seconds of `now`."""
    fields: dict[str, list[str]] = {}
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise InvalidSignature("no timestamp in the signature header") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature("the timestamp is outside the tolerance (a replayed or delayed delivery)")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # Several v1 values may be present while a secret is being rotated; any one may match.
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in fields.get("v1", [])):
        raise InvalidSignature("the signature does not match")


class SeenEvents:
    """Remembers event ids for a while, so a delivery that arrives twice is handled once."""

    def __init__(self, keep_seconds: float = 2 * 86_400) -> None:
        self.keep_seconds = keep_seconds
        self.seen: dict[str, float] = {}

    def first_time(self, event_id: str) -> bool:
        now = time.monotonic()
        self.seen = {k: t for k, t in self.seen.items() if now - t < self.keep_seconds}
        if event_id in self.seen:
            return False
        self.seen[event_id] = now
        return True


if __name__ == "__main__":
    # A minimal receiver: python docs/samples/verify_webhook.py <secret> [port]
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    secret = sys.argv[1]
    seen = SeenEvents()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                event = verify(secret, self.headers.get("X-GSF-Signature", ""), body)
            except InvalidSignature as exc:
                self.send_response(400)
                self.end_headers()
                self.wfile.write(str(exc).encode())
                return
            if seen.first_time(event["id"]):
                print(event["type"], event["resource"].get("id"), event["links"].get("resource"))
            self.send_response(204)
            self.end_headers()

    HTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 9000), Receiver).serve_forever()
