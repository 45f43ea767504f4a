"""Rate limits in front of the API: a token bucket per client IP and one per API key.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a request takes one
token from each bucket it belongs to, or none if any is empty, and is then answered 429 with
Retry-After. Buckets live in this process (each API replica limits on its own). Only `/api/`
is limited: health, metrics, the OpenAPI document and the console's static files are not, and
neither are node agents calling their own routes with a valid node token (they heartbeat and
ship logs several times a second and are authenticated infrastructure, not users).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from api.middleware import REQUEST_ID
from core.asgi import SECURITY_HEADERS
from core.node_credentials import RecentTokens
from core.ratelimit import TokenBuckets, retry_after, take_all
from core.settings import Settings

LIMITED_PREFIX = "/api/"
AGENT_PREFIX = "/api/v1/agent/"


class ApiRateLimits:
    """The API's two limiters. `clock` is monotonic seconds; tests swap in one they control."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.rate_limit_enabled
        self.per_ip = TokenBuckets(settings.api_rate_per_ip, settings.api_burst_per_ip,
                                   settings.rate_limit_max_buckets)
        self.per_key = TokenBuckets(settings.api_rate_per_key, settings.api_burst_per_key,
                                    settings.rate_limit_max_buckets)
        self.clock = clock

    def check(self, ip: str, credential: str | None) -> tuple[float, str]:
        """(seconds to wait, which limit) — (0, "") when the request may go on."""
        now = self.clock()
        pairs = [(self.per_ip, ip)]
        key = None
        if credential is not None:
            # Keys are kept as hashes only: the limiter must not become a second copy of them.
            key = hashlib.sha256(credential.encode()).hexdigest()[:32]
            pairs.append((self.per_key, key))
        wait = take_all(pairs, now)
        if wait == 0:
            return 0.0, ""
        by_key = key is not None and self.per_key.wait(key, now) >= self.per_ip.wait(ip, now)
        return wait, "API key" if by_key else "client IP"


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RateLimitMiddleware:
    """Pure ASGI, outside EdgeMiddleware: a refused request costs no body read and no audit row.
    It answers with the same request id and security headers EdgeMiddleware would add."""

    def __init__(self, app: ASGIApp, limits: ApiRateLimits, secret_key: str) -> None:
        self.app = app
        self.limits = limits
        self.secret_key = secret_key
        self.agents = RecentTokens()  # live node credentials seen lately (core/node_credentials.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.limits.enabled or not path.startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        credential = _bearer(headers)
        if (credential is not None and path.startswith(AGENT_PREFIX)
                and await self.agents.node_of(scope["app"].state.sessions, credential) is not None):
            await self.app(scope, receive, send)
            return
        # The peer, or what a GSF_TRUSTED_PROXIES proxy says (core.asgi); never the caller's header.
        client = scope.get("client")
        wait, which = self.limits.check(client[0] if client else "unknown", credential)
        if wait == 0:
            await self.app(scope, receive, send)
            return
        given = headers.get(b"x-request-id", b"").decode(errors="replace")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        seconds = retry_after(wait)
        resp = problem(429, "rate-limited", "Too many requests",
                       f"the {which} rate limit is exceeded; retry in {seconds} s", path,
                       request_id=request_id, retry_after=seconds)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"retry-after", str(seconds).encode()),
                                      (b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
            await send(message)

        await resp(scope, receive, send_with_headers)
