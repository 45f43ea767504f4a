"""Settings groups of security and the edge: the shared secret, browsers and proxies, rate limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, IPvAnyNetwork
from pydantic_settings import NoDecode

from core.settings.base import GroupSettings, comma_separated


class SecretSettings(GroupSettings):
    """Shared secrets.

    The secret every process of an installation shares; outside production an empty one is
    generated once and kept in the data folder.
    """

    secret_key: str = ""


class EdgeSettings(GroupSettings):
    """Browsers and proxies.

    Which browser origins may call the API, and which reverse proxies' `X-Forwarded-For` the API
    and the matchmaker believe (core/asgi.py).
    """

    cors_origins: list[str] = Field(
        default_factory=list, description='origins allowed to call the API from a browser, as JSON: '
        '`["https://console.example.com"]`; empty: no CORS headers at all')
    # Issue #19: X-Forwarded-For is believed only from these peers (core/asgi.py).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode, BeforeValidator(comma_separated)] = Field(
        default_factory=list, description="reverse proxies (IPs or CIDRs, comma-separated or JSON) whose "
        "`X-Forwarded-For` the API and the matchmaker believe: the client is the right-most address that is not "
        "one of them. Empty: the header is ignored and the connecting peer is the client (rate limits, audit log)")


class RateLimitSettings(GroupSettings):
    """Rate limits.

    Rate limits are token buckets: `rate` tokens per second refill a bucket of `burst` tokens;
    each request takes one, and an empty bucket answers 429 with Retry-After.
    """

    rate_limit_enabled: bool = Field(default=True, description="turns every rate limit below on or off")
    api_rate_per_key: float = Field(
        default=20.0, gt=0, description="API requests per second per API key (the bucket's refill rate)")
    api_burst_per_key: int = Field(
        default=200, ge=1, description="API requests one API key may make in a burst (the bucket's size)")
    api_rate_per_ip: float = Field(
        default=50.0, gt=0,
        description="API requests per second per client IP, keys and unauthenticated calls together")
    api_burst_per_ip: int = Field(default=500, ge=1, description="API requests one client IP may make in a burst")
    # Each join holds a seat for seat_reservation_seconds, so this also caps the seats one IP holds.
    join_rate_per_ip: float = Field(
        default=20.0, gt=0, description="matchmaker joins (`POST /join`) per second per client IP")
    join_burst_per_ip: int = Field(default=300, ge=1, description="matchmaker joins one client IP may make in a burst")
    join_rate_per_player: float = Field(
        default=1.0, gt=0, description="matchmaker joins per second per `X-Player-Id` header value")
    join_burst_per_player: int = Field(
        default=10, ge=1, description="matchmaker joins per `X-Player-Id` header value in a burst")
    rate_limit_max_buckets: int = Field(
        default=100_000, ge=100, description="in-process buckets kept per limiter; the least recently used go first")
